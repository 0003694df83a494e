/**
 * Parsers for option values. Each throws commander's InvalidArgumentError, which commander reports
 * as `error: option '--x <v>' argument 'y' is invalid. …` and the CLI turns into exit 2.
 */
import { isIP } from 'node:net';
import { InvalidArgumentError } from 'commander';
import { DurationError, formatDuration, parseDuration } from '../pki/duration.ts';

/** RFC 5280 §5.3.1 CRLReason names, as the API takes them. */
export const REVOCATION_REASONS = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  'privilegeWithdrawn',
  'aACompromise',
] as const;

/** A whole number ≥ 1 (`--days`, `--limit`). */
export function positiveInteger(value: string): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('expected a whole number of at least 1.');
  return Number(value);
}

/** A duration (`30d`, `12h`, `90m`), returned in its canonical spelling for the API. */
export function durationText(value: string): string {
  try {
    return formatDuration(parseDuration(value));
  } catch (err) {
    if (err instanceof DurationError) throw new InvalidArgumentError(`${err.message}.`);
    throw err;
  }
}

/** An ISO-8601 time with a date, a time and a zone (`2026-03-01T08:00:00Z`), returned as UTC ISO text. */
export function isoTime(value: string): string {
  const zoned = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;
  const t = Date.parse(value);
  if (!zoned.test(value) || Number.isNaN(t)) {
    throw new InvalidArgumentError('expected an ISO-8601 time with a zone, e.g. 2026-03-01T08:00:00Z.');
  }
  return new Date(t).toISOString();
}

/** A repeatable option: each occurrence is appended. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A repeatable IPv4 or IPv6 address option. */
export function collectIp(value: string, previous: string[] | undefined): string[] {
  if (isIP(value) === 0) throw new InvalidArgumentError('expected an IPv4 or IPv6 address.');
  return collect(value, previous);
}

/**
 * A certificate serial in tierca's canonical form (lowercase hex of whole octets, no leading zero
 * octets, as the API keys certificates): accepts upper case, the colon-separated form openssl prints
 * (`00:8A:1B:…`) and an odd number of digits.
 */
export function hexSerial(value: string): string {
  let hex = value.replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{1,64}$/.test(hex)) throw new InvalidArgumentError('expected a serial in hex, e.g. 5f3a9c01d2e4b7aa.');
  if (hex.length % 2) hex = `0${hex}`;
  while (hex.length > 2 && hex.startsWith('00')) hex = hex.slice(2);
  return hex;
}
