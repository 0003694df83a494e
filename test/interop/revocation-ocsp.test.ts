// Revocation seen by real clients: `openssl ocsp` against the running responder (POST and GET),
// `openssl verify -crl_check` against published CRLs, and the JSON status route.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { startTestTierca, call, type TestTierca } from '../helpers/tierca.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { opensslCsr } from '../helpers/pki-fixtures.ts';
import { snapshotCounts } from '../helpers/database.ts';
import { parseOcspResponse } from '../../pki/ocsp-response.ts';

let t: TestTierca;
const tmp = new TempDir();
let rootPem: string;
let issuerPem: string;
let chainPem: string;
let n = 0;

beforeAll(async () => {
  t = await startTestTierca();
  rootPem = tmp.file('root.pem', (await call(t, null, 'GET', '/ca/root.pem')).raw);
  issuerPem = tmp.file('yuhu-t1.pem', (await call(t, null, 'GET', '/ca/yuhu-t1.pem')).raw);
  chainPem = tmp.file('chain.pem', Buffer.concat([(await call(t, null, 'GET', '/ca/yuhu-t1.pem')).raw, (await call(t, null, 'GET', '/ca/yuhu.pem')).raw]));
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

async function issueDevice(): Promise<{ serial: string; certPath: string }> {
  const i = ++n;
  const subject = await call(t, 'officer', 'POST', '/api/v1/subjects', {
    kind: 'device', domain: 'yuhu', organ: 'court', tier: 't1', name: `ocsp-${i}`, dns: [`ocsp-${i}.yuhu.xiangtan.intranet`],
  });
  const { csrPem } = await opensslCsr(tmp, `ocsp-${i}`, 'P-256');
  const res = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: subject.body.id, csr: csrPem });
  expect(res.status).toBe(201);
  return { serial: res.body.certificate.serial, certPath: tmp.file(`ocsp-${i}.pem`, res.body.pem) };
}

/** `openssl ocsp` over HTTP POST, verifying the response against the root. */
function ocspCheck(certPath: string, extra: string[] = []) {
  return openssl(['ocsp', '-issuer', issuerPem, '-cert', certPath, '-url', `${t.url}/ocsp`, '-CAfile', rootPem, '-verify_other', chainPem, ...extra]);
}

