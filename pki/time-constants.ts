/**
 * Lengths of time in milliseconds, the unit of `Date.getTime()` and of every `*Ms` value in tierca.
 * One module for the whole code base (pki/, server/, cli/ and bench/ may all import pki/), so that
 * `HOUR_MS` is written once. A day is 24 hours: tierca's validities and windows are counted in
 * elapsed time, not calendar days (RFC 5280 times are UTC, without leap seconds). There is no
 * YEAR_MS on purpose: a year of validity is calendar arithmetic (server/ca/validity.ts).
 */
export const SECOND_MS = 1_000;
export const MINUTE_MS = 60 * SECOND_MS;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;
