/**
 * DER identifier octets (X.690 §8.1.2): the universal tags tierca's structures use, the
 * context-specific forms `[n]`, and the one way a reader checks a tag. Builders (der.ts) and readers
 * (der-reader.ts and every parser on top of it) take their tag numbers from here.
 */

/** Universal tags (X.680 §8.4), with the constructed bit already set for SEQUENCE and SET. */
export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** The constructed bit of an identifier octet (X.690 §8.1.2.5). */
export const CONSTRUCTED = 0x20;

/** `[n]` of a primitive type (IMPLICIT over a primitive): class context-specific, tag number n < 31. */
export const contextPrimitive = (n: number): number => 0x80 | n;

/** `[n]` of a constructed type (EXPLICIT, or IMPLICIT over SEQUENCE/SET). */
export const contextConstructed = (n: number): number => 0xa0 | n;

/** Whether an identifier octet has the constructed bit (X.690 §8.1.2.5). */
export const isConstructed = (tag: number): boolean => (tag & CONSTRUCTED) !== 0;

/** `0x30` — how readers name a tag in their error messages. */
export const tagHex = (tag: number): string => `0x${tag.toString(16)}`;
