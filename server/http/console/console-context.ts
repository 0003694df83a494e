/**
 * What every console page handler is handed and the small helpers they share: the request's view
 * (language, principal, CSRF token), its RequestContext for the RA services, the permission guard
 * that hides and refuses pages, and rendering.
 */
import type { Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import type { RegistrationAuthority } from '../../ra/registration-authority.ts';
import type { RotationServices } from '../../ra/rotation/rotation-services.ts';
import type { Permission, Principal, RequestContext } from '../../ra/permissions.ts';
import { roleHas } from '../../ra/permissions.ts';
import type { AuditAction } from '../../ra/audit-actions.ts';
import type { Clock } from '../../clock.ts';
import { TiercaError } from '../../errors.ts';
import type { LoginGate } from '../authenticate.ts';
import type { ConsoleSession, Flash, SessionStore } from './session-store.ts';
import { formatDate, translator, type Lang, type Translate } from './i18n.ts';
import type { SafeHtml } from './html.ts';
import { layout } from './layout.ts';

export interface ConsoleDeps {
  ra: RegistrationAuthority;
  rotation?: RotationServices;
  clock: Clock;
  /** Where CRLs and CA certificates are published (their download links). */
  publicUrl: string;
  log: Logger;
  /** The login path shared with the API (server/http/authenticate.ts). */
  login: LoginGate;
  sessions: SessionStore;
}

/** What a page is rendered with. */
export interface View {
  lang: Lang;
  t: Translate;
  /** The request path (the language switch returns to it). */
  path: string;
  principal?: Principal;
  csrf?: string;
  flash?: Flash;
  can: (permission: Permission) => boolean;
  date: (d: Date | null | undefined) => string;
}

export function makeView(lang: Lang, path: string, principal?: Principal, session?: ConsoleSession): View {
  return {
    lang, t: translator(lang), path, principal, csrf: session?.csrf,
    can: (p) => !!principal && roleHas(principal.role, p),
    date: (d) => formatDate(lang, d),
  };
}

export const viewOf = (res: Response): View => res.locals.view as View;
export const ctxOf = (res: Response): RequestContext => res.locals.ctx as RequestContext;
export const sessionOf = (res: Response): ConsoleSession => res.locals.session as ConsoleSession;

/** Sends a whole page. */
export function sendPage(res: Response, p: { title: string; body: SafeHtml; status?: number }): void {
  const view = viewOf(res);
  // The one-time notice is shown on the page that is rendered next, then gone.
  const session = res.locals.session as ConsoleSession | undefined;
  if (session?.flash) {
    view.flash = session.flash;
    session.flash = undefined;
  }
  res.status(p.status ?? 200).type('html').send(layout(view, p.title, p.body).value);
}

/** Redirects after a change (POST → 303 → GET), with a notice for the next page. */
export function redirectWith(res: Response, to: string, flash?: Flash): void {
  if (flash) sessionOf(res).flash = flash;
  res.redirect(303, to);
}

/**
 * Lets a request through when the principal's role holds one of `permissions`; otherwise the
 * authorizer records the denial (under the page's `action`) and the console answers its 403 page.
 * The menu shows exactly the pages this guard lets through (layout.ts reads the same table).
 */
export function guard(ra: RegistrationAuthority, permissions: readonly Permission[], action: AuditAction = 'console.page'): RequestHandler {
  return async (req, res, next) => {
    try {
      await ra.authorizer.requireAny(ctxOf(res), permissions, action, `${req.method} ${req.baseUrl}${req.path}`.slice(0, 300));
      next();
    } catch (err) {
      next(err);
    }
  };
}

/** A form field as one trimmed string ('' when absent or not a string). */
export function field(req: Request, name: string): string {
  const v = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v.trim() : '';
}

/** A query parameter as one trimmed string ('' when absent). */
export function param(req: Request, name: string): string {
  const v = req.query[name];
  return typeof v === 'string' ? v.trim() : '';
}

/** A newline- or comma-separated form field as a list (empty entries dropped). */
export const listField = (req: Request, name: string): string[] => field(req, name).split(/[\n,]+/).map((s) => s.trim()).filter(Boolean);

/** The error a form shows: a TiercaError as the API would answer it; anything else is not the user's to read. */
export function formErrorOf(err: unknown): TiercaError {
  if (err instanceof TiercaError && err.code !== 'internal' && err.code !== 'wrong-passphrase') return err;
  throw err;
}
