/**
 * X.509 v3 certificate building (RFC 5280 §4.1).
 *
 * Built on the hand-made DER encoder in ./der.ts, not asn1js/pkijs: asn1js spends ~2 ms of
 * object-model work per certificate (../shared/PERFORMANCE-NOTES.md), which would cap issuance near
 * 450 certificates/s, while tierca needs more than 1,000/s and a P-256 signature costs ~28 µs. Here a
 * certificate is a few Buffer concatenations around one signature. Every structure is proven by the
 * openssl CLI and read back by @peculiar/x509 in test/interop/certificate-chain.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { bitString, explicit, integer, sequence, x509Time, wholeSeconds } from './der.ts';
import { readOnly } from './der-reader.ts';
import { encodeExtensions, type Extension } from './extensions.ts';
import { PkiError } from './pki-error.ts';
import type { Signer } from './signer.ts';

export interface CertificateParams {
  /** Serial number as a positive big-endian magnitude (no sign octet needed), at most 20 octets once encoded (RFC 5280 §4.1.2.2). */
  serial: Buffer;
  /** DER Name of the issuer: byte for byte the subject of the issuer's certificate (RFC 5280 §6.1 name chaining compares them). */
  issuer: Buffer;
  /** DER Name of the subject. */
  subject: Buffer;
  /** Start of validity; fractional seconds are dropped (RFC 5280 §4.1.2.5). */
  notBefore: Date;
  /** End of validity (inclusive); fractional seconds are dropped. */
  notAfter: Date;
  /** DER SubjectPublicKeyInfo of the subject's key. */
  publicKeyInfo: Buffer;
  /** The extensions, in order; none means a certificate without the `[3]` field. */
  extensions: readonly Extension[];
  /** Signs the TBSCertificate; its signatureAlgorithm goes in both signature fields (RFC 5280 §4.1.1.2). */
  signer: Signer;
}

const VERSION_3 = explicit(0, integer(2));

/**
 * The DER of a signed X.509 v3 certificate. Times are whole seconds, UTCTime through 2049 and
 * GeneralizedTime from 2050 (RFC 5280 §4.1.2.5, der.x509Time).
 *
 * @throws PkiError('invalid-argument') for a zero or over-long serial, notAfter before notBefore, or
 * an issuer, subject or public key that is not one DER SEQUENCE.
 */
export async function buildCertificate(p: CertificateParams): Promise<Buffer> {
  return signTbsCertificate(tbsCertificate(p), p.signer);
}

/**
 * The DER certificate of `tbs` (made by {@link tbsCertificate} with this signer's algorithm) signed by
 * `signer`: for callers that check the TBSCertificate before the key signs it (prepare, lint, sign).
 */
export async function signTbsCertificate(tbs: Buffer, signer: Signer): Promise<Buffer> {
  const signature = await signer.sign(tbs);
  return sequence(tbs, signer.signatureAlgorithm, bitString(signature));
}

/** The TBSCertificate that {@link buildCertificate} signs. */
export function tbsCertificate(p: Omit<CertificateParams, 'signer'> & { signer: Pick<Signer, 'signatureAlgorithm'> }): Buffer {
  const serial = integer(p.serial);
  // INTEGER content (after the 2 header octets) is the DER form: positive, minimal, ≤ 20 octets.
  if (serial.length - 2 > 20) throw new PkiError('invalid-argument', 'serial number longer than 20 octets (RFC 5280 §4.1.2.2)');
  if (p.serial.every((b) => b === 0)) throw new PkiError('invalid-argument', 'serial number must be positive (RFC 5280 §4.1.2.2)');
  const notBefore = wholeSeconds(p.notBefore);
  const notAfter = wholeSeconds(p.notAfter);
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) throw new PkiError('invalid-argument', 'invalid validity date');
  if (notAfter < notBefore) throw new PkiError('invalid-argument', 'notAfter is before notBefore');
  checkSequence(p.issuer, 'issuer');
  checkSequence(p.subject, 'subject');
  checkSequence(p.publicKeyInfo, 'publicKeyInfo');
  const parts = [
    VERSION_3,
    serial,
    p.signer.signatureAlgorithm,
    p.issuer,
    sequence(x509Time(notBefore), x509Time(notAfter)),
    p.subject,
    p.publicKeyInfo,
  ];
  if (p.extensions.length > 0) parts.push(explicit(3, encodeExtensions(p.extensions)));
  return sequence(...parts);
}

function checkSequence(der: Buffer, what: string): void {
  try {
    readOnly(der, 0x30);
  } catch {
    throw new PkiError('invalid-argument', `${what} is not one DER SEQUENCE`);
  }
}

/**
 * A fresh serial number: 16 octets from the CSPRNG with the top bit cleared, so that the INTEGER is
 * positive without a sign octet, and the first octet never zero, so that it is always 16 octets long
 * — about 127 bits of entropy (RFC 5280 §4.1.2.2; CA/B Forum BR §7.1 asks for at least 64; GM/T 0015
 * readers want at least 8 octets).
 *
 * @param random source of random octets; default crypto.randomBytes (tests inject a fixed one).
 */
export function randomSerial(random: (n: number) => Buffer = randomBytes): Buffer {
  const serial = Buffer.from(random(16));
  if (serial.length !== 16) throw new PkiError('invalid-argument', 'random source returned the wrong number of octets');
  serial[0] &= 0x7f;
  // Never a leading zero octet: the INTEGER is always 16 octets, never shorter — the stricter SM2
  // verifiers want at least 8 (GM/T 0015), and a fixed length is easier on every reader. (A zero
  // first octet becomes 1: the other 120 random bits are untouched.)
  if (serial[0] === 0) serial[0] = 1;
  return serial;
}

/** tierca's canonical serial text: lowercase hex of the magnitude without leading zero octets (`00` for zero). */
export function serialToHex(serial: Buffer): string {
  let start = 0;
  while (start < serial.length - 1 && serial[start] === 0) start++;
  return serial.length === 0 ? '00' : serial.subarray(start).toString('hex');
}
