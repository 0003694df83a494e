// Dual certificates (GM/T 0034, issue 16): a user's signing certificate at a tier that requires it
// comes with an encryption certificate whose key the key-management centre made and escrowed — same
// subject and validity, the usages of its key, delivered once as a PKCS#12 that `openssl cms -decrypt`
// uses on what `openssl cms -encrypt` sent to the certificate, and for SM2 also as an SM2EnvelopedKey
// that sm-crypto opens with the holder's signing key.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrivateKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import smCrypto from 'sm-crypto';
import { knexOf } from '../../server/storage/knex-store.ts';
import { readCertificate } from '../../pki/certificate-reader.ts';
import { decodePemOrDerOf } from '../../pki/pem.ts';
import { sm2PrivateScalarOf } from '../../pki/sm2-key.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { call, startTestTierca, type TestTierca } from '../helpers/tierca.ts';
import { caPem, smallConfig } from '../helpers/rotation.ts';
import { DISTID } from '../helpers/sm2-fixtures.ts';
import { runTierca } from '../helpers/processes.ts';
import { sm2PointHex } from '../helpers/sm2-independent.ts';

const tmp = new TempDir();
let t: TestTierca;
let n = 0;
/** The first pair issued: its signing serial, its encryption half and the delivered key's file. */
const first: { signing?: string; enc?: any; keyFile?: string } = {};

