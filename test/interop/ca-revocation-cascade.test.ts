// Regression (issue 12, defect 2): after a dual-controlled revocation of the domain CA `yuhu`, its tier
// CAs issue nothing more (a clear problem document, no row written) and every certificate under them
// answers revoked — over OCSP (checked with `openssl ocsp`, POST and GET, with and without a nonce)
// and at /status. Before the fix issuance went on (201, issuer yuhu-t2) and both answered `good`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTierca, call, type TestTierca } from '../helpers/tierca.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { opensslCsr } from '../helpers/pki-fixtures.ts';
import { snapshotCounts } from '../helpers/database.ts';

let t: TestTierca;
const tmp = new TempDir();
let n = 0;

beforeAll(async () => {
  t = await startTestTierca();
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

async function deviceSubject(domain: string, tier: string): Promise<string> {
  const i = ++n;
  const res = await call(t, 'officer', 'POST', '/api/v1/subjects', {
    kind: 'device', domain, organ: 'court', tier, name: `cascade-${i}`, dns: [`cascade-${i}.${domain}.xiangtan.intranet`],
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function issue(subjectId: string, name: string) {
  const { csrPem } = await opensslCsr(tmp, name, 'P-256');
  return call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, csr: csrPem });
}

const ocsp = (issuer: string, cert: string, extra: string[]) =>
  openssl(['ocsp', '-issuer', issuer, '-cert', cert, '-url', `${t.url}/ocsp`, '-noverify', ...extra]);

describe('a revoked domain CA takes its tier CAs down', () => {
  it('refuses issuance under it with nothing written, and answers revoked for what it issued', async () => {
    const held = await issue(await deviceSubject('yuhu', 't2'), 'held');
    expect(held.status, JSON.stringify(held.body)).toBe(201);
    expect(held.body.certificate.issuerId).toBe('yuhu-t2');
    const serial = held.body.certificate.serial as string;
    const certPath = tmp.file('held.pem', held.body.pem);
    const issuerPath = tmp.file('yuhu-t2.pem', (await call(t, null, 'GET', '/ca/yuhu-t2.pem')).raw);
    // Asked twice before: the responder remembers nonce-less requests and must not answer from memory later.
    expect((await ocsp(issuerPath, certPath, ['-no_nonce'])).stdout).toContain(`${certPath}: good`);
    expect((await ocsp(issuerPath, certPath, ['-no_nonce'])).stdout).toContain(`${certPath}: good`);
    expect((await call(t, null, 'GET', `/status/yuhu-t2/${serial}`)).body.status).toBe('good');
    const waiting = await deviceSubject('yuhu', 't2');
    // A certificate of another domain is not touched.
    const other = await issue(await deviceSubject('shaoshan', 't2'), 'other');
    expect(other.status).toBe(201);

    const asked = await call(t, 'admin', 'POST', '/api/v1/cas/yuhu/revoke', { reason: 'keyCompromise' });
    expect(asked.status).toBe(202);
    const approved = await call(t, 'admin2', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    expect(approved.body.result).toMatchObject({ caId: 'yuhu', status: 'revoked' });

    const before = await snapshotCounts(t.store);
    const refused = await issue(waiting, 'refused');
    expect(refused.status, JSON.stringify(refused.body)).toBe(422);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(refused.body).toMatchObject({
      type: 'urn:tierca:problem:ca-unavailable',
      status: 422,
      detail: 'the issuing CA yuhu-t2 of yuhu t2 cannot issue: its CA yuhu is revoked',
      ca: 'yuhu-t2', blockedBy: 'yuhu', caStatus: 'revoked',
    });
    const after = await snapshotCounts(t.store);
    // Only the audit log grows: the refusal itself is recorded.
    expect({ ...after, audit_log: 0 }).toEqual({ ...before, audit_log: 0 });
    expect(after.audit_log).toBe(before.audit_log + 1);
    const [record] = await t.store.audit.list({ fromSeq: (await t.store.audit.last())!.seq });
    expect(record).toMatchObject({ action: 'certificate.issue', outcome: 'failure', detail: { error: 'ca-unavailable' } });

    // OCSP: the remembered request and a fresh one with a nonce (POST) answer revoked, reason cACompromise.
    for (const extra of [['-no_nonce'], []]) {
      const answer = await ocsp(issuerPath, certPath, extra);
      expect(answer.stdout, answer.stderr).toContain(`${certPath}: revoked`);
      expect(answer.stdout).toContain('Reason: cACompromise');
    }
    // GET (RFC 6960 Appendix A.1), the request made by openssl, the answer read by openssl.
    const reqPath = tmp.file('get-req.der');
    await openssl(['ocsp', '-issuer', issuerPath, '-cert', certPath, '-no_nonce', '-reqout', reqPath]);
    const got = await fetch(`${t.url}/ocsp/${encodeURIComponent(tmp.read('get-req.der').toString('base64'))}`);
    expect(got.status).toBe(200);
    const respPath = tmp.file('get-resp.der', Buffer.from(await got.arrayBuffer()));
    const text = (await openssl(['ocsp', '-respin', respPath, '-resp_text', '-noverify'])).stdout;
    expect(text).toContain('Cert Status: revoked');
    expect(text).toContain('Revocation Reason: cACompromise');
    const status = await call(t, null, 'GET', `/status/yuhu-t2/${serial}`);
    expect(status.body).toMatchObject({ issuer: 'yuhu-t2', serial, status: 'revoked', reason: 'cACompromise', expired: false });
    expect(status.body.revokedAt).toBe(approved.body.result.revokedAt);
    // The certificate's own record is untouched: it is revoked through its CA.
    expect((await t.store.certificates.get('yuhu-t2', serial))!.status).toBe('good');
    // Elsewhere nothing changed.
    expect((await call(t, null, 'GET', `/status/shaoshan-t2/${other.body.certificate.serial}`)).body.status).toBe('good');
    // Renewal under the revoked CA is refused as well.
    const renew = await call(t, 'officer', 'POST', `/api/v1/certificates/${serial}/renew`, {});
    expect(renew.status).toBe(409);
    expect(renew.body.type).toBe('urn:tierca:problem:revocation-final');
  });
});
