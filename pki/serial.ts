/**
 * Serial numbers as people and tools write them, turned into tierca's one canonical text: lowercase
 * hex of the magnitude without leading zero octets (the form `serialToHex` in certificate.ts makes and
 * storage keys on). RFC 5280 §4.1.2.2 allows at most 20 octets; 64 hex digits are accepted here so
 * that a lookup of a foreign serial says "not found" rather than "malformed".
 */

/** Longest serial text accepted, in hex digits after normalisation. */
export const MAX_SERIAL_HEX_DIGITS = 64;
const SERIAL_HEX = new RegExp(`^[0-9a-f]{1,${MAX_SERIAL_HEX_DIGITS}}$`);

/**
 * The canonical form of a serial written as hex — with or without colons or spaces (as
 * `openssl x509 -serial` and browsers print it), any case, with or without leading `00` octets —
 * or undefined when the text is not such a serial.
 *
 * @example normaliseSerial('00:A1:b2') === 'a1b2'
 */
export function normaliseSerial(text: string): string | undefined {
  const normalised = text.toLowerCase().replace(/[:\s]/g, '').replace(/^(00)+(?=.)/, '');
  return SERIAL_HEX.test(normalised) ? normalised : undefined;
}
