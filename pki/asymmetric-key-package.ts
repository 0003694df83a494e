/**
 * The asymmetric key package of RFC 5958 §3 — what EST's encrypted server-generated key carries
 * (RFC 7030 §4.4.2): `AsymmetricKeyPackage ::= SEQUENCE SIZE (1..MAX) OF OneAsymmetricKey`. A
 * PKCS#8 PrivateKeyInfo (version 0, as Node exports it) is a OneAsymmetricKey v1 (RFC 5958 §2), so
 * the package is the PKCS#8 DER in one SEQUENCE.
 */
import { sequence } from './der.ts';
import { children, readOnly } from './der-reader.ts';
import { PkiError } from './pki-error.ts';

/** id-ct-KP-aKeyPackage (RFC 5958 §3): the eContentType of a SignedData around the package. */
export const ASYMMETRIC_KEY_PACKAGE_OID = '2.16.840.1.101.2.1.2.78.5';

/** An AsymmetricKeyPackage of the given PKCS#8 (OneAsymmetricKey) DER keys, in order. */
export function asymmetricKeyPackage(keys: readonly Buffer[]): Buffer {
  if (keys.length === 0) throw new PkiError('invalid-argument', 'an AsymmetricKeyPackage holds at least one key');
  for (const key of keys) readOnly(key, 0x30);
  return sequence(...keys);
}

/** The OneAsymmetricKey DERs of a package (views into `der`). PkiError('malformed') when it is not one. */
export function keysOfPackage(der: Buffer): Buffer[] {
  const keys = children(readOnly(der, 0x30)).map((k) => k.raw);
  if (keys.length === 0 || keys.some((k) => k[0] !== 0x30)) throw new PkiError('malformed', 'not an AsymmetricKeyPackage');
  return keys;
}
