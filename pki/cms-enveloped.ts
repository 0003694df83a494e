/**
 * CMS EnvelopedData (RFC 5652 §6) to one recipient certificate, as EST's encrypted server-generated
 * key needs it (RFC 7030 §4.4.2): the content is encrypted under a fresh AES-256-CBC key (RFC 3565)
 * and that key goes to the recipient by
 *
 * - **P-256 / P-384**: KeyAgreeRecipientInfo, ephemeral-static ECDH (RFC 5753 §3.1):
 *   `dhSinglePass-stdDH-sha256kdf-scheme` (P-256) or `-sha384kdf-scheme` (P-384, the Suite B
 *   pairing of RFC 6318), the ANSI X9.63 KDF over ECC-CMS-SharedInfo (RFC 5753 §7.2), AES-256 key
 *   wrap (RFC 3394 / RFC 3565 §2.3.2);
 * - **RSA**: KeyTransRecipientInfo with RSAES-OAEP, SHA-256 and MGF1-SHA-256 (RFC 3560, RFC 4055).
 *
 * The recipient is named by subjectKeyIdentifier (`rid`/`rKeyId`), the identifier RFC 7030
 * §4.4.1.2's AsymmetricDecryptKeyIdentifier carries. SM2 keys are refused: GM/T 0010's SM2
 * envelope is a different structure (pki/sm2-enveloped-key.ts is the national form).
 * Every primitive is Node's (OpenSSL's): ECDH, SHA-2, `id-aes256-wrap`, AES-CBC, RSA-OAEP; this
 * file only lays them out in DER. `openssl cms -decrypt` opens the result (test/unit/cms-enveloped.test.ts).
 */
import { createCipheriv, createHash, createPublicKey, diffieHellman, generateKeyPairSync, publicEncrypt, randomBytes, constants, type KeyObject } from 'node:crypto';
import { bitString, explicit, implicitConstructed, implicitPrimitive, integer, octetString, oid, sequence, setOf } from './der.ts';
import { readCertificate } from './certificate-reader.ts';
import { keyAlgorithmOf, keyIdentifier, publicKeyInfoOf, subjectPublicKeyBits } from './key-pair.ts';
import { OID as ALG } from './algorithms.ts';
import { PkiError } from './pki-error.ts';

export const CMS_OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  envelopedData: '1.2.840.113549.1.7.3',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
  aes256Wrap: '2.16.840.1.101.3.4.1.45',
  /** RFC 5753 §7.1.4 (SEC 1 §C.4). */
  stdDhSha256Kdf: '1.3.132.1.11.1',
  stdDhSha384Kdf: '1.3.132.1.11.2',
  rsaesOaep: '1.2.840.113549.1.1.7',
} as const;

/** The AES-KW initial value of RFC 3394 §2.2.3.1. */
const KW_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');
const CEK_LENGTH = 32;

/** What {@link buildEnvelopedData} takes. */
export interface EnvelopedDataParams {
  /** The octets to encrypt (for EST, a DER SignedData's ContentInfo content). */
  content: Buffer;
  /** The OID the EncryptedContentInfo names for `content`; default id-data. */
  contentType?: string;
  /** The recipient's certificate (DER): its key receives the content-encryption key. */
  recipient: Buffer;
  /**
   * The recipient key identifier written as `rid` / `rKeyId`; default the certificate's
   * subjectKeyIdentifier, else RFC 5280 §4.2.1.2 method (1) over its key.
   */
  recipientKeyId?: Buffer;
  /** Source of the content key and the IV; default crypto.randomBytes. */
  random?: (n: number) => Buffer;
  /** EC recipients: the ephemeral key pair (known-answer tests); default a fresh one on the recipient's curve. */
  ephemeral?: { privateKey: KeyObject; publicKey: KeyObject };
}

/**
 * A ContentInfo { id-envelopedData, EnvelopedData v2 } of `content` to `recipient`. The content key
 * is wiped after use.
 *
 * @throws PkiError('unsupported-algorithm') for a recipient key other than P-256, P-384 or RSA.
 */
export function buildEnvelopedData(p: EnvelopedDataParams): Buffer {
  const random = p.random ?? randomBytes;
  const cert = readCertificate(p.recipient);
  const keyId = p.recipientKeyId ?? cert.subjectKeyId ?? keyIdentifier(cert.publicKeyInfo);
  const cek = Buffer.from(random(CEK_LENGTH));
  try {
    const recipientInfo = recipientInfoFor(cert.publicKeyInfo, keyId, cek, p.ephemeral);
    const iv = Buffer.from(random(16));
    const cipher = createCipheriv('aes-256-cbc', cek, iv);
    const encrypted = Buffer.concat([cipher.update(p.content), cipher.final()]);
    const encryptedContentInfo = sequence(
      oid(p.contentType ?? CMS_OID.data),
      sequence(oid(CMS_OID.aes256Cbc), octetString(iv)), // RFC 3565 §4.1: parameters are the IV
      implicitPrimitive(0, encrypted),
    );
    // RFC 5652 §6.1: version 2, since the RecipientInfo is not a version-0 ktri.
    return sequence(oid(CMS_OID.envelopedData), explicit(0, sequence(integer(2), setOf(recipientInfo), encryptedContentInfo)));
  } finally {
    cek.fill(0);
  }
}

