// EST (RFC 7030) with curl and openssl as the client, as RFC 7030's examples do: cacerts, csrattrs,
// simpleenroll with a one-time code an officer made (`tierca est code add`), simplereenroll over
// mutual TLS with the issued certificate, and a t3 enrolment that waits (202, Retry-After) for a
// second officer. Every PKCS#7 is opened with `openssl pkcs7 -print_certs` and the certificate
// verified with `openssl verify -policy … -explicit_policy`; every refusal has its status and
// changes no row.
import { execFile } from 'node:child_process';
import { request } from 'node:https';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTierca, type TestTierca } from '../helpers/tierca.ts';
import { EXAMPLE_TIER_OIDS } from '../helpers/config.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { snapshotCounts } from '../helpers/database.ts';
import { knexOf } from '../../server/storage/knex-store.ts';
import { tlsTestCredentials } from '../helpers/tls-test-ca.ts';
import { pythonCheck } from '../helpers/relying-party.ts';
import { runTierca } from '../helpers/processes.ts';
import { createPrivateKey, sign as nodeSign } from 'node:crypto';
import { bitString, implicitConstructed, integer, octetString, oid, sequence, setOf } from '../../pki/der.ts';
import { contentInfo } from '../../pki/cms-signed.ts';
import { keysOfPackage } from '../../pki/asymmetric-key-package.ts';
import { publicKeyInfoOf } from '../../pki/key-pair.ts';
import { readCertificate } from '../../pki/certificate-reader.ts';

const ZONE = 'yuhu.xiangtan.intranet';
const tmp = new TempDir();
let t: TestTierca;
let caFile: string;
let n = 0;

beforeAll(async () => {
  const tls = await tlsTestCredentials(tmp);
  caFile = tls.caFile;
  t = await startTestTierca({ tls: { cert: tls.cert, key: tls.key } });
}, 90_000);

afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

/** An API call over HTTPS as `role`. */
function api(role: 'officer' | 'officer2', method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(`${t.url}${path}`, {
      method, ca: readFileSync(caFile), headers: { authorization: `Bearer ${t.tokens[role]}`, ...(payload ? { 'content-type': 'application/json' } : {}) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, body: text && (res.headers['content-type'] ?? '').includes('json') ? JSON.parse(text) : text });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

interface CurlAnswer { status: number; headers: string; body: string }

/** curl against the HTTPS listener; `-D` keeps the response headers apart from the body. */
function curl(path: string, args: string[] = []): Promise<CurlAnswer> {
  const id = ++n;
  const headers = tmp.file(`h${id}.txt`);
  const out = tmp.file(`b${id}.txt`);
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '--cacert', caFile, '-D', headers, '-o', out, '-w', '%{http_code}', ...args, `${t.url}${path}`], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`curl failed: ${stderr}`));
      resolve({ status: Number(stdout), headers: readFileSync(headers, 'utf8'), body: readFileSync(out, 'utf8') });
    });
  });
}

/** Every table's row count but the audit log's: a refusal is audited, and changes nothing else. */
async function rowsBesidesAudit(): Promise<Record<string, number>> {
  const { audit_log: _audit, ...rest } = await snapshotCounts(t.store);
  return rest;
}

