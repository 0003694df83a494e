/**
 * The knex repositories on the engine chosen by TIERCA_TEST_DB (sqlite by default, or postgres):
 * every method round-trips every field exactly, unique keys hold, transactions are atomic, and
 * concurrent writers — in one store, two stores on one database, and two processes — lose nothing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { knexOf, openStore, type StoreOptions } from '../../server/storage/knex-store.ts';
import {
  UniqueViolationError,
  type AuditRecord,
  type CaRecord,
  type CertificateRecord,
  type KeyRecord,
  type PrincipalRecord,
  type RequestRecord,
  type Store,
  type SubjectRecord,
} from '../../server/storage/storage.ts';
import { countRows, snapshotCounts, testEngine, testStore, testStoreOptions } from '../helpers/database.ts';

const T0 = new Date('2026-11-25T12:00:00.123Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const DAY = 24 * 3600 * 1000;

let store: Store;
let storeOptions: StoreOptions;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  ({ store, options: storeOptions, cleanup } = await testStore());
});
afterEach(async () => {
  await cleanup();
});

function key(id: string, overrides: Partial<KeyRecord> = {}): KeyRecord {
  return {
    id,
    algorithm: 'P-256',
    custody: 'software',
    sealed: Buffer.from([0x00, 0xff, 0x10, 0x80, 0x00]),
    pkcs11Label: null,
    publicKeyInfo: Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'),
    purpose: 'ca',
    createdAt: T0,
    ...overrides,
  };
}

function ca(id: string, keyId: string, overrides: Partial<CaRecord> = {}): CaRecord {
  return {
    id,
    layer: 'tier',
    domain: 'xiangtan',
    tier: 't2',
    parentId: 'root',
    name: `湘潭 ${id}`,
    keyId,
    certificate: Buffer.from([0x30, 0x82, 0x00, 0x00, 0x01, 0x02]),
    serial: '7f01',
    notBefore: T0,
    notAfter: at(3650 * DAY),
    fingerprint: 'ab'.repeat(32),
    keyHashSha1: createHash('sha1').update(id).digest('hex'),
    nameHashSha1: createHash('sha1').update(`name:${id}`).digest('hex'),
    status: 'active',
    revokedAt: null,
    revocationReason: null,
    createdAt: T0,
    ...overrides,
  };
}

function cert(issuerId: string, serial: string, overrides: Partial<CertificateRecord> = {}): CertificateRecord {
  return {
    issuerId,
    serial,
    subjectId: 'subj-1',
    profile: 'device',
    tier: 't2',
    domain: 'xiangtan',
    subjectDn: 'C=CN, ST=湖南省, L=湘潭市, O=人民政府, CN=router-1',
    notBefore: T0,
    notAfter: at(365 * DAY),
    status: 'good',
    revokedAt: null,
    revocationReason: null,
    invalidityDate: null,
    fingerprint: createHash('sha256').update(serial).digest('hex'),
    der: Buffer.concat([Buffer.from([0x30, 0x00]), randomBytes(32)]),
    keyAlgorithm: 'P-256',
    requestId: null,
    createdAt: T0,
    ...overrides,
  };
}

/** Seeds what certificates and responders refer to: a domain, a key, and two CAs. */
async function seedCas(): Promise<void> {
  await store.domains.insert({ slug: 'xiangtan', name: '湘潭市', locality: '湘潭市', dnsSuffix: 'xt.gov.intra', emailSuffix: 'xt.gov.intra', parent: null });
  await store.keys.insert(key('k-ca'));
  await store.cas.insert(ca('ca-a', 'k-ca'));
  await store.cas.insert(ca('ca-b', 'k-ca'));
}

/** The test's chained record: hash = sha256(prevHash + seq). */
function chained(last: AuditRecord | undefined, action = 'test.append', extra: Partial<AuditRecord> = {}): AuditRecord {
  const seq = (last?.seq ?? 0) + 1;
  const prevHash = last?.hash ?? '0'.repeat(64);
  return {
    seq,
    at: T0,
    principalId: null,
    role: null,
    source: null,
    action,
    target: null,
    outcome: 'success',
    requestId: null,
    detail: {},
    prevHash,
    hash: createHash('sha256').update(prevHash + String(seq)).digest('hex'),
    ...extra,
  };
}

