/**
 * SM2 keys as Node KeyObjects, and the numbers the SM2 arithmetic (./sm2.ts) needs from them.
 *
 * Node (OpenSSL 3.0) has two kinds of SM2 KeyObject: `generateKeyPair('ec', {namedCurve: 'SM2'})`
 * gives an EC key that `crypto.sign` uses for plain ECDSA on the SM2 curve, and the same key read back
 * from its PKCS#8 is an SM2 key (`asymmetricKeyType` undefined) that `crypto.sign('sm3')` uses for
 * SM2 with an empty identity. tierca signs with neither (./sm2-signer.ts), but keeps the second kind
 * so that no code path can make an ECDSA signature with an SM2 key. Neither kind exports JWK, and
 * exporting the second kind as SEC 1 aborts the process (a failed native assertion in Node 20.20):
 * the scalar is read from the PKCS#8 instead.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import type { WeierstrassPoint } from '@noble/curves/abstract/weierstrass.js';
import { OID } from './algorithms.ts';
import { children, decodeOid, expectTag, readOnly, type DerElement } from './der-reader.ts';
import { PkiError } from './pki-error.ts';
import { sm2p256v1, type Sm2SigningKey } from './sm2.ts';

/** Whether a DER AlgorithmIdentifier of a key is id-ecPublicKey with the SM2 curve (GM/T 0006 1.2.156.10197.1.301). */
function isSm2KeyAlgorithm(algorithm: DerElement): boolean {
  const [algOid, params] = children(expectTag(algorithm, 0x30, 'key AlgorithmIdentifier'));
  return decodeOid(algOid) === OID.ecPublicKey && params?.tag === 0x06 && decodeOid(params) === OID.sm2Curve;
}

/**
 * The SM2 public key of a DER SubjectPublicKeyInfo, or null when the key is not an SM2 key.
 *
 * @throws PkiError('malformed') for an SM2 key whose point is not on the curve, or unreadable DER.
 */
export function sm2PublicPointOf(spki: Buffer): WeierstrassPoint<bigint> | null {
  let bits: Buffer;
  try {
    const [algorithm, key] = children(readOnly(spki, 0x30));
    if (!isSm2KeyAlgorithm(algorithm)) return null;
    const bitString = expectTag(key, 0x03, 'subjectPublicKey').content;
    if (bitString[0] !== 0) throw new PkiError('malformed', 'malformed public key: unused bits');
    bits = bitString.subarray(1);
  } catch (err) {
    if (err instanceof PkiError) throw err;
    throw new PkiError('malformed', 'malformed public key');
  }
  return sm2p256v1.pointFromBytes(bits);
}

/**
 * The private scalar d of an SM2 private KeyObject, read from its PKCS#8 (RFC 5208 §5 PrivateKeyInfo
 * holding an RFC 5915 ECPrivateKey). The exported PKCS#8 is wiped before returning.
 *
 * @throws PkiError('unsupported-algorithm') for a key that is not SM2; PkiError('malformed') for a
 * scalar outside [1, n − 2].
 */
export function sm2PrivateScalarOf(privateKey: KeyObject): bigint {
  if (privateKey?.type !== 'private') throw new PkiError('invalid-argument', 'an SM2 signer needs a private KeyObject');
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  try {
    const [, algorithm, wrapped] = children(readOnly(pkcs8, 0x30));
    if (!isSm2KeyAlgorithm(algorithm)) throw new PkiError('unsupported-algorithm', 'the key is not an SM2 key');
    const [version, scalar] = children(readOnly(expectTag(wrapped, 0x04, 'privateKey').content, 0x30));
    const v = expectTag(version, 0x02, 'ECPrivateKey version').content;
    if (v.length !== 1 || v[0] !== 1) throw new PkiError('malformed', 'ECPrivateKey version is not 1 (RFC 5915 §3)');
    const octets = expectTag(scalar, 0x04, 'ECPrivateKey privateKey').content;
    const d = BigInt(`0x${octets.toString('hex') || '0'}`);
    if (d < 1n || d > sm2p256v1.params.n - 2n) throw new PkiError('malformed', 'an SM2 private key must lie in [1, n − 2]');
    return d;
  } catch (err) {
    if (err instanceof PkiError) throw err;
    throw new PkiError('malformed', `malformed SM2 private key: ${(err as Error).message}`);
  } finally {
    pkcs8.fill(0);
  }
}

/**
 * The SM2 form of an SM2 private key: read back from its own PKCS#8, so that Node treats it as SM2
 * and never as an ECDSA key (see the file comment). The PKCS#8 is wiped.
 */
export function asSm2KeyObject(privateKey: KeyObject): KeyObject {
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  try {
    return createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  } finally {
    pkcs8.fill(0);
  }
}

/**
 * d, d·G and (1 + d)⁻¹ of an SM2 private key, checked against the key's own SubjectPublicKeyInfo (a
 * PKCS#8 whose scalar and public key disagree is refused).
 *
 * @throws PkiError('unsupported-algorithm') for a key that is not SM2; PkiError('malformed') for an
 * inconsistent key.
 */
export function sm2SigningKeyOf(privateKey: KeyObject): { key: Sm2SigningKey; publicKeyInfo: Buffer } {
  const d = sm2PrivateScalarOf(privateKey);
  const key = sm2p256v1.signingKey(d);
  const publicKeyInfo = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const published = sm2PublicPointOf(publicKeyInfo);
  if (!published || !published.equals(key.publicPoint)) {
    throw new PkiError('malformed', 'the SM2 private key does not match its public key');
  }
  return { key, publicKeyInfo };
}
