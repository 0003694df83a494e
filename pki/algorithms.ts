/**
 * Key and signature algorithms tierca supports, their names in config and their DER
 * AlgorithmIdentifiers (RFC 5758 §3.2 for ECDSA, RFC 4055 §3 and §5 for RSA PKCS#1 v1.5 and PSS, GM/T
 * 0006 for SM2: sm2-with-SM3 1.2.156.10197.1.501 with parameters absent, as GmSSL, Tongsuo and OpenSSL
 * write it; SM2 keys are id-ecPublicKey on curve 1.2.156.10197.1.301).
 */
import { nullValue, oid, sequence, explicit, integer } from './der.ts';

/** Key algorithms a tier may allow. */
export const KEY_ALGORITHMS = ['P-256', 'P-384', 'RSA-2048', 'RSA-3072', 'RSA-4096', 'SM2'] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

/** How a signer with an RSA key pads; ECDSA keys ignore it. */
export type RsaPadding = 'pkcs1' | 'pss';

export const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  secp384r1: '1.3.132.0.34',
  sm2Curve: '1.2.156.10197.1.301',
  rsaEncryption: '1.2.840.113549.1.1.1',
  rsaPss: '1.2.840.113549.1.1.10',
  sha256WithRSA: '1.2.840.113549.1.1.11',
  sha384WithRSA: '1.2.840.113549.1.1.12',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  sm2WithSm3: '1.2.156.10197.1.501',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  mgf1: '1.2.840.113549.1.1.8',
} as const;

/** The digest that goes with a key algorithm for tierca's signatures. */
export function digestFor(alg: KeyAlgorithm): 'sha256' | 'sha384' | 'sm3' {
  if (alg === 'P-384') return 'sha384';
  if (alg === 'SM2') return 'sm3';
  return 'sha256';
}

/** The signature AlgorithmIdentifier (DER) a key of `alg` signs with. */
export function signatureAlgorithmIdentifier(alg: KeyAlgorithm, rsaPadding: RsaPadding = 'pkcs1'): Buffer {
  switch (alg) {
    case 'P-256':
      return sequence(oid(OID.ecdsaWithSha256));
    case 'P-384':
      return sequence(oid(OID.ecdsaWithSha384));
    case 'SM2':
      return sequence(oid(OID.sm2WithSm3));
    default:
      if (rsaPadding === 'pss') return RSA_PSS_SHA256;
      return sequence(oid(OID.sha256WithRSA), nullValue());
  }
}

/** RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt (RFC 4055 §3.1, RFC 8017 A.2.3). */
const RSA_PSS_SHA256 = sequence(
  oid(OID.rsaPss),
  sequence(
    explicit(0, sequence(oid(OID.sha256), nullValue())),
    explicit(1, sequence(oid(OID.mgf1), sequence(oid(OID.sha256), nullValue()))),
    explicit(2, integer(32)),
  ),
);

export function isKeyAlgorithm(value: string): value is KeyAlgorithm {
  return (KEY_ALGORITHMS as readonly string[]).includes(value);
}
