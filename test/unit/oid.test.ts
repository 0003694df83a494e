// Dotted OIDs a configuration carries: every arc < 2^28 (RFC 5280 App. B), first arcs legal (X.690 §8.19.4).
import { describe, expect, it } from 'vitest';
import { DOCUMENTATION_ARC, MAX_OID_ARC, isUnderArc, oidProblem } from '../../pki/oid.ts';
import { oid as encodeOid } from '../../pki/der.ts';
import { decodeOid, readOnly } from '../../pki/der-reader.ts';

describe('oidProblem', () => {
  it.each([
    DOCUMENTATION_ARC, `${DOCUMENTATION_ARC}.1.3`, '1.2.156.10197.1.501', '0.39', '2.999', `1.2.${MAX_OID_ARC}`, '2.5.29.32.0',
  ])('accepts %s, which encodes and decodes to itself', (text) => {
    expect(oidProblem(text)).toBeNull();
    expect(decodeOid(readOnly(encodeOid(text), 0x06))).toBe(text);
  });

  it.each([
    ['2.25.128645345817574449542064460584668162789', 'arc 128645345817574449542064460584668162789 exceeds 2^28-1 (RFC 5280 App. B)'],
    [`1.2.${MAX_OID_ARC + 1}`, `arc ${MAX_OID_ARC + 1} exceeds 2^28-1 (RFC 5280 App. B)`],
    ['1.2.-3', 'arc -3 is negative'],
    ['-1.2', 'arc -1 is negative'],
    ['1.2..3', '"1.2..3" is not a dotted OID (decimal arcs separated by dots)'],
    ['1.2.3.', '"1.2.3." is not a dotted OID (decimal arcs separated by dots)'],
    ['1.2.a', '"1.2.a" is not a dotted OID (decimal arcs separated by dots)'],
    [' 1.2.3', '" 1.2.3" is not a dotted OID (decimal arcs separated by dots)'],
    ['1.02.3', 'arc 02 has a leading zero'],
    ['1', '1 has a single arc; an OID has at least two'],
    ['3.1', 'first arc 3 must be 0, 1 or 2 (X.660)'],
    ['1.40', 'second arc 40 must be below 40 under 1 (X.690 §8.19.4)'],
    ['0.40.1', 'second arc 40 must be below 40 under 0 (X.690 §8.19.4)'],
    [`2.${MAX_OID_ARC}`, `second arc ${MAX_OID_ARC} encodes as ${MAX_OID_ARC + 80}, which exceeds 2^28-1 (RFC 5280 App. B)`],
    ['', 'not a dotted OID (e.g. 1.2.156.112233)'],
  ])('refuses %s: %s', (text, message) => {
    expect(oidProblem(text)).toBe(message);
  });

  it('refuses what is not a string', () => {
    expect(oidProblem(1.2)).toBe('not a dotted OID (e.g. 1.2.156.112233)');
    expect(oidProblem(undefined)).toBe('not a dotted OID (e.g. 1.2.156.112233)');
  });
});

describe('isUnderArc', () => {
  it('is the arc itself or below it, never a sibling that shares its digits', () => {
    expect(isUnderArc(`${DOCUMENTATION_ARC}.1.1`, DOCUMENTATION_ARC)).toBe(true);
    expect(isUnderArc(DOCUMENTATION_ARC, DOCUMENTATION_ARC)).toBe(true);
    expect(isUnderArc('1.3.6.1.4.1.324730.1', DOCUMENTATION_ARC)).toBe(false);
  });
});
