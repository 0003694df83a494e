/**
 * The error pki/ throws for input it cannot accept (malformed DER, bad signature, unsupported key).
 * The server maps `code` to its own error model; the message is safe to show.
 */
export type PkiErrorCode =
  | 'malformed'
  | 'bad-signature'
  | 'unsupported-algorithm'
  | 'wrong-passphrase'
  | 'invalid-argument';

export class PkiError extends Error {
  constructor(
    readonly code: PkiErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'PkiError';
  }
}
