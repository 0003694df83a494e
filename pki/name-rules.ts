/**
 * What a name may contain where it enters tierca (a subject's common name, an organ's name, a
 * principal's name): the text that is registered must be the text that is certified and displayed,
 * so anything that changes on the way (non-NFC text, lone surrogates) or hides from a reader
 * (controls, bidi overrides, invisible format characters) is refused — never silently repaired.
 *
 * The checks, in the order the first failing one is reported:
 * 1. lone surrogate — UTF-8 cannot carry it; the encoder would turn it into U+FFFD, another name;
 * 2. control characters — C0 (U+0000–001F), DEL (U+007F), C1 (U+0080–009F): NUL, CR/LF, ESC…;
 * 3. line or paragraph separator (U+2028, U+2029);
 * 4. bidi embedding, override or isolate (U+202A–202E, U+2066–2069) — the "Trojan Source" trick;
 * 5. any other invisible format character (Unicode category Cf: U+200B–200F, U+2060–2064, U+FEFF,
 *    U+00AD, U+061C, tag characters…);
 * 6. private-use or unassigned code points (categories Co, Cn; noncharacters are Cn);
 * 7. not in Unicode NFC — refused, not normalised: the caller learns that the name it sent is not the
 *    one that would be certified (UAX #15; RFC 5280 §7.1 compares names after normalisation);
 * 8. white space at either end;
 * 9. length, in characters (code points), over the attribute's upper bound (RFC 5280 Appendix A.1:
 *    ub-common-name 64, ub-organization-name 64, ub-organizational-unit-name 64, ub-locality-name
 *    128, ub-state-name 128, ub-serial-number 64, ub-emailaddress-length 255, country 2).
 * Characters outside the Basic Multilingual Plane are allowed: real Chinese names use CJK Extension
 * B and later, two UTF-16 code units that count as one character here.
 */
import type { NameAttributeType } from './name.ts';
import { PkiError } from './pki-error.ts';

/** Upper bound of each name attribute in characters (RFC 5280 Appendix A.1). */
export const NAME_ATTRIBUTE_MAX: Readonly<Record<NameAttributeType, number>> = Object.freeze({
  C: 2, ST: 128, L: 128, O: 64, OU: 64, CN: 64, serialNumber: 64, emailAddress: 255,
});

/** Read on UTF-16 code units (no /u flag), so a high surrogate without its low half is seen. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;
const SEPARATOR = /[\u2028\u2029]/u;
const BIDI = /[\u202a-\u202e\u2066-\u2069]/u;
const FORMAT = /\p{Cf}/u;
const PRIVATE_OR_UNASSIGNED = /[\p{Co}\p{Cn}]/u;
const EDGE_SPACE = /^\s|\s$/u;

const hexOf = (c: string) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/**
 * Why `value` is not acceptable as name text of at most `max` characters, or undefined when it is.
 * The reason is a short phrase naming the first offending character and its position (1-based, in
 * characters), e.g. `control character U+0000 at position 3`.
 */
export function nameTextProblem(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string') return 'not a string';
  if (value.length === 0) return 'empty';
  const lone = LONE_SURROGATE.exec(value);
  if (lone) return `lone surrogate ${hexOf(lone[0])} at position ${[...value.slice(0, lone.index)].length + 1}`;
  for (const [re, what] of [
    [CONTROL, 'control character'],
    [SEPARATOR, 'line or paragraph separator'],
    [BIDI, 'bidirectional control character'],
    [FORMAT, 'invisible format character'],
    [PRIVATE_OR_UNASSIGNED, 'private-use or unassigned code point'],
  ] as const) {
    const m = re.exec(value);
    if (m) return `${what} ${hexOf(m[0])} at position ${[...value.slice(0, m.index)].length + 1}`;
  }
  if (value.normalize('NFC') !== value) return 'not in Unicode normalization form C (NFC)';
  if (EDGE_SPACE.test(value)) return 'white space at the start or end';
  const length = [...value].length;
  if (length > max) return `longer than ${max} characters (${length})`;
  return undefined;
}

/** {@link nameTextProblem} with the RFC 5280 upper bound of attribute `type` ({@link NAME_ATTRIBUTE_MAX}). */
export function nameAttributeProblem(type: NameAttributeType, value: unknown): string | undefined {
  return nameTextProblem(value, NAME_ATTRIBUTE_MAX[type]);
}

/**
 * Throws PkiError('invalid-argument') `name attribute <type>: <reason>` when `value` breaks a rule
 * of {@link nameAttributeProblem}.
 */
export function checkNameAttribute(type: NameAttributeType, value: unknown): void {
  const problem = nameAttributeProblem(type, value);
  if (problem) throw new PkiError('invalid-argument', `name attribute ${type}: ${problem}`);
}
