/**
 * The certs-only PKCS#7 of EST (RFC 7030 §4.1.3, §4.2.3; RFC 5652 §5): a degenerate SignedData —
 * no content, no signers — whose `certificates` carry the CA chain or an issued certificate. It is
 * a few fixed DER wrappers around certificates tierca already holds, built here rather than through
 * pkijs (a devDependency only); openssl `pkcs7 -print_certs` reads it in the tests.
 */
import { implicitConstructed, integer, oid, sequence, setOf, explicit } from './der.ts';

const SIGNED_DATA = '1.2.840.113549.1.7.2';
const DATA = '1.2.840.113549.1.7.1';

/** ContentInfo { signedData, SignedData { v1, {}, { data }, [0] certificates, {} } } in DER. */
export function certsOnly(certificates: readonly Buffer[]): Buffer {
  const signedData = sequence(
    integer(1),
    setOf(), // digestAlgorithms: none, nothing is signed
    sequence(oid(DATA)), // encapContentInfo without eContent
    implicitConstructed(0, [...certificates]),
    setOf(), // signerInfos: none
  );
  return sequence(oid(SIGNED_DATA), explicit(0, signedData));
}
