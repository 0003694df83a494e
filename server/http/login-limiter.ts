/**
 * The failed-login limiter of the admin API: per source, at most {@link MAX_FAILURES} refused
 * credentials in {@link FAILURE_WINDOW_MS}; a source that reaches it is limited for a full window
 * from that failure. Memory is bounded by `capacity` entries, and no amount of traffic from other
 * sources frees a limited one early (docs/decisions/0016-login-limiter.md):
 *
 * - Two tables share the capacity: `counting` (sources with fewer failures than the limit, oldest
 *   touched first) and `limited` (sources serving their penalty, in the order it ends, since every
 *   penalty lasts one window from an injected clock). Making room drops ended penalties and windows
 *   first, then the least recently failed *counting* source — never a limited one.
 * - If the whole table is limited sources, failures of sources not in it count in one shared
 *   overflow bucket; once that reaches the limit, every untracked source is limited until it ends
 *   (fail closed: a flood of distinct addresses cannot buy fresh tries).
 * - Sources are IPv4 addresses, and IPv6 /64 prefixes (one host usually holds a whole /64, so
 *   counting single IPv6 addresses would give it 2^64 fresh sources). IPv4-mapped IPv6 is IPv4.
 *
 * Only presented credentials that fail are counted: a request with no credentials at all never
 * limits anyone (authenticate.ts), so a shared NAT address cannot be locked out by anonymous noise.
 */
import { isIPv6 } from 'node:net';
import { parseIp } from '../../pki/extensions.ts';

export const FAILURE_WINDOW_MS = 60_000;
export const MAX_FAILURES = 20;
/** Sources tracked at most (counting and limited together); about 100 bytes each. */
export const LIMITER_CAPACITY = 10_000;

interface Counting {
  count: number;
  since: number;
}
interface Limited {
  until: number;
  /** Whether the first refusal of this penalty has been reported (audited once, not per request). */
  reported: boolean;
}

export interface LoginLimiterOptions {
  /** Milliseconds since the epoch, from the injected clock. */
  now: () => number;
  /** Default {@link MAX_FAILURES}. */
  maxFailures?: number;
  /** Default {@link FAILURE_WINDOW_MS}. */
  windowMs?: number;
  /** Default {@link LIMITER_CAPACITY}. */
  capacity?: number;
}

/** What {@link LoginLimiter.check} says about a source: `ok`, or limited (`firstRefusal` once per penalty). */
export type LimitVerdict = { limited: false } | { limited: true; firstRefusal: boolean };

export class LoginLimiter {
  private readonly counting = new Map<string, Counting>();
  private readonly limited = new Map<string, Limited>();
  private overflow: Counting = { count: 0, since: 0 };
  private overflowLimit: Limited | undefined;
  private readonly now: () => number;
  private readonly max: number;
  private readonly window: number;
  readonly capacity: number;

  constructor(opts: LoginLimiterOptions) {
    this.now = opts.now;
    this.max = opts.maxFailures ?? MAX_FAILURES;
    this.window = opts.windowMs ?? FAILURE_WINDOW_MS;
    this.capacity = opts.capacity ?? LIMITER_CAPACITY;
  }

  /** Sources held now (counting + limited); never more than `capacity`. */
  get size(): number {
    return this.counting.size + this.limited.size;
  }

  /** Whether `address` may try credentials now. */
  check(address: string): LimitVerdict {
    const key = sourceKey(address);
    const now = this.now();
    this.dropEndedPenalties(now);
    const penalty = this.limited.get(key) ?? (this.tracked(key) ? undefined : this.activeOverflow(now));
    if (!penalty) return { limited: false };
    const firstRefusal = !penalty.reported;
    penalty.reported = true;
    return { limited: true, firstRefusal };
  }

  /** Counts one refused credential from `address`. */
  recordFailure(address: string): void {
    const key = sourceKey(address);
    const now = this.now();
    if (this.limited.has(key)) return;
    let entry = this.counting.get(key);
    if (entry && now - entry.since >= this.window) entry = undefined;
    if (!entry) {
      this.counting.delete(key);
      if (!this.makeRoom(now)) return this.countOverflow(now);
      entry = { count: 0, since: now };
    }
    entry.count++;
    this.counting.delete(key); // re-insert: Map order is least recently failed first
    if (entry.count >= this.max) this.limited.set(key, { until: now + this.window, reported: false });
    else this.counting.set(key, entry);
  }

  private tracked(key: string): boolean {
    return this.counting.has(key) || this.limited.has(key);
  }

  private activeOverflow(now: number): Limited | undefined {
    if (this.overflowLimit && this.overflowLimit.until <= now) this.overflowLimit = undefined;
    return this.overflowLimit;
  }

  private countOverflow(now: number): void {
    if (this.activeOverflow(now)) return;
    if (now - this.overflow.since >= this.window) this.overflow = { count: 0, since: now };
    if (++this.overflow.count >= this.max) this.overflowLimit = { until: now + this.window, reported: false };
  }

  /** Penalties end in insertion order (each lasts one window), so the ended ones are at the front. */
  private dropEndedPenalties(now: number): void {
    for (const [key, p] of this.limited) {
      if (p.until > now) break;
      this.limited.delete(key);
    }
  }

  /** Frees one slot if the table is full: ended penalties, ended windows, then the least recently failed counting source. */
  private makeRoom(now: number): boolean {
    if (this.size < this.capacity) return true;
    this.dropEndedPenalties(now);
    for (const [key, e] of this.counting) {
      if (this.size < this.capacity || now - e.since < this.window) break;
      this.counting.delete(key);
    }
    if (this.size < this.capacity) return true;
    const oldest = this.counting.keys().next();
    if (oldest.done) return false; // every slot is a source serving its penalty: keep them all
    this.counting.delete(oldest.value);
    return true;
  }
}

/** The unit a limit applies to: an IPv4 address, or the /64 prefix of an IPv6 address. */
export function sourceKey(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return mapped[1];
  if (!isIPv6(address)) return address;
  const octets = parseIp(address.replace(/%.*$/, ''));
  return `${octets.subarray(0, 8).toString('hex')}::/64`;
}
