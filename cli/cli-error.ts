/**
 * The CLI's exit codes and its one error type. Codes 1–9 are the `exit` column of
 * `server/errors.ts` (a problem document from the server maps onto them through
 * `exitCodeForProblemType`); 10 and 11 are `ocsp check` answers, not failures of the tool, and 12
 * an OCSP answer that must not be believed.
 * docs/cli.md lists them; keep the two in step.
 */
export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  notFound: 3,
  auth: 4,
  conflict: 5,
  policy: 6,
  keystore: 7,
  rateLimited: 8,
  unavailable: 9,
  ocspRevoked: 10,
  ocspUnknown: 11,
  /** `ocsp check`: the answer fails a check (signature, responder, CertID, nonce, times). */
  ocspUntrusted: 12,
  /** `audit verify`: the audit log does not verify (a record or checkpoint does not match). */
  auditBroken: 13,
  /** Ctrl-C at a prompt, as a shell reports SIGINT (128 + 2). */
  interrupted: 130,
} as const;

/** An RFC 9457 problem document as the server sends it (extra members are kept). */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  instance?: string;
  errorId?: string;
  [member: string]: unknown;
}

/**
 * A failure the CLI reports as `error: <message>` on stderr and turns into `exitCode`. `problem`
 * is the server's problem document when there was one (printed as JSON with `--json`).
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly problem?: Problem,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A usage error (exit 2): a bad or missing option, an unreadable input file. */
export const usageError = (message: string): CliError => new CliError(message, EXIT.usage);
