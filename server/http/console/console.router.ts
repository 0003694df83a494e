/**
 * The web console (issue #19), served by `tierca serve` itself under /console/: server-rendered
 * pages, one small script, sessions in cookies. Every page calls the same RA services as the API,
 * with the same RequestContext, so the authorizer decides and the audit log records exactly as for
 * an API call; the console has no enforcement of its own beyond hiding what the role may not use.
 *
 * Order of the middleware: security headers → assets → language → sign-in (no session) → session
 * (else to sign-in) → form body → CSRF on every POST → pages → console 404 → console error page.
 */
import { randomUUID } from 'node:crypto';
import express, { Router, type ErrorRequestHandler, type RequestHandler } from 'express';
import { ERROR_CODES, TiercaError } from '../../errors.ts';
import { requestIdOf } from '../authenticate.ts';
import type { Role } from '../../storage/storage.ts';
import { html } from './html.ts';
import { problemBox } from './layout.ts';
import { ctxOf, field, makeView, sendPage, viewOf, type ConsoleDeps } from './console-context.ts';
import { LANG_COOKIE, SESSION_COOKIE, readCookie, setCookie } from './cookies.ts';
import { assetRoutes } from './assets.ts';
import { errorTitle, langOf } from './i18n.ts';
import { sameSecret } from './session-store.ts';
import { MENU } from './menu.ts';
import { signInPages, signOutPage } from './pages/signin.ts';
import { dashboardPages } from './pages/dashboard.ts';
import { certificatePages } from './pages/certificates.ts';
import { issuePages } from './pages/issue.ts';
import { subjectPages } from './pages/subjects.ts';
import { requestPages } from './pages/requests.ts';
import { crlPages } from './pages/crls.ts';
import { principalPages } from './pages/principals.ts';
import { rotationPages } from './pages/rotation.ts';
import { keystorePages } from './pages/keystore.ts';
import { auditPages } from './pages/audit.ts';
import { deliveryRoutes } from './deliveries.ts';
import { shownRoutes } from './shown.ts';

/**
 * The console's Content-Security-Policy: only this origin's script and style (no inline script, no
 * inline style, no eval), no framing, forms only to this origin, no <base>.
 */
export const CONSOLE_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

const MAX_FORM = '64kb';

/** Where each role lands after sign-in (its main work); a role without it gets the first page it may use. */
const LANDING: Partial<Record<Role, string>> = { officer: '/console/dashboard', sysadmin: '/console/principals', auditor: '/console/audit' };

export function consoleRouter(deps: ConsoleDeps): Router {
  const r = Router();
  r.use((_req, res, next) => {
    res.setHeader('content-security-policy', CONSOLE_CSP);
    res.setHeader('cache-control', 'no-store');
    next();
  });
  r.use(assetRoutes());
  r.use((req, res, next) => {
    res.locals.view = makeView(langOf(readCookie(req, LANG_COOKIE)), req.originalUrl);
    next();
  });
  r.get('/lang/:lang', (req, res) => {
    setCookie(req, res, LANG_COOKIE, langOf(req.params.lang), 365 * 24 * 3600);
    const next = typeof req.query.next === 'string' && /^\/console\/[^\\\s]*$/.test(req.query.next) && !req.query.next.startsWith('//') ? req.query.next : '/console/';
    res.redirect(303, next);
  });
  r.use(express.urlencoded({ extended: false, limit: MAX_FORM, parameterLimit: 200 }));
  signInPages(r, deps);
  r.use(session(deps));
  r.use(csrf(deps));
  signOutPage(r, deps);
  r.get('/', (_req, res, next) => {
    const role = ctxOf(res).principal.role;
    const first = MENU.find((m) => m.href === LANDING[role]) ?? MENU.find((m) => m.permissions.some((p) => viewOf(res).can(p)));
    if (!first) return next(new TiercaError('forbidden', `role ${ctxOf(res).principal.role} may use no console page`));
    res.redirect(303, first.href);
  });
  dashboardPages(r, deps);
  certificatePages(r, deps);
  issuePages(r, deps);
  subjectPages(r, deps);
  requestPages(r, deps);
  crlPages(r, deps);
  principalPages(r, deps);
  rotationPages(r, deps);
  keystorePages(r, deps);
  auditPages(r, deps);
  deliveryRoutes(r, deps);
  shownRoutes(r, deps);
  r.use((_req, _res, next) => next(new TiercaError('not-found', 'no such console page')));
  r.use(errorPage(deps));
  return r;
}