describe('openssl ocsp against tierca', () => {
  it('reports good, revoked with reason after revoke, and keeps the first revocation', async () => {
    const { serial, certPath } = await issueDevice();
    for (const nonce of [[], ['-no_nonce']]) {
      const good = await ocspCheck(certPath, nonce);
      expect(good.stdout, good.stderr).toContain(`${certPath}: good`);
      expect(good.stderr).toContain('Response verify OK');
    }
    const revoke = await call(t, 'officer', 'POST', `/api/v1/certificates/${serial}/revoke`, { reason: 'keyCompromise' });
    expect(revoke.status).toBe(200);
    expect(revoke.body).toMatchObject({ status: 'revoked', reason: 'keyCompromise' });
    for (const nonce of [[], ['-no_nonce']]) {
      const revoked = await ocspCheck(certPath, nonce);
      expect(revoked.stdout).toContain(`${certPath}: revoked`);
      expect(revoked.stdout).toContain('Reason: keyCompromise');
      expect(revoked.stderr).toContain('Response verify OK');
    }
    const second = await call(t, 'officer', 'POST', `/api/v1/certificates/${serial}/revoke`, { reason: 'superseded' });
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ status: 'revoked', reason: 'keyCompromise', revokedAt: revoke.body.revokedAt });
    const release = await call(t, 'officer', 'POST', `/api/v1/certificates/${serial}/release`);
    expect(release.status).toBe(409);
    expect(release.body.type).toBe('urn:tierca:problem:revocation-final');
  });

  it('puts on hold and releases: revoked (certificateHold), then good again', async () => {
    const { serial, certPath } = await issueDevice();
    expect((await call(t, 'officer', 'POST', `/api/v1/certificates/${serial}/hold`)).status).toBe(200);
    const held = await ocspCheck(certPath);
    expect(held.stdout).toContain(`${certPath}: revoked`);
    expect(held.stdout).toContain('Reason: certificateHold');
    expect((await call(t, 'officer', 'POST', `/api/v1/certificates/${serial}/release`)).status).toBe(200);
    const good = await ocspCheck(certPath, ['-no_nonce']);
    expect(good.stdout).toContain(`${certPath}: good`);
  });

  it('answers GET /ocsp/{base64} with RFC 5019 cache headers, and 304 for the same ETag', async () => {
    const { certPath } = await issueDevice();
    const reqPath = tmp.file('get-req.der');
    expect((await openssl(['ocsp', '-issuer', issuerPem, '-cert', certPath, '-no_nonce', '-reqout', reqPath])).code).toBe(0);
    const b64 = encodeURIComponent(tmp.read('get-req.der').toString('base64'));
    const res = await fetch(`${t.url}/ocsp/${b64}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/ocsp-response');
    expect(res.headers.get('cache-control')).toMatch(/^max-age=\d+, public, no-transform, must-revalidate$/);
    const maxAge = Number(/max-age=(\d+)/.exec(res.headers.get('cache-control')!)![1]);
    expect(maxAge).toBeGreaterThan(23 * 3600);
    expect(maxAge).toBeLessThanOrEqual(24 * 3600);
    expect(res.headers.get('last-modified')).toMatch(/GMT$/);
    expect(res.headers.get('expires')).toMatch(/GMT$/);
    const etag = res.headers.get('etag')!;
    expect(etag).toMatch(/^"[0-9a-f]{40}"$/);
    const respPath = tmp.file('get-resp.der', Buffer.from(await res.arrayBuffer()));
    const check = await openssl(['ocsp', '-respin', respPath, '-issuer', issuerPem, '-cert', certPath, '-CAfile', rootPem, '-verify_other', chainPem]);
    expect(check.stdout).toContain(`${certPath}: good`);
    expect(check.stderr).toContain('Response verify OK');
    const again = await fetch(`${t.url}/ocsp/${b64}`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
  });

  it('answers unknown for a serial it never issued, and several CertIDs in one request', async () => {
    const a = await issueDevice();
    const unknown = await openssl(['ocsp', '-issuer', issuerPem, '-serial', `0x${randomBytes(12).toString('hex')}`, '-cert', a.certPath,
      '-url', `${t.url}/ocsp`, '-CAfile', rootPem, '-verify_other', chainPem]);
    expect(unknown.stdout).toMatch(/0x[0-9A-Fa-f]+: unknown/);
    expect(unknown.stdout).toContain(`${a.certPath}: good`);
  });

  it('answers unauthorized for an issuer it does not run, malformedRequest for garbage, never a 500', async () => {
    const foreignKey = tmp.file('foreign.key');
    const foreignCa = tmp.file('foreign.pem');
    await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', foreignKey, '-out', foreignCa, '-subj', '/CN=Foreign CA', '-days', '1']);
    const res = await openssl(['ocsp', '-issuer', foreignCa, '-serial', '0x1234', '-url', `${t.url}/ocsp`, '-no_nonce']);
    expect(res.stdout + res.stderr).toMatch(/Responder Error: unauthorized \(6\)/);

    const garbage = await fetch(`${t.url}/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: Buffer.from('hello') });
    expect(garbage.status).toBe(200);
    expect(Buffer.from(await garbage.arrayBuffer()).toString('hex')).toBe('30030a0101');
    const oversized = await fetch(`${t.url}/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: randomBytes(64 * 1024) });
    expect(oversized.status).toBe(200);
    expect(parseOcspResponse(Buffer.from(await oversized.arrayBuffer())).responseStatus).toBe('malformedRequest');
  });

  it('survives random mutations of valid requests: every answer is a parseable OCSPResponse', async () => {
    const { certPath } = await issueDevice();
    const reqPath = tmp.file('mut-req.der');
    await openssl(['ocsp', '-issuer', issuerPem, '-cert', certPath, '-reqout', reqPath]);
    const valid = tmp.read('mut-req.der');
    let state = 20261125;
    const rand = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const statuses = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const m = Buffer.from(valid);
      const flips = 1 + Math.floor(rand() * 3);
      for (let f = 0; f < flips; f++) m[Math.floor(rand() * m.length)] = Math.floor(rand() * 256);
      const body = rand() < 0.2 ? m.subarray(0, Math.floor(rand() * m.length)) : m;
      const res = await fetch(`${t.url}/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body });
      expect(res.status).toBe(200);
      statuses.add(parseOcspResponse(Buffer.from(await res.arrayBuffer())).responseStatus);
    }
    expect(statuses.has('malformedRequest')).toBe(true);
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
  });
});

