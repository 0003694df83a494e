// Renewal of one certificate through the API: by an officer (keep the key, a new CSR, a server-made
// key), by a device with a signature by its current key; what a renewal keeps (subject, tier, profile,
// names) and refuses; idempotency by request id; the audit record of what it replaced.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FixedClock } from '../../server/clock.ts';
import { knexOf } from '../../server/storage/knex-store.ts';
import { readCertificate } from '../../pki/certificate-reader.ts';
import { EXAMPLE_TIER_OIDS } from '../helpers/config.ts';
import { call, startTestTierca, type TestTierca } from '../helpers/tierca.ts';
import { TempDir, openssl } from '../helpers/openssl.ts';
import { opensslCsr } from '../helpers/pki-fixtures.ts';
import { snapshotCounts } from '../helpers/database.ts';
import { DAY_MS, caPem, issueLeaf, ocspAt, signedRenewal, smallConfig, verifyAt, type IssuedLeaf } from '../helpers/rotation.ts';

const START = new Date('2027-01-04T08:00:00Z');
const clock = new FixedClock(START);
let t: TestTierca;
const tmp = new TempDir();
let root: string;
let tierPem: Record<string, string>;
let domainPem: string;

beforeAll(async () => {
  t = await startTestTierca({ clock, configData: smallConfig() });
  root = await caPem(t, 'root');
  domainPem = await caPem(t, 'yuhu');
  tierPem = { t1: await caPem(t, 'yuhu-t1'), t2: await caPem(t, 'yuhu-t2'), t3: await caPem(t, 'yuhu-t3') };
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

const der = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');

async function renew(role: 'officer' | 'admin' | 'auditor' | 'officer2', leaf: { serial: string }, body: Record<string, unknown> = {}) {
  return call(t, role, 'POST', `/api/v1/certificates/${leaf.serial}/renew`, body);
}

async function auditOf(action: string, target: string) {
  const rows = await knexOf(t.store)('audit_log').where({ action, target }).orderBy('seq');
  return rows.map((r: any) => ({ ...r, detail: JSON.parse(r.detail) }));
}

describe('renewal by an officer', () => {
  let leaf: IssuedLeaf;
  beforeAll(async () => {
    leaf = await issueLeaf(t, tmp, { kind: 'device', tier: 't1' });
    clock.advance(21 * DAY_MS); // past two thirds of 30 days
  });

  it('keeps the subject, tier, profile, names and key; the successor validates and both answer good in the grace period', async () => {
    const res = await renew('officer', leaf, { requestId: 'renew-keep-1' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const { certificate, replaced } = res.body;
    expect(res.body.mode).toBe('renew');
    expect(res.body.replayed).toBe(false);
    expect(certificate).toMatchObject({ issuerId: 'yuhu-t1', tier: 't1', profile: 'device', domain: 'yuhu', subjectId: leaf.subjectId, status: 'good' });
    expect(certificate.serial).not.toBe(leaf.serial);
    expect(replaced).toMatchObject({ serial: leaf.serial, status: 'good' });
    // Grace of t1 in this config: 4 days.
    expect(res.body.supersedeAt).toBe(new Date(clock.now().getTime() + 4 * DAY_MS).toISOString());

    const oldFields = readCertificate(der(leaf.pem));
    const newFields = readCertificate(der(res.body.pem));
    expect(newFields.subject.equals(oldFields.subject)).toBe(true);
    expect(newFields.publicKeyInfo.equals(oldFields.publicKeyInfo)).toBe(true);
    // 30 days + the one-minute backdate; the old one, the first leaf of a CA made at that instant,
    // lost its backdate to the CA's own start (server/ca/validity.ts nestValidity).
    expect(newFields.notAfter.getTime() - newFields.notBefore.getTime()).toBe(30 * DAY_MS + 60_000);
    expect(oldFields.notAfter.getTime() - oldFields.notBefore.getTime()).toBe(30 * DAY_MS);
    const oldText = (await openssl(['x509', '-noout', '-ext', 'subjectAltName,certificatePolicies'], { input: leaf.pem })).stdout;
    const newText = (await openssl(['x509', '-noout', '-ext', 'subjectAltName,certificatePolicies'], { input: res.body.pem })).stdout;
    expect(newText).toBe(oldText);
    expect(newText).toContain(EXAMPLE_TIER_OIDS.t1);

    const now = clock.now();
    const v = await verifyAt(tmp, { leafPem: res.body.pem, anchors: [root], untrusted: [tierPem.t1, domainPem], at: now, policy: EXAMPLE_TIER_OIDS.t1 });
    expect(v.stdout + v.stderr).toMatch(/: OK/);
    for (const pem of [leaf.pem, res.body.pem]) {
      const o = await ocspAt(t, tmp, { leafPem: pem, issuerPem: tierPem.t1, root, chain: [tierPem.t1, domainPem], at: now });
      expect(o.status, o.stdout + o.stderr).toBe('good');
      expect(o.verified).toBe(true);
    }

    const audit = await auditOf('certificate.renew', `certificate:${certificate.issuerId}/${certificate.serial}`);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ outcome: 'success', role: 'officer' });
    expect(audit[0].detail).toMatchObject({ replaced: `yuhu-t1/${leaf.serial}`, mode: 'renew', renewalRequest: 'renew-keep-1', profile: 'device' });
  });

  it('answers the same request id with the same successor, once, and refuses a second renewal of the same certificate', async () => {
    const before = await snapshotCounts(t.store);
    const again = await renew('officer', leaf, { requestId: 'renew-keep-1' });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(again.body.replayed).toBe(true);
    const after = await snapshotCounts(t.store);
    expect(after.certificates).toBe(before.certificates);
    expect(after.renewals).toBe(before.renewals);

    const other = await renew('officer', leaf, { requestId: 'renew-keep-2' });
    expect(other.status).toBe(409);
    expect(other.body.type).toBe('urn:tierca:problem:conflict');
    expect(other.body.successor).toEqual({ issuerId: 'yuhu-t1', serial: again.body.certificate.serial });
    // A request id is for one thing: reusing it for another certificate is a conflict.
    const stranger = await issueLeaf(t, tmp, { kind: 'device', tier: 't1' });
    const reused = await renew('officer', stranger, { requestId: 'renew-keep-1' });
    expect(reused.status).toBe(409);
    expect(reused.body.detail).toContain('already used');
  });

  it('rekeys from a CSR, and at a holder-only tier refuses to keep the key or to make one', async () => {
    const t3 = await issueLeaf(t, tmp, { kind: 'device', tier: 't3' });
    const keep = await renew('officer', t3);
    expect(keep.status).toBe(422);
    expect(keep.body.type).toBe('urn:tierca:problem:policy-rekey-required');
    const generate = await renew('officer', t3, { generate: {} });
    expect(generate.status).toBe(422);
    expect(generate.body.type).toBe('urn:tierca:problem:policy-server-keygen');
    const sameKey = await openssl(['req', '-new', '-key', t3.keyPath!, '-subj', '/CN=x']);
    const same = await renew('officer', t3, { csr: sameKey.stdout });
    expect(same.status).toBe(422);
    expect(same.body.type).toBe('urn:tierca:problem:policy-rekey-required');

    const { csrPem } = await opensslCsr(tmp, 'rekey-t3', 'P-384');
    const res = await renew('officer', t3, { csr: csrPem });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.mode).toBe('rekey');
    expect(res.body.certificate).toMatchObject({ tier: 't3', profile: 'device', issuerId: 'yuhu-t3' });
    expect(readCertificate(der(res.body.pem)).publicKeyInfo.equals(readCertificate(der(t3.pem)).publicKeyInfo)).toBe(false);
    const v = await verifyAt(tmp, { leafPem: res.body.pem, anchors: [root], untrusted: [tierPem.t3, domainPem], at: clock.now(), policy: EXAMPLE_TIER_OIDS.t3 });
    expect(v.ok, v.stderr).toBe(true);
  });

  it('makes a new key where the tier allows it and returns it as a PKCS#12', async () => {
    const t1 = await issueLeaf(t, tmp, { kind: 'user', tier: 't1' });
    const res = await renew('officer', t1, { generate: { algorithm: 'P-384', passphrase: 'a holder passphrase' } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.mode).toBe('rekey');
    expect(res.body.passphrase).toBeUndefined();
    expect(res.body.certificate).toMatchObject({ keyAlgorithm: 'P-384', profile: 'user-sign' });
    const p12 = tmp.file('renewed.p12', Buffer.from(res.body.pkcs12, 'base64'));
    const info = await openssl(['pkcs12', '-in', p12, '-nokeys', '-passin', 'pass:a holder passphrase']);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toContain(res.body.pem.split('\n')[1]);
  });

  it('renews an encryption certificate keeping its escrowed key: the KMC\'s key now belongs to the successor', async () => {
    const enc = await issueLeaf(t, tmp, { kind: 'user', tier: 't2', profile: 'user-enc', generate: true });
    const before = await knexOf(t.store)('kmc_keys').where({ serial: enc.serial }).first();
    expect(before).toBeTruthy();
    const res = await renew('officer', enc);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.mode).toBe('renew');
    expect(res.body.certificate.profile).toBe('user-enc');
    const after = await knexOf(t.store)('kmc_keys').where({ id: before.id }).first();
    expect([after.issuer_id, after.serial]).toEqual([res.body.certificate.issuerId, res.body.certificate.serial]);
    expect(await t.store.escrow.get(res.body.certificate.issuerId, res.body.certificate.serial)).toBeUndefined();
    // t2 has no grace here: the old one is revoked (superseded) in the renewal's own transaction.
    expect(res.body.replaced).toMatchObject({ status: 'revoked', reason: 'superseded' });
    const o = await ocspAt(t, tmp, { leafPem: enc.pem, issuerPem: tierPem.t2, root, chain: [tierPem.t2, domainPem], at: clock.now() });
    expect(o.status).toBe('revoked');
    expect(o.reason).toBe('superseded');
  });

  it('refuses what may not be renewed: revoked, on hold, expired, wider names; and roles that may not renew', async () => {
    const revoked = await issueLeaf(t, tmp, { kind: 'device', tier: 't1' });
    await call(t, 'officer', 'POST', `/api/v1/certificates/${revoked.serial}/revoke`, { reason: 'keyCompromise' });
    expect((await renew('officer', revoked)).body.type).toBe('urn:tierca:problem:revocation-final');

    const held = await issueLeaf(t, tmp, { kind: 'device', tier: 't1' });
    await call(t, 'officer', 'POST', `/api/v1/certificates/${held.serial}/hold`);
    const heldRes = await renew('officer', held);
    expect(heldRes.status).toBe(409);
    expect(heldRes.body.detail).toContain('on hold');

    const wider = await issueLeaf(t, tmp, { kind: 'device', tier: 't1' });
    // The registration changed behind the certificate's back: the successor may not carry more names.
    await knexOf(t.store)('subjects').where({ id: wider.subjectId }).update({ dns_names: JSON.stringify(['extra.yuhu.xiangtan.intranet']) });
    const before = await snapshotCounts(t.store);
    const widerRes = await renew('officer', wider);
    expect(widerRes.status).toBe(422);
    expect(widerRes.body.type).toBe('urn:tierca:problem:policy-name-constraints');
    expect(widerRes.body.added).toEqual(['extra.yuhu.xiangtan.intranet']);
    const after = await snapshotCounts(t.store);
    expect({ ...after, audit_log: 0 }).toEqual({ ...before, audit_log: 0 });

    const sysadmin = await renew('admin', wider);
    expect(sysadmin.status).toBe(403);
    const auditor = await renew('auditor', wider);
    expect(auditor.status).toBe(403);
    const device = await call(t, 'admin', 'POST', '/api/v1/principals', { name: 'a device', role: 'device' });
    const asDevice = await fetch(`${t.url}/api/v1/certificates/${wider.serial}/renew`, {
      method: 'POST', headers: { authorization: `Bearer ${device.body.token}`, 'content-type': 'application/json' }, body: '{}',
    });
    expect(asDevice.status).toBe(403);
    const expired = await issueLeaf(t, tmp, { kind: 'device', tier: 't3' });
    clock.advance(10 * DAY_MS);
    const expiredRes = await renew('officer', expired, { csr: (await opensslCsr(tmp, 'late', 'P-384')).csrPem });
    expect(expiredRes.status).toBe(409);
    expect(expiredRes.body.detail).toContain('expired');
  });
});

describe('renewal by a device, signed with its current key', () => {
  it('renews keeping the key, answers a repeat with the same successor, and returns an existing successor', async () => {
    const leaf = await issueLeaf(t, tmp, { kind: 'device', tier: 't1' });
    const signed = signedRenewal({ ...leaf, keyPath: leaf.keyPath! }, { signedAt: clock.now(), requestId: 'device-req-0001' });
    const res = await call(t, null, 'POST', `/api/v1/certificates/${leaf.serial}/renew`, signed.body, signed.headers);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.mode).toBe('renew');
    expect(res.body.certificate.subjectId).toBe(leaf.subjectId);
    const again = await call(t, null, 'POST', `/api/v1/certificates/${leaf.serial}/renew`, signed.body, signed.headers);
    expect(again.status).toBe(200);
    expect(again.body.certificate.serial).toBe(res.body.certificate.serial);
    // Another keep-key request (new id) from the holder gets the successor that exists.
    const later = signedRenewal({ ...leaf, keyPath: leaf.keyPath! }, { signedAt: clock.now(), requestId: 'device-req-0002' });
    const existing = await call(t, null, 'POST', `/api/v1/certificates/${leaf.serial}/renew`, later.body, later.headers);
    expect(existing.status).toBe(200);
    expect(existing.body.certificate.serial).toBe(res.body.certificate.serial);
    const audit = await auditOf('certificate.renew', `certificate:yuhu-t1/${res.body.certificate.serial}`);
    expect(audit[0]).toMatchObject({ role: 'device', principal_id: `certificate:yuhu-t1/${leaf.serial}` });
  });

  it('rekeys a holder-only tier with a CSR in the signed body', async () => {
    const leaf = await issueLeaf(t, tmp, { kind: 'device', tier: 't3' });
    const { csrPem } = await opensslCsr(tmp, 'device-rekey', 'P-384');
    const signed = signedRenewal({ ...leaf, keyPath: leaf.keyPath! }, { signedAt: clock.now(), csr: csrPem });
    const res = await call(t, null, 'POST', `/api/v1/certificates/${leaf.serial}/renew`, signed.body, signed.headers);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.mode).toBe('rekey');
    expect(res.body.certificate).toMatchObject({ tier: 't3', issuerId: 'yuhu-t3' });
  });

  it('refuses a bad signature, a stale or future signedAt, another certificate, a revoked one, and unknown fields', async () => {
    const leaf = await issueLeaf(t, tmp, { kind: 'device', tier: 't1' });
    const other = await issueLeaf(t, tmp, { kind: 'device', tier: 't1' });
    const mine = { ...leaf, keyPath: leaf.keyPath! };
    const before = await snapshotCounts(t.store);
    const attempt = async (s: { body: Buffer; headers: Record<string, string> }, serial = leaf.serial) =>
      call(t, null, 'POST', `/api/v1/certificates/${serial}/renew`, s.body, s.headers);

    const tampered = signedRenewal(mine, { signedAt: clock.now() });
    tampered.body = Buffer.from(tampered.body.toString().replace('"serial"', '"serial" '));
    expect((await attempt(tampered)).status).toBe(401);
    expect((await attempt(signedRenewal(mine, { signedAt: new Date(clock.now().getTime() - 10 * 60_000) }))).status).toBe(401);
    expect((await attempt(signedRenewal(mine, { signedAt: new Date(clock.now().getTime() + 10 * 60_000) }))).status).toBe(401);
    // Signed by leaf's key, presenting leaf's certificate, for other's serial.
    expect((await attempt(signedRenewal(mine, { signedAt: clock.now(), serial: other.serial }), other.serial)).status).toBe(401);
    // other's certificate with leaf's key.
    const swapped = signedRenewal(mine, { signedAt: clock.now() });
    swapped.headers['tierca-certificate'] = der(other.pem).toString('base64');
    expect((await attempt(swapped)).status).toBe(401);
    const unknown = await attempt(signedRenewal(mine, { signedAt: clock.now(), extra: { days: 3650 } }));
    expect(unknown.status).toBe(400);
    const after = await snapshotCounts(t.store);
    expect({ ...after, audit_log: 0 }).toEqual({ ...before, audit_log: 0 });
    const denied = await knexOf(t.store)('audit_log').where({ action: 'certificate.renew', outcome: 'denied' }).count({ n: '*' }).first();
    expect(Number(denied?.n)).toBeGreaterThanOrEqual(5);

    await call(t, 'officer', 'POST', `/api/v1/certificates/${leaf.serial}/revoke`, { reason: 'keyCompromise' });
    const revoked = await attempt(signedRenewal(mine, { signedAt: clock.now() }));
    expect(revoked.status).toBe(401);
    expect(revoked.body.detail).toContain('revoked');
  });
});

