/**
 * The one reader of X.509 times (RFC 5280 §4.1.2.5): UTCTime `YYMMDDHHMMSSZ` and GeneralizedTime
 * `YYYYMMDDHHMMSSZ`, the only forms RFC 5280 allows in certificates (§4.1.2.5), CRLs (§5.1.2.4,
 * §5.1.2.6, §5.3.2) and, through it, OCSP (RFC 6960 §4.2.2.1). Zulu, whole seconds, no fractions, a
 * real calendar date. Used by the certificate, CRL and OCSP readers; the writers are in der.ts.
 */
import { Tag, tagHex } from './der-tag.ts';
import { DerError, type DerElement } from './der-reader.ts';

const ZULU = 0x5a; // 'Z'

/**
 * The instant of a UTCTime (`tag` 0x17) or GeneralizedTime (0x18) whose content octets are
 * `buf[start, end)` — for readers that walk a buffer without building elements (CRL entries).
 * UTCTime years 50–99 are 1950–1999 and 00–49 are 2000–2049 (RFC 5280 §4.1.2.5.1).
 *
 * @throws DerError for another tag, another length, a digit that is not one, a time not in Zulu or
 * a date that does not exist (30 February, 24:00:00).
 */
export function readTimeAt(buf: Buffer, tag: number, start: number, end: number): Date {
  const length = end - start;
  let year: number;
  let o: number;
  if (tag === Tag.UTC_TIME && length === 13) {
    const yy = digits2(buf, start, start, end);
    year = yy < 50 ? 2000 + yy : 1900 + yy; // RFC 5280 §4.1.2.5.1
    o = start + 2;
  } else if (tag === Tag.GENERALIZED_TIME && length === 15) {
    year = digits2(buf, start, start, end) * 100 + digits2(buf, start + 2, start, end);
    o = start + 4;
  } else if (tag === Tag.UTC_TIME || tag === Tag.GENERALIZED_TIME) {
    return bad(buf, start, end);
  } else {
    throw new DerError(`a time must be a UTCTime or a GeneralizedTime, found tag ${tagHex(tag)}`);
  }
  if (buf[end - 1] !== ZULU) bad(buf, start, end);
  const month = digits2(buf, o, start, end);
  const day = digits2(buf, o + 2, start, end);
  const hour = digits2(buf, o + 4, start, end);
  const minute = digits2(buf, o + 6, start, end);
  const second = digits2(buf, o + 8, start, end);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) bad(buf, start, end);
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  if (date.getUTCDate() !== day) bad(buf, start, end); // 31 April, 29 February of a common year
  if (year < 100) date.setUTCFullYear(year); // Date.UTC maps years 0–99 to 1900–1999
  return date;
}

/**
 * RFC 5280 §4.1.2.5 Time ::= CHOICE { utcTime UTCTime, generalTime GeneralizedTime }.
 *
 * @throws DerError when `el` is missing or is not one of the two forms; `what` names the field.
 */
export function readTime(el: DerElement | undefined, what = 'time'): Date {
  if (!el) throw new DerError(`missing ${what}`);
  return readTimeAt(el.content, el.tag, 0, el.content.length);
}

/**
 * A GeneralizedTime only: OCSP's times (RFC 6960 §4.2.1) and the CRL entry invalidityDate (RFC 5280
 * §5.3.2).
 *
 * @throws DerError for a UTCTime or anything else.
 */
export function readGeneralizedTime(el: DerElement | undefined, what = 'GeneralizedTime'): Date {
  if (!el) throw new DerError(`missing ${what}`);
  if (el.tag !== Tag.GENERALIZED_TIME) throw new DerError(`${what}: expected tag ${tagHex(Tag.GENERALIZED_TIME)}, found ${tagHex(el.tag)}`);
  return readTimeAt(el.content, el.tag, 0, el.content.length);
}

function digits2(buf: Buffer, o: number, start: number, end: number): number {
  const a = buf[o] - 48;
  const b = buf[o + 1] - 48;
  if (!(a >= 0 && a <= 9 && b >= 0 && b <= 9)) bad(buf, start, end);
  return a * 10 + b;
}

function bad(buf: Buffer, start: number, end: number): never {
  const text = JSON.stringify(buf.toString('latin1', start, Math.min(end, start + 32)));
  throw new DerError(`bad time ${text} (RFC 5280 §4.1.2.5 allows YYMMDDHHMMSSZ and YYYYMMDDHHMMSSZ only)`);
}
