/**
 * Turns errors into RFC 9457 problem documents — the one place where an error code becomes HTTP.
 * Internal causes are logged with an error id; only the safe message reaches the client.
 */
import { randomUUID } from 'node:crypto';
import type { ErrorRequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { ERROR_CODES, TiercaError, problemType, type ErrorCode } from '../errors.ts';
import { keystoreFaultError } from '../keystore-custody.ts';

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errorId?: string;
  [extension: string]: unknown;
}

/** The members RFC 9457 defines come last, so an extension member of the same name cannot replace them. */
export function problemOf(code: ErrorCode, detail: string, extra: Record<string, unknown> = {}): ProblemDocument {
  const entry = ERROR_CODES[code];
  return { ...extra, type: problemType(code), title: entry.title, status: entry.status, detail };
}

export function sendProblem(res: Response, problem: ProblemDocument, headers: Record<string, string> = {}): void {
  res.status(problem.status).set({ 'content-type': 'application/problem+json', ...headers }).send(Buffer.from(JSON.stringify(problem)));
}

/** The express error handler: TiercaError → its problem; a token fault → 503; body-parser errors → 400/413; anything else → 500 with an error id. */
export function problemHandler(log: Logger): ErrorRequestHandler {
  return (thrown, req, res, _next) => {
    const instance = req.originalUrl;
    // A PKCS#11 fault while serving (the token's session lost mid-signature): 503, worth a retry,
    // and a warning for the operator (the fault and the CKR_ name; a token error never holds the PIN).
    const err = keystoreFaultError(thrown);
    if (err !== thrown) log.warn({ fault: (thrown as { code?: string }).code, ckr: (thrown as { ckr?: string }).ckr, instance }, 'CA key token fault');
    if (err instanceof TiercaError) {
      const extra = err.options.detail ? { ...err.options.detail } : {};
      if (err.code === 'internal' || err.code === 'wrong-passphrase') {
        const errorId = randomUUID();
        log.error({ errorId, err: err.options.cause ?? err, code: err.code }, 'internal error');
        return sendProblem(res, problemOf(err.code, 'internal error; quote the error id to an administrator', { instance, errorId }));
      }
      const headers: Record<string, string> = err.code === 'unavailable' ? { 'retry-after': '5' } : {};
      return sendProblem(res, problemOf(err.code, err.message, { instance, ...extra }), headers);
    }
    const type = (err as { type?: string }).type;
    if (type === 'entity.too.large') return sendProblem(res, problemOf('payload-too-large', 'the request body is larger than 64 KiB', { instance }));
    if (type === 'entity.parse.failed') return sendProblem(res, problemOf('malformed-input', 'the request body is not valid JSON', { instance }));
    if (type && String(type).startsWith('encoding.') || type === 'charset.unsupported') {
      return sendProblem(res, problemOf('unsupported-media-type', 'unsupported body encoding', { instance }));
    }
    if (isDatabaseDown(err)) {
      return sendProblem(res, problemOf('unavailable', 'the database is not reachable; try again shortly', { instance }), { 'retry-after': '5' });
    }
    const errorId = randomUUID();
    log.error({ errorId, err }, 'unhandled error');
    return sendProblem(res, problemOf('internal', 'internal error; quote the error id to an administrator', { instance, errorId }));
  };
}

/**
 * The database cannot be reached or cannot take the request now — worth retrying, not a bug: the
 * network (connection refused, reset, timed out), PostgreSQL shutting down or ending sessions (class
 * 57P: 57P01 terminated by an administrator, 57P02 crash, 57P03 not accepting connections yet) or any
 * connection exception (class 08), and SQLite's write lock held by another process beyond the wait.
 */
function isDatabaseDown(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string') {
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'SQLITE_BUSY', 'SQLITE_BUSY_RECOVERY'].includes(code)) return true;
    if (/^(08|57P0[123])/.test(code)) return true;
  }
  return /Connection terminated|connect ECONNREFUSED|Knex: Timeout acquiring a connection|timeout exceeded when trying to connect/.test(String((err as Error)?.message));
}
