/**
 * What the PKCS#11 keystore needs to know per key algorithm, and the encodings between PKCS#11
 * attributes and X.509: the SubjectPublicKeyInfo of a token key (RFC 5480 §2 for EC, RFC 8017 A.1.1
 * with RFC 3279 §2.3.1 for RSA) and the ECDSA-Sig-Value of a CKM_ECDSA signature (RFC 5480 §2.2 /
 * RFC 3279 §2.2.3). The SPKI is built by Node's crypto from the key's JWK, so its DER is OpenSSL's
 * canonical encoding, identical to what the software keystore makes for the same key.
 */
import { createPublicKey } from 'node:crypto';
import { OID, type KeyAlgorithm } from '../algorithms.ts';
import { integer, oid, sequence } from '../der.ts';
import { PkiError } from '../pki-error.ts';

/** An EC curve as PKCS#11 names it (CKA_EC_PARAMS = DER OID, PKCS#11 v2.40 §2.3.3) and as JWK names it. */
interface EcSpec {
  kind: 'ec';
  ecParams: Buffer;
  jwkCurve: 'P-256' | 'P-384';
  /** Octets of one coordinate (and of r and s). */
  size: number;
}

interface RsaSpec {
  kind: 'rsa';
  bits: number;
}

export type Pkcs11KeySpec = EcSpec | RsaSpec;

/** The token-side description of a tierca key algorithm; SM2 is refused (no SoftHSM2 mechanism, no GM/T 0009 digest here). */
export function keySpecOf(algorithm: KeyAlgorithm): Pkcs11KeySpec {
  switch (algorithm) {
    case 'P-256':
      return { kind: 'ec', ecParams: oid(OID.prime256v1), jwkCurve: 'P-256', size: 32 };
    case 'P-384':
      return { kind: 'ec', ecParams: oid(OID.secp384r1), jwkCurve: 'P-384', size: 48 };
    case 'RSA-2048':
    case 'RSA-3072':
    case 'RSA-4096':
      return { kind: 'rsa', bits: Number(algorithm.slice(4)) };
    default:
      throw new PkiError('unsupported-algorithm', `the PKCS#11 keystore does not hold ${algorithm} keys`);
  }
}

/**
 * The uncompressed point from CKA_EC_POINT. PKCS#11 v2.40 §2.3.3 says the attribute is the DER
 * OCTET STRING of the X9.62 ECPoint (SoftHSM2 does so); some tokens give the raw point: accept both,
 * told apart by length, and refuse anything but an uncompressed point of the curve's size.
 */
export function uncompressedPoint(ecPoint: Buffer, spec: EcSpec): Buffer {
  const raw = 1 + 2 * spec.size;
  let point = ecPoint;
  if (ecPoint.length === raw + 2 && ecPoint[0] === 0x04 && ecPoint[1] === raw) point = ecPoint.subarray(2);
  if (point.length !== raw || point[0] !== 0x04) throw new PkiError('malformed', 'CKA_EC_POINT is not an uncompressed point of the key\'s curve');
  return point;
}

/** DER SubjectPublicKeyInfo of an EC token key from its CKA_EC_POINT. */
export function ecPublicKeyInfo(ecPoint: Buffer, spec: EcSpec): Buffer {
  const point = uncompressedPoint(ecPoint, spec);
  const x = point.subarray(1, 1 + spec.size).toString('base64url');
  const y = point.subarray(1 + spec.size).toString('base64url');
  return createPublicKey({ key: { kty: 'EC', crv: spec.jwkCurve, x, y }, format: 'jwk' }).export({ type: 'spki', format: 'der' });
}

/** DER SubjectPublicKeyInfo of an RSA token key from CKA_MODULUS and CKA_PUBLIC_EXPONENT (big-endian magnitudes). */
export function rsaPublicKeyInfo(modulus: Buffer, publicExponent: Buffer): Buffer {
  const strip = (b: Buffer) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    return b.subarray(i).toString('base64url');
  };
  return createPublicKey({ key: { kty: 'RSA', n: strip(modulus), e: strip(publicExponent) }, format: 'jwk' }).export({ type: 'spki', format: 'der' });
}

/**
 * DER ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (RFC 3279 §2.2.3) from the r ‖ s that
 * CKM_ECDSA returns (PKCS#11 v2.40 §2.3.1: r and s each of the curve's order length).
 */
export function ecdsaSigValue(raw: Buffer, spec: EcSpec): Buffer {
  if (raw.length !== 2 * spec.size) throw new PkiError('malformed', `the token returned a ${raw.length}-octet ECDSA signature, not ${2 * spec.size}`);
  return sequence(integer(raw.subarray(0, spec.size)), integer(raw.subarray(spec.size)));
}
