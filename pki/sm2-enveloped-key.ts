/**
 * The SM2 key-pair protection format of GM/T 0009-2012 §7.4, SM2EnvelopedKey — what the KMC hands a
 * holder's USB key (SKF_ImportECCKeyPair) for an escrowed SM2 encryption key:
 * ```
 * SM2EnvelopedKey ::= SEQUENCE {
 *   symAlgID               AlgorithmIdentifier,  -- SM4-ECB, 1.2.156.10197.1.104.1, parameters absent
 *   symEncryptedKey        SM2Cipher,            -- the fresh SM4 key, SM2-encrypted to the holder's SIGNING key (§7.2)
 *   sm2PublicKey           SM2PublicKey,         -- BIT STRING 04 ‖ X ‖ Y of the enveloped (encryption) key
 *   sm2EncryptedPrivateKey BIT STRING }          -- SM4-ECB of the 32-octet private scalar, no padding
 * ```
 * Readers (Tongsuo-derived SM2_Enveloped_Key, SKF middleware) take the last 32 octets of the last field
 * as the encrypted scalar, so 32 octets is what we write.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { bitString, oid, sequence } from './der.ts';
import { children, decodeOid, expectTag, readOnly } from './der-reader.ts';
import { PkiError } from './pki-error.ts';
import { sm2p256v1 } from './sm2.ts';
import { sm2PrivateScalarOf, sm2PublicPointOf } from './sm2-key.ts';
import { decodeSm2Cipher, encodeSm2Cipher, sm2Decrypt, sm2Encrypt } from './sm2-encryption.ts';
import { sm4EcbDecrypt, sm4EcbEncrypt } from './sm4.ts';

/** SM4 in ECB mode (GM/T 0006-2012 1.2.156.10197.1.104.1). */
export const SM4_ECB_OID = '1.2.156.10197.1.104.1';

function sm2PointOfSpki(spki: Buffer, what: string) {
  const point = sm2PublicPointOf(spki);
  if (!point) throw new PkiError('unsupported-algorithm', `${what} is not an SM2 key`);
  return point;
}

/**
 * Envelopes the SM2 private key `p.privateKey` to the holder whose SIGNING public key is
 * `p.recipientPublicKeyInfo` (DER SPKI). The SM4 key and the scalar's octets are wiped after use.
 *
 * @param p.random source of the SM4 key and the SM2 nonce; default crypto.randomBytes
 */
export function buildSm2EnvelopedKey(p: { privateKey: KeyObject; recipientPublicKeyInfo: Buffer; random?: (n: number) => Buffer }): Buffer {
  const random = p.random ?? randomBytes;
  const recipient = sm2PointOfSpki(p.recipientPublicKeyInfo, 'the recipient key');
  const d = sm2PrivateScalarOf(p.privateKey);
  const publicPoint = sm2p256v1.publicPointOf(d);
  const scalar = sm2p256v1.octets(d);
  const symKey = Buffer.from(random(16));
  try {
    const encryptedKey = encodeSm2Cipher(sm2p256v1, sm2Encrypt(sm2p256v1, recipient, symKey, random));
    const encryptedPrivateKey = sm4EcbEncrypt(symKey, scalar);
    return sequence(sequence(oid(SM4_ECB_OID)), encryptedKey, bitString(publicPoint.toBytes(false)), bitString(encryptedPrivateKey));
  } finally {
    symKey.fill(0);
    scalar.fill(0);
  }
}

/** What {@link openSm2EnvelopedKey} returns: the private scalar's 32 octets (the caller wipes them) and the public point. */
export interface OpenedSm2EnvelopedKey {
  privateScalar: Buffer;
  publicKey: Buffer;
}

/**
 * Opens an SM2EnvelopedKey with the recipient's SM2 private key (for tierca's own round trip; the
 * tests open it with an unrelated implementation too). The opened scalar must give the enclosed
 * public key. PkiError('malformed') for a structure it cannot read, PkiError('bad-signature') when
 * the envelope is not for this key or was altered.
 */
export function openSm2EnvelopedKey(envelope: Buffer, recipientPrivateKey: KeyObject): OpenedSm2EnvelopedKey {
  const fields = children(readOnly(envelope, 0x30));
  if (fields.length !== 4) throw new PkiError('malformed', 'an SM2EnvelopedKey has four fields');
  const [alg] = children(expectTag(fields[0], 0x30, 'symAlgID'));
  if (decodeOid(alg) !== SM4_ECB_OID) throw new PkiError('unsupported-algorithm', 'the SM2EnvelopedKey is not under SM4-ECB');
  const bits = (i: number, what: string): Buffer => {
    const content = expectTag(fields[i], 0x03, what).content;
    if (content[0] !== 0) throw new PkiError('malformed', `${what} has unused bits`);
    return content.subarray(1);
  };
  const publicKey = bits(2, 'sm2PublicKey');
  const encrypted = bits(3, 'sm2EncryptedPrivateKey');
  if (encrypted.length < 32) throw new PkiError('malformed', 'sm2EncryptedPrivateKey is shorter than 32 octets');
  const enclosedPoint = sm2p256v1.pointFromBytes(publicKey);
  const d = sm2PrivateScalarOf(recipientPrivateKey);
  const symKey = sm2Decrypt(sm2p256v1, d, decodeSm2Cipher(sm2p256v1, fields[1].raw));
  try {
    if (symKey.length !== 16) throw new PkiError('malformed', 'the enveloped SM4 key is not 16 octets');
    const privateScalar = sm4EcbDecrypt(symKey, encrypted.subarray(encrypted.length - 32));
    const scalar = BigInt(`0x${privateScalar.toString('hex')}`);
    if (scalar < 1n || scalar > sm2p256v1.params.n - 2n || !sm2p256v1.Point.BASE.multiply(scalar).equals(enclosedPoint)) {
      privateScalar.fill(0);
      throw new PkiError('bad-signature', 'the enveloped private key does not match the enclosed public key');
    }
    return { privateScalar, publicKey: Buffer.from(publicKey) };
  } finally {
    symKey.fill(0);
  }
}