function expectChain(records: AuditRecord[], n: number): void {
  expect(records.map((r) => r.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  let prev = '0'.repeat(64);
  for (const r of records) {
    expect(r.prevHash).toBe(prev);
    expect(r.hash).toBe(createHash('sha256').update(prev + String(r.seq)).digest('hex'));
    prev = r.hash;
  }
}

describe(`storage on ${testEngine()}`, () => {
  it('reports its engine', () => {
    expect(store.engine).toBe(testEngine());
  });

  describe('meta', () => {
    it('gets undefined for a missing key, sets, and replaces', async () => {
      expect(await store.meta.get('instance')).toBeUndefined();
      await store.meta.set('instance', 'a');
      expect(await store.meta.get('instance')).toBe('a');
      await store.meta.set('instance', '湘潭 b');
      expect(await store.meta.get('instance')).toBe('湘潭 b');
      expect(await countRows(store, 'meta')).toBe(1);
    });
  });

  describe('domains and organs', () => {
    it('round-trip every field, list in order, and refuse duplicates', async () => {
      const city = { slug: 'xiangtan', name: '湘潭市', locality: '湘潭市', dnsSuffix: 'xt.gov.intra', emailSuffix: 'mail.xt.gov.intra', parent: null };
      const county = { slug: 'shaoshan', name: '韶山市', locality: '韶山市', dnsSuffix: 'ss.xt.gov.intra', emailSuffix: 'ss.xt.gov.intra', parent: 'xiangtan' };
      await store.domains.insert(city);
      await store.domains.insert(county);
      expect(await store.domains.get('xiangtan')).toEqual(city);
      expect(await store.domains.get('shaoshan')).toEqual(county);
      expect(await store.domains.get('nowhere')).toBeUndefined();
      expect(await store.domains.list()).toEqual([county, city]);
      await expect(store.domains.insert({ ...city, name: 'other' })).rejects.toThrow(UniqueViolationError);
      expect(await store.domains.get('xiangtan')).toEqual(city);

      const organs = [
        { domain: 'xiangtan', slug: 'gov', name: '人民政府' },
        { domain: 'shaoshan', slug: 'court', name: '人民法院' },
        { domain: 'xiangtan', slug: 'court', name: '中级人民法院' },
      ];
      for (const o of organs) await store.organs.insert(o);
      expect(await store.organs.get('xiangtan', 'court')).toEqual(organs[2]);
      expect(await store.organs.get('xiangtan', 'none')).toBeUndefined();
      expect(await store.organs.list('xiangtan')).toEqual([organs[2], organs[0]]);
      expect(await store.organs.list()).toEqual([organs[1], organs[2], organs[0]]);
      await expect(store.organs.insert({ ...organs[0], name: 'again' })).rejects.toThrow(UniqueViolationError);
      expect(await countRows(store, 'organs')).toBe(3);
    });

    it('enforces foreign keys', async () => {
      await expect(store.organs.insert({ domain: 'missing', slug: 'gov', name: 'x' })).rejects.toThrow(/foreign key/i);
      expect(await countRows(store, 'organs')).toBe(0);
    });
  });

  describe('keys', () => {
    it('round-trip sealed and PKCS#11 keys byte for byte, filter by purpose', async () => {
      const sealed = key('k1', { sealed: randomBytes(300), createdAt: at(1) });
      const hsm = key('k2', { custody: 'pkcs11', sealed: null, pkcs11Label: 'tierca-ocsp-1', purpose: 'ocsp', algorithm: 'SM2', createdAt: at(2) });
      await store.keys.insert(hsm);
      await store.keys.insert(sealed);
      const got = await store.keys.get('k1');
      expect(got).toEqual(sealed);
      expect(Buffer.isBuffer(got!.sealed)).toBe(true);
      expect(got!.sealed!.equals(sealed.sealed!)).toBe(true);
      expect(got!.publicKeyInfo.equals(sealed.publicKeyInfo)).toBe(true);
      expect(got!.createdAt.getTime()).toBe(at(1).getTime());
      expect(await store.keys.get('k2')).toEqual(hsm);
      expect(await store.keys.get('k3')).toBeUndefined();
      expect(await store.keys.list()).toEqual([sealed, hsm]);
      expect(await store.keys.list('ocsp')).toEqual([hsm]);
      expect(await store.keys.list('escrow')).toEqual([]);
      await expect(store.keys.insert(key('k1'))).rejects.toThrow(UniqueViolationError);
      expect(await countRows(store, 'keys')).toBe(2);
    });
  });

  describe('cas', () => {
    it('round-trip, find by key hash, list, update status, refuse a duplicate id or key hash', async () => {
      await store.keys.insert(key('k-root'));
      const root = ca('root', 'k-root', { layer: 'root', domain: null, tier: null, parentId: null, createdAt: at(0) });
      const tier = ca('xiangtan-t2', 'k-root', { createdAt: at(10) });
      await store.cas.insert(root);
      await store.cas.insert(tier);
      expect(await store.cas.get('root')).toEqual(root);
      expect(await store.cas.get('xiangtan-t2')).toEqual(tier);
      expect(await store.cas.get('none')).toBeUndefined();
      expect(await store.cas.findByKeyHash(tier.keyHashSha1)).toEqual(tier);
      expect(await store.cas.findByKeyHash('00'.repeat(20))).toBeUndefined();
      expect(await store.cas.list()).toEqual([root, tier]);

      await store.cas.updateStatus('xiangtan-t2', 'revoked', at(99), 2);
      expect(await store.cas.get('xiangtan-t2')).toEqual({ ...tier, status: 'revoked', revokedAt: at(99), revocationReason: 2 });
      await store.cas.updateStatus('xiangtan-t2', 'retired', null, null);
      expect(await store.cas.get('xiangtan-t2')).toEqual({ ...tier, status: 'retired' });

      await expect(store.cas.insert({ ...tier, id: 'other' })).rejects.toThrow(UniqueViolationError); // same key hash
      await expect(store.cas.insert({ ...tier, keyHashSha1: 'cd'.repeat(20) })).rejects.toThrow(UniqueViolationError); // same id
      expect(await countRows(store, 'cas')).toBe(2);
    });
  });

  describe('subjects', () => {
    it('round-trip JSON lists and filter', async () => {
      await store.domains.insert({ slug: 'xiangtan', name: '湘潭市', locality: '湘潭市', dnsSuffix: 'a', emailSuffix: 'a', parent: null });
      await store.domains.insert({ slug: 'yuhu', name: '雨湖区', locality: '雨湖区', dnsSuffix: 'b', emailSuffix: 'b', parent: 'xiangtan' });
      const device: SubjectRecord = {
        id: 's1', kind: 'device', domain: 'xiangtan', organ: 'gov', tier: 't2', name: 'vpn-gw-1',
        dnsNames: ['vpn.xt.gov.intra', 'gw.xt.gov.intra'], ipAddresses: ['10.0.0.1', 'fd00::1'], emails: [],
        status: 'active', createdBy: 'officer-1', createdAt: at(1),
      };
      const user: SubjectRecord = {
        id: 's2', kind: 'user', domain: 'yuhu', organ: 'court', tier: 't3', name: '张三',
        dnsNames: [], ipAddresses: [], emails: ['zhangsan@yuhu.gov.intra'], status: 'active', createdBy: null, createdAt: at(2),
      };
      const organ: SubjectRecord = { ...user, id: 's3', kind: 'organ', domain: 'xiangtan', tier: 't2', name: '人民法院', emails: [], createdAt: at(3) };
      for (const s of [organ, user, device]) await store.subjects.insert(s);
      expect(await store.subjects.get('s1')).toEqual(device);
      expect(await store.subjects.get('s2')).toEqual(user);
      expect(await store.subjects.get('none')).toBeUndefined();
      expect(await store.subjects.list({})).toEqual([device, user, organ]);
      expect(await store.subjects.list({ domain: 'xiangtan' })).toEqual([device, organ]);
      expect(await store.subjects.list({ tier: 't3' })).toEqual([user]);
      expect(await store.subjects.list({ kind: 'organ' })).toEqual([organ]);
      expect(await store.subjects.list({ domain: 'xiangtan', tier: 't2', kind: 'device' })).toEqual([device]);
      expect(await store.subjects.list({ limit: 2 })).toEqual([device, user]);
      await store.subjects.setStatus('s2', 'revoked');
      expect(await store.subjects.get('s2')).toEqual({ ...user, status: 'revoked' });
      await expect(store.subjects.insert(device)).rejects.toThrow(UniqueViolationError);
      expect(await countRows(store, 'subjects')).toBe(3);
    });
  });

  describe('certificates', () => {
    beforeEach(seedCas);

    it('round-trip every field, with and without nulls', async () => {
      const full = cert('ca-a', '0badc0ffee', {
        status: 'revoked', revokedAt: at(5000), revocationReason: 1, invalidityDate: at(-DAY), requestId: 'req-1', createdAt: at(7), popIdentity: 'empty',
      });
      const bare = cert('ca-a', '01', { subjectId: null, tier: null, domain: null, profile: 'ocsp' });
      await store.certificates.insert(full);
      await store.certificates.insert(bare);
      const got = await store.certificates.get('ca-a', '0badc0ffee');
      expect(got).toEqual(full);
      expect(got!.der.equals(full.der)).toBe(true);
      expect(got!.invalidityDate!.toISOString()).toBe(at(-DAY).toISOString());
      expect(await store.certificates.get('ca-a', '01')).toEqual(bare);
      expect(await store.certificates.get('ca-b', '01')).toBeUndefined();
    });

    it('refuses a duplicate (issuer, serial) and leaves the row count unchanged', async () => {
      const first = cert('ca-a', '7e57');
      await store.certificates.insert(first);
      const before = await snapshotCounts(store);
      const err = await store.certificates.insert(cert('ca-a', '7e57', { subjectDn: 'CN=other' })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UniqueViolationError);
      expect((err as Error).message).toBe('certificate ca-a/7e57 already exists');
      expect(await snapshotCounts(store)).toEqual(before);
      expect(await store.certificates.get('ca-a', '7e57')).toEqual(first);
      // The same serial under another issuer is a different certificate.
      await store.certificates.insert(cert('ca-b', '7e57'));
      expect((await store.certificates.findBySerial('7e57')).map((c) => c.issuerId)).toEqual(['ca-a', 'ca-b']);
      expect(await store.certificates.findBySerial('7e58')).toEqual([]);
    });

    it('lists and counts by every filter field, ordered by created_at then serial', async () => {
      const c1 = cert('ca-a', '10', { createdAt: at(1), notAfter: at(10 * DAY) });
      const c2 = cert('ca-a', '0f', { createdAt: at(1), notAfter: at(20 * DAY), subjectId: 'subj-2', profile: 'user-sign' });
      const c3 = cert('ca-b', '11', { createdAt: at(0), notAfter: at(30 * DAY), domain: 'yuhu', tier: 't3', status: 'revoked', revokedAt: at(2), revocationReason: 0 });
      const c4 = cert('ca-b', '12', { createdAt: at(3), notAfter: at(-DAY), status: 'hold', revokedAt: at(2), revocationReason: 6 });
      for (const c of [c4, c1, c3, c2]) await store.certificates.insert(c);
      const cases: [Parameters<Store['certificates']['list']>[0], CertificateRecord[]][] = [
        [{}, [c3, c2, c1, c4]],
        [{ issuerId: 'ca-a' }, [c2, c1]],
        [{ subjectId: 'subj-2' }, [c2]],
        [{ domain: 'yuhu' }, [c3]],
        [{ tier: 't2' }, [c2, c1, c4]],
        [{ profile: 'user-sign' }, [c2]],
        [{ status: 'hold' }, [c4]],
        [{ notAfterBefore: at(20 * DAY) }, [c2, c1, c4]],
        [{ notAfterAfter: at(20 * DAY) }, [c3]],
        [{ notAfterAfter: T0, notAfterBefore: at(20 * DAY) }, [c2, c1]],
        [{ issuerId: 'ca-b', tier: 't2', status: 'hold', domain: 'xiangtan', profile: 'device', subjectId: 'subj-1' }, [c4]],
        [{ limit: 2 }, [c3, c2]],
        [{ limit: 2, offset: 1 }, [c2, c1]],
        [{ offset: 3 }, [c4]],
      ];
      for (const [filter, expected] of cases) {
        expect(await store.certificates.list(filter), JSON.stringify(filter)).toEqual(expected);
        const { limit, offset, ...countFilter } = filter;
        const all = cases.find(([f]) => JSON.stringify(f) === JSON.stringify(countFilter));
        if (limit === undefined && offset === undefined) expect(await store.certificates.count(filter)).toBe(expected.length);
        else if (all) expect(await store.certificates.count(filter)).toBe(all[1].length);
      }
    });

    it('finds live certificates of a subject and the revoked ones of an issuer', async () => {
      const now = at(DAY);
      const live = cert('ca-a', 'a1', { subjectId: 's', profile: 'user-sign', createdAt: at(1) });
      const held = cert('ca-a', 'a2', { subjectId: 's', profile: 'user-sign', status: 'hold', revokedAt: at(5), revocationReason: 6, createdAt: at(2) });
      const revoked = cert('ca-a', 'a3', { subjectId: 's', profile: 'user-sign', status: 'revoked', revokedAt: at(5), revocationReason: 1 });
      const expired = cert('ca-a', 'a4', { subjectId: 's', profile: 'user-sign', notAfter: now });
      const otherProfile = cert('ca-a', 'a5', { subjectId: 's', profile: 'user-enc' });
      const otherIssuerRevoked = cert('ca-b', 'b1', { status: 'revoked', revokedAt: at(5), revocationReason: 4 });
      const revokedExpiredLongAgo = cert('ca-a', 'a6', { status: 'revoked', revokedAt: at(5), revocationReason: 4, notAfter: at(2 * DAY) });
      for (const c of [live, held, revoked, expired, otherProfile, otherIssuerRevoked, revokedExpiredLongAgo]) await store.certificates.insert(c);
      expect(await store.certificates.findLive('s', 'user-sign', now)).toEqual([live, held]);
      expect(await store.certificates.findLive('s', 'organ', now)).toEqual([]);
      expect(await store.certificates.listRevoked('ca-a', now)).toEqual([held, revoked, revokedExpiredLongAgo]);
      expect(await store.certificates.listRevoked('ca-a', at(3 * DAY))).toEqual([held, revoked]);
      expect(await store.certificates.listRevoked('ca-b', now)).toEqual([otherIssuerRevoked]);
      // The CRL publisher's narrow read: the same rows, only the fields of a CRL entry.
      const narrow = (c: typeof held) => ({ serial: c.serial, status: c.status, revokedAt: c.revokedAt, revocationReason: c.revocationReason, invalidityDate: c.invalidityDate });
      const entries = async (issuerId: string, after: Date) => {
        const out = [];
        for await (const page of store.certificates.revokedEntryPages(issuerId, after, 2)) out.push(...page);
        return out;
      };
      expect(await entries('ca-a', now)).toEqual([held, revoked, revokedExpiredLongAgo].map(narrow));
      expect(await entries('ca-a', at(3 * DAY))).toEqual([held, revoked].map(narrow));
    });

    it('updates status fields only', async () => {
      const c = cert('ca-a', 'c0ffee');
      await store.certificates.insert(c);
      const change = { status: 'revoked' as const, revokedAt: at(10), revocationReason: 1, invalidityDate: at(-5) };
      await store.certificates.updateStatus('ca-a', 'c0ffee', change);
      expect(await store.certificates.get('ca-a', 'c0ffee')).toEqual({ ...c, ...change });
      await store.certificates.updateStatus('ca-a', 'c0ffee', { status: 'good', revokedAt: null, revocationReason: null, invalidityDate: null });
      expect(await store.certificates.get('ca-a', 'c0ffee')).toEqual(c);
    });
  });

  describe('escrow', () => {
    it('round-trips sealed bytes and refuses a second escrow of one certificate', async () => {
      const sealed = randomBytes(512);
      await store.escrow.insert('ca-a', '01', sealed, T0);
      const got = await store.escrow.get('ca-a', '01');
      expect(got!.equals(sealed)).toBe(true);
      expect(await store.escrow.get('ca-a', '02')).toBeUndefined();
      await expect(store.escrow.insert('ca-a', '01', randomBytes(8), T0)).rejects.toThrow(UniqueViolationError);
      expect((await store.escrow.get('ca-a', '01'))!.equals(sealed)).toBe(true);
      expect(await knexOf(store)('escrowed_keys').first('created_at')).toEqual({ created_at: T0.toISOString() });
    });
  });

  describe('requests', () => {
    it('round-trip JSON payload and result, list by filter, update only given fields', async () => {
      const pending: RequestRecord = {
        id: 'r1', action: 'issue', subjectId: 's1', domain: 'xiangtan', tier: 't3',
        payload: { profile: 'user-sign', csr: 'MIIB…', names: ['甲', 'b'], nested: { n: 1, ok: true, none: null } },
        requestedBy: 'officer-1', approvals: [], approvalsRequired: 2, status: 'pending', result: null, createdAt: at(1), expiresAt: at(DAY),
      };
      const done: RequestRecord = {
        ...pending, id: 'r2', domain: null, tier: null, subjectId: null, status: 'done', approvals: ['officer-2'],
        result: { serial: '0abc', issuerId: 'ca-a' }, createdAt: at(2),
      };
      await store.requests.insert(done);
      await store.requests.insert(pending);
      expect(await store.requests.get('r1')).toEqual(pending);
      expect(await store.requests.get('r2')).toEqual(done);
      expect(await store.requests.get('r3')).toBeUndefined();
      expect(await store.requests.list({})).toEqual([pending, done]);
      expect(await store.requests.list({ status: 'pending' })).toEqual([pending]);
      expect(await store.requests.list({ domain: 'xiangtan' })).toEqual([pending]);
      expect(await store.requests.list({ limit: 1 })).toEqual([pending]);

      await store.requests.update('r1', { approvals: ['officer-2'] });
      expect(await store.requests.get('r1')).toEqual({ ...pending, approvals: ['officer-2'] });
      await store.requests.update('r1', { approvals: ['officer-2', 'officer-3'], status: 'done', result: { serial: '01' } });
      expect(await store.requests.get('r1')).toEqual({ ...pending, approvals: ['officer-2', 'officer-3'], status: 'done', result: { serial: '01' } });
      await store.requests.update('r1', { result: null, status: 'failed' });
      expect(await store.requests.get('r1')).toEqual({ ...pending, approvals: ['officer-2', 'officer-3'], status: 'failed', result: null });
      await store.requests.update('r1', {});
      expect((await store.requests.get('r1'))!.status).toBe('failed');
      await expect(store.requests.insert(pending)).rejects.toThrow(UniqueViolationError);
    });
  });

  describe('principals and tokens', () => {
    it('round-trip booleans and lists, toggle disabled, find tokens by hash, refuse duplicates', async () => {
      const officer: PrincipalRecord = { id: 'p1', name: '李四', role: 'officer', domains: ['xiangtan', 'yuhu'], disabled: false, createdAt: at(1) };
      const device: PrincipalRecord = { id: 'p2', name: 'router-1', role: 'device', domains: [], disabled: true, createdAt: at(2) };
      // Who made a principal (migration 0005, the dual-control rule) round-trips too.
      const minted: PrincipalRecord = { id: 'p4', name: 'minted', role: 'sysadmin', domains: [], disabled: false, createdAt: at(3), createdBy: 'p1', createdByRequest: 'r9' };
      await store.principals.insert(device);
      await store.principals.insert(officer);
      await store.principals.insert(minted);
      expect(await store.principals.get('p4')).toEqual(minted);
      expect(await store.principals.get('p1')).toEqual(officer);
      expect(await store.principals.get('p2')).toEqual(device);
      expect(await store.principals.get('p3')).toBeUndefined();
      expect(await store.principals.list()).toEqual([officer, device, minted]);
      await store.principals.setDisabled('p1', true);
      expect((await store.principals.get('p1'))!.disabled).toBe(true);
      await store.principals.setDisabled('p2', false);
      expect((await store.principals.get('p2'))!.disabled).toBe(false);
      await expect(store.principals.insert(officer)).rejects.toThrow(UniqueViolationError);

      const token = { id: 't1', principalId: 'p1', tokenHash: createHash('sha256').update('secret').digest('hex'), createdAt: at(3) };
      await store.tokens.insert(token);
      expect(await store.tokens.findByHash(token.tokenHash)).toEqual(token);
      expect(await store.tokens.findByHash('00'.repeat(32))).toBeUndefined();
      await expect(store.tokens.insert({ ...token, id: 't2' })).rejects.toThrow(UniqueViolationError);
      await expect(store.tokens.insert({ ...token, tokenHash: 'ff'.repeat(32) })).rejects.toThrow(UniqueViolationError);
      expect(await countRows(store, 'tokens')).toBe(1);
    });
  });

  describe('audit', () => {
    it('appends a chain, round-trips every field, and lists by every filter', async () => {
      const first = await store.audit.appendChained((last) => {
        expect(last).toBeUndefined();
        return chained(last, 'ca.issue', {
          at: at(0), principalId: 'p1', role: 'officer', source: '10.0.0.5', target: 'ca-a/01', requestId: 'r1',
          detail: { serial: '01', names: ['a', '湘'], n: 2, nested: { ok: true, none: null } },
        });
      });
      expect(first.seq).toBe(1);
      const r2 = await store.audit.appendChained((last) => {
        expect(last).toEqual(first);
        return chained(last, 'ca.revoke', { at: at(1000), principalId: 'p2', outcome: 'denied' });
      });
      const r3 = await store.audit.appendChained((last) => chained(last, 'ca.issue', { at: at(2000), principalId: 'p1', outcome: 'failure' }));
      expect(await store.audit.last()).toEqual(r3);
      const all = await store.audit.list({});
      expect(all).toEqual([first, r2, r3]);
      expectChain(all, 3);
      expect(await store.audit.list({ fromSeq: 2 })).toEqual([r2, r3]);
      expect(await store.audit.list({ since: at(1000) })).toEqual([r2, r3]);
      expect(await store.audit.list({ until: at(1000) })).toEqual([first]);
      expect(await store.audit.list({ since: at(500), until: at(2001) })).toEqual([r2, r3]);
      expect(await store.audit.list({ actor: 'p1' })).toEqual([first, r3]);
      expect(await store.audit.list({ action: 'ca.revoke' })).toEqual([r2]);
      expect(await store.audit.list({ actor: 'p1', action: 'ca.issue', fromSeq: 2 })).toEqual([r3]);
      expect(await store.audit.list({ limit: 2 })).toEqual([first, r2]);
    });

    it('refuses a record that does not follow the last one, writing nothing', async () => {
      await store.audit.appendChained((last) => chained(last));
      await expect(store.audit.appendChained((last) => ({ ...chained(last), seq: 5 }))).rejects.toThrow('audit record seq 5 does not follow 1');
      expect(await countRows(store, 'audit_log')).toBe(1);
    });

    it('gives seq 1..50 with an unbroken chain from 50 concurrent transactions', async () => {
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          store.transaction(async (tx) => {
            await tx.meta.set(`k${i}`, String(i));
            return tx.audit.appendChained((last) => chained(last, `a${i}`));
          }),
        ),
      );
      expectChain(await store.audit.list({}), 50);
      expect(await countRows(store, 'meta')).toBe(50);
    });

    it('serialises concurrent appends made outside a transaction too', async () => {
      await Promise.all(Array.from({ length: 30 }, () => store.audit.appendChained((last) => chained(last))));
      expectChain(await store.audit.list({}), 30);
    });
  });

  describe('OCSP responses and responders', () => {
    it('upserts one answer per certificate in place and lists stale ones oldest first', async () => {
      const a = { issuerId: 'ca-a', serial: '01', der: randomBytes(100), thisUpdate: at(0), nextUpdate: at(3600_000) };
      const b = { issuerId: 'ca-a', serial: '02', der: randomBytes(100), thisUpdate: at(0), nextUpdate: at(1800_000) };
      const c = { issuerId: 'ca-b', serial: '01', der: randomBytes(100), thisUpdate: at(0), nextUpdate: at(7200_000) };
      for (const r of [a, b, c]) await store.ocspResponses.upsert(r);
      expect(await store.ocspResponses.get('ca-a', '01')).toEqual(a);
      expect(await store.ocspResponses.get('ca-a', '03')).toBeUndefined();
      const replaced = { ...a, der: randomBytes(120), thisUpdate: at(60_000), nextUpdate: at(3660_000) };
      await store.ocspResponses.upsert(replaced);
      const got = await store.ocspResponses.get('ca-a', '01');
      expect(got).toEqual(replaced);
      expect(got!.der.equals(replaced.der)).toBe(true);
      expect(await countRows(store, 'ocsp_responses')).toBe(3);
      expect(await store.ocspResponses.listStale(at(3660_001), 10)).toEqual([b, replaced]);
      expect(await store.ocspResponses.listStale(at(3660_000), 10)).toEqual([b]);
      expect(await store.ocspResponses.listStale(at(9000_000), 2)).toEqual([b, replaced]);
      expect(await store.ocspResponses.listStale(T0, 10)).toEqual([]);
    });

    it('returns the newest responder valid at a time', async () => {
      await seedCas();
      await store.keys.insert(key('k-ocsp-1', { purpose: 'ocsp' }));
      await store.keys.insert(key('k-ocsp-2', { purpose: 'ocsp' }));
      const old = { id: 'r1', caId: 'ca-a', keyId: 'k-ocsp-1', certificate: randomBytes(64), notBefore: at(0), notAfter: at(10 * DAY), createdAt: at(0) };
      const fresh = { id: 'r2', caId: 'ca-a', keyId: 'k-ocsp-2', certificate: randomBytes(64), notBefore: at(5 * DAY), notAfter: at(15 * DAY), createdAt: at(5 * DAY) };
      await store.responders.insert(fresh);
      await store.responders.insert(old);
      expect(await store.responders.current('ca-a', at(DAY))).toEqual(old);
      expect(await store.responders.current('ca-a', at(6 * DAY))).toEqual(fresh);
      expect(await store.responders.current('ca-a', at(15 * DAY))).toBeUndefined();
      expect(await store.responders.current('ca-a', at(-1))).toBeUndefined();
      expect(await store.responders.current('ca-b', at(DAY))).toBeUndefined();
      await expect(store.responders.insert(old)).rejects.toThrow(UniqueViolationError);
    });
  });

  describe('crls', () => {
    it('round-trips bigint numbers exactly, finds the latest full and delta CRL, and the max number', async () => {
      expect(await store.crls.maxNumber('ca-a')).toBe(0n);
      expect(await store.crls.latest('ca-a', false)).toBeUndefined();
      const big = 2n ** 62n + 1n; // not representable as a JS number
      const full = { caId: 'ca-a', number: big, delta: false, baseNumber: null, der: randomBytes(200), thisUpdate: at(0), nextUpdate: at(DAY) };
      const delta = { caId: 'ca-a', number: big + 1n, delta: true, baseNumber: big, der: randomBytes(50), thisUpdate: at(1), nextUpdate: at(DAY) };
      const older = { caId: 'ca-a', number: 7n, delta: false, baseNumber: null, der: randomBytes(10), thisUpdate: at(-DAY), nextUpdate: at(0) };
      const otherCa = { caId: 'ca-b', number: 3n, delta: false, baseNumber: null, der: randomBytes(10), thisUpdate: at(0), nextUpdate: at(DAY) };
      for (const c of [older, full, delta, otherCa]) await store.crls.insert(c);
      expect(await store.crls.latest('ca-a', false)).toEqual(full);
      expect(await store.crls.latest('ca-a', true)).toEqual(delta);
      expect(await store.crls.latest('ca-b', true)).toBeUndefined();
      expect(await store.crls.maxNumber('ca-a')).toBe(big + 1n);
      expect(await store.crls.maxNumber('ca-b')).toBe(3n);
      await expect(store.crls.insert({ ...otherCa, delta: true })).rejects.toThrow(UniqueViolationError);
      expect(await countRows(store, 'crls')).toBe(4);
    });
  });

  describe('revocation events', () => {
    it('append in order, read since a seq, report the max', async () => {
      expect(await store.revocationEvents.maxSeq()).toBe(0);
      expect(await store.revocationEvents.since(0, 10)).toEqual([]);
      await store.revocationEvents.append({ issuerId: 'ca-a', serial: '01', status: 'revoked', at: at(1) });
      await store.transaction((tx) => tx.revocationEvents.append({ issuerId: 'ca-a', serial: '02', status: 'hold', at: at(2) }));
      await store.revocationEvents.append({ issuerId: 'ca-b', serial: '02', status: 'good', at: at(3) });
      expect(await store.revocationEvents.maxSeq()).toBe(3);
      expect(await store.revocationEvents.since(0, 10)).toEqual([
        { seq: 1, issuerId: 'ca-a', serial: '01', status: 'revoked', at: at(1) },
        { seq: 2, issuerId: 'ca-a', serial: '02', status: 'hold', at: at(2) },
        { seq: 3, issuerId: 'ca-b', serial: '02', status: 'good', at: at(3) },
      ]);
      expect((await store.revocationEvents.since(1, 1)).map((e) => e.seq)).toEqual([2]);
      expect(await store.revocationEvents.since(3, 10)).toEqual([]);
    });

    it('never shows a poller an event while an earlier one is uncommitted', async () => {
      const writer = await openStore(storeOptions);
      const reader = await openStore(storeOptions);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      try {
        let firstAppended!: () => void;
        const appended = new Promise<void>((resolve) => (firstAppended = resolve));
        const slow = store.transaction(async (tx) => {
          await tx.revocationEvents.append({ issuerId: 'ca-a', serial: '01', status: 'revoked', at: at(1) });
          firstAppended();
          await gate;
        });
        await appended;
        const fast = writer.revocationEvents.append({ issuerId: 'ca-a', serial: '02', status: 'revoked', at: at(2) });
        await new Promise((resolve) => setTimeout(resolve, 300));
        // Had the second event committed with seq 2 now, a poller would move past seq 1 for good.
        expect(await reader.revocationEvents.since(0, 10)).toEqual([]);
        release();
        await Promise.all([slow, fast]);
        expect((await reader.revocationEvents.since(0, 10)).map((e) => [e.seq, e.serial])).toEqual([[1, '01'], [2, '02']]);
      } finally {
        release();
        await writer.close();
        await reader.close();
      }
    });
  });

  describe('transactions', () => {
    beforeEach(seedCas);

    it('commits every write of a transaction together and returns its value', async () => {
      const value = await store.transaction(async (tx) => {
        await tx.certificates.insert(cert('ca-a', '01'));
        await tx.audit.appendChained((last) => chained(last));
        // Reads inside the transaction see its own writes; the store's own repositories are not bound to it.
        expect((await tx.certificates.get('ca-a', '01'))!.serial).toBe('01');
        return 42;
      });
      expect(value).toBe(42);
      expect(await countRows(store, 'certificates')).toBe(1);
      expect(await countRows(store, 'audit_log')).toBe(1);
    });

    it('leaves no rows when it fails, and rethrows the error', async () => {
      const before = await snapshotCounts(store);
      const boom = new Error('boom');
      await expect(
        store.transaction(async (tx) => {
          await tx.certificates.insert(cert('ca-a', '01'));
          await tx.audit.appendChained((last) => chained(last));
          await tx.revocationEvents.append({ issuerId: 'ca-a', serial: '01', status: 'revoked', at: T0 });
          await tx.ocspResponses.upsert({ issuerId: 'ca-a', serial: '01', der: randomBytes(8), thisUpdate: T0, nextUpdate: T0 });
          await tx.crls.insert({ caId: 'ca-a', number: 1n, delta: false, baseNumber: null, der: randomBytes(8), thisUpdate: T0, nextUpdate: T0 });
          throw boom;
        }),
      ).rejects.toBe(boom);
      expect(await snapshotCounts(store)).toEqual(before);
    });

    it('stays usable after a unique violation inside it (a serial can be retried)', async () => {
      await store.certificates.insert(cert('ca-a', '01'));
      await store.transaction(async (tx) => {
        await expect(tx.certificates.insert(cert('ca-a', '01'))).rejects.toThrow(UniqueViolationError);
        await tx.certificates.insert(cert('ca-a', '02'));
        await tx.audit.appendChained((last) => chained(last));
      });
      expect((await store.certificates.list({})).map((c) => c.serial)).toEqual(['01', '02']);
      expect(await countRows(store, 'audit_log')).toBe(1);
    });

    it('lands all of 200 concurrent transactions', async () => {
      const serials = Array.from({ length: 200 }, (_, i) => i.toString(16).padStart(4, '0'));
      await Promise.all(serials.map((s) => store.transaction((tx) => tx.certificates.insert(cert('ca-a', s)))));
      expect(await store.certificates.count({ issuerId: 'ca-a' })).toBe(200);
      expect((await store.certificates.list({})).map((c) => c.serial)).toEqual(serials);
    });
  });

  describe('several writers on one database', () => {
    it('two stores (two knex instances) writing at once lose nothing and never report SQLITE_BUSY', async () => {
      await seedCas();
      const other = await openStore(storeOptions);
      try {
        const write = (s: Store, name: string) =>
          Promise.all(
            Array.from({ length: 100 }, (_, i) => {
              const serial = `${name}${i.toString(16).padStart(4, '0')}`;
              // Alternate transactions and autocommit writes. The transactions read before they write
              // (appendChained reads the last record first): two of them must never interleave.
              return i % 2 === 0
                ? s.transaction(async (tx) => {
                    await tx.audit.appendChained((last) => chained(last));
                    await tx.certificates.insert(cert('ca-a', serial));
                  })
                : s.certificates.insert(cert('ca-a', serial)).then(() => s.audit.appendChained((last) => chained(last)));
            }),
          );
        await Promise.all([write(store, 'a'), write(other, 'b')]);
        expect(await store.certificates.count({})).toBe(200);
        expect(await other.certificates.count({})).toBe(200);
        expectChain(await store.audit.list({}), 200);
      } finally {
        await other.close();
      }
    });

    it('two processes writing at once lose nothing and keep one audit chain', async () => {
      const options = await testStoreOptions();
      try {
        const perProcess = 150;
        const results = await Promise.all([runWriter(options, 'p', perProcess), runWriter(options, 'q', perProcess)]);
        for (const r of results) expect(r, r.stderr).toMatchObject({ code: 0 });
        const s = await openStore(options);
        try {
          expect(await s.certificates.count({})).toBe(2 * perProcess);
          expect(await s.revocationEvents.maxSeq()).toBe(2 * perProcess);
          expectChain(await s.audit.list({}), 2 * perProcess);
        } finally {
          await s.close();
        }
      } finally {
        await options.cleanup();
      }
    });
  });
});

