// The one X.509 time reader (pki/der-time.ts) and the one DER error: every form RFC 5280 §4.1.2.5
// allows reads back to the instant the writer encoded, everything else is a DerError that is a
// PkiError('malformed'), and the certificate, CRL and OCSP readers answer the same through it.
import { describe, expect, it } from 'vitest';
import { generalizedTime, tlv, utcTime, x509Time } from '../../pki/der.ts';
import { DerError, readOnly, expectTag } from '../../pki/der-reader.ts';
import { Tag, contextConstructed, contextPrimitive, isConstructed } from '../../pki/der-tag.ts';
import { readGeneralizedTime, readTime, readTimeAt } from '../../pki/der-time.ts';
import { PkiError } from '../../pki/pki-error.ts';

const el = (tag: number, text: string) => readOnly(tlv(tag, Buffer.from(text, 'latin1')));
const errorOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DerError);
    expect(err).toBeInstanceOf(PkiError);
    return `${(err as PkiError).code}: ${(err as Error).message}`;
  }
  throw new Error('did not throw');
};

describe('readTime (RFC 5280 §4.1.2.5)', () => {
  it('reads back what der.ts writes, UTCTime and GeneralizedTime, across the 1950/2050 windows', () => {
    for (const iso of ['1950-01-01T00:00:00Z', '1999-12-31T23:59:59Z', '2000-02-29T12:00:00Z', '2049-12-31T23:59:59Z', '2050-01-01T00:00:00Z', '9999-12-31T23:59:59Z']) {
      const date = new Date(iso);
      expect(readTime(readOnly(x509Time(date)))).toEqual(date);
      expect(readTime(readOnly(generalizedTime(date)))).toEqual(date);
      expect(readGeneralizedTime(readOnly(generalizedTime(date)))).toEqual(date);
    }
    expect(readTime(readOnly(utcTime(new Date('2049-06-01T00:00:00Z'))))).toEqual(new Date('2049-06-01T00:00:00Z'));
  });

  it('maps UTCTime years 50–99 to 19xx and 00–49 to 20xx (§4.1.2.5.1)', () => {
    expect(readTime(el(Tag.UTC_TIME, '500101000000Z')).toISOString()).toBe('1950-01-01T00:00:00.000Z');
    expect(readTime(el(Tag.UTC_TIME, '491231235959Z')).toISOString()).toBe('2049-12-31T23:59:59.000Z');
  });

  it('keeps GeneralizedTime years below 100 as they are', () => {
    expect(readTime(el(Tag.GENERALIZED_TIME, '00050101000000Z')).getUTCFullYear()).toBe(5);
  });

  it('refuses fractions, offsets, missing Z, impossible dates and other tags with a clear message', () => {
    const form = '(RFC 5280 §4.1.2.5 allows YYMMDDHHMMSSZ and YYYYMMDDHHMMSSZ only)';
    expect(errorOf(() => readTime(el(Tag.GENERALIZED_TIME, '20260304050607.5Z')))).toBe(`malformed: bad time "20260304050607.5Z" ${form}`);
    expect(errorOf(() => readTime(el(Tag.UTC_TIME, '2603040506+0100')))).toBe(`malformed: bad time "2603040506+0100" ${form}`);
    expect(errorOf(() => readTime(el(Tag.UTC_TIME, '2603040506070')))).toBe(`malformed: bad time "2603040506070" ${form}`);
    expect(errorOf(() => readTime(el(Tag.UTC_TIME, '260230000000Z')))).toBe(`malformed: bad time "260230000000Z" ${form}`);
    expect(errorOf(() => readTime(el(Tag.UTC_TIME, '260101240000Z')))).toBe(`malformed: bad time "260101240000Z" ${form}`);
    expect(errorOf(() => readTime(el(Tag.UTC_TIME, '26010100000aZ')))).toBe(`malformed: bad time "26010100000aZ" ${form}`);
    expect(errorOf(() => readTime(el(Tag.GENERALIZED_TIME, '2026010100000Z')))).toBe(`malformed: bad time "2026010100000Z" ${form}`);
    expect(errorOf(() => readTime(el(Tag.UTF8_STRING, '260101000000Z')))).toBe('malformed: a time must be a UTCTime or a GeneralizedTime, found tag 0xc');
    expect(errorOf(() => readTime(undefined, 'notAfter'))).toBe('malformed: missing notAfter');
  });

  it('GeneralizedTime only where RFC 6960 asks for it', () => {
    expect(errorOf(() => readGeneralizedTime(el(Tag.UTC_TIME, '260101000000Z'), 'thisUpdate'))).toBe(
      'malformed: thisUpdate: expected tag 0x18, found 0x17',
    );
  });

  it('reads in place inside a larger buffer (CRL entries)', () => {
    const buf = Buffer.concat([Buffer.from('xx'), Buffer.from('260304050607Z'), Buffer.from('yy')]);
    expect(readTimeAt(buf, Tag.UTC_TIME, 2, 15).toISOString()).toBe('2026-03-04T05:06:07.000Z');
  });
});

describe('DER tags and errors', () => {
  it('names the context-specific forms and the constructed bit', () => {
    expect(contextConstructed(3)).toBe(0xa3);
    expect(contextPrimitive(6)).toBe(0x86);
    expect(isConstructed(Tag.SEQUENCE)).toBe(true);
    expect(isConstructed(Tag.INTEGER)).toBe(false);
  });

  it('expectTag is the one tag check: a DerError that is a PkiError("malformed")', () => {
    const seq = readOnly(Buffer.from('3000', 'hex'));
    expect(expectTag(seq, Tag.SEQUENCE, 'issuer')).toBe(seq);
    expect(errorOf(() => expectTag(seq, Tag.SET, 'RelativeDistinguishedName'))).toBe('malformed: RelativeDistinguishedName: expected tag 0x31, found 0x30');
    expect(errorOf(() => expectTag(seq, Tag.SET))).toBe('malformed: expected tag 0x31, found 0x30');
    expect(errorOf(() => expectTag(undefined, Tag.SET))).toBe('malformed: missing element');
    expect(errorOf(() => readOnly(Buffer.from('3001', 'hex')))).toBe('malformed: truncated DER content');
  });
});