beforeAll(async () => {
  // t3 as smallConfig has it, but the users' encryption certificate optional (dual control and a choice).
  t = await startTestTierca({ configData: smallConfig({
    t1: { keyAlgorithms: ['P-256', 'SM2'] },
    t3: { maxValidityDays: { user: 9, device: 9, organ: 12 }, supersedeGraceDays: 1, responderValidityDays: 1, encryptionCertificate: 'optional' },
  }) });
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

async function user(tier: string): Promise<string> {
  n++;
  const res = await call(t, 'officer', 'POST', '/api/v1/subjects', { kind: 'user', domain: 'yuhu', organ: 'government', tier, name: `李${n}`, emails: [`li${n}@yuhu.xiangtan.intranet`] });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function csr(alg: 'P-256' | 'SM2'): Promise<{ csr: string; key: string }> {
  const key = tmp.file(`k${++n}.pem`);
  await openssl(alg === 'SM2' ? ['genpkey', '-algorithm', 'SM2', '-out', key] : ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
  const out = tmp.file(`r${n}.csr`);
  const made = await openssl(['req', '-new', '-key', key, '-subj', '/CN=x', '-out', out, ...(alg === 'SM2' ? ['-sm3', '-sigopt', DISTID] : [])]);
  expect(made.code, made.stderr).toBe(0);
  return { csr: readFileSync(out, 'utf8'), key };
}

const text = async (pem: string) => (await openssl(['x509', '-in', tmp.file(`t${++n}.pem`, pem), '-noout', '-text', '-dates', '-subject', '-nameopt', 'utf8'])).stdout;

describe('dual certificates', () => {
  it('issues the encryption half with the signing certificate where the tier requires it (t2), and openssl uses its key', async () => {
    const { csr: pem } = await csr('P-256');
    const res = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: await user('t2'), csr: pem });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const enc = res.body.encryption;
    expect(res.body.certificate.profile).toBe('user-sign');
    expect(enc.certificate).toMatchObject({ profile: 'user-enc', subject: res.body.certificate.subject, notBefore: res.body.certificate.notBefore, notAfter: res.body.certificate.notAfter, keyAlgorithm: 'P-256' });
    const encText = await text(enc.pem);
    expect(encText).toMatch(/X509v3 Key Usage: critical\s+Key Agreement\n/);
    expect(encText).toMatch(/X509v3 Extended Key Usage:\s+E-mail Protection/);
    const chain = await openssl(['verify', '-CAfile', tmp.file('root.pem', await caPem(t, 'root')), '-untrusted', tmp.file('chain.pem', enc.chain.slice(0, -1).join('')), tmp.file('enc.pem', enc.pem)]);
    expect(chain.stdout).toMatch(/: OK/);
    // The delivered key opens what was encrypted to the encryption certificate.
    const p12 = tmp.file('enc.p12', Buffer.from(enc.pkcs12, 'base64'));
    const keyOut = await openssl(['pkcs12', '-in', p12, '-nodes', '-nocerts', '-passin', `pass:${enc.passphrase}`]);
    expect(keyOut.code, keyOut.stderr).toBe(0);
    const key = tmp.file('enc.key', keyOut.stdout.slice(keyOut.stdout.indexOf('-----BEGIN PRIVATE KEY-----')));
    const msg = tmp.file('doc.txt', '湘潭市 official document\n');
    expect((await openssl(['cms', '-encrypt', '-binary', '-aes256', '-recip', tmp.file('enc.pem'), '-in', msg, '-outform', 'DER', '-out', tmp.file('doc.cms')])).code).toBe(0);
    const opened = await openssl(['cms', '-decrypt', '-inform', 'DER', '-in', tmp.file('doc.cms'), '-recip', tmp.file('enc.pem'), '-inkey', key]);
    expect(opened.stdout).toBe('湘潭市 official document\n');
    // The KMC holds the key, bound to the certificate, wrapped — never the plain PKCS#8.
    const row = await knexOf(t.store)('kmc_keys').where({ serial: enc.certificate.serial }).first();
    expect(row).toMatchObject({ subject_id: res.body.certificate.subjectId, issuer_id: enc.certificate.issuerId, algorithm: 'P-256' });
    const pkcs8 = createPrivateKey(readFileSync(key, 'utf8')).export({ type: 'pkcs8', format: 'der' });
    expect((row.wrapped as Buffer).includes(pkcs8)).toBe(false);
    Object.assign(first, { signing: res.body.certificate.serial, enc: enc, keyFile: key });
  });

  it('recovers the encryption key under dual control of two officers; the signing key cannot be recovered', async () => {
    const { enc } = first;
    const path = `/api/v1/escrow/${enc.certificate.issuerId}/${enc.certificate.serial}/recover`;
    const asked = await call(t, 'officer', 'POST', path, { reason: 'holder left; archived mail must be read' });
    expect(asked.status, JSON.stringify(asked.body)).toBe(202);
    const self = await call(t, 'officer', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
    expect(self.status).toBe(422);
    expect(self.body.type).toBe('urn:tierca:problem:policy-self-approval');
    const approved = await call(t, 'officer2', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    const p12 = tmp.file('recovered.p12', Buffer.from(approved.body.pkcs12, 'base64'));
    const keyOut = await openssl(['pkcs12', '-in', p12, '-nodes', '-nocerts', '-passin', `pass:${approved.body.passphrase}`]);
    const recovered = tmp.file('recovered.key', keyOut.stdout.slice(keyOut.stdout.indexOf('-----BEGIN PRIVATE KEY-----')));
    const opened = await openssl(['cms', '-decrypt', '-inform', 'DER', '-in', tmp.file('doc.cms'), '-recip', tmp.file('enc.pem'), '-inkey', recovered]);
    expect(opened.stdout).toBe('湘潭市 official document\n');
    expect(approved.body.passphrase).not.toBe(enc.passphrase);
    const audit = await knexOf(t.store)('audit_log').where({ action: 'escrow.recover', outcome: 'success' }).orderBy('seq', 'desc').first();
    expect(JSON.parse(audit.detail)).toMatchObject({ reason: 'holder left; archived mail must be read', escrowedKey: expect.stringMatching(/^kmc-/) });
    const signing = await call(t, 'officer', 'POST', `/api/v1/escrow/${enc.certificate.issuerId}/${first.signing}/recover`, { reason: 'x' });
    expect(signing.status).toBe(404);
  });

  it('issues it only on request where the tier makes it optional (t1), and never for a device', async () => {
    const plain = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: await user('t1'), csr: (await csr('P-256')).csr });
    expect(plain.status).toBe(201);
    expect(plain.body.encryption).toBeUndefined();
    const asked = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: await user('t1'), csr: (await csr('P-256')).csr, encryption: true });
    expect(asked.status).toBe(201);
    expect(asked.body.encryption.certificate.profile).toBe('user-enc');
    const device = await call(t, 'officer', 'POST', '/api/v1/subjects', { kind: 'device', domain: 'yuhu', organ: 'government', tier: 't2', name: `gw${++n}`, dns: [`gw${n}.yuhu.xiangtan.intranet`] });
    const issued = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: device.body.id, csr: (await csr('P-256')).csr });
    expect(issued.status).toBe(201);
    expect(issued.body.encryption).toBeUndefined();
  });

  it('keeps the choice in a dual-controlled request: asked for, the approval issues the encryption half too; not asked for, not', async () => {
    const key = async () => (await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', tmp.file(`k${++n}.key`), '-subj', '/CN=x'])).stdout;
    for (const asked of [true, false]) {
      const subjectId = await user('t3');
      const opened = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, csr: await key(), ...(asked ? { encryption: true } : {}) });
      expect(opened.status, JSON.stringify(opened.body)).toBe(202);
      const approved = await call(t, 'officer2', 'POST', `/api/v1/requests/${opened.body.request.id}/approve`);
      expect(approved.status, JSON.stringify(approved.body)).toBe(201);
      expect([asked, approved.body.certificate.profile, approved.body.encryption?.certificate.profile]).toEqual([asked, 'user-sign', asked ? 'user-enc' : undefined]);
      const keys = (await call(t, 'officer', 'GET', `/api/v1/subjects/${subjectId}/keys`)).body;
      expect(keys.length).toBe(asked ? 1 : 0);
    }
  });

  it('delivers an SM2 encryption key also as an SM2EnvelopedKey that sm-crypto opens with the signing key', async () => {
    const { csr: pem, key } = await csr('SM2');
    const res = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: await user('t1'), csr: pem, encryption: true });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const enc = res.body.encryption;
    expect(enc.certificate.keyAlgorithm).toBe('SM2');
    const envelope = Buffer.from(enc.envelopedKey, 'base64');
    const parsed = await openssl(['asn1parse', '-inform', 'DER', '-in', tmp.file('env.der', envelope)]);
    expect(parsed.stdout).toMatch(/:sm4-ecb/);
    const lines = parsed.stdout.split('\n');
    const [x, y] = lines.filter((l) => l.includes('d=2') && l.includes('prim: INTEGER')).map((l) => l.split(':').at(-1)!.padStart(64, '0'));
    const [hash, body] = lines.filter((l) => l.includes('d=2') && l.includes('prim: OCTET STRING')).map((l) => l.split('[HEX DUMP]:')[1].trim());
    const dSigning = sm2PrivateScalarOf(createPrivateKey(readFileSync(key, 'utf8'))).toString(16).padStart(64, '0');
    const symKey = smCrypto.sm2.doDecrypt(x + y + hash + body, dSigning, 1, { output: 'array' });
    expect(symKey).toHaveLength(16);
    const scalar = Buffer.from(smCrypto.sm4.decrypt(envelope.subarray(envelope.length - 32), Buffer.from(symKey).toString('hex'), { padding: 'none', output: 'array' }));
    const encSpki = readCertificate(decodePemOrDerOf(enc.pem, ['CERTIFICATE'])).publicKeyInfo;
    expect(smCrypto.sm2.getPublicKeyFromPrivateKey(scalar.toString('hex'))).toBe(sm2PointHex(encSpki));
    const encText = await text(enc.pem);
    expect(encText).not.toContain('Basic Constraints');
  });

  it('tierca cert issue writes both certificates and the encryption key files', async () => {
    const { csr: pem } = await csr('SM2');
    const csrFile = tmp.file('cli.csr', pem);
    const [enc, key, env] = [tmp.file('cli-enc.pem'), `${tmp.path}/cli-enc.p12`, `${tmp.path}/cli-enc.env`];
    const run = await runTierca(['cert', 'issue', '--subject', await user('t1'), '--csr', csrFile, '--encryption', '--out', tmp.file('cli-sign.pem'),
      '--enc-out', enc, '--enc-key-out', key, '--enveloped-out', env], { env: { TIERCA_URL: t.url, TIERCA_TOKEN: t.tokens.officer } });
    expect(run.code, run.stderr).toBe(0);
    const printed = run.stdout.toString();
    expect(printed).toMatch(/with its encryption certificate [0-9a-f]+ \(user-enc\)/);
    const passphrase = /its passphrase, shown only this once: (\S+)/.exec(printed)![1];
    expect((await openssl(['pkcs12', '-in', key, '-nodes', '-passin', `pass:${passphrase}`, '-noout'])).code).toBe(0);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(statSync(env).size).toBeGreaterThan(100);
    expect(readFileSync(enc, 'utf8')).toContain('BEGIN CERTIFICATE');
  });

  it('lists a subject\'s key history to officers, and rotates the master key for sysadmins only', async () => {
    const subjectId = first.enc.certificate.subjectId;
    const history = await call(t, 'officer', 'GET', `/api/v1/subjects/${subjectId}/keys`);
    expect(history.status).toBe(200);
    expect(history.body).toEqual([expect.objectContaining({ serial: first.enc.certificate.serial, algorithm: 'P-256' })]);
    expect(JSON.stringify(history.body)).not.toMatch(/wrapped|pkcs8|PRIVATE/);
    expect((await call(t, 'auditor', 'GET', `/api/v1/subjects/${subjectId}/keys`)).status).toBe(403);
    expect((await call(t, 'officer', 'POST', '/api/v1/kmc/rotate-master', {})).status).toBe(403);
    const planned = await call(t, 'admin', 'POST', '/api/v1/kmc/rotate-master', {});
    expect(planned.body).toMatchObject({ dryRun: true, keys: expect.any(Number) });
    const rotated = await call(t, 'admin', 'POST', '/api/v1/kmc/rotate-master', { execute: true });
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(200);
    expect(rotated.body.rewrapped).toBeGreaterThanOrEqual(4);
    const after = await call(t, 'officer', 'GET', `/api/v1/subjects/${subjectId}/keys`);
    expect(after.body[0].masterKeyId).toBe(rotated.body.masterKeyId);
    const cli = await runTierca(['key', 'history', subjectId], { env: { TIERCA_URL: t.url, TIERCA_TOKEN: t.tokens.officer } });
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout.toString()).toContain(first.enc.certificate.serial);
  });

  it('tierca key recover asks, tierca request approve writes the recovered PKCS#12', async () => {
    const { enc } = first;
    const env = (role: 'officer' | 'officer2') => ({ env: { TIERCA_URL: t.url, TIERCA_TOKEN: t.tokens[role] } });
    const asked = await runTierca(['key', 'recover', enc.certificate.serial, '--reason', 'court order 2027-17', '--json'], env('officer'));
    expect(asked.code, asked.stderr).toBe(0);
    const id = JSON.parse(asked.stdout.toString()).request.id;
    const p12 = `${tmp.path}/cli-recovered.p12`;
    const approved = await runTierca(['request', 'approve', id, '--p12', p12], env('officer2'));
    expect(approved.code, approved.stderr).toBe(0);
    const passphrase = /passphrase[^:]*: (\S+)/i.exec(approved.stdout.toString())?.[1];
    expect(passphrase).toBeTruthy();
    const keyOut = await openssl(['pkcs12', '-in', p12, '-nodes', '-nocerts', '-passin', `pass:${passphrase}`]);
    const recovered = tmp.file('cli-recovered.key', keyOut.stdout.slice(keyOut.stdout.indexOf('-----BEGIN PRIVATE KEY-----')));
    const opened = await openssl(['cms', '-decrypt', '-inform', 'DER', '-in', tmp.file('doc.cms'), '-recip', tmp.file('enc.pem'), '-inkey', recovered]);
    expect(opened.stdout).toBe('湘潭市 official document\n');
    const signing = await runTierca(['key', 'recover', first.signing!, '--reason', 'x'], env('officer'));
    expect(signing.code).toBe(3);
  });

  it('revoking only the encryption half lets a new encryption key be issued while the old stays recoverable; revoking the holder revokes both', async () => {
    const { enc } = first;
    const revoked = await call(t, 'officer', 'POST', `/api/v1/certificates/${enc.certificate.serial}/revoke`, { reason: 'keyCompromise', issuer: enc.certificate.issuerId });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    const renewed = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: enc.certificate.subjectId, profile: 'user-enc', generate: { algorithm: 'P-256' } });
    expect(renewed.status, JSON.stringify(renewed.body)).toBe(201);
    expect(renewed.body.certificate.serial).not.toBe(enc.certificate.serial);
    const asked = await call(t, 'officer', 'POST', `/api/v1/escrow/${enc.certificate.issuerId}/${enc.certificate.serial}/recover`, { reason: 'old mail' });
    expect(asked.status).toBe(202);
    const old = await call(t, 'officer2', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
    expect(old.status, JSON.stringify(old.body)).toBe(200);

    const { csr: pem } = await csr('P-256');
    const holder = await user('t2');
    let pair = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: holder, csr: pem });
    if (pair.status === 202) pair = await call(t, 'officer2', 'POST', `/api/v1/requests/${pair.body.request.id}/approve`);
    expect(pair.status, JSON.stringify(pair.body)).toBe(201);
    expect(pair.body.encryption.certificate.profile).toBe('user-enc');
    expect((await call(t, 'officer', 'POST', `/api/v1/subjects/${holder}/revoke`, { reason: 'affiliationChanged' })).status).toBe(200);
    for (const c of [pair.body.certificate, pair.body.encryption.certificate]) {
      const status = await call(t, null, 'GET', `/status/${c.issuerId}/${c.serial}`);
      expect(status.body.status, c.profile).toBe('revoked');
    }
  });
  it('recovers a subject\'s whole key history at once: tierca key recover --subject, approved by a second officer into one PKCS#12 per key', async () => {
    const { enc } = first;
    const subjectId = enc.certificate.subjectId as string;
    // The pair's encryption key and the explicit user-enc issued after its revocation: both the KMC's.
    const history = await call(t, 'officer', 'GET', `/api/v1/subjects/${subjectId}/keys`);
    expect(history.body.map((k: any) => k.serial).filter(Boolean)).toHaveLength(2);
    const certs = history.body.map((k: any) => ({ issuerId: k.issuerId, serial: k.serial }));
    const env = (role: 'officer' | 'officer2') => ({ env: { TIERCA_URL: t.url, TIERCA_TOKEN: t.tokens[role] } });

    const both = await runTierca(['key', 'recover', enc.certificate.serial, '--subject', subjectId, '--reason', 'x'], env('officer'));
    expect([both.code, both.stderr]).toEqual([2, 'error: give the serial of an encryption certificate or --subject <id>, not both\n']);
    const asked = await runTierca(['key', 'recover', '--subject', subjectId, '--reason', 'archive of 2026 mail', '--json'], env('officer'));
    expect(asked.code, asked.stderr).toBe(0);
    const id = JSON.parse(asked.stdout.toString()).request.id;
    const own = await call(t, 'officer', 'POST', `/api/v1/requests/${id}/approve`);
    expect([own.status, own.body.detail]).toEqual([422, 'a principal may not approve its own request, nor approve twice']);
    expect(own.body.keys).toBeUndefined();

    const dir = tmp.file('history');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir);
    const approved = await runTierca(['request', 'approve', id, '--p12-dir', dir], env('officer2'));
    expect(approved.code, approved.stderr).toBe(0);
    const lines = approved.stdout.toString().trim().split('\n');
    expect(lines[0]).toBe(`recovered 2 escrowed keys of ${subjectId}: ${certs.map((c: any) => `${dir}/${c.serial}.p12`).join(', ')}`);
    const passphrase = lines.at(-1)!;
    for (const c of certs) {
      const p12 = `${dir}/${c.serial}.p12`;
      expect(statSync(p12).mode & 0o777).toBe(0o600);
      const keyOut = await openssl(['pkcs12', '-in', p12, '-nodes', '-nocerts', '-passin', `pass:${passphrase}`]);
      expect(keyOut.code, keyOut.stderr).toBe(0);
      const certOut = await openssl(['pkcs12', '-in', p12, '-nokeys', '-clcerts', '-passin', `pass:${passphrase}`]);
      const leaf = tmp.file(`h-${c.serial}.pem`, certOut.stdout.slice(certOut.stdout.indexOf('-----BEGIN CERTIFICATE-----')));
      const message = tmp.file(`h-${c.serial}.txt`, `old mail for ${c.serial}\n`);
      const sent = await openssl(['cms', '-encrypt', '-binary', '-aes256', '-recip', leaf, '-in', message, '-outform', 'DER', '-out', tmp.file(`h-${c.serial}.cms`)]);
      expect(sent.code, sent.stderr).toBe(0);
      const key = tmp.file(`h-${c.serial}.key`, keyOut.stdout.slice(keyOut.stdout.indexOf('-----BEGIN PRIVATE KEY-----')));
      const opened = await openssl(['cms', '-decrypt', '-inform', 'DER', '-in', tmp.file(`h-${c.serial}.cms`), '-recip', leaf, '-inkey', key]);
      expect(opened.stdout).toBe(`old mail for ${c.serial}\n`);
    }
    const audit = await t.store.audit.list({ action: 'escrow.recover-history' });
    expect(audit.filter((r) => r.outcome === 'success').at(-1)?.detail).toMatchObject({ reason: 'archive of 2026 mail', escrowedKeys: history.body.map((k: any) => k.keyId) });

    const nobody = await user('t1');
    const none = await call(t, 'officer', 'POST', `/api/v1/subjects/${nobody}/keys/recover`, { reason: 'x' });
    expect([none.status, none.body.detail]).toEqual([404, `subject ${nobody} has no escrowed encryption key`]);
  });
});
