/**
 * DER encoding primitives (X.690 §8, §10) used by tierca's certificate, CRL and OCSP builders.
 *
 * Why hand-made: asn1js/pkijs spend ~2 ms of object-model work per certificate against ~28 µs for
 * the P-256 signature itself (../shared/PERFORMANCE-NOTES.md), which caps issuance near 450/s and
 * OCSP signing near 2,000/s. These helpers concatenate bytes directly. Every structure built on them
 * is proven by the openssl CLI in test/interop, and read back by @peculiar/x509 / pkijs in tests.
 */

import { contextConstructed, contextPrimitive, Tag } from './der-tag.ts';

export { Tag } from './der-tag.ts';

/** Encodes a DER length (X.690 §8.1.3, definite form, minimal octets). */
export function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  let n = length;
  while (n > 0) {
    bytes.unshift(n & 0xff);
    n = Math.floor(n / 256);
  }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** A whole TLV: tag byte, length, content. */
export function tlv(tag: number, content: Uint8Array): Buffer {
  return tlvOf(tag, [content]);
}

/**
 * A TLV over several already-encoded parts, without an intermediate concatenation: header and parts
 * are written into one allocation (a certificate and its OCSP answer make ~150 TLVs; a tag buffer,
 * a length buffer and a concat each cost three allocations apiece, ~15 % of a signing thread's JS).
 */
export function tlvOf(tag: number, parts: readonly Uint8Array[]): Buffer {
  let length = 0;
  for (const p of parts) length += p.length;
  let lengthOctets = 0;
  if (length >= 0x80) for (let n = length; n > 0; n = Math.floor(n / 256)) lengthOctets++;
  const header = 2 + lengthOctets;
  const out = Buffer.allocUnsafe(header + length);
  out[0] = tag;
  if (lengthOctets === 0) out[1] = length;
  else {
    out[1] = 0x80 | lengthOctets;
    for (let i = header - 1, n = length; i >= 2; i--, n = Math.floor(n / 256)) out[i] = n & 0xff;
  }
  let offset = header;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

export const sequence = (...parts: Uint8Array[]): Buffer => tlvOf(Tag.SEQUENCE, parts);

/** SET OF with DER ordering (X.690 §11.6): elements sorted by their encodings. */
export function setOf(...parts: Uint8Array[]): Buffer {
  const sorted = [...parts].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return tlvOf(Tag.SET, sorted);
}

export const nullValue = (): Buffer => Buffer.from([Tag.NULL, 0x00]);

export const boolean = (value: boolean): Buffer => Buffer.from([Tag.BOOLEAN, 0x01, value ? 0xff : 0x00]);

/**
 * INTEGER from a non-negative big-endian magnitude, a bigint or a number. Adds a leading zero when
 * the high bit is set and strips redundant leading zeros (X.690 §8.3.2).
 */
export function integer(value: Uint8Array | bigint | number): Buffer {
  let bytes: Buffer;
  if (typeof value === 'number' || typeof value === 'bigint') {
    let n = BigInt(value);
    if (n < 0n) throw new RangeError('negative INTEGER is not supported');
    const hex = n.toString(16);
    bytes = Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
  } else {
    bytes = Buffer.from(value);
  }
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0 && (bytes[start + 1] & 0x80) === 0) start++;
  bytes = bytes.subarray(start);
  if (bytes.length === 0) bytes = Buffer.from([0]);
  if (bytes[0] & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(Tag.INTEGER, bytes);
}

export const enumerated = (value: number): Buffer => {
  const i = integer(value);
  i[0] = Tag.ENUMERATED;
  return i;
};

const oidCache = new Map<string, Buffer>();

/** OBJECT IDENTIFIER from dotted text (X.690 §8.19); cached, since the same OIDs recur. */
export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const arcs = dotted.split('.').map((a) => BigInt(a));
  if (arcs.length < 2) throw new RangeError(`bad OID ${dotted}`);
  const body: number[] = [];
  const pushArc = (arc: bigint) => {
    const groups: number[] = [Number(arc & 0x7fn)];
    arc >>= 7n;
    while (arc > 0n) {
      groups.unshift(Number(arc & 0x7fn) | 0x80);
      arc >>= 7n;
    }
    body.push(...groups);
  };
  pushArc(arcs[0] * 40n + arcs[1]);
  for (const arc of arcs.slice(2)) pushArc(arc);
  const encoded = tlv(Tag.OID, Buffer.from(body));
  oidCache.set(dotted, encoded);
  return encoded;
}

export const octetString = (content: Uint8Array): Buffer => tlv(Tag.OCTET_STRING, content);

/** BIT STRING with no unused bits (keys, signatures, flags already padded to whole octets). */
export const bitString = (content: Uint8Array): Buffer =>
  tlvOf(Tag.BIT_STRING, [Buffer.from([0]), content]);

export const utf8String = (text: string): Buffer => tlv(Tag.UTF8_STRING, Buffer.from(text, 'utf8'));
export const printableString = (text: string): Buffer => tlv(Tag.PRINTABLE_STRING, Buffer.from(text, 'ascii'));
export const ia5String = (text: string): Buffer => tlv(Tag.IA5_STRING, Buffer.from(text, 'ascii'));

/** `[n]` EXPLICIT: a constructed context tag around one encoded element. */
export const explicit = (n: number, content: Uint8Array): Buffer => tlv(contextConstructed(n), content);

/** `[n]` IMPLICIT over primitive content (the content octets only). */
export const implicitPrimitive = (n: number, content: Uint8Array): Buffer => tlv(contextPrimitive(n), content);

/** `[n]` IMPLICIT over a constructed type (content octets of the SEQUENCE/SET it replaces). */
export const implicitConstructed = (n: number, parts: Uint8Array[]): Buffer => tlvOf(contextConstructed(n), parts);

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** Truncates to whole seconds: RFC 5280 §4.1.2.5.2 forbids fractional seconds. */
export const wholeSeconds = (date: Date): Date => new Date(Math.floor(date.getTime() / 1000) * 1000);

/** GeneralizedTime `YYYYMMDDHHMMSSZ` (RFC 5280 §4.1.2.5.2), whole seconds. */
export function generalizedTime(date: Date): Buffer {
  const d = wholeSeconds(date);
  const text =
    `${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}` +
    `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
  return tlv(Tag.GENERALIZED_TIME, Buffer.from(text, 'ascii'));
}

/** UTCTime `YYMMDDHHMMSSZ` (RFC 5280 §4.1.2.5.1). */
export function utcTime(date: Date): Buffer {
  const d = wholeSeconds(date);
  const text =
    `${pad(d.getUTCFullYear() % 100)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}` +
    `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
  return tlv(Tag.UTC_TIME, Buffer.from(text, 'ascii'));
}

/** RFC 5280 §4.1.2.5 Time: UTCTime through 2049, GeneralizedTime from 2050. */
export function x509Time(date: Date): Buffer {
  const year = date.getUTCFullYear();
  return year >= 1950 && year < 2050 ? utcTime(date) : generalizedTime(date);
}

/** Wraps DER in PEM armour with 64-character lines (RFC 7468). */
export function toPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  // 64-character lines by slicing (a /.{1,64}/g match made the array through the regex engine: every
  // issuance answer carries three or four PEMs).
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
