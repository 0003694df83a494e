/**
 * The CSR attributes an EST server announces (`/csrattrs`, RFC 7030 §4.5.2): a SEQUENCE OF
 * AttrOrOID. What a tier's policy wants of a CSR, as RFC 7030's own example writes it: the key type
 * as an attribute (id-ecPublicKey with the curve, or rsaEncryption with the modulus size), the
 * signature algorithm as an OID, and extensionRequest (the names go in a subjectAltName).
 */
import { OID, type KeyAlgorithm } from './algorithms.ts';
import { integer, oid, sequence, setOf } from './der.ts';

const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

const KEY_ATTRIBUTE: Record<KeyAlgorithm, () => Buffer> = {
  'P-256': () => sequence(oid(OID.ecPublicKey), setOf(oid(OID.prime256v1))),
  'P-384': () => sequence(oid(OID.ecPublicKey), setOf(oid(OID.secp384r1))),
  SM2: () => sequence(oid(OID.ecPublicKey), setOf(oid(OID.sm2Curve))),
  'RSA-2048': () => sequence(oid(OID.rsaEncryption), setOf(integer(2048))),
  'RSA-3072': () => sequence(oid(OID.rsaEncryption), setOf(integer(3072))),
  'RSA-4096': () => sequence(oid(OID.rsaEncryption), setOf(integer(4096))),
};

const SIGNATURE: Record<KeyAlgorithm, string> = {
  'P-256': OID.ecdsaWithSha256, 'P-384': OID.ecdsaWithSha384, SM2: OID.sm2WithSm3,
  'RSA-2048': OID.sha256WithRSA, 'RSA-3072': OID.sha256WithRSA, 'RSA-4096': OID.sha256WithRSA,
};

/** The CsrAttrs DER for a tier whose preferred key algorithm is `preferred`. */
export function csrAttributes(preferred: KeyAlgorithm): Buffer {
  return sequence(KEY_ATTRIBUTE[preferred](), oid(SIGNATURE[preferred]), oid(EXTENSION_REQUEST));
}
