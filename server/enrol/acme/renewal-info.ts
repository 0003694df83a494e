/**
 * ACME Renewal Information (RFC 9773): the certificate identifier (`base64url(AKI keyIdentifier) "."
 * base64url(serial DER content octets)`) and the suggested renewal window of a certificate.
 *
 * The window: from the tier's `renewAtFraction` of the lifetime to halfway between that point and
 * notAfter. It moves to now — a window just past, which RFC 9773 §4.2 says to act on at once — when
 * the certificate is revoked (its key compromised or its holder gone), when its CA or a CA above it is
 * revoked or retired, or when its CA has rolled over to a new generation: then every affected
 * certificate's client renews on its next poll, and a fleet re-keys in minutes.
 */
import { AcmeProblem } from './acme-problem.ts';

/** How long a client waits before asking again (the Retry-After of a renewalInfo answer). */
export const RENEWAL_INFO_RETRY_SECONDS = 3600;
/** A window "now" is the last five minutes: already open, already closed, so the client acts at once. */
const URGENT_MS = 5 * 60_000;

/** The DER content octets of a positive serial given as hex (a 00 octet first when the top bit is set). */
export function serialOctets(serialHex: string): Buffer {
  const even = serialHex.length % 2 ? `0${serialHex}` : serialHex;
  const octets = Buffer.from(even, 'hex');
  return octets[0] & 0x80 ? Buffer.concat([Buffer.from([0]), octets]) : octets;
}

export function certIdOf(authorityKeyId: Buffer, serialHex: string): string {
  return `${authorityKeyId.toString('base64url')}.${serialOctets(serialHex).toString('base64url')}`;
}

/** Splits a certID into the AKI keyIdentifier and the serial hex; malformed text is `malformed`. */
export function parseCertId(text: string): { authorityKeyId: Buffer; serial: string } {
  const parts = text.split('.');
  const b64url = /^[A-Za-z0-9_-]+$/;
  if (parts.length !== 2 || !b64url.test(parts[0]) || !b64url.test(parts[1]) || parts[1].length > 44) {
    throw new AcmeProblem('malformed', 'a certificate identifier is base64url(AKI keyIdentifier).base64url(serial)');
  }
  const serial = Buffer.from(parts[1], 'base64url');
  if (!serial.length || serial[0] & 0x80) throw new AcmeProblem('malformed', 'the serial of a certificate identifier is a positive DER INTEGER');
  return { authorityKeyId: Buffer.from(parts[0], 'base64url'), serial: serial.toString('hex').replace(/^(00)+(?=.)/, '') };
}

export interface WindowInput {
  notBefore: Date;
  notAfter: Date;
  renewAtFraction: number;
  /** Why the certificate should be replaced now, if anything says so. */
  urgent: string | null;
  now: Date;
}

export interface SuggestedWindow {
  start: Date;
  end: Date;
  /** Why the window is now (shown to operators; not part of RFC 9773's JSON). */
  reason: string | null;
}

export function suggestedWindow(p: WindowInput): SuggestedWindow {
  if (p.urgent) return { start: new Date(p.now.getTime() - URGENT_MS), end: new Date(p.now.getTime() - 1000), reason: p.urgent };
  const life = p.notAfter.getTime() - p.notBefore.getTime();
  const start = p.notBefore.getTime() + life * p.renewAtFraction;
  const end = start + (p.notAfter.getTime() - start) / 2;
  return { start: new Date(start), end: new Date(end), reason: null };
}
