/**
 * Dotted object identifiers as a configuration may carry them (tier policy OIDs, the deployment's
 * arc), checked so that every X.509 stack can read what tierca writes with them.
 *
 * RFC 5280 Appendix B: "implementations MUST be able to handle OIDs with subidentifiers up to
 * 2^28 - 1" — and no more is promised. Go's crypto/x509 before 1.22 refuses a certificate whose
 * certificatePolicies hold a larger arc, and Rust's parsers (Python's `cryptography`) keep an arc in
 * 64 bits, so a `2.25.<UUID>` arc (128 bits) breaks them (docs/decisions/0010-policy-arc.md).
 */

/** The largest arc (subidentifier) RFC 5280 Appendix B asks every implementation to handle: 2^28 − 1. */
export const MAX_OID_ARC = 2 ** 28 - 1;

/**
 * RFC 5612's arc for documentation and examples (IANA enterprise number 32473). The shipped example
 * configuration and the demo use it; a real deployment uses the arc its OID registry assigned.
 */
export const DOCUMENTATION_ARC = '1.3.6.1.4.1.32473';

/**
 * What is wrong with `text` as a dotted OID, or null when it is good: at least two arcs, decimal
 * digits without leading zeros, the first arc 0, 1 or 2, the second below 40 under 0 and 1
 * (X.690 §8.19.4), and every arc — also the first subidentifier, 40 × first + second — at most
 * {@link MAX_OID_ARC} (RFC 5280 Appendix B). The message names the offending arc, e.g.
 * `arc 128645345817574449542064460584668162789 exceeds 2^28-1 (RFC 5280 App. B)`.
 */
export function oidProblem(text: unknown): string | null {
  if (typeof text !== 'string' || text.length === 0) return 'not a dotted OID (e.g. 1.2.156.112233)';
  const arcs = text.split('.');
  for (const arc of arcs) {
    if (/^-\d+$/.test(arc)) return `arc ${arc} is negative`;
    if (!/^\d+$/.test(arc)) return `${JSON.stringify(text)} is not a dotted OID (decimal arcs separated by dots)`;
    if (arc.length > 1 && arc.startsWith('0')) return `arc ${arc} has a leading zero`;
  }
  if (arcs.length < 2) return `${text} has a single arc; an OID has at least two`;
  const big = arcs.find((a) => a.length > 9 || Number(a) > MAX_OID_ARC);
  if (big) return `arc ${big} exceeds 2^28-1 (RFC 5280 App. B)`;
  const [first, second] = [Number(arcs[0]), Number(arcs[1])];
  if (first > 2) return `first arc ${first} must be 0, 1 or 2 (X.660)`;
  if (first < 2 && second >= 40) return `second arc ${second} must be below 40 under ${first} (X.690 §8.19.4)`;
  // 2.x encodes its first subidentifier as 80 + x (X.690 §8.19.4): that one must fit as well.
  if (first === 2 && 80 + second > MAX_OID_ARC) return `second arc ${second} encodes as ${80 + second}, which exceeds 2^28-1 (RFC 5280 App. B)`;
  return null;
}

/** True when `oid` is `arc` itself or lies under it (both dotted). */
export function isUnderArc(oid: string, arc: string): boolean {
  return oid === arc || oid.startsWith(`${arc}.`);
}