describe('CRLs seen by openssl', () => {
  it('lists a revoked certificate: verify -crl_check fails for it and passes for a good one; crl -text shows reason and numbers', async () => {
    const good = await issueDevice();
    const bad = await issueDevice();
    await call(t, 'officer', 'POST', `/api/v1/certificates/${bad.serial}/revoke`, { reason: 'affiliationChanged', invalidityDate: '2026-01-02T03:04:05Z' });
    const gen = await call(t, 'admin', 'POST', '/api/v1/crls', { ca: 'yuhu-t1' });
    expect(gen.status).toBe(201);
    expect(gen.body.map((c: any) => c.delta)).toEqual([false, true]);
    // One number sequence per CA: the delta comes after its full CRL (the publication the revocation
    // itself triggered may take a number in between).
    expect(BigInt(gen.body[1].number)).toBeGreaterThan(BigInt(gen.body[0].number));

    const crl = await call(t, null, 'GET', '/crl/yuhu-t1.crl');
    expect(crl.headers.get('content-type')).toBe('application/pkix-crl');
    const crlDer = tmp.file('yuhu-t1.crl', crl.raw);
    const crlPem = tmp.file('yuhu-t1.crl.pem', (await openssl(['crl', '-inform', 'DER', '-in', crlDer])).stdout);
    const text = (await openssl(['crl', '-inform', 'DER', '-in', crlDer, '-noout', '-text'])).stdout;
    expect(text).toContain(`Serial Number: ${bad.serial.toUpperCase()}`);
    expect(text).toContain('Affiliation Changed');
    expect(text).toMatch(/X509v3 CRL Number:\s*\n\s*\d+/);
    expect(text).toContain('Invalidity Date');
    expect(text).not.toContain(good.serial.toUpperCase());

    const rootCrl = tmp.file('root.crl', (await openssl(['crl', '-inform', 'DER', '-in', tmp.file('root.crl.der', (await call(t, null, 'GET', '/crl/root.crl')).raw)])).stdout);
    const domainCrl = tmp.file('yuhu.crl', (await openssl(['crl', '-inform', 'DER', '-in', tmp.file('yuhu.crl.der', (await call(t, null, 'GET', '/crl/yuhu.crl')).raw)])).stdout);
    const verify = (cert: string, all: boolean) => openssl(['verify', '-CAfile', rootPem, '-untrusted', chainPem,
      all ? '-crl_check_all' : '-crl_check', '-CRLfile', crlPem, ...(all ? ['-CRLfile', domainCrl, '-CRLfile', rootCrl] : []), cert]);
    const revoked = await verify(bad.certPath, false);
    expect(revoked.code).not.toBe(0);
    expect(revoked.stderr + revoked.stdout).toContain('certificate revoked');
    for (const all of [false, true]) {
      const ok = await verify(good.certPath, all);
      expect(ok.stdout.trim(), ok.stderr).toBe(`${good.certPath}: OK`);
    }

    const delta = await call(t, null, 'GET', '/crl/yuhu-t1-delta.crl');
    const deltaText = (await openssl(['crl', '-inform', 'DER', '-noout', '-text'], { input: delta.raw })).stdout;
    expect(deltaText).toMatch(/X509v3 Delta CRL Indicator: critical\s*\n\s*\d+/);
  });

  it('answers the JSON status route, and 404 for revoking an unknown serial with no row changed', async () => {
    const { serial } = await issueDevice();
    const good = await call(t, null, 'GET', `/status/yuhu-t1/${serial}`);
    expect(good.body).toMatchObject({ issuer: 'yuhu-t1', serial, status: 'good', revokedAt: null });
    const unknown = await call(t, null, 'GET', '/status/yuhu-t1/abcdef');
    expect(unknown.body).toEqual({ issuer: 'yuhu-t1', serial: 'abcdef', status: 'unknown' });
    const before = await snapshotCounts(t.store);
    const missing = await call(t, 'officer', 'POST', '/api/v1/certificates/deadbeef01/revoke', { reason: 'keyCompromise' });
    expect(missing.status).toBe(404);
    expect(missing.body.type).toBe('urn:tierca:problem:not-found');
    const badReason = await call(t, 'officer', 'POST', `/api/v1/certificates/${serial}/revoke`, { reason: 'boredom' });
    expect(badReason.status).toBe(400);
    // Only the audit log grows: each refused write is recorded (issue 6).
    const after = await snapshotCounts(t.store);
    expect({ ...after, audit_log: 0 }).toEqual({ ...before, audit_log: 0 });
    expect(after.audit_log).toBe(before.audit_log + 2);
  });

  it('revokes everything a subject holds', async () => {
    const subject = await call(t, 'officer', 'POST', '/api/v1/subjects', {
      kind: 'user', domain: 'yuhu', organ: 'court', tier: 't1', name: '离职人员', emails: ['leaver@yuhu.xiangtan.intranet'],
    });
    const { csrPem } = await opensslCsr(tmp, 'leaver', 'P-256');
    const sign = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: subject.body.id, csr: csrPem });
    const enc = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: subject.body.id, profile: 'user-enc', generate: {} });
    expect([sign.status, enc.status]).toEqual([201, 201]);
    const res = await call(t, 'officer', 'POST', `/api/v1/subjects/${subject.body.id}/revoke`, { reason: 'affiliationChanged' });
    expect(res.status).toBe(200);
    expect(res.body.revoked.sort()).toEqual([sign.body.certificate.serial, enc.body.certificate.serial].sort());
    for (const s of res.body.revoked) {
      expect((await call(t, null, 'GET', `/status/yuhu-t1/${s}`)).body).toMatchObject({ status: 'revoked', reason: 'affiliationChanged' });
    }
  });
});

