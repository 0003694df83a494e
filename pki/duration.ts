/**
 * The one duration parser: durations as operators type them, a whole number and one unit, `90m`,
 * `12h`, `30d`. One unit only (no `1d12h`) so that what the CLI sends as `expiringWithin` is what
 * the user read on the screen. Pure, in pki/ so that the CLI and the server can both import it.
 */
import { PkiError } from './pki-error.ts';
import { DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS } from './time-constants.ts';

/** Milliseconds per unit: `s` seconds, `m` minutes, `h` hours, `d` days of 24 hours. */
export const DURATION_UNITS = { s: SECOND_MS, m: MINUTE_MS, h: HOUR_MS, d: DAY_MS } as const;

export type DurationUnit = keyof typeof DURATION_UNITS;

/** Longest duration accepted: 100 years of days, far beyond any certificate's lifetime. */
const MAX_MS = 36_500 * DURATION_UNITS.d;

const PATTERN = /^(\d{1,9})([smhd])$/;
const ALL_UNITS: readonly DurationUnit[] = ['s', 'm', 'h', 'd'];

/** Thrown for text that is not a duration: a PkiError('invalid-argument'); the message is meant for the user. */
export class DurationError extends PkiError {
  constructor(message: string) {
    super('invalid-argument', message);
    this.name = 'DurationError';
  }
}

/**
 * Milliseconds of a duration such as `30d`, `12h`, `90m` or `45s`: digits then one unit, no sign,
 * no spaces, greater than zero, at most 36500 days. `units` narrows the units accepted (default all
 * four; the API's `expiringWithin` and `within` take `d`, `h` and `m`).
 *
 * @throws DurationError otherwise.
 */
export function parseDuration(text: string, units: readonly DurationUnit[] = ALL_UNITS): number {
  const match = PATTERN.exec(text);
  if (match && !units.includes(match[2] as DurationUnit)) {
    throw new DurationError(`"${text}" is not a duration: use a whole number and one unit (${units.join(', ')})`);
  }
  if (!match) {
    throw new DurationError(`"${text}" is not a duration: use a whole number and one unit (s, m, h, d), e.g. 30d, 12h, 90m`);
  }
  const ms = Number(match[1]) * DURATION_UNITS[match[2] as DurationUnit];
  if (ms === 0) throw new DurationError(`"${text}" is not a duration: it must be greater than zero`);
  if (ms > MAX_MS) throw new DurationError(`"${text}" is too long: at most 36500d`);
  return ms;
}

/**
 * A duration in milliseconds written with the largest unit that divides it exactly (`2592000000` →
 * `30d`, `5400000` → `90m`); the inverse of {@link parseDuration} for whole seconds.
 *
 * @throws DurationError for a value that is not a positive whole number of seconds.
 */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms <= 0 || ms % DURATION_UNITS.s !== 0) {
    throw new DurationError(`${ms} ms is not a positive whole number of seconds`);
  }
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms % DURATION_UNITS[unit] === 0) return `${ms / DURATION_UNITS[unit]}${unit}`;
  }
  // Unreachable: every whole number of seconds divides by `s`.
  throw new DurationError(`${ms} ms cannot be formatted`);
}