describe('a revoked CA', () => {
  it('blocks the renewal of what it issued, by an officer and by a device, and rotate due says why', async () => {
    const leaf = await issueLeaf(t, tmp, { kind: 'device', tier: 't2' });
    clock.advance(11 * DAY_MS); // past two thirds of 15 days
    const asked = await call(t, 'admin', 'POST', '/api/v1/cas/yuhu-t2/revoke', { reason: 'cACompromise' });
    expect(asked.status).toBe(202);
    expect((await call(t, 'admin2', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`)).status).toBe(200);
    const due = await call(t, 'admin', 'GET', '/api/v1/rotation/due?tier=t2');
    const item = due.body.items.find((i: any) => i.serial === leaf.serial);
    expect(item).toMatchObject({ action: 'blocked', why: 'its CA yuhu-t2 is revoked' });
    const byOfficer = await renew('officer', leaf);
    expect(byOfficer.status).toBe(409);
    expect(byOfficer.body.type).toBe('urn:tierca:problem:revocation-final');
    const signed = signedRenewal({ ...leaf, keyPath: leaf.keyPath! }, { signedAt: clock.now() });
    const byDevice = await call(t, null, 'POST', `/api/v1/certificates/${leaf.serial}/renew`, signed.body, signed.headers);
    expect(byDevice.status).toBe(401);
    expect(byDevice.body.detail).toContain('its CA yuhu-t2 is revoked');
  });
});
