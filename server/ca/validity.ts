/**
 * CA lifetimes in calendar years, so that a CA made at 14:49 ends at 14:49 on the same day N years on.
 */

/** `years` calendar years after `date` (same month, day and time; 29 February becomes 1 March). */
export function addYears(date: Date, years: number): Date {
  const d = new Date(date.getTime());
  d.setUTCFullYear(d.getUTCFullYear() + years);
  return d;
}

/** A notBefore/notAfter pair. */
export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

/**
 * `wanted` clamped into `issuer`'s validity: notBefore no earlier than the issuer's notBefore,
 * notAfter no later than its notAfter. RFC 5280 §6.1.3 (a)(2) checks each certificate of a path
 * at the validation time only, but a certificate valid when its issuer is not — the minute of
 * back-dating a freshly made CA's first leaves get, or a link certificate that keeps the old
 * certificate's start — is one that strict relying parties (and `openssl verify -attime`) refuse at
 * that instant. A child never starts before, nor ends after, its issuer.
 */
export function nestValidity(wanted: Validity, issuer: Validity): Validity {
  return {
    notBefore: new Date(Math.max(wanted.notBefore.getTime(), issuer.notBefore.getTime())),
    notAfter: new Date(Math.min(wanted.notAfter.getTime(), issuer.notAfter.getTime())),
  };
}
