// The failed-login limiter (server/http/login-limiter.ts) on a fake clock: the limit, the penalty,
// eviction pressure that never frees a limited source, the bounded table, the overflow bucket that
// fails closed, and IPv6 sources counted per /64.
import { describe, expect, it } from 'vitest';
import { LoginLimiter, sourceKey, MAX_FAILURES, FAILURE_WINDOW_MS, LIMITER_CAPACITY } from '../../server/http/login-limiter.ts';
import { FixedClock } from '../../server/clock.ts';

const T0 = new Date('2026-12-01T08:00:00Z');
const v4 = (n: number) => `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;

function limiterOn(clock = new FixedClock(T0), capacity?: number) {
  return { clock, limiter: new LoginLimiter({ now: () => clock.now().getTime(), capacity }) };
}

describe('LoginLimiter', () => {
  it('has the documented defaults', () => {
    expect([MAX_FAILURES, FAILURE_WINDOW_MS, LIMITER_CAPACITY]).toEqual([20, 60_000, 10_000]);
  });

  it('allows 20 failures, limits the 21st try for one window from the 20th failure, and reports the first refusal once', () => {
    const { clock, limiter } = limiterOn();
    for (let i = 0; i < 20; i++) {
      expect(limiter.check('127.0.0.9')).toEqual({ limited: false });
      limiter.recordFailure('127.0.0.9');
      clock.advance(1000);
    }
    expect(limiter.check('127.0.0.9')).toEqual({ limited: true, firstRefusal: true });
    expect(limiter.check('127.0.0.9')).toEqual({ limited: true, firstRefusal: false });
    expect(limiter.check('127.0.0.10')).toEqual({ limited: false });
    // The 20th failure was at T0 + 19 s: the penalty ends at T0 + 79 s, to the millisecond.
    clock.set(new Date(T0.getTime() + 79_000 - 1));
    expect(limiter.check('127.0.0.9').limited).toBe(true);
    clock.advance(1);
    expect(limiter.check('127.0.0.9')).toEqual({ limited: false });
    expect(limiter.size).toBe(0);
  });

  it('forgets failures older than the window', () => {
    const { clock, limiter } = limiterOn();
    for (let i = 0; i < 19; i++) limiter.recordFailure('127.0.0.9');
    clock.advance(FAILURE_WINDOW_MS);
    for (let i = 0; i < 19; i++) limiter.recordFailure('127.0.0.9');
    expect(limiter.check('127.0.0.9')).toEqual({ limited: false });
    limiter.recordFailure('127.0.0.9');
    expect(limiter.check('127.0.0.9').limited).toBe(true);
  });

  it('keeps a limited source limited under 10,050 failures from distinct addresses, with the table at its bound', () => {
    const { clock, limiter } = limiterOn();
    for (let i = 0; i < 20; i++) limiter.recordFailure('127.0.0.9');
    expect(limiter.check('127.0.0.9').limited).toBe(true);
    for (let n = 0; n < 10_050; n++) {
      limiter.recordFailure(v4(n));
      expect(limiter.size).toBeLessThanOrEqual(LIMITER_CAPACITY);
    }
    clock.advance(30_000);
    for (let n = 10_050; n < 20_100; n++) limiter.recordFailure(v4(n));
    expect(limiter.size).toBe(LIMITER_CAPACITY);
    expect(limiter.check('127.0.0.9').limited).toBe(true);
    clock.advance(30_000);
    expect(limiter.check('127.0.0.9')).toEqual({ limited: false });
  });

  it('when every slot holds a limited source, untracked sources share one bucket that fails closed', () => {
    const { clock, limiter } = limiterOn(new FixedClock(T0), 50);
    for (let n = 0; n < 50; n++) for (let i = 0; i < 20; i++) limiter.recordFailure(v4(n));
    expect(limiter.size).toBe(50);
    expect(limiter.check(v4(0)).limited).toBe(true);
    // A new source still may try until the overflow bucket fills, and it is not stored.
    for (let n = 100; n < 119; n++) {
      expect(limiter.check(v4(n))).toEqual({ limited: false });
      limiter.recordFailure(v4(n));
    }
    expect(limiter.size).toBe(50);
    limiter.recordFailure(v4(119));
    expect(limiter.check(v4(500))).toEqual({ limited: true, firstRefusal: true });
    expect(limiter.check(v4(501))).toEqual({ limited: true, firstRefusal: false });
    expect(limiter.check(v4(49)).limited).toBe(true);
    clock.advance(FAILURE_WINDOW_MS);
    expect(limiter.check(v4(500))).toEqual({ limited: false });
    expect(limiter.check(v4(0))).toEqual({ limited: false });
    limiter.recordFailure(v4(500));
    expect(limiter.size).toBe(1);
  });

  it('evicts counting sources (least recently failed first), never limited ones', () => {
    const { limiter } = limiterOn(new FixedClock(T0), 3);
    for (let i = 0; i < 20; i++) limiter.recordFailure('a');
    limiter.recordFailure('b');
    limiter.recordFailure('c');
    limiter.recordFailure('b');
    limiter.recordFailure('d'); // evicts c (b failed later)
    for (let i = 0; i < 17; i++) limiter.recordFailure('b');
    expect(limiter.check('b').limited).toBe(false);
    limiter.recordFailure('b'); // b's 20th: it was never evicted
    expect([limiter.check('a').limited, limiter.check('b').limited, limiter.size]).toEqual([true, true, 3]);
  });

  it('counts IPv6 per /64 and IPv4-mapped IPv6 as IPv4', () => {
    expect(sourceKey('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(sourceKey('127.0.0.1')).toBe('127.0.0.1');
    expect(sourceKey('2001:db8:1:2:aaaa::1')).toBe('20010db800010002::/64');
    expect(sourceKey('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe('20010db800010002::/64');
    expect(sourceKey('fe80::1%eth0')).toBe('fe80000000000000::/64');
    const { limiter } = limiterOn();
    for (let i = 0; i < 20; i++) limiter.recordFailure(`2001:db8:1:2::${(i + 1).toString(16)}`);
    expect(limiter.check('2001:db8:1:2:dead:beef::77').limited).toBe(true);
    expect(limiter.check('2001:db8:1:3::1').limited).toBe(false);
  });
});