/** A re-enrolment CSR as RFC 7030 §4.2.2 wants it: the certificate's own subject, signed by a new key in `<file>.key`. */
async function reenrolCsr(certFile: string, file: string): Promise<string> {
  expect((await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', tmp.file(`${file}.key`)])).code).toBe(0);
  // -x509toreq writes the request's text before its PEM; `req` keeps the request alone, in DER.
  const res = await openssl(['x509', '-x509toreq', '-in', certFile, '-signkey', tmp.file(`${file}.key`), '-out', tmp.file(`${file}.txt`)]);
  expect(res.code, res.stderr).toBe(0);
  expect((await openssl(['req', '-in', tmp.file(`${file}.txt`), '-outform', 'DER', '-out', tmp.file(`${file}.der`)])).code).toBe(0);
  writeFileSync(tmp.file(`${file}.b64`), tmp.read(`${file}.der`).toString('base64'));
  return tmp.file(`${file}.b64`);
}

async function device(tier: string, name: string): Promise<string> {
  const res = await api('officer', 'POST', '/api/v1/subjects', { kind: 'device', domain: 'yuhu', organ: 'government', tier, name, dns: [`${name}.${ZONE}`] });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function code(subject: string, expires?: string): Promise<string> {
  const res = await api('officer', 'POST', '/api/v1/est/codes', { subject, ...(expires ? { expires } : {}) });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.code;
}

/** A base64 DER CSR (RFC 7030's body) for `name`, with its key in `<file>.key`. */
async function csr(file: string, name: string, keyArgs = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']): Promise<string> {
  const res = await openssl(['req', '-new', ...keyArgs, '-nodes', '-keyout', tmp.file(`${file}.key`), '-subj', `/CN=${name}.${ZONE}`,
    '-addext', `subjectAltName=DNS:${name}.${ZONE}`, '-outform', 'DER', '-out', tmp.file(`${file}.der`)]);
  expect(res.code, res.stderr).toBe(0);
  writeFileSync(tmp.file(`${file}.b64`), tmp.read(`${file}.der`).toString('base64'));
  return tmp.file(`${file}.b64`);
}

const enrol = (label: string, subject: string, secret: string, csrFile: string) =>
  curl(`/.well-known/est/${label}/simpleenroll`, ['--user', `${subject}:${secret}`, '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${csrFile}`]);

/** The certificates of a base64 certs-only PKCS#7, through `openssl pkcs7 -print_certs`. */
async function printCerts(body: string, file: string): Promise<string[]> {
  expect(body).toMatch(/^[A-Za-z0-9+/]+=*$/); // RFC 8951: base64 without line breaks
  writeFileSync(tmp.file(`${file}.p7`), Buffer.from(body, 'base64'));
  const res = await openssl(['pkcs7', '-inform', 'DER', '-in', tmp.file(`${file}.p7`), '-print_certs']);
  expect(res.code, res.stderr).toBe(0);
  return res.stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
}

async function verifyUnderTier(certPem: string, tier: 't2' | 't3', file: string): Promise<void> {
  const chain = await printCerts((await curl(`/.well-known/est/yuhu-${tier}/cacerts`)).body, `${file}-chain`);
  writeFileSync(tmp.file(`${file}.pem`), certPem);
  writeFileSync(tmp.file(`${file}-root.pem`), chain.at(-1)!);
  writeFileSync(tmp.file(`${file}-inter.pem`), chain.slice(0, -1).join(''));
  const res = await openssl(['verify', '-CAfile', tmp.file(`${file}-root.pem`), '-untrusted', tmp.file(`${file}-inter.pem`),
    '-policy', EXAMPLE_TIER_OIDS[tier], '-explicit_policy', '-purpose', 'sslclient', tmp.file(`${file}.pem`)]);
  expect(res.stdout + res.stderr).toContain(`${file}.pem: OK`);
}

describe('EST with curl and openssl', () => {
  it('serves cacerts as certs-only PKCS#7 (the tier CA up to the root) and csrattrs naming the tier\'s key', async () => {
    const res = await curl('/.well-known/est/yuhu-t2/cacerts');
    expect(res.status).toBe(200);
    expect(res.headers).toMatch(/content-type: application\/pkcs7-mime; smime-type=certs-only/i);
    const certs = await printCerts(res.body, 'cacerts');
    expect(certs).toHaveLength(3);
    const subjects = await Promise.all(certs.map(async (pem, i) => (await openssl(['x509', '-noout', '-subject', '-in', tmp.file(`ca${i}.pem`, pem)])).stdout));
    expect(subjects[0]).toContain('CN');
    const attrs = await curl('/.well-known/est/yuhu-t2/csrattrs');
    expect([attrs.status, attrs.headers.match(/content-type: ([^\r\n]+)/i)?.[1]]).toEqual([200, 'application/csrattrs']);
    writeFileSync(tmp.file('attrs.der'), Buffer.from(attrs.body, 'base64'));
    const parsed = await openssl(['asn1parse', '-inform', 'DER', '-in', tmp.file('attrs.der')]);
    expect(parsed.stdout).toContain(':prime256v1');
    expect(parsed.stdout).toContain(':ecdsa-with-SHA256');
    expect(parsed.stdout).toContain(':Extension Request');
    expect((await curl('/.well-known/est/nowhere-t9/cacerts')).status).toBe(404);
  });

  it('enrols a device with its one-time code (tierca est code add): the certificate verifies under the tier policy', async () => {
    const subject = await device('t2', 'router1');
    const made = await runTierca(['est', 'code', 'add', '--subject', subject, '--expires', '2h', '--json'], {
      env: { TIERCA_URL: t.url, TIERCA_TOKEN: t.tokens.officer, TIERCA_CA_FILE: caFile },
    });
    expect(made.code, made.stderr).toBe(0);
    const issued = JSON.parse(made.stdout.toString());
    expect(issued).toMatchObject({ subjectId: subject, label: 'yuhu-t2' });
    const res = await enrol('yuhu-t2', subject, issued.code, await csr('router1', 'router1'));
    expect(res.status, res.body).toBe(200);
    expect(res.headers).toMatch(/content-type: application\/pkcs7-mime; smime-type=certs-only/i);
    const [leaf] = await printCerts(res.body, 'router1-cert');
    await verifyUnderTier(leaf, 't2', 'router1-leaf');
    writeFileSync(tmp.file('router1.pem'), leaf);
    const [py] = await pythonCheck([{ kind: 'cert', path: tmp.file('router1.pem') }]);
    expect(py.policies).toContain(EXAMPLE_TIER_OIDS.t2);
    const codes = await api('officer', 'GET', `/api/v1/est/codes?subject=${subject}`);
    expect(codes.body[0]).toMatchObject({ state: 'used', label: 'yuhu-t2' });
    const listed = await runTierca(['est', 'codes', '--subject', subject], { env: { TIERCA_URL: t.url, TIERCA_TOKEN: t.tokens.officer, TIERCA_CA_FILE: caFile } });
    expect(listed.stdout.toString()).toMatch(/used/);
    const audit = await t.store.audit.list({ action: 'est.enrol' });
    expect(audit.some((r) => r.outcome === 'success' && r.target === `subject:${subject}`)).toBe(true);
  });

  it('refuses a reused, wrong, expired or other subject\'s code (401, WWW-Authenticate) and a CSR outside policy (the code stays good): nothing changes', async () => {
    const subject = await device('t2', 'router2');
    const other = await device('t2', 'router3');
    const secret = await code(subject);
    const csrFile = await csr('router2', 'router2');
    const before = await rowsBesidesAudit();
    const wrong = await enrol('yuhu-t2', subject, 'not-the-code', csrFile);
    expect([wrong.status, JSON.parse(wrong.body).detail]).toEqual([401, 'the enrolment code is not accepted: no such code for this subject']);
    expect(wrong.headers).toMatch(/www-authenticate: Basic realm="tierca EST/i);
    const foreign = await enrol('yuhu-t2', other, secret, csrFile);
    expect(foreign.status).toBe(401);
    const label = await enrol('yuhu-t1', subject, secret, csrFile);
    expect([label.status, JSON.parse(label.body).detail]).toEqual([401, 'the enrolment code is not accepted: the code is for yuhu-t2, not yuhu-t1']);
    // t2 takes RSA-3072 and up: a 2048-bit key is outside its policy, and the code is not spent on it.
    const weak = await enrol('yuhu-t2', subject, secret, await csr('router2-rsa', 'router2', ['-newkey', 'rsa:2048']));
    expect(weak.status).toBe(422);
    expect(JSON.parse(weak.body).detail).toContain('RSA-2048');
    const garbage = await curl('/.well-known/est/yuhu-t2/simpleenroll', ['--user', `${subject}:${secret}`, '-H', 'Content-Type: application/pkcs10', '--data-binary', 'not base64!']);
    expect(garbage.status).toBe(400);
    expect(await rowsBesidesAudit()).toEqual(before);

    expect((await enrol('yuhu-t2', subject, secret, csrFile)).status).toBe(200);
    const again = await enrol('yuhu-t2', subject, secret, csrFile);
    expect([again.status, JSON.parse(again.body).detail]).toEqual([401, 'the enrolment code is not accepted: the code was used already']);

    // A code past its expiry (set back in the table: the service runs on the system clock).
    const shortLived = await code(other, '1m');
    await knexOf(t.store)('est_codes').where({ subject_id: other }).update({ expires_at: new Date(Date.now() - 1000).toISOString() });
    const expired = await enrol('yuhu-t2', other, shortLived, await csr('router3', 'router3'));
    expect([expired.status, JSON.parse(expired.body).detail]).toEqual([401, 'the enrolment code is not accepted: the code has expired']);
  });

  it('re-enrols over mutual TLS with the issued certificate and a new key; a revoked certificate is refused', async () => {
    const subject = await device('t2', 'gw1');
    expect((await enrol('yuhu-t2', subject, await code(subject), await csr('gw1', 'gw1'))).status).toBe(200);
    const enrolled = (await api('officer', 'GET', `/api/v1/certificates?subject=${subject}`)).body;
    const current = Array.isArray(enrolled) ? enrolled[0] : enrolled.certificates?.[0];
    const pem = (await api('officer', 'GET', `/api/v1/certificates/${current.serial}`)).body.pem as string;
    writeFileSync(tmp.file('gw1.pem'), pem);
    const noCert = await curl('/.well-known/est/yuhu-t2/simplereenroll', ['-H', 'Content-Type: application/pkcs10', '--data-binary', `@${await reenrolCsr(tmp.file('gw1.pem'), 'gw1-next')}`]);
    expect(noCert.status).toBe(401);
    const res = await curl('/.well-known/est/yuhu-t2/simplereenroll', ['--cert', tmp.file('gw1.pem'), '--key', tmp.file('gw1.key'),
      '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${tmp.file('gw1-next.b64')}`]);
    expect(res.status, res.body).toBe(200);
    const [renewed] = await printCerts(res.body, 'gw1-renewed');
    await verifyUnderTier(renewed, 't2', 'gw1-renewed-leaf');
    const key = async (file: string) => (await openssl(['pkey', '-pubout', '-in', file])).stdout;
    const renewedKey = (await openssl(['x509', '-noout', '-pubkey'], { input: renewed })).stdout;
    expect(renewedKey).toBe(await key(tmp.file('gw1-next.key')));
    expect(renewedKey).not.toBe(await key(tmp.file('gw1.key')));

    writeFileSync(tmp.file('gw1-renewed.pem'), renewed);
    const serial = (await openssl(['x509', '-noout', '-serial', '-in', tmp.file('gw1-renewed.pem')])).stdout.trim().split('=')[1].toLowerCase();
    const revoked = await api('officer', 'POST', `/api/v1/certificates/${serial}/revoke`, { reason: 'keyCompromise' });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    const before = await rowsBesidesAudit();
    const refused = await curl('/.well-known/est/yuhu-t2/simplereenroll', ['--cert', tmp.file('gw1-renewed.pem'), '--key', tmp.file('gw1-next.key'),
      '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${await reenrolCsr(tmp.file('gw1-renewed.pem'), 'gw1-third')}`]);
    expect([refused.status, JSON.parse(refused.body).detail]).toEqual([401, 'the client certificate is not accepted: the certificate is revoked']);
    expect(await rowsBesidesAudit()).toEqual(before);
  });

  it('holds a t3 enrolment for a second officer (202, Retry-After), then answers the certificate to the same request', async () => {
    const subject = await device('t3', 'vault1');
    const secret = await code(subject);
    const csrFile = await csr('vault1', 'vault1', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']);
    const first = await enrol('yuhu-t3', subject, secret, csrFile);
    expect(first.status, first.body).toBe(202);
    expect(first.headers).toMatch(/retry-after: 600/i);
    const waiting = await enrol('yuhu-t3', subject, secret, csrFile);
    expect(waiting.status).toBe(202);
    const request = (await api('officer', 'GET', `/api/v1/est/codes?subject=${subject}`)).body[0].requestId;
    expect((await api('officer2', 'POST', `/api/v1/requests/${request}/approve`)).status).toBe(201);
    const done = await enrol('yuhu-t3', subject, secret, csrFile);
    expect(done.status, done.body).toBe(200);
    const [leaf] = await printCerts(done.body, 'vault1-cert');
    await verifyUnderTier(leaf, 't3', 'vault1-leaf');
    expect((await enrol('yuhu-t3', subject, secret, csrFile)).status).toBe(401);
  });

  it('serverkeygen hands a user the KMC-made encryption key over mutual TLS (multipart: pkcs8 + certificate); openssl cms uses it', async () => {
    const user = await api('officer', 'POST', '/api/v1/subjects', { kind: 'user', domain: 'yuhu', organ: 'government', tier: 't2', name: '王五', emails: [`wangwu@${ZONE}`] });
    expect(user.status, JSON.stringify(user.body)).toBe(201);
    const made = await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', tmp.file('wangwu.key'), '-subj', '/CN=x', '-out', tmp.file('wangwu.csr')]);
    expect(made.code, made.stderr).toBe(0);
    const pair = await api('officer', 'POST', '/api/v1/certificates', { subjectId: user.body.id, csr: readFileSync(tmp.file('wangwu.csr'), 'utf8') });
    expect(pair.status, JSON.stringify(pair.body)).toBe(201);
    writeFileSync(tmp.file('wangwu.pem'), pair.body.pem);
    const keygen = (csrFile: string, cert = tmp.file('wangwu.pem'), key = tmp.file('wangwu.key')) => curl('/.well-known/est/yuhu-t2/serverkeygen',
      ['--cert', cert, '--key', key, '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${csrFile}`]);
    const csrFile = await reenrolCsr(tmp.file('wangwu.pem'), 'wangwu-keygen');
    // The pair's encryption certificate is live: a second key is refused until it is revoked (a lost token).
    const before = await rowsBesidesAudit();
    const held = await keygen(csrFile);
    expect(held.status).toBe(409);
    expect(await rowsBesidesAudit()).toEqual(before);
    const enc = pair.body.encryption.certificate;
    expect((await api('officer', 'POST', `/api/v1/certificates/${enc.serial}/revoke`, { reason: 'keyCompromise', issuer: enc.issuerId })).status).toBe(200);
    const res = await keygen(csrFile);
    expect(res.status, res.body).toBe(200);
    const boundary = /content-type: multipart\/mixed; boundary=([^\r\n;]+)/i.exec(res.headers)![1];
    const parts = res.body.split(`--${boundary}`).slice(1, -1).map((p) => p.trim().split(/\r?\n\r?\n/));
    expect(parts.map(([h]) => /content-type: ([^\r\n]+)/i.exec(h)![1])).toEqual(['application/pkcs8', 'application/pkcs7-mime; smime-type=certs-only']);
    writeFileSync(tmp.file('enc2.key.der'), Buffer.from(parts[0][1], 'base64'));
    const [encPem] = await printCerts(parts[1][1].trim(), 'enc2');
    writeFileSync(tmp.file('enc2.pem'), encPem);
    const text = (await openssl(['x509', '-noout', '-text', '-in', tmp.file('enc2.pem')])).stdout;
    expect(text).toMatch(/Key Agreement/);
    expect(text).toContain(`email:wangwu@${ZONE}`);
    const keyPem = (await openssl(['pkey', '-inform', 'DER', '-in', tmp.file('enc2.key.der')])).stdout;
    writeFileSync(tmp.file('enc2.key'), keyPem);
    writeFileSync(tmp.file('doc.txt'), '湘潭市 document for 王五\n');
    expect((await openssl(['cms', '-encrypt', '-binary', '-aes256', '-recip', tmp.file('enc2.pem'), '-in', tmp.file('doc.txt'), '-outform', 'DER', '-out', tmp.file('doc.cms')])).code).toBe(0);
    const opened = await openssl(['cms', '-decrypt', '-inform', 'DER', '-in', tmp.file('doc.cms'), '-recip', tmp.file('enc2.pem'), '-inkey', tmp.file('enc2.key')]);
    expect(opened.stdout).toBe('湘潭市 document for 王五\n');
    // Both keys are escrowed: the revoked pair's and the new one.
    const history = await api('officer', 'GET', `/api/v1/subjects/${user.body.id}/keys`);
    expect(history.body.map((k: any) => k.serial)).toContain(enc.serial);
    expect(history.body).toHaveLength(2);
    const device = await curl('/.well-known/est/yuhu-t2/serverkeygen', ['-H', 'Content-Type: application/pkcs10', '--data-binary', `@${csrFile}`]);
    expect(device.status).toBe(401);
  });

  /**
   * A serverkeygen CSR (base64 DER) for the holder of `certFile`, signed by `keyFile`, carrying the
   * RFC 7030 §4.4.1.2 AsymmetricDecryptKeyIdentifier (or §4.4.1.1 DecryptKeyIdentifier) `keyId`.
   * openssl's `req` cannot write an OCTET STRING attribute, so the request is laid out here and
   * `openssl req -verify -text` checks it before it is sent.
   */
  async function csrAskingEncryption(certFile: string, keyFile: string, file: string, keyId: Buffer, attribute = '1.2.840.113549.1.9.16.2.54'): Promise<string> {
    expect((await openssl(['x509', '-in', certFile, '-outform', 'DER', '-out', tmp.file(`${file}-holder.der`)])).code).toBe(0);
    const key = createPrivateKey(readFileSync(keyFile));
    const rsa = key.asymmetricKeyType === 'rsa';
    const info = sequence(integer(0), readCertificate(tmp.read(`${file}-holder.der`)).subject, publicKeyInfoOf(key), implicitConstructed(0, [sequence(oid(attribute), setOf(octetString(keyId)))]));
    const signature = nodeSign('sha256', info, rsa ? key : { key, dsaEncoding: 'der' });
    const algorithm = rsa ? sequence(oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00])) : sequence(oid('1.2.840.10045.4.3.2'));
    tmp.file(`${file}.der`, sequence(info, algorithm, bitString(signature)));
    const checked = await openssl(['req', '-inform', 'DER', '-in', tmp.file(`${file}.der`), '-verify', '-noout', '-text']);
    expect(checked.stderr + checked.stdout).toMatch(/verify OK/i);
    expect(checked.stdout).toContain(attribute);
    writeFileSync(tmp.file(`${file}.b64`), tmp.read(`${file}.der`).toString('base64'));
    return tmp.file(`${file}.b64`);
  }

  /** The subjectKeyIdentifier of a certificate, as openssl prints it. */
  async function skiOf(certFile: string): Promise<Buffer> {
    const text = (await openssl(['x509', '-noout', '-ext', 'subjectKeyIdentifier', '-in', certFile])).stdout;
    return Buffer.from(/([0-9A-F]{2}(?::[0-9A-F]{2})+)/.exec(text)![1].replace(/:/g, ''), 'hex');
  }

  /** A t2 user with a signing certificate for a key made by `keyArgs`, whose paired encryption certificate is revoked (so serverkeygen may make a new one). */
  async function holder(name: string, cn: string, keyArgs: string[]): Promise<{ subject: string; cert: string; key: string }> {
    const user = await api('officer', 'POST', '/api/v1/subjects', { kind: 'user', domain: 'yuhu', organ: 'government', tier: 't2', name: cn, emails: [`${name}@${ZONE}`] });
    expect(user.status, JSON.stringify(user.body)).toBe(201);
    const made = await openssl(['req', '-new', ...keyArgs, '-nodes', '-keyout', tmp.file(`${name}.key`), '-subj', '/CN=x', '-out', tmp.file(`${name}.csr`)]);
    expect(made.code, made.stderr).toBe(0);
    const pair = await api('officer', 'POST', '/api/v1/certificates', { subjectId: user.body.id, csr: readFileSync(tmp.file(`${name}.csr`), 'utf8') });
    expect(pair.status, JSON.stringify(pair.body)).toBe(201);
    writeFileSync(tmp.file(`${name}.pem`), pair.body.pem);
    const enc = pair.body.encryption.certificate;
    expect((await api('officer', 'POST', `/api/v1/certificates/${enc.serial}/revoke`, { reason: 'keyCompromise', issuer: enc.issuerId })).status).toBe(200);
    return { subject: user.body.id, cert: tmp.file(`${name}.pem`), key: tmp.file(`${name}.key`) };
  }

  const keygenAs = (h: { cert: string; key: string }, csrFile: string) => curl('/.well-known/est/yuhu-t2/serverkeygen',
    ['--cert', h.cert, '--key', h.key, '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${csrFile}`]);

  /** The parts of a multipart/mixed answer: [content-type, body] each. */
  function partsOf(res: CurlAnswer): [string, string][] {
    const boundary = /content-type: multipart\/mixed; boundary=([^\r\n;]+)/i.exec(res.headers)![1];
    return res.body.split(`--${boundary}`).slice(1, -1).map((p) => p.trim().split(/\r?\n\r?\n/)).map(([h, b]) => [/content-type: ([^\r\n]+)/i.exec(h)![1], b.trim()]);
  }

  for (const [kind, keyArgs, recipientInfo] of [
    ['P-256', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'dhSinglePass-stdDH-sha256kdf-scheme'],
    ['RSA-3072', ['-newkey', 'rsa:3072'], 'rsaesOaep'],
  ] as const) {
    it(`serverkeygen encrypts the key to a ${kind} holder that asks with AsymmetricDecryptKeyIdentifier: openssl cms decrypts, verifies the CA's signature, and the key is the certificate's`, async () => {
      const name = `enc-${kind.toLowerCase()}`;
      const h = await holder(name, `加密${kind}`, [...keyArgs]);
      const res = await keygenAs(h, await csrAskingEncryption(h.cert, h.key, `${name}-req`, await skiOf(h.cert)));
      expect(res.status, res.body).toBe(200);
      const parts = partsOf(res);
      expect(parts.map(([type]) => type)).toEqual(['application/pkcs7-mime; smime-type=server-generated-key', 'application/pkcs7-mime; smime-type=certs-only']);
      expect(parts[0][1]).toMatch(/^[A-Za-z0-9+/]+=*$/);
      writeFileSync(tmp.file(`${name}.env`), Buffer.from(parts[0][1], 'base64'));
      const printed = await openssl(['cms', '-cmsout', '-print', '-inform', 'DER', '-in', tmp.file(`${name}.env`)]);
      expect(printed.stdout).toContain(recipientInfo);
      expect(printed.stdout).toContain('aes-256-cbc');
      const opened = await openssl(['cms', '-decrypt', '-inform', 'DER', '-in', tmp.file(`${name}.env`), '-recip', h.cert, '-inkey', h.key, '-binary', '-out', tmp.file(`${name}.sd`)]);
      expect(opened.code, opened.stderr).toBe(0);
      // The SignedData is the tier CA's: it verifies under the root that /cacerts gives (-purpose any:
      // a CA certificate's keyUsage has no digitalSignature; docs/decisions/0029-est-encrypted-key.md).
      const chain = await printCerts((await curl('/.well-known/est/yuhu-t2/cacerts')).body, `${name}-chain`);
      writeFileSync(tmp.file(`${name}-root.pem`), chain.at(-1)!);
      writeFileSync(tmp.file(`${name}.p7`), contentInfo('1.2.840.113549.1.7.2', tmp.read(`${name}.sd`)));
      const verified = await openssl(['cms', '-verify', '-inform', 'DER', '-in', tmp.file(`${name}.p7`), '-CAfile', tmp.file(`${name}-root.pem`), '-purpose', 'any',
        '-binary', '-out', tmp.file(`${name}.akp`), '-signer', tmp.file(`${name}-signer.pem`)]);
      expect(verified.stderr).toContain('Verification successful');
      const signerSubject = (await openssl(['x509', '-noout', '-subject', '-in', tmp.file(`${name}-signer.pem`)])).stdout;
      expect(signerSubject).toBe((await openssl(['x509', '-noout', '-subject'], { input: chain[0] })).stdout);
      writeFileSync(tmp.file(`${name}-key.der`), keysOfPackage(tmp.read(`${name}.akp`))[0]);
      const [encPem] = await printCerts(parts[1][1], `${name}-enc`);
      const certKey = (await openssl(['x509', '-noout', '-pubkey'], { input: encPem })).stdout;
      expect((await openssl(['pkey', '-inform', 'DER', '-in', tmp.file(`${name}-key.der`), '-pubout'])).stdout).toBe(certKey);
      expect(certKey).toContain('BEGIN PUBLIC KEY');
      const audit = await t.store.audit.list({ action: 'est.serverkeygen' });
      expect(audit.find((r) => r.outcome === 'success' && r.target === `subject:${h.subject}`)?.detail).toMatchObject({ protection: { cms: 'enveloped-signed' } });
    });
  }

  it('refuses encryption to a key that is not the requester\'s, and symmetric encryption, before any key is made: 400, nothing changes', async () => {
    const h = await holder('enc-wrong', '钱七', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    const other = await holder('enc-other', '孙八', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    const foreignKeyId = await skiOf(other.cert);
    const before = await rowsBesidesAudit();
    const foreign = await keygenAs(h, await csrAskingEncryption(h.cert, h.key, 'enc-wrong-req', foreignKeyId));
    expect([foreign.status, JSON.parse(foreign.body).detail]).toEqual([400,
      `the AsymmetricDecryptKeyIdentifier ${foreignKeyId.toString('hex')} names no key of the requester: tierca encrypts the key only to the TLS client certificate's key (subjectKeyIdentifier ${(await skiOf(h.cert)).toString('hex')})`]);
    const symmetric = await keygenAs(h, await csrAskingEncryption(h.cert, h.key, 'enc-sym-req', Buffer.from('shared-key-1'), '1.2.840.113549.1.9.16.2.37'));
    expect(symmetric.status).toBe(400);
    expect(JSON.parse(symmetric.body).detail).toMatch(/^the CSR asks for symmetric encryption of the key \(DecryptKeyIdentifier, RFC 7030 §4\.4\.1\.1\)/);
    expect(await rowsBesidesAudit()).toEqual(before);
    const denied = await t.store.audit.list({ action: 'est.serverkeygen' });
    expect(denied.filter((r) => r.outcome === 'denied' && r.target === `subject:${h.subject}`)).toHaveLength(2);
    // The same holder, asking for its own key, is served.
    const own = await keygenAs(h, await csrAskingEncryption(h.cert, h.key, 'enc-own-req', await skiOf(h.cert)));
    expect(own.status, own.body).toBe(200);
  });

  it('is not served on the plain-HTTP public port', async () => {
    const res = await fetch(`${t.service.httpUrl}/.well-known/est/yuhu-t2/cacerts`);
    expect(res.status).toBe(404);
  });
});
