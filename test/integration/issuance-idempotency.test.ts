// `requestId` on POST /api/v1/certificates (issue 13, defect 9): a retry with the same id answers what
// the first call did — never a second certificate — on SQLite and PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTierca, call, type TestTierca } from '../helpers/tierca.ts';
import { TempDir } from '../helpers/openssl.ts';
import { countRows, snapshotCounts } from '../helpers/database.ts';
import { opensslCsr } from '../helpers/pki-fixtures.ts';

let t: TestTierca;
const tmp = new TempDir();

beforeAll(async () => {
  t = await startTestTierca();
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

let seq = 0;
async function device(tier = 't1'): Promise<string> {
  const n = ++seq;
  const res = await call(t, 'officer', 'POST', '/api/v1/subjects', {
    kind: 'device', domain: 'yuhu', organ: 'government', tier, name: `idem-${n}`, dns: [`idem-${n}.yuhu.xiangtan.intranet`],
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id as string;
}

describe('idempotent issuance by requestId', () => {
  it('a retry with the same id returns the same certificate (200, replayed) and stores nothing more', async () => {
    const subjectId = await device();
    const { csrPem } = await opensslCsr(tmp, 'idem-a', 'P-256');
    const first = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, csr: csrPem, requestId: 'job-7:a' });
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect(first.body.replayed).toBeUndefined();
    const before = await countRows(t.store, 'certificates');
    const again = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, csr: csrPem, requestId: 'job-7:a' });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(again.body.replayed).toBe(true);
    expect(again.body.certificate.serial).toBe(first.body.certificate.serial);
    expect(again.body.pem).toBe(first.body.pem);
    expect(again.body.chain).toEqual(first.body.chain);
    expect(await countRows(t.store, 'certificates')).toBe(before);
    // Without the id, the same call is a second issuance and is refused as such.
    const plain = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, csr: csrPem });
    expect([plain.status, plain.body.type]).toEqual([409, 'urn:tierca:problem:already-holds-certificate']);
  });

  it('the id is the caller\'s: another officer with the same id issues its own request, and an id reused for another subject is a conflict', async () => {
    const a = await device();
    const b = await device();
    const { csrPem } = await opensslCsr(tmp, 'idem-b', 'P-256');
    expect((await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: a, csr: csrPem, requestId: 'shared-1' })).status).toBe(201);
    const before = await snapshotCounts(t.store);
    const reused = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: b, csr: csrPem, requestId: 'shared-1' });
    expect([reused.status, reused.body.type]).toEqual([409, 'urn:tierca:problem:conflict']);
    expect(reused.body.detail).toBe(`requestId shared-1 was used for subject:${a}, not subject:${b}`);
    const after = await snapshotCounts(t.store);
    expect({ ...after, audit_log: 0 }).toEqual({ ...before, audit_log: 0 });
    const other = await call(t, 'officer2', 'POST', '/api/v1/certificates', { subjectId: b, csr: csrPem, requestId: 'shared-1' });
    expect(other.status, JSON.stringify(other.body)).toBe(201);
  });

  it('a server-made key is delivered once: the replay returns the certificate without the PKCS#12', async () => {
    const subjectId = await device();
    const first = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, generate: { algorithm: 'P-256' }, requestId: 'gen-1' });
    expect(first.status).toBe(201);
    expect(typeof first.body.pkcs12).toBe('string');
    const again = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, generate: { algorithm: 'P-256' }, requestId: 'gen-1' });
    expect(again.status).toBe(200);
    expect(again.body.certificate.serial).toBe(first.body.certificate.serial);
    expect(again.body.pkcs12).toBeUndefined();
    expect(again.body.passphrase).toBeUndefined();
  });

  it('10 concurrent calls with one id issue one certificate and all answer it', async () => {
    const subjectId = await device();
    const { csrPem } = await opensslCsr(tmp, 'idem-c', 'P-256');
    const before = await countRows(t.store, 'certificates');
    const answers = await Promise.all(Array.from({ length: 10 }, () => call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, csr: csrPem, requestId: 'burst-1' })));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
    expect(new Set(answers.map((a) => a.body.certificate.serial)).size).toBe(1);
    expect(await countRows(t.store, 'certificates')).toBe(before + 1);
  });

  it('t3: a retry answers the same pending request, and after the approval the certificate', async () => {
    const subjectId = await device('t3');
    const { csrPem } = await opensslCsr(tmp, 'idem-t3', 'P-384');
    const first = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, csr: csrPem, requestId: 't3-1' });
    expect(first.status, JSON.stringify(first.body)).toBe(202);
    const again = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, csr: csrPem, requestId: 't3-1' });
    expect([again.status, again.body.request.id]).toEqual([202, first.body.request.id]);
    const approved = await call(t, 'officer2', 'POST', `/api/v1/requests/${first.body.request.id}/approve`);
    expect(approved.status, JSON.stringify(approved.body)).toBe(201);
    const later = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, csr: csrPem, requestId: 't3-1' });
    expect([later.status, later.body.replayed, later.body.certificate.serial]).toEqual([200, true, approved.body.certificate.serial]);
  });

  it('refuses a malformed requestId with 400 and nothing written but the audit record of the refusal', async () => {
    const subjectId = await device();
    const before = await snapshotCounts(t.store);
    const res = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, generate: {}, requestId: 'has space' });
    expect([res.status, res.body.type]).toEqual([400, 'urn:tierca:problem:bad-request']);
    const after = await snapshotCounts(t.store);
    expect({ ...after, audit_log: 0 }).toEqual({ ...before, audit_log: 0 });
    expect(after.audit_log - before.audit_log).toBe(1);
  });
});
