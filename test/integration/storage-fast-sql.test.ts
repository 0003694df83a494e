/**
 * The raw-SQL path of the hot statements (server/storage/rows.ts `SqlExecutor`) on the engine chosen by
 * TIERCA_TEST_DB: outside a transaction (knex.raw) and inside one (on SQLite, prepared statements run
 * straight on the transaction's connection), savepoints of a batch, unique keys, the OCSP upsert, the
 * audit chain under concurrency, and the one-statement token lookup behind authentication.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { knexOf } from '../../server/storage/knex-store.ts';
import { dbContext } from '../../server/storage/rows.ts';
import { GroupCommit } from '../../server/storage/group-commit.ts';
import {
  UniqueViolationError,
  type AuditRecord,
  type CertificateRecord,
  type OcspResponseRecord,
  type PrincipalRecord,
  type Repositories,
  type Store,
  type SubjectRecord,
} from '../../server/storage/storage.ts';
import { Authorizer, hashToken } from '../../server/ra/authorizer.ts';
import { FixedClock } from '../../server/clock.ts';
import { countRows, snapshotCounts, testEngine, testStore } from '../helpers/database.ts';

const T0 = new Date('2026-11-25T12:00:00.123Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const DAY = 24 * 3600 * 1000;

let store: Store;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  ({ store, cleanup } = await testStore());
  await store.domains.insert({ slug: 'xiangtan', name: '湘潭市', locality: '湘潭市', dnsSuffix: 'xt.gov.intra', emailSuffix: 'xt.gov.intra', parent: null });
  await store.keys.insert({
    id: 'k-ca', algorithm: 'P-256', custody: 'software', sealed: Buffer.from([0, 1]), pkcs11Label: null,
    publicKeyInfo: Buffer.from('3059', 'hex'), purpose: 'ca', createdAt: T0,
  });
  await store.cas.insert({
    id: 'ca-a', layer: 'tier', domain: 'xiangtan', tier: 't2', parentId: null, name: 'CA A', keyId: 'k-ca',
    certificate: Buffer.from([0x30, 0x00]), serial: '7f01', notBefore: T0, notAfter: at(3650 * DAY), fingerprint: 'ab'.repeat(32),
    keyHashSha1: 'cd'.repeat(20), nameHashSha1: 'ef'.repeat(20), status: 'active', revokedAt: null, revocationReason: null, createdAt: T0,
  });
});
afterEach(async () => {
  await cleanup();
});

function subject(id: string): SubjectRecord {
  return {
    id, kind: 'device', domain: 'xiangtan', organ: 'gov', tier: 't2', name: `router ${id}`, dnsNames: [`${id}.xt.gov.intra`],
    ipAddresses: ['10.0.0.1'], emails: [], status: 'active', createdBy: null, createdAt: T0,
  };
}

function cert(serial: string, overrides: Partial<CertificateRecord> = {}): CertificateRecord {
  return {
    issuerId: 'ca-a', serial, subjectId: 'subj-1', profile: 'device', tier: 't2', domain: 'xiangtan', subjectDn: 'CN=router-1, O=人民政府',
    notBefore: T0, notAfter: at(365 * DAY), status: 'good', revokedAt: null, revocationReason: null, invalidityDate: null,
    fingerprint: createHash('sha256').update(serial).digest('hex'), der: Buffer.concat([Buffer.from([0x30, 0x00]), randomBytes(32)]),
    keyAlgorithm: 'P-256', requestId: null, createdAt: T0, ...overrides,
  };
}

function ocsp(serial: string, overrides: Partial<OcspResponseRecord> = {}): OcspResponseRecord {
  return { issuerId: 'ca-a', serial, der: randomBytes(40), thisUpdate: T0, nextUpdate: at(DAY), ...overrides };
}

/** The test's chained record: hash = sha256(prevHash + seq). */
function chained(last: AuditRecord | undefined, action = 'test.append', extra: Partial<AuditRecord> = {}): AuditRecord {
  const seq = (last?.seq ?? 0) + 1;
  const prevHash = last?.hash ?? '0'.repeat(64);
  return {
    seq, at: T0, principalId: null, role: null, source: null, action, target: null, outcome: 'success', requestId: null, detail: {},
    prevHash, hash: createHash('sha256').update(prevHash + String(seq)).digest('hex'), ...extra,
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

/** Everything the raw hot-path methods write, in one unit (as an issuance does). */
async function issueLike(tx: Repositories, serial: string, action: string): Promise<AuditRecord> {
  await tx.certificates.insert(cert(serial));
  await tx.ocspResponses.upsert(ocsp(serial));
  return tx.audit.appendChained((last) => chained(last, action, { target: serial }));
}

describe(`hot-path raw SQL on ${testEngine()}`, () => {
  describe('the executor', () => {
    it('runs, reads one row and all rows, and counts changes, outside a transaction', async () => {
      const { sql } = dbContext(knexOf(store), store.engine);
      expect(await sql.run('INSERT INTO "meta" ("key", "value") VALUES (?, ?)', ['a', '1'])).toBe(1);
      expect(await sql.run('INSERT INTO "meta" ("key", "value") VALUES (?, ?)', ['b', '湘'])).toBe(1);
      expect(await sql.first('SELECT "key", "value" FROM "meta" WHERE "key" = ?', ['b'])).toEqual({ key: 'b', value: '湘' });
      expect(await sql.first('SELECT "key", "value" FROM "meta" WHERE "key" = ?', ['zz'])).toBeUndefined();
      expect(await sql.all('SELECT "key" FROM "meta" ORDER BY "key" DESC')).toEqual([{ key: 'b' }, { key: 'a' }]);
      expect(await sql.all('SELECT "key" FROM "meta" WHERE "key" = ?', ['zz'])).toEqual([]);
      expect(await sql.run('UPDATE "meta" SET "value" = ? WHERE "key" <> ?', ['2', 'zz'])).toBe(2);
      expect(await sql.run('UPDATE "meta" SET "value" = ? WHERE "key" = ?', ['3', 'zz'])).toBe(0);
      expect(await store.meta.get('a')).toBe('2');
    });

    it('sees a transaction’s uncommitted rows inside it and loses them with its rollback', async () => {
      const outside = dbContext(knexOf(store), store.engine).sql;
      const failure = new Error('roll back');
      const err = await knexOf(store)
        .transaction(async (trx) => {
          const { sql } = dbContext(trx, store.engine);
          expect(await sql.run('INSERT INTO "meta" ("key", "value") VALUES (?, ?)', ['t', 'inside'])).toBe(1);
          // A builder statement and a raw one of the same transaction see each other's writes.
          expect(await sql.first('SELECT "value" FROM "meta" WHERE "key" = ?', ['t'])).toEqual({ value: 'inside' });
          expect((await trx('meta').where({ key: 't' }).first())?.value).toBe('inside');
          await trx('meta').insert({ key: 'u', value: 'builder' });
          expect(await sql.all('SELECT "key" FROM "meta" ORDER BY "key"')).toEqual([{ key: 't' }, { key: 'u' }]);
          throw failure;
        })
        .catch((e: unknown) => e);
      expect(err).toBe(failure);
      expect(await outside.all('SELECT "key" FROM "meta"')).toEqual([]);
    });

    it.runIf(testEngine() === 'sqlite')('reads outside a transaction on the read connection: without waiting for an open transaction, committed rows only', async () => {
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let inserted!: () => void;
      const insertedInside = new Promise<void>((resolve) => (inserted = resolve));
      const tx = store.transaction(async (t) => {
        await t.subjects.insert(subject('sub-open'));
        inserted();
        await held; // the writer connection stays inside this transaction until released
      });
      await insertedInside;
      // On the writer connection this read would queue behind the open transaction (one connection).
      const during = await Promise.race([
        store.subjects.get('sub-open').then((s) => ({ found: s !== undefined })),
        new Promise<'waited'>((resolve) => setTimeout(() => resolve('waited'), 2000)),
      ]);
      expect(during).toEqual({ found: false });
      release();
      await tx;
      expect((await store.subjects.get('sub-open'))?.name).toBe('router sub-open');
    });

    it('refuses to run on a transaction that has ended', async () => {
      let leaked: Repositories | undefined;
      await store.transaction(async (tx) => {
        leaked = tx;
        await tx.subjects.insert(subject('s-1'));
      });
      await expect(leaked!.subjects.get('s-1')).rejects.toThrow(/Transaction query already complete/);
      await expect(leaked!.certificates.insert(cert('0a'))).rejects.toThrow(/Transaction query already complete/);
      expect(await countRows(store, 'certificates')).toBe(0);
      // The store itself is unaffected.
      expect((await store.subjects.get('s-1'))?.id).toBe('s-1');
    });

    it('reads integers as numbers even when knex ran the same statement with safe integers', async () => {
      await knexOf(store).transaction(async (trx) => {
        const text = 'SELECT 7 AS "n"';
        const viaKnex = await trx.raw(text).options({ safeIntegers: true });
        const knexRow = store.engine === 'postgres' ? viaKnex.rows[0] : viaKnex[0];
        expect(knexRow.n).toBe(store.engine === 'postgres' ? 7 : 7n);
        expect(await dbContext(trx, store.engine).sql.first(text)).toEqual({ n: 7 });
      });
    });
  });

  describe('repositories on the raw path', () => {
    it('round-trip subjects, principals, certificates and OCSP answers inside a transaction as outside', async () => {
      const full = cert('0badc0ffee', { status: 'revoked', revokedAt: at(5000), revocationReason: 1, invalidityDate: at(-DAY), requestId: 'req-1' });
      const bare = cert('01', { subjectId: 'subj-1', tier: null, domain: null });
      const officer: PrincipalRecord = { id: 'p1', name: '李四', role: 'officer', domains: ['xiangtan'], disabled: true, createdAt: at(1) };
      await store.transaction(async (tx) => {
        await tx.subjects.insert(subject('s-1'));
        await tx.principals.insert(officer);
        await tx.certificates.insert(full);
        await tx.certificates.insert(bare);
        await tx.ocspResponses.upsert(ocsp('01', { der: Buffer.from([1, 2, 3]) }));
        expect(await tx.subjects.get('s-1')).toEqual(subject('s-1'));
        expect(await tx.subjects.get('s-2')).toBeUndefined();
        expect(await tx.principals.get('p1')).toEqual(officer);
        // findLive: only good/hold and unexpired, ordered by created_at then serial.
        expect(await tx.certificates.findLive('subj-1', 'device', T0)).toEqual([bare]);
      });
      expect(await store.subjects.get('s-1')).toEqual(subject('s-1'));
      expect(await store.principals.get('p1')).toEqual(officer);
      expect(await store.certificates.get('ca-a', '0badc0ffee')).toEqual(full);
      expect(await store.certificates.findLive('subj-1', 'device', T0)).toEqual([bare]);
      expect(await store.certificates.findLive('subj-1', 'device', at(366 * DAY))).toEqual([]);
      expect((await store.ocspResponses.get('ca-a', '01'))?.der).toEqual(Buffer.from([1, 2, 3]));
    });

    it('orders live certificates by created_at, then serial', async () => {
      const a = cert('03', { createdAt: at(2) });
      const b = cert('02', { createdAt: at(2) });
      const c = cert('01', { createdAt: at(3), status: 'hold' });
      const expired = cert('04', { createdAt: at(1), notAfter: at(10) });
      const other = cert('05', { profile: 'organ' });
      for (const x of [c, a, expired, b, other]) await store.certificates.insert(x);
      expect(await store.certificates.findLive('subj-1', 'device', at(100))).toEqual([b, a, c]);
      await store.transaction(async (tx) => expect(await tx.certificates.findLive('subj-1', 'device', at(100))).toEqual([b, a, c]));
    });

    it('refuses a duplicate serial with UniqueViolationError and leaves the row count unchanged, outside and inside a transaction', async () => {
      const first = cert('7e57');
      await store.certificates.insert(first);
      const before = await snapshotCounts(store);
      const outside = await store.certificates.insert(cert('7e57', { subjectDn: 'CN=other' })).catch((e: unknown) => e);
      expect(outside).toBeInstanceOf(UniqueViolationError);
      expect((outside as Error).message).toBe('certificate ca-a/7e57 already exists');
      expect(await snapshotCounts(store)).toEqual(before);

      // Inside a transaction the conflict does not abort it (PostgreSQL): another serial can follow.
      await store.transaction(async (tx) => {
        const inside = await tx.certificates.insert(cert('7e57', { subjectDn: 'CN=again' })).catch((e: unknown) => e);
        expect(inside).toBeInstanceOf(UniqueViolationError);
        expect((inside as Error).message).toBe('certificate ca-a/7e57 already exists');
        await tx.certificates.insert(cert('7e58'));
      });
      expect(await countRows(store, 'certificates')).toBe(before.certificates + 1);
      expect(await store.certificates.get('ca-a', '7e57')).toEqual(first);
    });

    it('upserts an OCSP answer in place, outside and inside a transaction', async () => {
      await store.ocspResponses.upsert(ocsp('0a', { der: Buffer.from([1]) }));
      const replaced = ocsp('0a', { der: Buffer.from([2, 2]), thisUpdate: at(1000), nextUpdate: at(2 * DAY) });
      await store.ocspResponses.upsert(replaced);
      expect(await store.ocspResponses.get('ca-a', '0a')).toEqual(replaced);
      const again = ocsp('0a', { der: Buffer.from([3, 3, 3]), thisUpdate: at(2000), nextUpdate: at(3 * DAY) });
      await store.transaction(async (tx) => {
        await tx.ocspResponses.upsert(again);
        await tx.ocspResponses.upsert(ocsp('0b'));
        expect(await tx.ocspResponses.get('ca-a', '0a')).toEqual(again);
      });
      expect(await store.ocspResponses.get('ca-a', '0a')).toEqual(again);
      expect(await countRows(store, 'ocsp_responses')).toBe(2);
    });
  });

  describe('savepoints of a batch', () => {
    it('roll back only the unit that failed; the others commit together, chained', async () => {
      const broken = new Error('unit 2 fails after writing');
      const results = await store.transactionBatch([
        (tx) => issueLike(tx, '01', 'unit.1'),
        async (tx) => {
          await issueLike(tx, '02', 'unit.2');
          // The unit sees its own and the earlier unit's rows before it fails.
          expect((await tx.audit.last())?.action).toBe('unit.2');
          expect(await tx.certificates.findLive('subj-1', 'device', T0)).toHaveLength(2);
          throw broken;
        },
        async (tx) => {
          // Unit 2's rows are gone: the chain continues from unit 1.
          expect((await tx.audit.last())?.action).toBe('unit.1');
          return issueLike(tx, '03', 'unit.3');
        },
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((results[1] as PromiseRejectedResult).reason).toBe(broken);
      expect((await store.certificates.findLive('subj-1', 'device', T0)).map((c) => c.serial)).toEqual(['01', '03']);
      expect(await store.ocspResponses.get('ca-a', '02')).toBeUndefined();
      expect(await countRows(store, 'ocsp_responses')).toBe(2);
      const audit = await store.audit.list({});
      expect(audit.map((r) => r.action)).toEqual(['unit.1', 'unit.3']);
      expectChain(audit, 2);
    });

    it('keep a duplicate serial in its own unit: UniqueViolationError there, the others commit', async () => {
      await store.certificates.insert(cert('dd'));
      const results = await store.transactionBatch([(tx) => issueLike(tx, 'd1', 'a'), (tx) => issueLike(tx, 'dd', 'b'), (tx) => issueLike(tx, 'd2', 'c')]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(UniqueViolationError);
      expect(await countRows(store, 'certificates')).toBe(3);
      expect((await store.audit.list({})).map((r) => r.action)).toEqual(['a', 'c']);
    });
  });

  describe('the audit chain', () => {
    it('keeps seq and prev_hash chained under 50 concurrent appends: alone, in transactions and group-committed', async () => {
      const commits = new GroupCommit(store, 8);
      await Promise.all(
        Array.from({ length: 50 }, (_, i) => {
          const action = `a${i}`;
          if (i % 3 === 0) return store.audit.appendChained((last) => chained(last, action));
          if (i % 3 === 1) return store.transaction((tx) => tx.audit.appendChained((last) => chained(last, action)));
          return commits.run((tx) => tx.audit.appendChained((last) => chained(last, action)));
        }),
      );
      const records = await store.audit.list({});
      expectChain(records, 50);
      expect(new Set(records.map((r) => r.action)).size).toBe(50);
      expect(await store.audit.last()).toEqual(records[49]);
    });

    it('round-trips every field of a record and refuses one that does not follow', async () => {
      const record = await store.audit.appendChained((last) =>
        chained(last, 'ca.issue', { principalId: 'p1', role: 'officer', source: '10.0.0.5', target: 'ca-a/01', requestId: 'r1', outcome: 'denied', detail: { n: 2, names: ['湘'], none: null } }),
      );
      expect(await store.audit.last()).toEqual(record);
      await store.transaction(async (tx) => expect(await tx.audit.last()).toEqual(record));
      await expect(store.audit.appendChained((last) => ({ ...chained(last), seq: 5 }))).rejects.toThrow('audit record seq 5 does not follow 1');
      expect(await countRows(store, 'audit_log')).toBe(1);
    });
  });

  describe('tokens with their principal', () => {
    const officer: PrincipalRecord = { id: 'p1', name: '李四', role: 'officer', domains: ['xiangtan', 'yuhu'], disabled: false, createdAt: at(1) };

    it('finds a token and its principal in one read, the disabled flag as a boolean; undefined for an unknown hash', async () => {
      await store.principals.insert(officer);
      const token = { id: 't1', principalId: 'p1', tokenHash: hashToken('a-token-of-sixteen-chars'), createdAt: at(3) };
      await store.tokens.insert(token);
      expect(await store.tokens.findWithPrincipal('00'.repeat(32))).toBeUndefined();
      const found = await store.tokens.findWithPrincipal(token.tokenHash);
      expect(found).toEqual({ token, principal: officer });
      expect(found!.principal.disabled).toBe(false);
      await store.principals.setDisabled('p1', true);
      const disabled = await store.tokens.findWithPrincipal(token.tokenHash);
      expect(disabled!.principal.disabled).toBe(true);
      await store.transaction(async (tx) => {
        expect(await tx.tokens.findWithPrincipal(token.tokenHash)).toEqual({ token, principal: { ...officer, disabled: true } });
        expect(await tx.tokens.findWithPrincipal('ff'.repeat(32))).toBeUndefined();
      });
    });

    it('authenticates a token with every outcome as before', async () => {
      const clock = new FixedClock(T0);
      const authorizer = new Authorizer(store, clock);
      await store.principals.insert(officer);
      await store.principals.insert({ id: 'p2', name: 'gone', role: 'device', domains: [], disabled: true, createdAt: at(2) });
      const good = 'officer-token-0123456789';
      const off = 'disabled-token-0123456789';
      await store.tokens.insert({ id: 't1', principalId: 'p1', tokenHash: hashToken(good), createdAt: T0 });
      await store.tokens.insert({ id: 't2', principalId: 'p2', tokenHash: hashToken(off), createdAt: T0 });

      expect(await authorizer.authenticateToken(good)).toEqual({
        ok: true, via: 'token', principal: { id: 'p1', name: '李四', role: 'officer', domains: ['xiangtan', 'yuhu'] },
      });
      expect(await authorizer.authenticateToken(off)).toEqual({ ok: false, reason: 'principal-disabled', principalId: 'p2' });
      expect(await authorizer.authenticateToken('unknown-token-0123456789')).toEqual({ ok: false, reason: 'unknown-token' });
      expect(await authorizer.authenticateToken('short')).toEqual({ ok: false, reason: 'malformed-token' });
      expect(await authorizer.authenticate(good)).toEqual({ id: 'p1', name: '李四', role: 'officer', domains: ['xiangtan', 'yuhu'] });
      expect(await authorizer.authenticate(off)).toBeNull();
      await store.principals.setDisabled('p2', false);
      expect((await authorizer.authenticateToken(off)).ok).toBe(true);
    });
  });
});
