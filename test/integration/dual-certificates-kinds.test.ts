// Dual certificates for devices and organs (decision 0027): at a tier configured for a kind
// (`tiers.t2.encryptionCertificate: { user, device, organ }`), a device's or an organ's issuance from
// its signing CSR also gives an encryption certificate whose key the KMC made and escrows — device-enc
// (key establishment only, EKU serverAuth + clientAuth, never RSA) and organ-enc (EKU emailProtection),
// read by `openssl x509 -text` and Python's `cryptography`; `openssl cms` encrypts to it and decrypts
// with the delivered key and with the key two officers recover. A tier not configured for the kind
// issues one certificate, and an explicit encryption issuance there is refused with nothing changed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { knexOf } from '../../server/storage/knex-store.ts';
import { decodePemOrDerOf } from '../../pki/pem.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { opensslCsr } from '../helpers/pki-fixtures.ts';
import { call, startTestTierca, type TestTierca } from '../helpers/tierca.ts';
import { smallConfig } from '../helpers/rotation.ts';
import { snapshotCounts } from '../helpers/database.ts';
import { runTierca } from '../helpers/processes.ts';
import { DISTID } from '../helpers/sm2-fixtures.ts';

const tmp = new TempDir();
let t: TestTierca;
let n = 0;
const SUFFIX = 'yuhu.xiangtan.intranet';
/** The names each subject was registered with. */
const registered = new Map<string, { dns?: string[]; ips?: string[]; emails?: string[] }>();

beforeAll(async () => {
  const data = smallConfig();
  data.tiers.t2.encryptionCertificate = { user: 'required', device: 'required', organ: 'required' };
  t = await startTestTierca({ configData: data });
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

async function subject(kind: 'device' | 'organ', tier: string): Promise<string> {
  n++;
  const names = kind === 'device' ? { dns: [`gw${n}.${SUFFIX}`], ips: [`10.21.3.${n}`] } : { emails: [`office${n}@${SUFFIX}`] };
  const res = await call(t, 'officer', 'POST', '/api/v1/subjects', { kind, domain: 'yuhu', organ: 'government', tier, name: `${kind}${n}`, ...names });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  registered.set(res.body.id, names);
  return res.body.id;
}

async function issue(kind: 'device' | 'organ', tier: string, alg: 'P-256' | 'RSA-3072', extra: Record<string, unknown> = {}) {
  const subjectId = await subject(kind, tier);
  const res = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, csr: (await opensslCsr(tmp, `k${++n}`, alg)).csrPem, ...extra });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { subjectId, body: res.body };
}

/** The private key (PEM) inside a delivered or recovered PKCS#12. */
async function keyOf(p12Base64: string, passphrase: string): Promise<string> {
  const out = await openssl(['pkcs12', '-in', tmp.file(`p${++n}.p12`, Buffer.from(p12Base64, 'base64')), '-nodes', '-nocerts', '-passin', `pass:${passphrase}`]);
  expect(out.code, out.stderr).toBe(0);
  return tmp.file(`p${n}.key`, out.stdout.slice(out.stdout.indexOf('-----BEGIN PRIVATE KEY-----')));
}

/** `openssl cms -encrypt` to `certPem`, then `-decrypt` with `keyFile`: the text that came out. */
async function cmsRoundTrip(certPem: string, keyFile: string): Promise<string> {
  const cert = tmp.file(`c${++n}.pem`, certPem);
  const message = tmp.file(`m${n}.txt`, `雨湖区 configuration ${n}\n`);
  const sent = await openssl(['cms', '-encrypt', '-binary', '-aes256', '-recip', cert, '-in', message, '-outform', 'DER', '-out', tmp.file(`m${n}.cms`)]);
  expect(sent.code, sent.stderr).toBe(0);
  const opened = await openssl(['cms', '-decrypt', '-inform', 'DER', '-in', tmp.file(`m${n}.cms`), '-recip', cert, '-inkey', keyFile]);
  expect(opened.stdout).toBe(`雨湖区 configuration ${n}\n`);
  return opened.stdout;
}

/** What Python `cryptography` reads of a certificate's key usage, EKU and names. */
function pythonUsages(pem: string): { ku: string[]; kuCritical: boolean; eku: string[]; dns: string[]; ips: string[]; emails: string[] } {
  const script = [
    'import sys, json',
    'from cryptography import x509',
    'c = x509.load_der_x509_certificate(sys.stdin.buffer.read())',
    'ku = c.extensions.get_extension_for_class(x509.KeyUsage)',
    'names = ["digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign"]',
    'eku = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value',
    'san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value',
    'print(json.dumps({"ku": [k for k in names if getattr(ku.value, k)], "kuCritical": ku.critical, "eku": [o.dotted_string for o in eku],',
    '  "dns": san.get_values_for_type(x509.DNSName), "ips": [str(i) for i in san.get_values_for_type(x509.IPAddress)], "emails": san.get_values_for_type(x509.RFC822Name)}))',
  ].join('\n');
  return JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { input: decodePemOrDerOf(pem, ['CERTIFICATE']), encoding: 'utf8' }));
}

