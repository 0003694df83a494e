/**
 * PEM (RFC 7468) and DER input for certificates, CSRs and keys that reach tierca from outside:
 * uploads, CLI files, API bodies. One strict decoder so that every entry point refuses the same
 * things with the same error.
 */
import { toPem } from './der.ts';
import { readOnly } from './der-reader.ts';
import { PkiError } from './pki-error.ts';

/** RFC 7468 §3 strict base64: the standard alphabet, padding only at the end, whole quanta. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Whitespace RFC 7468 §3 allows between base64 characters (and CR/LF line ends). */
const WSP = /[ \t\r\n]+/g;

/**
 * DER of one object given as PEM with `label` (explanatory text around the armour is allowed, RFC
 * 7468 §2), as bare base64 without armour, or as DER bytes. The result is checked to be exactly one
 * DER element (no trailing bytes), so callers get a clean `malformed` for truncated or padded input.
 *
 * @param label the PEM label, e.g. `CERTIFICATE`.
 * @throws PkiError('malformed', 'not a PEM <label> or DER') otherwise.
 */
export function decodePemOrDer(input: string | Buffer, label: string): Buffer {
  return decodePemOrDerOf(input, [label]);
}

/**
 * Like {@link decodePemOrDer}, accepting any of several labels (a CSR may be `CERTIFICATE REQUEST`
 * or the older `NEW CERTIFICATE REQUEST`). The error names the first label.
 */
export function decodePemOrDerOf(input: string | Buffer, labels: readonly string[]): Buffer {
  const fail = () => new PkiError('malformed', `not a PEM ${labels[0]} or DER`);
  if (Buffer.isBuffer(input) && input.length > 0 && input[0] === 0x30) {
    // DER: a SEQUENCE tag cannot begin PEM text or base64 ('0' is 0x30, but base64 of DER starts
    // with 'M'; bare text "0…" that is not DER fails the DER check and then the text path below).
    if (isOneDerElement(input)) return input;
  }
  const text = Buffer.isBuffer(input) ? input.toString('latin1') : input;
  const armoured = findArmour(text, labels);
  if (armoured === 'other-label') throw fail();
  const body = armoured ?? text;
  const b64 = body.replace(WSP, '');
  if (b64.length === 0 || !BASE64.test(b64)) throw fail();
  const der = Buffer.from(b64, 'base64');
  if (!isOneDerElement(der)) throw fail();
  return der;
}

/** PEM `CERTIFICATE` armour of a DER certificate, 64-character lines (RFC 7468 §5). */
export function certificateToPem(der: Buffer): string {
  return toPem(der, 'CERTIFICATE');
}

/**
 * The base64 body between `-----BEGIN label-----` and the matching END line, `undefined` when the
 * text has no armour at all, `'other-label'` when it is armour of another kind (a private key given
 * where a certificate was expected must not be read as base64 of something else).
 */
function findArmour(text: string, labels: readonly string[]): string | undefined | 'other-label' {
  if (!text.includes('-----BEGIN ')) return undefined;
  for (const label of labels) {
    const begin = `-----BEGIN ${label}-----`;
    const end = `-----END ${label}-----`;
    const b = text.indexOf(begin);
    if (b < 0) continue;
    const e = text.indexOf(end, b + begin.length);
    if (e < 0) return 'other-label';
    return text.slice(b + begin.length, e);
  }
  return 'other-label';
}

function isOneDerElement(der: Buffer): boolean {
  try {
    readOnly(der, 0x30);
    return true;
  } catch {
    return false;
  }
}
