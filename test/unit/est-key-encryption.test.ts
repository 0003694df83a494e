// What a serverkeygen CSR asks for the key part (RFC 7030 §4.4.1): nothing (TLS), or CMS encryption
// to the key its AsymmetricDecryptKeyIdentifier names — which must be the TLS client certificate's.
// Every refusal has its exact code and message; nothing here makes a key.
import { generateKeyPairSync, sign as nodeSign, createPrivateKey, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { keyProtectionOf, ASYMMETRIC_DECRYPT_KEY_ID, DECRYPT_KEY_ID } from '../../server/enrol/est/est-key-encryption.ts';
import { TiercaError } from '../../server/errors.ts';
import { implicitConstructed, integer, octetString, oid, sequence, setOf, bitString } from '../../pki/der.ts';
import { publicKeyInfoOf } from '../../pki/key-pair.ts';
import { readCertificate } from '../../pki/certificate-reader.ts';
import { softwareSigner } from '../../pki/software-signer.ts';

const tmp = new TempDir();
const csrKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const ca = { signer: softwareSigner({ privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, algorithm: 'P-256' }) };

/** A P-256-signed CSR whose attributes are `attributes` ([type, DER values]). */
function csrWith(attributes: [string, Buffer[]][]): Buffer {
  const attrs = attributes.map(([type, values]) => sequence(oid(type), setOf(...values)));
  const info = sequence(integer(0), sequence(), publicKeyInfoOf(csrKey), implicitConstructed(0, attrs));
  return sequence(info, sequence(oid('1.2.840.10045.4.3.2')), bitString(nodeSign('sha256', info, { key: csrKey, dsaEncoding: 'der' })));
}

async function selfSigned(name: string, keyArgs: string[]): Promise<{ der: Buffer; key: KeyObject }> {
  const res = await openssl(['req', '-x509', '-new', ...keyArgs, '-nodes', '-keyout', tmp.file(`${name}.key`), '-subj', `/CN=${name}`, '-days', '2', '-outform', 'DER', '-out', tmp.file(`${name}.der`)]);
  expect(res.code, res.stderr).toBe(0);
  return { der: tmp.read(`${name}.der`), key: createPrivateKey(tmp.read(`${name}.key`)) };
}

let client: Buffer;
let ski: Buffer;
beforeAll(async () => {
  client = (await selfSigned('holder', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'])).der;
  ski = readCertificate(client).subjectKeyId!;
});
afterAll(() => tmp.cleanup());

const refusal = (f: () => unknown): { code: string; message: string } => {
  try {
    f();
  } catch (err) {
    if (err instanceof TiercaError) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('not refused');
};

describe('keyProtectionOf', () => {
  it('is TLS without the attribute, and CMS to the client certificate\'s key when the identifier is its subjectKeyIdentifier', () => {
    expect(keyProtectionOf(csrWith([]), client, ca)).toEqual({ kind: 'tls' });
    expect(keyProtectionOf(csrWith([[ASYMMETRIC_DECRYPT_KEY_ID, [octetString(ski)]]]), client, ca)).toEqual({ kind: 'cms', recipientKeyId: ski });
  });

  it('refuses another key, a malformed or repeated identifier, and DecryptKeyIdentifier, with exact codes', () => {
    const other = Buffer.alloc(20, 7);
    expect(refusal(() => keyProtectionOf(csrWith([[ASYMMETRIC_DECRYPT_KEY_ID, [octetString(other)]]]), client, ca))).toEqual({
      code: 'bad-request',
      message: `the AsymmetricDecryptKeyIdentifier ${other.toString('hex')} names no key of the requester: tierca encrypts the key only to the TLS client certificate's key (subjectKeyIdentifier ${ski.toString('hex')})`,
    });
    expect(refusal(() => keyProtectionOf(csrWith([[ASYMMETRIC_DECRYPT_KEY_ID, [octetString(ski), octetString(other)]]]), client, ca))).toEqual({
      code: 'malformed-input', message: 'the AsymmetricDecryptKeyIdentifier must be one OCTET STRING (RFC 7030 §4.4.1.2): the attribute has more than one value',
    });
    expect(refusal(() => keyProtectionOf(csrWith([[ASYMMETRIC_DECRYPT_KEY_ID, [integer(5)]]]), client, ca)).code).toBe('malformed-input');
    expect(refusal(() => keyProtectionOf(csrWith([[ASYMMETRIC_DECRYPT_KEY_ID, [octetString(Buffer.alloc(0))]]]), client, ca)).message).toContain('the identifier is empty');
    expect(refusal(() => keyProtectionOf(csrWith([[DECRYPT_KEY_ID, [octetString(Buffer.from('k1'))]]]), client, ca)).message)
      .toMatch(/^the CSR asks for symmetric encryption of the key \(DecryptKeyIdentifier, RFC 7030 §4\.4\.1\.1\), which tierca does not offer/);
  });

  it('refuses an SM2 holder (its key comes as GM/T 0009 SM2EnvelopedKey) and a CA whose signature has no SHA-2 digest', async () => {
    const sm2 = (await selfSigned('sm2-holder', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:SM2'])).der;
    const sm2Ski = readCertificate(sm2).subjectKeyId!;
    expect(refusal(() => keyProtectionOf(csrWith([[ASYMMETRIC_DECRYPT_KEY_ID, [octetString(sm2Ski)]]]), sm2, ca))).toEqual({
      code: 'policy-key-algorithm',
      message: 'an SM2 holder gets its encryption key as a GM/T 0009 SM2EnvelopedKey (the key-delivery API), not as CMS EnvelopedData, which has no SM2 form OpenSSL reads: send the CSR without AsymmetricDecryptKeyIdentifier',
    });
    const sm2Ca = { signer: softwareSigner({ privateKey: (await selfSigned('sm2-ca', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:SM2'])).key, algorithm: 'SM2' }) };
    expect(refusal(() => keyProtectionOf(csrWith([[ASYMMETRIC_DECRYPT_KEY_ID, [octetString(ski)]]]), client, sm2Ca))).toEqual({
      code: 'policy-key-algorithm', message: 'the tier CA cannot sign the key package: CMS SignedData is signed with ECDSA or RSA over SHA-2, not 1.2.156.10197.1.501',
    });
  });
});