const text = async (pem: string) => (await openssl(['x509', '-in', tmp.file(`x${++n}.pem`, pem), '-noout', '-text'])).stdout;
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const EMAIL_PROTECTION = '1.3.6.1.5.5.7.3.4';

describe('dual certificates for devices and organs', () => {
  const made: { device?: { subjectId: string; body: any; key: string } } = {};

  it('gives a device at t2 a device-enc certificate: keyAgreement only, serverAuth + clientAuth, its names; openssl cms uses the delivered key', async () => {
    const { subjectId, body } = await issue('device', 't2', 'P-256');
    const enc = body.encryption;
    expect(body.certificate.profile).toBe('device');
    expect(enc.certificate).toMatchObject({ profile: 'device-enc', subjectId, subject: body.certificate.subject, keyAlgorithm: 'P-256', notBefore: body.certificate.notBefore, notAfter: body.certificate.notAfter });
    const shown = await text(enc.pem);
    expect(shown).toMatch(/X509v3 Key Usage: critical\s+Key Agreement\n/);
    expect(shown).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication\n/);
    expect(shown).not.toContain('Digital Signature');
    expect(shown).not.toContain('IPSec');
    const { dns, ips } = registered.get(subjectId)!;
    expect(pythonUsages(enc.pem)).toEqual({ ku: ['key_agreement'], kuCritical: true, eku: [SERVER_AUTH, CLIENT_AUTH], dns, ips, emails: [] });
    const key = await keyOf(enc.pkcs12, enc.passphrase);
    await cmsRoundTrip(enc.pem, key);
    const row = await knexOf(t.store)('kmc_keys').where({ serial: enc.certificate.serial }).first();
    expect(row).toMatchObject({ subject_id: subjectId, issuer_id: enc.certificate.issuerId, algorithm: 'P-256' });
    made.device = { subjectId, body, key };
  });

  it('gives an organ at t2 an organ-enc certificate: keyEncipherment for RSA, emailProtection, its mailbox', async () => {
    const { subjectId, body } = await issue('organ', 't2', 'RSA-3072');
    const enc = body.encryption;
    expect(enc.certificate).toMatchObject({ profile: 'organ-enc', subjectId, keyAlgorithm: 'RSA-3072' });
    const shown = await text(enc.pem);
    expect(shown).toMatch(/X509v3 Key Usage: critical\s+Key Encipherment\n/);
    expect(shown).toMatch(/X509v3 Extended Key Usage:\s+E-mail Protection\n/);
    expect(pythonUsages(enc.pem)).toEqual({ ku: ['key_encipherment'], kuCritical: true, eku: [EMAIL_PROTECTION], dns: [], ips: [], emails: registered.get(subjectId)!.emails });
    await cmsRoundTrip(enc.pem, await keyOf(enc.pkcs12, enc.passphrase));
  });

  it('never makes a device an RSA encryption key: an RSA-signing device gets a P-256 one, and asking for RSA is refused with nothing changed', async () => {
    const { subjectId, body } = await issue('device', 't2', 'RSA-3072');
    expect(body.certificate.keyAlgorithm).toBe('RSA-3072');
    expect(body.encryption.certificate).toMatchObject({ profile: 'device-enc', keyAlgorithm: 'P-256' });
    await call(t, 'officer', 'POST', `/api/v1/certificates/${body.encryption.certificate.serial}/revoke`, { reason: 'keyCompromise', issuer: body.encryption.certificate.issuerId });
    const before = await snapshotCounts(t.store);
    const rsa = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, profile: 'device-enc', generate: { algorithm: 'RSA-3072' } });
    expect([rsa.status, rsa.body.type, rsa.body.detail]).toEqual([422, 'urn:tierca:problem:policy-key-algorithm', 'key RSA-3072 (for device-enc) is not allowed at tier t2; allowed: P-256, P-384, SM2']);
    const after = await snapshotCounts(t.store);
    expect({ ...after, audit_log: 0 }).toEqual({ ...before, audit_log: 0 });
  });

  it('recovers a device encryption key under dual control; the recovered key opens what was sent to it', async () => {
    const enc = made.device!.body.encryption;
    const asked = await call(t, 'officer', 'POST', `/api/v1/escrow/${enc.certificate.issuerId}/${enc.certificate.serial}/recover`, { reason: 'gateway replaced; archived configuration' });
    expect(asked.status, JSON.stringify(asked.body)).toBe(202);
    const approved = await call(t, 'officer2', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    await cmsRoundTrip(enc.pem, await keyOf(approved.body.pkcs12, approved.body.passphrase));
    const history = await call(t, 'officer', 'GET', `/api/v1/subjects/${made.device!.subjectId}/keys`);
    expect(history.body).toEqual([expect.objectContaining({ serial: enc.certificate.serial, algorithm: 'P-256' })]);
    const signing = await call(t, 'officer', 'POST', `/api/v1/escrow/${enc.certificate.issuerId}/${made.device!.body.certificate.serial}/recover`, { reason: 'x' });
    expect(signing.status).toBe(404);
  });

  it('tierca cert issue writes a device\'s SM2 pair with --enc-out, --enc-key-out and --enveloped-out', async () => {
    const key = tmp.file(`sm2-${++n}.key`);
    await openssl(['genpkey', '-algorithm', 'SM2', '-out', key]);
    const csr = tmp.file(`sm2-${n}.csr`);
    expect((await openssl(['req', '-new', '-key', key, '-subj', '/CN=x', '-out', csr, '-sm3', '-sigopt', DISTID])).code).toBe(0);
    const [enc, p12, env] = [tmp.file('dev-enc.pem'), `${tmp.path}/dev-enc.p12`, `${tmp.path}/dev-enc.env`];
    const run = await runTierca(['cert', 'issue', '--subject', await subject('device', 't2'), '--csr', csr, '--out', tmp.file('dev-sign.pem'),
      '--enc-out', enc, '--enc-key-out', p12, '--enveloped-out', env], { env: { TIERCA_URL: t.url, TIERCA_TOKEN: t.tokens.officer } });
    expect(run.code, run.stderr).toBe(0);
    const printed = run.stdout.toString();
    expect(printed).toMatch(/with its encryption certificate [0-9a-f]+ \(device-enc\)/);
    const passphrase = /its passphrase, shown only this once: (\S+)/.exec(printed)![1];
    expect((await openssl(['pkcs12', '-in', p12, '-nodes', '-passin', `pass:${passphrase}`, '-noout'])).code).toBe(0);
    expect(statSync(p12).mode & 0o777).toBe(0o600);
    expect(statSync(env).size).toBeGreaterThan(100);
    const shown = await text(readFileSync(enc, 'utf8'));
    expect(shown).toMatch(/X509v3 Key Usage: critical\s+Key Encipherment, Data Encipherment, Key Agreement\n/);
    expect(shown).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/);
  });

  it('issues one certificate where the tier is not configured for the kind (devices at t1, organs at t3), and refuses an explicit one there with nothing changed', async () => {
    const device = await issue('device', 't1', 'P-256');
    expect(device.body.encryption).toBeUndefined();
    const asked = await issue('device', 't1', 'P-256', { encryption: true });
    expect(asked.body.encryption).toBeUndefined();
    let organ = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: await subject('organ', 't3'), csr: (await opensslCsr(tmp, `k${++n}`, 'P-384')).csrPem });
    if (organ.status === 202) organ = await call(t, 'officer2', 'POST', `/api/v1/requests/${organ.body.request.id}/approve`);
    expect(organ.status, JSON.stringify(organ.body)).toBe(201);
    expect([organ.body.certificate.profile, organ.body.encryption]).toEqual(['organ', undefined]);
    const keys = await knexOf(t.store)('kmc_keys').whereIn('subject_id', [device.subjectId, asked.subjectId, organ.body.certificate.subjectId]);
    expect(keys).toEqual([]);
    const before = await snapshotCounts(t.store);
    const explicit = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: device.subjectId, profile: 'device-enc', generate: {} });
    expect([explicit.status, explicit.body.detail]).toEqual([422, 'tier t1 issues no encryption certificates to a device']);
    const wrongKind = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: device.subjectId, profile: 'organ-enc', generate: {} });
    expect([wrongKind.status, wrongKind.body.detail]).toEqual([422, 'a device may hold device or device-enc certificates, not organ-enc']);
    const after = await snapshotCounts(t.store);
    expect({ ...after, audit_log: 0 }).toEqual({ ...before, audit_log: 0 });
  });

  it('revoking the holder revokes both; revoking only the encryption half lets a new one be issued, and the old stays recoverable', async () => {
    const { subjectId, body } = await issue('organ', 't2', 'P-256');
    const enc = body.encryption.certificate;
    expect((await call(t, 'officer', 'POST', `/api/v1/certificates/${enc.serial}/revoke`, { reason: 'keyCompromise', issuer: enc.issuerId })).status).toBe(200);
    const next = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, profile: 'organ-enc', generate: { algorithm: 'P-256' } });
    expect(next.status, JSON.stringify(next.body)).toBe(201);
    expect(next.body.certificate.profile).toBe('organ-enc');
    const history = await call(t, 'officer', 'GET', `/api/v1/subjects/${subjectId}/keys`);
    expect(history.body.map((k: any) => k.serial)).toEqual([enc.serial, next.body.certificate.serial]);
    expect((await call(t, 'officer', 'POST', `/api/v1/escrow/${enc.issuerId}/${enc.serial}/recover`, { reason: 'old mail' })).status).toBe(202);
    expect((await call(t, 'officer', 'POST', `/api/v1/subjects/${subjectId}/revoke`, { reason: 'affiliationChanged' })).status).toBe(200);
    for (const c of [body.certificate, next.body.certificate]) {
      const status = await call(t, null, 'GET', `/status/${c.issuerId}/${c.serial}`);
      expect(status.body.status, c.profile).toBe('revoked');
    }
  });
});