/**
 * The session of the request, checked again against the principal (disabled: signed out) and, for a
 * certificate session, against its certificate (revoked, expired, its CA no longer active: signed
 * out). No session → the sign-in page; an expired one → the sign-in page saying so.
 */
function session(deps: ConsoleDeps): RequestHandler {
  return async (req, res, next) => {
    try {
      const cookie = readCookie(req, SESSION_COOKIE);
      const found = deps.sessions.find(cookie);
      if (found.state !== 'active') {
        if (cookie) setCookie(req, res, SESSION_COOKIE, '', 0);
        return res.redirect(303, found.state === 'expired' ? '/console/signin?expired=1' : '/console/signin');
      }
      const s = found.session;
      const outcome = s.certificate
        ? await deps.ra.authorizer.authenticateCertificate(s.certificate)
        : await deps.ra.authorizer.principalOutcome(s.principalId, s.via);
      if (!outcome.ok || outcome.principal.id !== s.principalId) {
        deps.sessions.destroy(cookie);
        setCookie(req, res, SESSION_COOKIE, '', 0);
        return res.redirect(303, '/console/signin');
      }
      res.locals.session = s;
      res.locals.ctx = { principal: outcome.principal, source: req.socket.remoteAddress ?? 'unknown', requestId: requestIdOf(req) };
      res.locals.view = makeView(viewOf(res).lang, req.originalUrl, outcome.principal, s);
      next();
    } catch (err) {
      next(err);
    }
  };
}

/** Every POST behind the session carries the session's CSRF token; one without it changes nothing and is recorded. */
function csrf(deps: ConsoleDeps): RequestHandler {
  return async (req, res, next) => {
    if (req.method !== 'POST' && req.method !== 'PUT' && req.method !== 'PATCH' && req.method !== 'DELETE') return next();
    if (sameSecret(res.locals.session.csrf, field(req, '_csrf'))) return next();
    try {
      await deps.ra.authorizer.auditDenial(ctxOf(res), 'console.page', `${req.method} ${req.originalUrl}`.slice(0, 300), { missing: 'csrf-token' });
      const view = viewOf(res);
      sendPage(res, { title: errorTitle(view.t, 'csrf'), status: 403, body: problemBox(view, { code: 'csrf', message: view.t('csrf.detail') }) });
    } catch (err) {
      next(err);
    }
  };
}

/** Errors as a console page: the localized title and the service's detail; internal causes logged under an error id only. */
function errorPage(deps: ConsoleDeps): ErrorRequestHandler {
  return (thrown, req, res, _next) => {
    const view = viewOf(res) ?? makeView(langOf(readCookie(req, LANG_COOKIE)), req.originalUrl);
    let err: TiercaError;
    if (thrown instanceof TiercaError && thrown.code !== 'internal' && thrown.code !== 'wrong-passphrase') err = thrown;
    else if ((thrown as { type?: string })?.type === 'entity.too.large') err = new TiercaError('payload-too-large', 'the form is larger than 64 KiB');
    else {
      const errorId = randomUUID();
      deps.log.error({ errorId, err: thrown, path: req.path }, 'console error');
      err = new TiercaError('internal', view.t('error.internalDetail', { errorId }));
    }
    const status = ERROR_CODES[err.code].status;
    if (res.headersSent) return void res.end();
    sendPage(res, {
      title: err.code === 'forbidden' ? view.t('page.forbidden') : err.code === 'not-found' ? view.t('page.notFound') : errorTitle(view.t, err.code),
      status, body: html`${problemBox(view, err)}<p><a href="/console/">${view.t('action.home')}</a></p>`,
    });
  };
}
