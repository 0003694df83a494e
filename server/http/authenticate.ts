/**
 * Bearer-token authentication for `/api/v1`: every route behind it has a principal or gets 401.
 * Failures are rate-limited per source address.
 */
import { randomUUID } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import type { RegistrationAuthority } from '../ra/registration-authority.ts';
import type { RequestContext } from '../ra/permissions.ts';
import { TiercaError } from '../errors.ts';

const FAILURE_WINDOW_MS = 60_000;
const MAX_FAILURES = 20;

export function authenticate(ra: RegistrationAuthority, now: () => number = Date.now): RequestHandler {
  const failures = new Map<string, { count: number; since: number }>();
  return async (req, res, next) => {
    try {
      const source = req.socket.remoteAddress ?? 'unknown';
      const entry = failures.get(source);
      if (entry && now() - entry.since < FAILURE_WINDOW_MS && entry.count >= MAX_FAILURES) {
        throw new TiercaError('rate-limited', 'too many failed logins from this address; wait a minute');
      }
      const header = req.headers.authorization ?? '';
      const match = /^Bearer ([^\s]+)$/i.exec(header);
      const principal = match ? await ra.authenticate(match[1]) : null;
      if (!principal) {
        const e = entry && now() - entry.since < FAILURE_WINDOW_MS ? entry : { count: 0, since: now() };
        e.count++;
        failures.set(source, e);
        throw new TiercaError('unauthenticated', match ? 'the token is not valid' : 'a bearer token is required');
      }
      const requestId = typeof req.headers['x-request-id'] === 'string' && /^[\w.-]{1,64}$/.test(req.headers['x-request-id'])
        ? req.headers['x-request-id']
        : randomUUID();
      res.locals.ctx = { principal, source, requestId } satisfies RequestContext;
      res.setHeader('x-request-id', requestId);
      next();
    } catch (err) {
      next(err);
    }
  };
}

export const ctxOf = (res: Response): RequestContext => res.locals.ctx as RequestContext;

/** Wraps an async handler so its rejections reach the error handler. */
export const handle =
  (fn: (req: Request, res: Response) => Promise<void>): RequestHandler =>
  (req, res, next) => {
    fn(req, res).catch(next);
  };
