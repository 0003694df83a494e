/**
 * The one error pki/ throws for input it cannot accept (malformed DER, bad signature, unsupported
 * key, an OCSP answer that must not be believed). Structural DER errors are its subclass DerError
 * (der-reader.ts, code `malformed`). The server maps `code` to its own error model; the message is
 * safe to show.
 */
export type PkiErrorCode =
  | 'malformed'
  | 'bad-signature'
  | 'unsupported-algorithm'
  | 'wrong-passphrase'
  | 'invalid-argument'
  /** An OCSP answer that fails a relying party's checks (RFC 6960 §3.2; ocsp-answer-check.ts). */
  | 'untrusted-answer';

export class PkiError extends Error {
  constructor(
    readonly code: PkiErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'PkiError';
  }
}
