// EST's encrypted server-generated key (RFC 7030 §4.4.2) layer by layer: an AsymmetricKeyPackage
// (RFC 5958) in a SignedData (pki/cms-signed.ts) in an EnvelopedData (pki/cms-enveloped.ts) to a
// P-256, P-384 or RSA-3072 recipient. openssl opens every layer (`cms -decrypt`, `cms -verify`), the
// key inside matches the public key it was made for (`pkey -pubout`), pkijs reads the structures as
// a second stack, and openssl's own X963KDF checks the KDF.
import { createPrivateKey, generateKeyPairSync, webcrypto, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as pkijs from 'pkijs';
import * as asn1js from 'asn1js';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { buildEnvelopedData, CMS_OID, eccCmsSharedInfo, x963Kdf } from '../../pki/cms-enveloped.ts';
import { buildSignedData, contentInfo, SIGNED_DATA_OID } from '../../pki/cms-signed.ts';
import { asymmetricKeyPackage, ASYMMETRIC_KEY_PACKAGE_OID, keysOfPackage } from '../../pki/asymmetric-key-package.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import { oid, sequence } from '../../pki/der.ts';
import { PkiError } from '../../pki/pki-error.ts';
import type { KeyAlgorithm } from '../../pki/algorithms.ts';

const tmp = new TempDir();
const SIGNING_TIME = new Date('2026-12-04T06:00:00Z');

/** A self-signed certificate made by openssl for `name` (openssl 3 writes a subjectKeyIdentifier). */
async function certificate(name: string, keyArgs: string[], ext = 'keyUsage=critical,keyAgreement'): Promise<{ pem: string; der: Buffer; key: KeyObject }> {
  const res = await openssl(['req', '-x509', '-new', ...keyArgs, '-nodes', '-keyout', tmp.file(`${name}.key`), '-subj', `/CN=${name}`, '-days', '30',
    '-addext', ext, '-out', tmp.file(`${name}.pem`)]);
  expect(res.code, res.stderr).toBe(0);
  expect((await openssl(['x509', '-in', tmp.file(`${name}.pem`), '-outform', 'DER', '-out', tmp.file(`${name}.der`)])).code).toBe(0);
  return { pem: tmp.read(`${name}.pem`).toString(), der: tmp.read(`${name}.der`), key: createPrivateKey(tmp.read(`${name}.key`)) };
}

let signer: Awaited<ReturnType<typeof certificate>>;
const EC = (curve: string) => ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${curve}`];

beforeAll(async () => {
  signer = await certificate('signer', EC('P-256'), 'keyUsage=critical,digitalSignature');
});
afterAll(() => tmp.cleanup());

/** The whole EST layering for `recipient`, around a fresh `inner` key's PKCS#8. */
async function encryptedKeyFor(recipient: Buffer, inner: KeyObject): Promise<Buffer> {
  const pkcs8 = inner.export({ type: 'pkcs8', format: 'der' });
  const signed = await buildSignedData({
    content: asymmetricKeyPackage([pkcs8]), contentType: ASYMMETRIC_KEY_PACKAGE_OID,
    signer: softwareSigner({ privateKey: signer.key, algorithm: 'P-256' }), signerCertificate: signer.der, signingTime: SIGNING_TIME,
  });
  return buildEnvelopedData({ content: signed, contentType: SIGNED_DATA_OID, recipient });
}

/** Opens `enveloped` with openssl as `name`, verifies the SignedData and returns the key package's first key. */
async function openWithOpenssl(enveloped: Buffer, name: string): Promise<Buffer> {
  const decrypted = await openssl(['cms', '-decrypt', '-inform', 'DER', '-in', tmp.file(`${name}.env`, enveloped), '-recip', tmp.file(`${name}.pem`),
    '-inkey', tmp.file(`${name}.key`), '-binary', '-out', tmp.file(`${name}.sd`)]);
  expect(decrypted.code, decrypted.stderr).toBe(0);
  // The EnvelopedData encrypts the bare SignedData (content type id-signedData); openssl reads a ContentInfo.
  tmp.file(`${name}.p7`, contentInfo(SIGNED_DATA_OID, tmp.read(`${name}.sd`)));
  const verified = await openssl(['cms', '-verify', '-inform', 'DER', '-in', tmp.file(`${name}.p7`), '-CAfile', tmp.file('signer.pem'), '-purpose', 'any',
    '-binary', '-out', tmp.file(`${name}.akp`)]);
  expect(verified.stderr).toContain('Verification successful');
  const [key] = keysOfPackage(tmp.read(`${name}.akp`));
  return Buffer.from(key);
}

const publicPem = async (args: string[], input: Buffer | string) => (await openssl(['pkey', ...args, '-pubout'], { input })).stdout;

describe('CMS EnvelopedData around a signed AsymmetricKeyPackage', () => {
  const recipients: { name: string; keyArgs: string[]; ext?: string; inner: KeyAlgorithm; print: string[] }[] = [
    { name: 'ec256', keyArgs: EC('P-256'), inner: 'P-256', print: ['dhSinglePass-stdDH-sha256kdf-scheme', 'id-aes256-wrap', 'aes-256-cbc'] },
    { name: 'ec384', keyArgs: EC('P-384'), inner: 'P-384', print: ['dhSinglePass-stdDH-sha384kdf-scheme', 'id-aes256-wrap', 'aes-256-cbc'] },
    { name: 'rsa3072', keyArgs: ['-newkey', 'rsa:3072'], ext: 'keyUsage=critical,keyEncipherment', inner: 'RSA-3072', print: ['rsaesOaep', 'sha256', 'mgf1', 'aes-256-cbc'] },
  ];
  for (const r of recipients) {
    it(`${r.name}: openssl cms decrypts it, verifies the signature, and the key inside is the ${r.inner} key it was made from`, async () => {
      const recipient = await certificate(r.name, r.keyArgs, r.ext);
      const inner = r.inner.startsWith('RSA') ? generateKeyPairSync('rsa', { modulusLength: 3072 }) : generateKeyPairSync('ec', { namedCurve: r.inner });
      const enveloped = await encryptedKeyFor(recipient.der, inner.privateKey);
      const printed = await openssl(['cms', '-cmsout', '-print', '-inform', 'DER', '-in', tmp.file(`${r.name}-print.env`, enveloped)]);
      expect(printed.code, printed.stderr).toBe(0);
      for (const name of r.print) expect(printed.stdout).toContain(name);
      expect(printed.stdout).toContain('contentType: pkcs7-signedData');
      const key = await openWithOpenssl(enveloped, r.name);
      expect(await publicPem(['-inform', 'DER'], key)).toBe(await publicPem([], inner.privateKey.export({ type: 'pkcs8', format: 'pem' })));
    });
  }

  it('is not opened by another key of the same kind (openssl refuses)', async () => {
    const meant = await certificate('meant', EC('P-256'));
    const other = await certificate('other', EC('P-256'));
    const enveloped = await encryptedKeyFor(meant.der, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const res = await openssl(['cms', '-decrypt', '-inform', 'DER', '-in', tmp.file('meant.env', enveloped), '-recip', tmp.file('other.pem'), '-inkey', tmp.file('other.key')]);
    expect(res.code).not.toBe(0);
    expect(other.der.equals(meant.der)).toBe(false);
  });

  it('names the recipient by its subjectKeyIdentifier and reads back in pkijs (a second stack) with the same structure', async () => {
    const ec = await certificate('pk-ec', EC('P-256'));
    const rsa = await certificate('pk-rsa', ['-newkey', 'rsa:3072'], 'keyUsage=critical,keyEncipherment');
    for (const [cert, kind] of [[ec, 1], [rsa, 0]] as const) {
      const enveloped = await encryptedKeyFor(cert.der, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
      const info = pkijs.ContentInfo.fromBER(new Uint8Array(enveloped));
      expect(info.contentType).toBe(CMS_OID.envelopedData);
      const env = new pkijs.EnvelopedData({ schema: info.content });
      expect(env.version).toBe(2);
      expect(env.encryptedContentInfo.contentType).toBe(SIGNED_DATA_OID);
      expect(env.encryptedContentInfo.contentEncryptionAlgorithm.algorithmId).toBe(CMS_OID.aes256Cbc);
      expect(env.recipientInfos).toHaveLength(1);
      expect(env.recipientInfos[0].variant).toBe(kind + 1);
      const certSki = new pkijs.Certificate({ schema: asn1js.fromBER(new Uint8Array(cert.der)).result }).extensions!.find((e) => e.extnID === '2.5.29.14')!.parsedValue as asn1js.OctetString;
      const ski = Buffer.from(certSki.valueBlock.valueHexView);
      if (kind === 1) {
        const kari = env.recipientInfos[0].value as pkijs.KeyAgreeRecipientInfo;
        expect(kari.version).toBe(3);
        expect(kari.keyEncryptionAlgorithm.algorithmId).toBe(CMS_OID.stdDhSha256Kdf);
        const rid = kari.recipientEncryptedKeys.encryptedKeys[0].rid.value as pkijs.RecipientKeyIdentifier;
        expect(Buffer.from(rid.subjectKeyIdentifier.valueBlock.valueHexView)).toEqual(ski);
      } else {
        const ktri = env.recipientInfos[0].value as pkijs.KeyTransRecipientInfo;
        expect(ktri.version).toBe(2);
        expect(ktri.keyEncryptionAlgorithm.algorithmId).toBe(CMS_OID.rsaesOaep);
        expect(Buffer.from((ktri.rid as asn1js.OctetString).valueBlock.valueHexView)).toEqual(ski);
      }
    }
  });

  // pkijs's KeyAgreeRecipientInfo decryption fails on openssl's own `cms -encrypt` output as well
  // (its AES-KW unwrap errors), so for EC recipients it is a parser only; RSA-OAEP it opens.
  it('pkijs opens the RSA-OAEP envelope and finds the SignedData', async () => {
    const rsa = await certificate('pkd-rsa', ['-newkey', 'rsa:3072'], 'keyUsage=critical,keyEncipherment');
    const enveloped = await encryptedKeyFor(rsa.der, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    pkijs.setEngine('node', new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as unknown as Crypto }));
    const env = new pkijs.EnvelopedData({ schema: pkijs.ContentInfo.fromBER(new Uint8Array(enveloped)).content });
    const opened = await env.decrypt(0, {
      recipientCertificate: new pkijs.Certificate({ schema: asn1js.fromBER(new Uint8Array(rsa.der)).result }),
      recipientPrivateKey: new Uint8Array(rsa.key.export({ type: 'pkcs8', format: 'der' })),
    });
    const sd = new pkijs.SignedData({ schema: asn1js.fromBER(opened).result });
    expect([sd.version, sd.encapContentInfo.eContentType]).toEqual([3, ASYMMETRIC_KEY_PACKAGE_OID]);
  });

  it('the SignedData reads back in pkijs: v3, id-ct-KP-aKeyPackage, and its signature verifies', async () => {
    const pkcs8 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'der' });
    const signed = await buildSignedData({
      content: asymmetricKeyPackage([pkcs8]), contentType: ASYMMETRIC_KEY_PACKAGE_OID,
      signer: softwareSigner({ privateKey: signer.key, algorithm: 'P-256' }), signerCertificate: signer.der, signingTime: SIGNING_TIME,
    });
    const sd = new pkijs.SignedData({ schema: pkijs.ContentInfo.fromBER(new Uint8Array(contentInfo(SIGNED_DATA_OID, signed))).content });
    expect([sd.version, sd.encapContentInfo.eContentType, sd.signerInfos.length]).toEqual([3, ASYMMETRIC_KEY_PACKAGE_OID, 1]);
    expect(await sd.verify({ signer: 0, trustedCerts: [new pkijs.Certificate({ schema: asn1js.fromBER(new Uint8Array(signer.der)).result })] })).toBe(true);
  });

  it('the X9.63 KDF and ECC-CMS-SharedInfo agree with openssl kdf X963KDF', async () => {
    const z = Buffer.from('96c05619d56c328ab95fe84b18264b08725b85e33fd34f08', 'hex');
    const info = eccCmsSharedInfo(sequence(oid(CMS_OID.aes256Wrap)), 256);
    // SEQUENCE { SEQUENCE { id-aes256-wrap }, [2] { OCTET STRING 00000100 } } (RFC 5753 §7.2)
    expect(info.toString('hex')).toBe('3015300b060960864801650304012da206040400000100');
    for (const [hash, length] of [['sha256', 32], ['sha384', 32], ['sha256', 80]] as const) {
      const res = await openssl(['kdf', '-keylen', String(length), '-kdfopt', `digest:${hash.toUpperCase()}`, '-kdfopt', `hexkey:${z.toString('hex')}`,
        '-kdfopt', `hexinfo:${info.toString('hex')}`, 'X963KDF']);
      expect(res.code, res.stderr).toBe(0);
      expect(x963Kdf(hash, z, info, length).toString('hex')).toBe(res.stdout.trim().replace(/:/g, '').toLowerCase());
    }
  });

  it('refuses an SM2 recipient: GM/T 0009\'s SM2EnvelopedKey is the national form, not CMS', async () => {
    const sm2 = await certificate('sm2', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:SM2'], 'keyUsage=critical,keyEncipherment');
    const attempt = () => buildEnvelopedData({ content: Buffer.from('x'), recipient: sm2.der });
    expect(attempt).toThrow(PkiError);
    expect(attempt).toThrow('CMS EnvelopedData is built for P-256, P-384 and RSA recipients, not SM2');
  });
});
