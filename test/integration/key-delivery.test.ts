// Server-made keys reach their holder as a PKCS#12 that openssl reads. Regression (issue 12, defect 1):
// a subject whose name holds a character outside the Basic Multilingual Plane (张𠀀) answered 500
// after the certificate was committed — the key lost, a retry refused as already-holds-certificate.
// The PKCS#12 is now built before commit, without a friendlyName a BMPString cannot hold.
// And a passphrase the requester chose survives dual control (t3 encryption certificate).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTierca, call, type TestTierca } from '../helpers/tierca.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';

let t: TestTierca;
const tmp = new TempDir();

beforeAll(async () => {
  t = await startTestTierca();
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

async function subject(body: Record<string, unknown>): Promise<string> {
  const res = await call(t, 'officer', 'POST', '/api/v1/subjects', { domain: 'yuhu', organ: 'government', ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

/** The certificate and key openssl reads out of a PKCS#12 with `passphrase`, and whether they match. */
async function openP12(name: string, pkcs12: string, passphrase: string) {
  const p12 = tmp.file(`${name}.p12`, Buffer.from(pkcs12, 'base64'));
  const certs = await openssl(['pkcs12', '-in', p12, '-nokeys', '-clcerts', '-passin', `pass:${passphrase}`]);
  const key = await openssl(['pkcs12', '-in', p12, '-nocerts', '-nodes', '-passin', `pass:${passphrase}`]);
  const certPub = await openssl(['x509', '-noout', '-pubkey'], { input: certs.stdout });
  const keyPub = await openssl(['pkey', '-pubout'], { input: key.stdout });
  return { code: certs.code + key.code, certPem: certs.stdout, matches: certPub.stdout !== '' && certPub.stdout === keyPub.stdout, info: certs.stderr + certs.stdout };
}

describe('key delivery', () => {
  it('issues and delivers the key of a subject named outside the Basic Multilingual Plane (张𠀀)', async () => {
    const id = await subject({ kind: 'organ', tier: 't1', name: '张𠀀', emails: ['zhang@yuhu.xiangtan.intranet'] });
    const res = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: id, generate: { algorithm: 'P-256' } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(typeof res.body.passphrase).toBe('string');
    const opened = await openP12('astral', res.body.pkcs12, res.body.passphrase);
    expect(opened.code, opened.info).toBe(0);
    expect(opened.matches).toBe(true);
    // The certificate in the file is the one issued, and its subject keeps the name whole.
    const serial = (await openssl(['x509', '-noout', '-serial'], { input: opened.certPem })).stdout.trim().split('=')[1].toLowerCase();
    expect(serial.replace(/^(00)+/, '')).toBe(res.body.certificate.serial);
    const text = (await openssl(['x509', '-noout', '-subject', '-nameopt', 'utf8,sep_comma_plus_space'], { input: opened.certPem })).stdout;
    expect(text).toContain('CN=张𠀀');
    // No friendlyName: a BMPString cannot hold U+20000.
    expect(opened.info).not.toContain('friendlyName');
  });

  it('keeps the requester\'s passphrase through dual control: the approval delivers under it and shows none', async () => {
    const id = await subject({ kind: 'user', tier: 't3', name: '李四', emails: ['lisi@yuhu.xiangtan.intranet'] });
    const passphrase = 'chosen by the requester 42';
    const pending = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: id, profile: 'user-enc', generate: { passphrase } });
    expect(pending.status, JSON.stringify(pending.body)).toBe(202);
    const request = await t.store.requests.get(pending.body.request.id);
    // Kept sealed with the request, never in plain.
    expect(JSON.stringify(request!.payload)).not.toContain(passphrase);
    expect(request!.payload.sealedPassphrase).toEqual(expect.any(String));
    const approved = await call(t, 'officer2', 'POST', `/api/v1/requests/${pending.body.request.id}/approve`);
    expect(approved.status, JSON.stringify(approved.body)).toBe(201);
    expect(approved.body.passphrase).toBeUndefined();
    const opened = await openP12('dual', approved.body.pkcs12, passphrase);
    expect(opened.code, opened.info).toBe(0);
    expect(opened.matches).toBe(true);
    expect((await t.store.requests.get(pending.body.request.id))!.status).toBe('done');
  });
});
