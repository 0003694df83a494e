/**
 * Key pair generation and SubjectPublicKeyInfo helpers on Node's crypto (OpenSSL underneath).
 */
import { generateKeyPair as nodeGenerateKeyPair, createPublicKey, createHash, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { KeyAlgorithm } from './algorithms.ts';
import { children, readOnly, decodeOid, expectTag } from './der-reader.ts';
import { OID } from './algorithms.ts';
import { asSm2KeyObject } from './sm2-key.ts';

const generate = promisify(nodeGenerateKeyPair);

export interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/**
 * Generates a key pair of `alg`. RSA keys use public exponent 65537. SM2 keys come back in Node's SM2
 * form (read back from their PKCS#8, ./sm2-key.ts), never the EC form that Node signs ECDSA with; they
 * sign through the SM2 signer (./sm2-signer.ts).
 */
export async function generateKeyPair(alg: KeyAlgorithm): Promise<KeyPair> {
  switch (alg) {
    case 'P-256':
      return generate('ec', { namedCurve: 'prime256v1' });
    case 'P-384':
      return generate('ec', { namedCurve: 'secp384r1' });
    case 'SM2': {
      const { privateKey } = await generate('ec', { namedCurve: 'SM2' });
      const sm2 = asSm2KeyObject(privateKey);
      return { privateKey: sm2, publicKey: createPublicKey(sm2) };
    }
    case 'RSA-2048':
    case 'RSA-3072':
    case 'RSA-4096':
      return generate('rsa', { modulusLength: Number(alg.slice(4)), publicExponent: 0x10001 });
  }
}

/** DER SubjectPublicKeyInfo of a key (public or private). */
export function publicKeyInfoOf(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ type: 'spki', format: 'der' });
}

/**
 * Which of tierca's key algorithms a SubjectPublicKeyInfo holds, or null when it is none of them
 * (for example RSA under 2048 bits, or another curve).
 */
export function keyAlgorithmOf(spki: Buffer): KeyAlgorithm | null {
  const info = children(readOnly(spki, 0x30));
  const algId = children(expectTag(info[0], 0x30, 'AlgorithmIdentifier'));
  const algOid = decodeOid(algId[0]);
  if (algOid === OID.ecPublicKey) {
    const curve = algId[1] && algId[1].tag === 0x06 ? decodeOid(algId[1]) : '';
    if (curve === OID.prime256v1) return 'P-256';
    if (curve === OID.secp384r1) return 'P-384';
    if (curve === OID.sm2Curve) return 'SM2';
    return null;
  }
  if (algOid === OID.rsaEncryption) {
    const bits = createPublicKey({ key: spki, format: 'der', type: 'spki' }).asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits === 2048 || bits === 3072 || bits === 4096) return `RSA-${bits}` as KeyAlgorithm;
    return null;
  }
  return null;
}

/** RSA modulus length in bits, or undefined for non-RSA keys. */
export function rsaBitsOf(spki: Buffer): number | undefined {
  const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  return key.asymmetricKeyType === 'rsa' ? key.asymmetricKeyDetails?.modulusLength : undefined;
}

/**
 * The subjectPublicKey BIT STRING contents (without the unused-bits octet): what RFC 5280 §4.2.1.2
 * method 1 hashes for a key identifier and RFC 6960 §4.1.1 hashes for issuerKeyHash.
 */
export function subjectPublicKeyBits(spki: Buffer): Buffer {
  const info = children(readOnly(spki, 0x30));
  const bits = expectTag(info[1], 0x03, 'subjectPublicKey');
  return bits.content.subarray(1);
}

/** Key identifier per RFC 5280 §4.2.1.2 (1): SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spki: Buffer): Buffer {
  return createHash('sha1').update(subjectPublicKeyBits(spki)).digest();
}