function recipientInfoFor(spki: Buffer, keyId: Buffer, cek: Buffer, ephemeral: EnvelopedDataParams['ephemeral']): Buffer {
  const algorithm = keyAlgorithmOf(spki);
  if (algorithm === 'P-256' || algorithm === 'P-384') return keyAgreeRecipientInfo(spki, algorithm, keyId, cek, ephemeral);
  if (algorithm?.startsWith('RSA-')) return keyTransRecipientInfo(spki, keyId, cek);
  throw new PkiError('unsupported-algorithm', `CMS EnvelopedData is built for P-256, P-384 and RSA recipients, not ${algorithm ?? 'this key'}`);
}

/** RFC 3560 §2.2 / RFC 4055 §4.1: RSAES-OAEP-params with SHA-256 and MGF1-SHA-256 (parameters absent, RFC 5754 §2). */
const OAEP_SHA256 = sequence(
  oid(CMS_OID.rsaesOaep),
  sequence(explicit(0, sequence(oid(ALG.sha256))), explicit(1, sequence(oid(ALG.mgf1), sequence(oid(ALG.sha256))))),
);

/** KeyTransRecipientInfo v2 { rid [0] subjectKeyIdentifier, RSAES-OAEP, encryptedKey } (RFC 5652 §6.2.1). */
function keyTransRecipientInfo(spki: Buffer, keyId: Buffer, cek: Buffer): Buffer {
  const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  const encryptedKey = publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, cek);
  return sequence(integer(2), implicitPrimitive(0, keyId), OAEP_SHA256, octetString(encryptedKey));
}

/**
 * KeyAgreeRecipientInfo (RFC 5652 §6.2.2, RFC 5753 §3.1.1): version 3, the ephemeral public key as
 * originatorKey (id-ecPublicKey, parameters absent: the recipient's curve), no ukm, the KDF scheme
 * with its key wrap, and one RecipientEncryptedKey for rKeyId.
 */
function keyAgreeRecipientInfo(spki: Buffer, curve: 'P-256' | 'P-384', keyId: Buffer, cek: Buffer, given: EnvelopedDataParams['ephemeral']): Buffer {
  const recipientKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  const ephemeral = given ?? generateKeyPairSync('ec', { namedCurve: curve });
  const ephemeralSpki = publicKeyInfoOf(ephemeral.publicKey);
  if (keyAlgorithmOf(ephemeralSpki) !== curve) throw new PkiError('invalid-argument', `the ephemeral key must be on ${curve}`);
  const hash = curve === 'P-384' ? 'sha384' : 'sha256';
  const wrap = sequence(oid(CMS_OID.aes256Wrap)); // RFC 3565 §2.3.2: parameters absent
  const z = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipientKey });
  const kek = x963Kdf(hash, z, eccCmsSharedInfo(wrap, CEK_LENGTH * 8), CEK_LENGTH);
  try {
    const wrapper = createCipheriv('id-aes256-wrap', kek, KW_IV);
    const encryptedKey = Buffer.concat([wrapper.update(cek), wrapper.final()]);
    const originatorKey = implicitConstructed(1, [sequence(oid(ALG.ecPublicKey)), bitString(subjectPublicKeyBits(ephemeralSpki))]);
    const recipientEncryptedKey = sequence(implicitConstructed(0, [octetString(keyId)]), octetString(encryptedKey));
    return implicitConstructed(1, [
      integer(3),
      explicit(0, originatorKey),
      sequence(oid(hash === 'sha384' ? CMS_OID.stdDhSha384Kdf : CMS_OID.stdDhSha256Kdf), wrap),
      sequence(recipientEncryptedKey),
    ]);
  } finally {
    z.fill(0);
    kek.fill(0);
  }
}

/** ECC-CMS-SharedInfo { keyInfo, suppPubInfo [2] the KEK length in bits, 32-bit big-endian } (RFC 5753 §7.2), no ukm. */
export function eccCmsSharedInfo(keyWrapAlgorithm: Buffer, kekBits: number): Buffer {
  const bits = Buffer.alloc(4);
  bits.writeUInt32BE(kekBits);
  return sequence(keyWrapAlgorithm, explicit(2, octetString(bits)));
}

/**
 * The ANSI X9.63 KDF (SEC 1 §3.6.1) that RFC 5753's stdDH schemes name: Hash(Z ‖ counter ‖
 * SharedInfo) for counter 1, 2, … (32-bit big-endian), concatenated and cut to `length` octets.
 */
export function x963Kdf(hash: 'sha256' | 'sha384', z: Buffer, sharedInfo: Buffer, length: number): Buffer {
  const blocks: Buffer[] = [];
  const counter = Buffer.alloc(4);
  for (let i = 1, made = 0; made < length; i++) {
    counter.writeUInt32BE(i);
    const block = createHash(hash).update(z).update(counter).update(sharedInfo).digest();
    blocks.push(block);
    made += block.length;
  }
  const out = Buffer.concat(blocks);
  const key = Buffer.from(out.subarray(0, length));
  out.fill(0);
  return key;
}
