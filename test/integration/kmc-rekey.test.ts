// A rekey of an encryption certificate (renewal with a new, server-made key) has the key-management
// centre make and escrow the new key (decision 0027), as issuance does: it joins the subject's key
// history beside the old one, which stays escrowed, and whole-history recovery gives both back —
// `openssl cms` mail sent to the old certificate and to the new one opens with the recovered keys.
// Nothing goes to the older escrow table any more. Users (user-enc) and devices (device-enc) alike.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { knexOf } from '../../server/storage/knex-store.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { opensslCsr } from '../helpers/pki-fixtures.ts';
import { call, startTestTierca, type TestTierca } from '../helpers/tierca.ts';
import { smallConfig } from '../helpers/rotation.ts';
import { countRows, snapshotCounts } from '../helpers/database.ts';

const tmp = new TempDir();
let t: TestTierca;
let n = 0;
const SUFFIX = 'yuhu.xiangtan.intranet';

beforeAll(async () => {
  const data = smallConfig();
  data.tiers.t2.encryptionCertificate = { user: 'required', device: 'required', organ: 'none' };
  t = await startTestTierca({ configData: data });
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

/** A subject at t2 and its dual pair, issued from an openssl CSR. */
async function pair(kind: 'user' | 'device') {
  n++;
  const names = kind === 'device' ? { dns: [`vpn${n}.${SUFFIX}`] } : { emails: [`wang${n}@${SUFFIX}`] };
  const subject = await call(t, 'officer', 'POST', '/api/v1/subjects', { kind, domain: 'yuhu', organ: 'government', tier: 't2', name: `${kind}-rekey-${n}`, ...names });
  expect(subject.status, JSON.stringify(subject.body)).toBe(201);
  const res = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: subject.body.id, csr: (await opensslCsr(tmp, `s${n}`, 'P-256')).csrPem });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  expect(res.body.encryption.certificate.profile).toBe(kind === 'user' ? 'user-enc' : 'device-enc');
  return { subjectId: subject.body.id as string, enc: res.body.encryption };
}

async function keyOf(p12Base64: string, passphrase: string): Promise<string> {
  const out = await openssl(['pkcs12', '-in', tmp.file(`p${++n}.p12`, Buffer.from(p12Base64, 'base64')), '-nodes', '-nocerts', '-passin', `pass:${passphrase}`]);
  expect(out.code, out.stderr).toBe(0);
  return tmp.file(`p${n}.key`, out.stdout.slice(out.stdout.indexOf('-----BEGIN PRIVATE KEY-----')));
}

/** Mail encrypted by `openssl cms` to `certPem`: its file and its text. */
async function mailTo(certPem: string): Promise<{ cms: string; cert: string; text: string }> {
  const cert = tmp.file(`c${++n}.pem`, certPem);
  const text = `湘潭 archive ${n}\n`;
  const cms = tmp.file(`m${n}.cms`);
  const sent = await openssl(['cms', '-encrypt', '-binary', '-aes256', '-recip', cert, '-in', tmp.file(`m${n}.txt`, text), '-outform', 'DER', '-out', cms]);
  expect(sent.code, sent.stderr).toBe(0);
  return { cms, cert, text };
}

async function opens(mail: { cms: string; cert: string; text: string }, keyFile: string): Promise<void> {
  const opened = await openssl(['cms', '-decrypt', '-inform', 'DER', '-in', mail.cms, '-recip', mail.cert, '-inkey', keyFile]);
  expect(opened.stdout, opened.stderr).toBe(mail.text);
}

const kmcRow = (serial: string) => knexOf(t.store)('kmc_keys').where({ serial }).first();

describe.each(['user', 'device'] as const)('rekey of a %s encryption certificate', (kind) => {
  it('escrows the new key in the KMC, keeps the old one there, and recovers the whole history', async () => {
    const { subjectId, enc } = await pair(kind);
    const oldMail = await mailTo(enc.pem);
    const oldKey = await kmcRow(enc.certificate.serial);
    const escrowedBefore = await countRows(t.store, 'escrowed_keys');

    const res = await call(t, 'officer', 'POST', `/api/v1/certificates/${enc.certificate.serial}/renew`, { generate: { algorithm: 'P-256' } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.mode).toBe('rekey');
    const renewed = res.body.certificate;
    expect(renewed).toMatchObject({ profile: enc.certificate.profile, subjectId, keyAlgorithm: 'P-256' });
    expect(res.body.replaced).toMatchObject({ serial: enc.certificate.serial, status: 'revoked', reason: 'superseded' });
    // The new key is the KMC's, bound to the successor; the old key is untouched; the older table got nothing.
    const newKey = await kmcRow(renewed.serial);
    expect(newKey).toMatchObject({ subject_id: subjectId, issuer_id: renewed.issuerId, algorithm: 'P-256' });
    expect(newKey.id).not.toBe(oldKey.id);
    expect(await kmcRow(enc.certificate.serial)).toMatchObject({ id: oldKey.id, wrapped: oldKey.wrapped });
    expect(await t.store.escrow.get(renewed.issuerId, renewed.serial)).toBeUndefined();
    expect(await countRows(t.store, 'escrowed_keys')).toBe(escrowedBefore);

    // Delivered once with the renewal; mail to the new certificate opens with it.
    const newMail = await mailTo(res.body.pem);
    await opens(newMail, await keyOf(res.body.pkcs12, res.body.passphrase));

    const history = await call(t, 'officer', 'GET', `/api/v1/subjects/${subjectId}/keys`);
    expect(history.body.map((k: any) => [k.keyId, k.serial])).toEqual([[oldKey.id, enc.certificate.serial], [newKey.id, renewed.serial]]);
    const asked = await call(t, 'officer', 'POST', `/api/v1/subjects/${subjectId}/keys/recover`, { reason: 'audit of 2026 correspondence' });
    expect(asked.status, JSON.stringify(asked.body)).toBe(202);
    const approved = await call(t, 'officer2', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    expect(approved.body.keys.map((k: any) => [k.keyId, k.certificate.serial])).toEqual([[oldKey.id, enc.certificate.serial], [newKey.id, renewed.serial]]);
    await opens(oldMail, await keyOf(approved.body.keys[0].pkcs12, approved.body.passphrase));
    await opens(newMail, await keyOf(approved.body.keys[1].pkcs12, approved.body.passphrase));
  });

  it('refuses a rekey with the holder\'s CSR (an encryption key is the KMC\'s to make), with nothing changed', async () => {
    const { enc } = await pair(kind);
    const before = await snapshotCounts(t.store);
    const res = await call(t, 'officer', 'POST', `/api/v1/certificates/${enc.certificate.serial}/renew`, { csr: (await opensslCsr(tmp, `r${++n}`, 'P-256')).csrPem });
    expect([res.status, res.body.detail]).toEqual([422, 'encryption certificates need a server-made, escrowed key (use generate)']);
    const after = await snapshotCounts(t.store);
    expect({ ...after, audit_log: 0 }).toEqual({ ...before, audit_log: 0 });
  });
});
