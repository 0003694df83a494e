/**
 * CA lifetimes in calendar years, so that a CA made at 14:49 ends at 14:49 on the same day N years on.
 */

/** `years` calendar years after `date` (same month, day and time; 29 February becomes 1 March). */
export function addYears(date: Date, years: number): Date {
  const d = new Date(date.getTime());
  d.setUTCFullYear(d.getUTCFullYear() + years);
  return d;
}
