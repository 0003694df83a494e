/**
 * Durations as operators type them: a whole number and one unit, `90m`, `12h`, `30d`. One unit only
 * (no `1d12h`) so that what the CLI sends as `expiringWithin` is what the user read on the screen.
 */

/** Milliseconds per unit: `s` seconds, `m` minutes, `h` hours, `d` days of 24 hours. */
export const DURATION_UNITS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export type DurationUnit = keyof typeof DURATION_UNITS;

/** Longest duration accepted: 100 years of days, far beyond any certificate's lifetime. */
const MAX_MS = 36_500 * DURATION_UNITS.d;

const PATTERN = /^(\d{1,9})([smhd])$/;

/** Thrown for text that is not a duration; the message is meant for the user. */
export class DurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DurationError';
  }
}

/**
 * Milliseconds of a duration such as `30d`, `12h`, `90m` or `45s`: digits then one unit, no sign,
 * no spaces, greater than zero, at most 36500 days.
 *
 * @throws DurationError otherwise.
 */
export function parseDuration(text: string): number {
  const match = PATTERN.exec(text);
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
