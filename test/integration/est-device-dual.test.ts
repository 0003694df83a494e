// EST for a device at a tier that gives devices dual certificates (decision 0027): simpleenroll's
// answer carries one certificate and no key, so it issues the signing certificate alone (nothing is
// escrowed for a key nobody received); the device then fetches its encryption half with serverkeygen
// over mutual TLS with that certificate — the KMC-made key as application/pkcs8 and its device-enc
// certificate — which curl and openssl check, and `openssl cms` to it opens with the key.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:https';
import { startTestTierca, type TestTierca } from '../helpers/tierca.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { knexOf } from '../../server/storage/knex-store.ts';
import { tlsTestCredentials } from '../helpers/tls-test-ca.ts';
import { smallConfig } from '../helpers/rotation.ts';

const ZONE = 'yuhu.xiangtan.intranet';
const tmp = new TempDir();
let t: TestTierca;
let caFile: string;
let n = 0;

beforeAll(async () => {
  const tls = await tlsTestCredentials(tmp);
  caFile = tls.caFile;
  const data = smallConfig();
  data.tiers.t2.encryptionCertificate = { user: 'required', device: 'required', organ: 'none' };
  t = await startTestTierca({ tls: { cert: tls.cert, key: tls.key }, configData: data });
}, 90_000);
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(`${t.url}${path}`, {
      method, ca: readFileSync(caFile), headers: { authorization: `Bearer ${t.tokens.officer}`, ...(payload ? { 'content-type': 'application/json' } : {}) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

function curl(path: string, args: string[]): Promise<{ status: number; headers: string; body: string }> {
  const id = ++n;
  const [headers, out] = [tmp.file(`h${id}.txt`), tmp.file(`b${id}.txt`)];
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '--cacert', caFile, '-D', headers, '-o', out, '-w', '%{http_code}', ...args, `${t.url}${path}`], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`curl failed: ${stderr}`));
      resolve({ status: Number(stdout), headers: readFileSync(headers, 'utf8'), body: readFileSync(out, 'utf8') });
    });
  });
}

async function printCerts(base64: string, file: string): Promise<string[]> {
  writeFileSync(tmp.file(`${file}.p7`), Buffer.from(base64, 'base64'));
  const res = await openssl(['pkcs7', '-inform', 'DER', '-in', tmp.file(`${file}.p7`), '-print_certs']);
  expect(res.code, res.stderr).toBe(0);
  return res.stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
}

describe('EST for a device with dual certificates', () => {
  it('simpleenroll issues the signing certificate alone; serverkeygen over mutual TLS gives the device-enc key and certificate', async () => {
    const subject = await api('POST', '/api/v1/subjects', { kind: 'device', domain: 'yuhu', organ: 'government', tier: 't2', name: 'tlcp-gw1', dns: [`tlcp-gw1.${ZONE}`] });
    expect(subject.status, JSON.stringify(subject.body)).toBe(201);
    const code = await api('POST', '/api/v1/est/codes', { subject: subject.body.id });
    expect(code.status, JSON.stringify(code.body)).toBe(201);
    const made = await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', tmp.file('gw.key'),
      '-subj', `/CN=tlcp-gw1.${ZONE}`, '-outform', 'DER', '-out', tmp.file('gw.der')]);
    expect(made.code, made.stderr).toBe(0);
    writeFileSync(tmp.file('gw.b64'), tmp.read('gw.der').toString('base64'));
    const enrolled = await curl('/.well-known/est/yuhu-t2/simpleenroll', ['--user', `${subject.body.id}:${code.body.code}`, '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${tmp.file('gw.b64')}`]);
    expect(enrolled.status, enrolled.body).toBe(200);
    const [signing] = await printCerts(enrolled.body, 'gw');
    writeFileSync(tmp.file('gw.pem'), signing);
    const certs = await api('GET', `/api/v1/certificates?subject=${subject.body.id}`);
    expect(certs.body.map((c: any) => c.profile)).toEqual(['device']);
    expect(await knexOf(t.store)('kmc_keys').where({ subject_id: subject.body.id })).toEqual([]);

    // RFC 7030 §4.4: serverkeygen, authenticated by the signing certificate it just got.
    const keygen = await curl('/.well-known/est/yuhu-t2/serverkeygen', ['--cert', tmp.file('gw.pem'), '--key', tmp.file('gw.key'),
      '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${tmp.file('gw.b64')}`]);
    expect(keygen.status, keygen.body).toBe(200);
    const boundary = /content-type: multipart\/mixed; boundary=([^\r\n;]+)/i.exec(keygen.headers)![1];
    const parts = keygen.body.split(`--${boundary}`).slice(1, -1).map((p) => p.trim().split(/\r?\n\r?\n/));
    expect(parts.map(([h]) => /content-type: ([^\r\n]+)/i.exec(h)![1])).toEqual(['application/pkcs8', 'application/pkcs7-mime; smime-type=certs-only']);
    writeFileSync(tmp.file('enc.key.der'), Buffer.from(parts[0][1], 'base64'));
    const [encPem] = await printCerts(parts[1][1].trim(), 'enc');
    writeFileSync(tmp.file('enc.pem'), encPem);
    const text = (await openssl(['x509', '-noout', '-text', '-in', tmp.file('enc.pem')])).stdout;
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Key Agreement\n/);
    expect(text).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication\n/);
    expect(text).toContain(`DNS:tlcp-gw1.${ZONE}`);
    writeFileSync(tmp.file('enc.key'), (await openssl(['pkey', '-inform', 'DER', '-in', tmp.file('enc.key.der')])).stdout);
    writeFileSync(tmp.file('conf.txt'), 'gateway configuration 湘潭\n');
    expect((await openssl(['cms', '-encrypt', '-binary', '-aes256', '-recip', tmp.file('enc.pem'), '-in', tmp.file('conf.txt'), '-outform', 'DER', '-out', tmp.file('conf.cms')])).code).toBe(0);
    const opened = await openssl(['cms', '-decrypt', '-inform', 'DER', '-in', tmp.file('conf.cms'), '-recip', tmp.file('enc.pem'), '-inkey', tmp.file('enc.key')]);
    expect(opened.stdout).toBe('gateway configuration 湘潭\n');
    const after = await api('GET', `/api/v1/certificates?subject=${subject.body.id}`);
    expect(after.body.map((c: any) => c.profile).sort()).toEqual(['device', 'device-enc']);
    const history = await api('GET', `/api/v1/subjects/${subject.body.id}/keys`);
    expect(history.body).toHaveLength(1);
    // A second one while this one is live is refused.
    const again = await curl('/.well-known/est/yuhu-t2/serverkeygen', ['--cert', tmp.file('gw.pem'), '--key', tmp.file('gw.key'),
      '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${tmp.file('gw.b64')}`]);
    expect(again.status).toBe(409);
  });
});
