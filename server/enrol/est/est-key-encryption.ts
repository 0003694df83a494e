/**
 * The additional encryption of an EST server-generated key (RFC 7030 §4.4.1.2, §4.4.2;
 * docs/decisions/0029-est-encrypted-key.md): when the CSR carries an AsymmetricDecryptKeyIdentifier,
 * the answer's key part is CMS EnvelopedData to the requester's key around a SignedData, by the
 * issuing CA, around the AsymmetricKeyPackage (RFC 5958 §4: sign, then envelope). The only key
 * tierca knows the requester holds is that of the TLS client certificate it authenticated with (its
 * `user-sign` certificate), so the identifier must name that key; anything else is refused before a
 * key is made. Without the attribute the key part stays `application/pkcs8`, protected by TLS
 * (§4.4.2 allows it).
 */
import type { LoadedCa } from '../../ca/ca-directory.ts';
import { TiercaError } from '../../errors.ts';
import { parseCsr, csrAttributeValues } from '../../../pki/csr.ts';
import { readCertificate } from '../../../pki/certificate-reader.ts';
import { keyAlgorithmOf, keyIdentifier } from '../../../pki/key-pair.ts';
import { readOnly } from '../../../pki/der-reader.ts';
import { buildEnvelopedData } from '../../../pki/cms-enveloped.ts';
import { buildSignedData, digestOfSignatureAlgorithm, SIGNED_DATA_OID } from '../../../pki/cms-signed.ts';
import { asymmetricKeyPackage, ASYMMETRIC_KEY_PACKAGE_OID } from '../../../pki/asymmetric-key-package.ts';
import { PkiError } from '../../../pki/pki-error.ts';

/** id-aa-asymmDecryptKeyID (RFC 7030 §4.4.1.2). */
export const ASYMMETRIC_DECRYPT_KEY_ID = '1.2.840.113549.1.9.16.2.54';
/** id-aa-decryptKeyID (RFC 7030 §4.4.1.1, RFC 4108): a symmetric key shared with the server. */
export const DECRYPT_KEY_ID = '1.2.840.113549.1.9.16.2.37';

/** What the CSR asks for the key part: TLS only, or CMS encryption to the key `recipientKeyId` names. */
export type KeyProtection = { kind: 'tls' } | { kind: 'cms'; recipientKeyId: Buffer };

/**
 * Reads the protection a serverkeygen CSR asks for and checks it can be given to `client` (the TLS
 * client certificate, already authenticated). Nothing is made here; a refusal changes nothing.
 *
 * @throws TiercaError `bad-request` for a DecryptKeyIdentifier (no key is shared with the client),
 * an identifier that names another key than the client certificate's; `malformed-input` for an
 * attribute that is not one OCTET STRING; `policy-key-algorithm` for an SM2 client key or a CA
 * that cannot sign CMS.
 */
export function keyProtectionOf(csrDer: Buffer, client: Buffer, ca: Pick<LoadedCa, 'signer'>): KeyProtection {
  const csr = parseCsr(csrDer);
  if (csrAttributeValues(csr, DECRYPT_KEY_ID).length > 0) {
    throw new TiercaError('bad-request', 'the CSR asks for symmetric encryption of the key (DecryptKeyIdentifier, RFC 7030 §4.4.1.1), which tierca does not offer: '
      + 'it shares no key with the client; name the key of your TLS client certificate in an AsymmetricDecryptKeyIdentifier, or send neither');
  }
  const values = csrAttributeValues(csr, ASYMMETRIC_DECRYPT_KEY_ID);
  if (values.length === 0) return { kind: 'tls' };
  let recipientKeyId: Buffer;
  try {
    if (values.length !== 1) throw new PkiError('malformed', 'the attribute has more than one value');
    recipientKeyId = Buffer.from(readOnly(values[0], 0x04).content);
    if (recipientKeyId.length === 0) throw new PkiError('malformed', 'the identifier is empty');
  } catch (err) {
    if (!(err instanceof PkiError)) throw err;
    throw new TiercaError('malformed-input', `the AsymmetricDecryptKeyIdentifier must be one OCTET STRING (RFC 7030 §4.4.1.2): ${err.message}`);
  }
  const fields = readCertificate(client);
  const own = fields.subjectKeyId ?? keyIdentifier(fields.publicKeyInfo);
  if (!recipientKeyId.equals(own)) {
    throw new TiercaError('bad-request', `the AsymmetricDecryptKeyIdentifier ${recipientKeyId.toString('hex')} names no key of the requester: `
      + `tierca encrypts the key only to the TLS client certificate's key (subjectKeyIdentifier ${own.toString('hex')})`);
  }
  const algorithm = keyAlgorithmOf(fields.publicKeyInfo);
  if (algorithm === 'SM2') {
    throw new TiercaError('policy-key-algorithm', 'an SM2 holder gets its encryption key as a GM/T 0009 SM2EnvelopedKey (the key-delivery API), '
      + 'not as CMS EnvelopedData, which has no SM2 form OpenSSL reads: send the CSR without AsymmetricDecryptKeyIdentifier');
  }
  if (algorithm !== 'P-256' && algorithm !== 'P-384' && !algorithm?.startsWith('RSA-')) {
    throw new TiercaError('policy-key-algorithm', `the key is encrypted to P-256, P-384 or RSA keys, not ${algorithm ?? 'this key'}`);
  }
  try {
    digestOfSignatureAlgorithm(ca.signer.signatureAlgorithm);
  } catch (err) {
    if (!(err instanceof PkiError)) throw err;
    throw new TiercaError('policy-key-algorithm', `the tier CA cannot sign the key package: ${err.message}`);
  }
  return { kind: 'cms', recipientKeyId };
}

/**
 * The key part of an encrypted answer: ContentInfo { EnvelopedData to `recipient` { SignedData by
 * `ca` { AsymmetricKeyPackage { pkcs8 } } } }. The plaintext layers are wiped; the caller wipes `pkcs8`.
 */
export async function encryptServerKey(p: { pkcs8: Buffer; ca: Pick<LoadedCa, 'signer' | 'chain'>; recipient: Buffer; recipientKeyId: Buffer; now: Date }): Promise<Buffer> {
  const keyPackage = asymmetricKeyPackage([p.pkcs8]);
  let signed: Buffer | undefined;
  try {
    signed = await buildSignedData({
      content: keyPackage, contentType: ASYMMETRIC_KEY_PACKAGE_OID, signer: p.ca.signer,
      // The CA and its chain below the root (the holder has the root from /cacerts).
      signerCertificate: p.ca.chain[0], certificates: p.ca.chain.length > 1 ? p.ca.chain.slice(0, -1) : p.ca.chain, signingTime: p.now,
    });
    return buildEnvelopedData({ content: signed, contentType: SIGNED_DATA_OID, recipient: p.recipient, recipientKeyId: p.recipientKeyId });
  } finally {
    keyPackage.fill(0);
    signed?.fill(0);
  }
}