describe('CA revocation', () => {
  it('makes every certificate under a revoked tier CA answer revoked', async () => {
    const subject = await call(t, 'officer', 'POST', '/api/v1/subjects', {
      kind: 'device', domain: 'shaoshan', organ: 'court', tier: 't2', name: 'doomed', dns: ['doomed.shaoshan.xiangtan.intranet'],
    });
    const { csrPem } = await opensslCsr(tmp, 'doomed', 'P-256');
    const issued = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: subject.body.id, csr: csrPem });
    const certPath = tmp.file('doomed.pem', issued.body.pem);
    const shaoshanT2 = tmp.file('shaoshan-t2.pem', (await call(t, null, 'GET', '/ca/shaoshan-t2.pem')).raw);
    // The same nonce-less request before and after: the responder remembers such requests, and must
    // not answer the second from memory once the CA is revoked.
    const sameRequest = () => openssl(['ocsp', '-issuer', shaoshanT2, '-cert', certPath, '-url', `${t.url}/ocsp`, '-no_nonce', '-noverify']);
    expect((await sameRequest()).stdout).toContain(`${certPath}: good`);
    expect((await sameRequest()).stdout).toContain(`${certPath}: good`);
    const denied = await call(t, 'officer', 'POST', '/api/v1/cas/shaoshan-t2/revoke', { reason: 'keyCompromise' });
    expect(denied.status).toBe(403);
    // Dual control (issue 6): one sysadmin asks, a second approves.
    const asked = await call(t, 'admin', 'POST', '/api/v1/cas/shaoshan-t2/revoke', { reason: 'keyCompromise' });
    expect(asked.status).toBe(202);
    const res = await call(t, 'admin2', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
    expect(res.status).toBe(200);
    expect(res.body.result.status).toBe('revoked');
    const answer = await openssl(['ocsp', '-issuer', shaoshanT2, '-cert', certPath, '-url', `${t.url}/ocsp`, '-noverify']);
    expect(answer.stdout).toContain(`${certPath}: revoked`);
    expect((await sameRequest()).stdout).toContain(`${certPath}: revoked`);
    expect((await call(t, null, 'GET', `/status/shaoshan-t2/${issued.body.certificate.serial}`)).body.status).toBe('revoked');
    const parentCrl = await call(t, null, 'GET', '/crl/shaoshan.crl');
    const text = (await openssl(['crl', '-inform', 'DER', '-noout', '-text'], { input: parentCrl.raw })).stdout;
    expect(text).toContain('Key Compromise');
  });
});
