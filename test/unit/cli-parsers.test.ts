// pki/duration.ts (the one duration parser) and the option parsers of cli/option-parsers.ts.
import { describe, expect, it } from 'vitest';
import { DurationError, formatDuration, parseDuration } from '../../pki/duration.ts';
import { durationText, hexSerial } from '../../cli/option-parsers.ts';
import { PkiError } from '../../pki/pki-error.ts';

describe('parseDuration', () => {
  it.each([
    ['45s', 45_000],
    ['90m', 90 * 60_000],
    ['12h', 12 * 3_600_000],
    ['30d', 30 * 86_400_000],
    ['1d', 86_400_000],
    ['36500d', 36_500 * 86_400_000],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '30', 'd', '30 d', ' 30d', '30D', '1.5h', '-1d', '+1d', '1d12h', '2w', '30days', '0d', '0s', '36501d', '1234567890s'])(
    'refuses %j',
    (text) => {
      expect(() => parseDuration(text)).toThrow(DurationError);
    },
  );

  it('says how to write one', () => {
    expect(() => parseDuration('3x')).toThrow('"3x" is not a duration: use a whole number and one unit (s, m, h, d), e.g. 30d, 12h, 90m');
    expect(() => parseDuration('0h')).toThrow('"0h" is not a duration: it must be greater than zero');
    expect(() => parseDuration('99999d')).toThrow('"99999d" is too long: at most 36500d');
  });

  it('takes a narrower set of units when asked (the API has no seconds) and is a PkiError("invalid-argument")', () => {
    expect(parseDuration('90m', ['d', 'h', 'm'])).toBe(90 * 60_000);
    expect(() => parseDuration('45s', ['d', 'h', 'm'])).toThrow('"45s" is not a duration: use a whole number and one unit (d, h, m)');
    try {
      parseDuration('x');
    } catch (err) {
      expect(err).toBeInstanceOf(PkiError);
      expect((err as PkiError).code).toBe('invalid-argument');
    }
    expect.assertions(4);
  });
});

describe('formatDuration', () => {
  it.each([
    [30 * 86_400_000, '30d'],
    [36 * 3_600_000, '36h'],
    [90 * 60_000, '90m'],
    [61_000, '61s'],
    [86_400_000 + 1_000, '86401s'],
  ])('%d ms is %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips every unit', () => {
    for (const text of ['1s', '59s', '1m', '59m', '1h', '23h', '1d', '400d']) expect(formatDuration(parseDuration(text))).toBe(text);
  });

  it('refuses what is not a positive whole number of seconds', () => {
    for (const ms of [0, -1000, 1500, Number.NaN, 1.5]) expect(() => formatDuration(ms)).toThrow(DurationError);
  });
});

describe('durationText (the --expiring-within parser)', () => {
  it('sends the canonical spelling', () => {
    expect(durationText('30d')).toBe('30d');
    expect(durationText('24h')).toBe('1d');
    expect(durationText('120m')).toBe('2h');
  });

  it('throws commander InvalidArgumentError with the message', () => {
    expect(() => durationText('soon')).toThrow(expect.objectContaining({ code: 'commander.invalidArgument' }));
  });
});

describe('hexSerial (the <serial> parser)', () => {
  it('gives the canonical form the API keys certificates by', () => {
    expect(hexSerial('5F:3A:9C:01')).toBe('5f3a9c01');
    expect(hexSerial('00:8a:1b')).toBe('8a1b');
    expect(hexSerial('00ff')).toBe('ff');
    expect(hexSerial('fff')).toBe('0fff');
    expect(hexSerial('a')).toBe('0a');
    expect(hexSerial('00')).toBe('00');
    expect(() => hexSerial('0x1f')).toThrow('expected a serial in hex');
    expect(() => hexSerial('')).toThrow('expected a serial in hex');
  });
});