const STORE_MODULE = fileURLToPath(new URL('../../server/storage/knex-store.ts', import.meta.url));

/**
 * Runs a separate Node process (a second server, in effect) that opens the store itself — racing the
 * other to migrate the fresh database — and writes `n` certificates, each in a transaction with an
 * audit record and a revocation event.
 */
function runWriter(options: object, prefix: string, n: number): Promise<{ code: number | null; stderr: string }> {
  const script = `
    const { openStore } = await import(${JSON.stringify(STORE_MODULE)});
    const { createHash } = await import('node:crypto');
    const store = await openStore(${JSON.stringify(options)});
    const at = new Date('2026-11-25T12:00:00.123Z');
    // Both processes seed the same rows; the loser of each insert meets a unique violation.
    const seed = (p) => p.catch((e) => { if (e.name !== 'UniqueViolationError') throw e; });
    try {
      await seed(store.domains.insert({ slug: 'd', name: 'd', locality: 'd', dnsSuffix: 'd', emailSuffix: 'd', parent: null }));
      await seed(store.keys.insert({ id: 'k', algorithm: 'P-256', custody: 'software', sealed: null, pkcs11Label: null, publicKeyInfo: Buffer.from([1]), purpose: 'ca', createdAt: at }));
      await seed(store.cas.insert({ id: 'ca', layer: 'root', domain: null, tier: null, parentId: null, name: 'ca', keyId: 'k', certificate: Buffer.from([1]), serial: '01', notBefore: at, notAfter: at, fingerprint: 'f', keyHashSha1: 'h', nameHashSha1: 'n', status: 'active', revokedAt: null, revocationReason: null, createdAt: at }));
      await Promise.all(Array.from({ length: ${n} }, (_, i) => store.transaction(async (tx) => {
        const serial = '${prefix}' + i;
        await tx.certificates.insert({ issuerId: 'ca', serial, subjectId: null, profile: 'device', tier: null, domain: null, subjectDn: 'CN=x', notBefore: at, notAfter: at, status: 'good', revokedAt: null, revocationReason: null, invalidityDate: null, fingerprint: 'f', der: Buffer.from([0x30, 0]), keyAlgorithm: 'P-256', requestId: null, createdAt: at });
        await tx.revocationEvents.append({ issuerId: 'ca', serial, status: 'revoked', at });
        await tx.audit.appendChained((last) => {
          const seq = (last?.seq ?? 0) + 1;
          const prevHash = last?.hash ?? '0'.repeat(64);
          return { seq, at, principalId: null, role: null, source: '${prefix}', action: 'x', target: serial, outcome: 'success', requestId: null, detail: {}, prevHash, hash: createHash('sha256').update(prevHash + String(seq)).digest('hex') };
        });
      })));
    } finally {
      await store.close();
    }
  `;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}
