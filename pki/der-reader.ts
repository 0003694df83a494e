/**
 * A strict, allocation-light DER reader for the hot request paths (OCSP requests, CSRs). It only
 * walks TLVs; callers check tags with {@link expectTag}. Any structural error throws
 * {@link DerError}, never reads past the buffer, and refuses indefinite lengths and non-minimal
 * length octets (X.690 §10.1).
 */
import { isConstructed, Tag, tagHex } from './der-tag.ts';
import { PkiError } from './pki-error.ts';

/**
 * A structural DER error: a PkiError with code `malformed`, so whatever escapes a reader is the one
 * pki/ error. The parsers of whole structures (certificates, CRLs, OCSP) catch it and add what was
 * being read to the message (`malformed CRL: truncated DER content`).
 */
export class DerError extends PkiError {
  constructor(message: string) {
    super('malformed', message);
    this.name = 'DerError';
  }
}

/** One decoded element: its tag, the whole encoding and the content octets (views, not copies). */
export interface DerElement {
  readonly tag: number;
  /** Offset of the tag byte in the source buffer. */
  readonly start: number;
  /** The whole TLV. */
  readonly raw: Buffer;
  /** The content octets. */
  readonly content: Buffer;
}

const MAX_DEPTH_LENGTH_OCTETS = 4;

/** Reads the TLV at `offset` of `buf`. */
export function readElement(buf: Buffer, offset = 0): DerElement {
  if (offset + 2 > buf.length) throw new DerError('truncated DER: no room for tag and length');
  const tag = buf[offset];
  if ((tag & 0x1f) === 0x1f) throw new DerError('high-tag-number form is not used by these structures');
  let length = buf[offset + 1];
  let headerLength = 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    if (octets === 0) throw new DerError('indefinite length is not DER');
    if (octets > MAX_DEPTH_LENGTH_OCTETS) throw new DerError('length too large');
    if (offset + 2 + octets > buf.length) throw new DerError('truncated DER length');
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + buf[offset + 2 + i];
    if (length < 0x80 || buf[offset + 2] === 0) throw new DerError('non-minimal DER length');
    headerLength += octets;
  }
  const end = offset + headerLength + length;
  if (end > buf.length) throw new DerError('truncated DER content');
  return {
    tag,
    start: offset,
    raw: buf.subarray(offset, end),
    content: buf.subarray(offset + headerLength, end),
  };
}

/** Reads exactly one element that must fill `buf` completely. */
export function readOnly(buf: Buffer, expectedTag?: number): DerElement {
  const el = readElement(buf, 0);
  if (el.raw.length !== buf.length) throw new DerError('trailing bytes after DER element');
  if (expectedTag !== undefined && el.tag !== expectedTag) {
    throw new DerError(`expected tag ${tagHex(expectedTag)}, found ${tagHex(el.tag)}`);
  }
  return el;
}

/** The children of a constructed element, in order. */
export function children(el: DerElement): DerElement[] {
  if (!isConstructed(el.tag)) throw new DerError(`tag ${tagHex(el.tag)} is not constructed`);
  const out: DerElement[] = [];
  let offset = 0;
  while (offset < el.content.length) {
    const child = readElement(el.content, offset);
    out.push(child);
    offset += child.raw.length;
  }
  return out;
}

/**
 * The one tag check of every reader: asserts that `el` is there and has `tag`, and returns it.
 * `what` names the field in the message (`issuer: expected tag 0x30, found 0x31`); without it the
 * message is `missing element` / `expected tag 0x30, found 0x31`.
 *
 * @throws DerError otherwise.
 */
export function expectTag(el: DerElement | undefined, tag: number, what?: string): DerElement {
  if (!el) throw new DerError(`missing ${what ?? 'element'}`);
  if (el.tag !== tag) throw new DerError(`${what ? `${what}: ` : ''}expected tag ${tagHex(tag)}, found ${tagHex(el.tag)}`);
  return el;
}

/**
 * OIDs decoded before, by their content octets: readers meet the same few dozen OIDs on every
 * certificate, CSR and OCSP request, and the BigInt arithmetic below costs microseconds apiece.
 */
const decodedOids = new Map<string, string>();
const DECODED_OIDS_MAX = 1024;

/** Decodes OBJECT IDENTIFIER content octets to dotted text. */
export function decodeOid(el: DerElement): string {
  if (el.tag !== Tag.OID) throw new DerError('expected OBJECT IDENTIFIER');
  const c = el.content;
  if (c.length === 0) throw new DerError('empty OBJECT IDENTIFIER');
  const key = c.length <= 32 ? c.toString('latin1') : undefined;
  const known = key === undefined ? undefined : decodedOids.get(key);
  if (known !== undefined) return known;
  const text = decodeOidArcs(c);
  if (key !== undefined) {
    if (decodedOids.size >= DECODED_OIDS_MAX) decodedOids.clear();
    decodedOids.set(key, text);
  }
  return text;
}

function decodeOidArcs(c: Buffer): string {
  const arcs: bigint[] = [];
  let value = 0n;
  for (let i = 0; i < c.length; i++) {
    value = (value << 7n) | BigInt(c[i] & 0x7f);
    if ((c[i] & 0x80) === 0) {
      arcs.push(value);
      value = 0n;
    } else if (i === c.length - 1) {
      throw new DerError('truncated OBJECT IDENTIFIER');
    }
  }
  const first = arcs[0] < 80n ? arcs[0] / 40n : 2n;
  const second = arcs[0] - first * 40n;
  return [first, second, ...arcs.slice(1)].join('.');
}

/**
 * Decodes a non-negative INTEGER (serial numbers) as lowercase hex without leading zero octets —
 * tierca's canonical serial form.
 */
export function decodeUnsignedHex(el: DerElement): string {
  if (el.tag !== Tag.INTEGER) throw new DerError('expected INTEGER');
  if (el.content.length === 0) throw new DerError('empty INTEGER');
  let bytes = el.content;
  while (bytes.length > 1 && bytes[0] === 0) bytes = bytes.subarray(1);
  return bytes.toString('hex');
}
