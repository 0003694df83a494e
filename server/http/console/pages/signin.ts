/**
 * Signing in and out. A pasted token goes through the API's own login path (authenticate.ts
 * `loginGate`: the same limiter, messages and audit of refusals); so does a client certificate
 * presented to the HTTPS listener. The sign-in forms carry a nonce that matches an HttpOnly
 * SameSite=Strict cookie, so another site cannot sign a browser in under its own token.
 */
import { randomBytes } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { Request, Response, Router } from 'express';
import { TiercaError } from '../../../errors.ts';
import { requestIdOf } from '../../authenticate.ts';
import { html } from '../html.ts';
import { problemBox } from '../layout.ts';
import { ctxOf, field, formErrorOf, makeView, sendPage, sessionOf, viewOf, type ConsoleDeps } from '../console-context.ts';
import { SESSION_COOKIE, SIGNIN_COOKIE, readCookie, setCookie } from '../cookies.ts';
import { sameSecret } from '../session-store.ts';
import type { Principal } from '../../../ra/permissions.ts';

function signInPage(req: Request, res: Response, opts: { error?: TiercaError; status?: number; expired?: boolean } = {}): void {
  const view = viewOf(res);
  const { t } = view;
  const nonce = randomBytes(24).toString('base64url');
  setCookie(req, res, SIGNIN_COOKIE, nonce);
  const tls = !!(req.socket as TLSSocket).encrypted;
  sendPage(res, {
    title: t('signin.title'), status: opts.status,
    body: html`
${opts.expired ? html`<p class="notice error" role="status" id="expired">${t('signin.expired')}</p>` : ''}
${opts.error ? problemBox(view, opts.error) : ''}
<section class="card">
<h2>${t('signin.certificate')}</h2>
${tls ? html`<p>${t('signin.certificateHelp')}</p>
<form method="post" action="/console/signin/certificate">
<input type="hidden" name="_nonce" value="${nonce}">
<button type="submit" id="signin-certificate">${t('signin.withCertificate')}</button>
</form>` : html`<p>${t('signin.certificateNeedsTls')}</p>`}
</section>
<section class="card">
<h2>${t('signin.token')}</h2>
<form method="post" action="/console/signin" autocomplete="off">
<input type="hidden" name="_nonce" value="${nonce}">
<label for="token">${t('signin.tokenLabel')}</label>
<input type="password" name="token" id="token" required autocomplete="off" spellcheck="false">
<button type="submit" id="signin-token">${t('signin.submit')}</button>
</form>
</section>`,
  });
}

export function signInPages(r: Router, deps: ConsoleDeps): void {
  r.get('/signin', (req, res) => {
    if (deps.sessions.find(readCookie(req, SESSION_COOKIE)).state === 'active') return res.redirect(303, '/console/');
    signInPage(req, res, { expired: req.query.expired === '1' });
  });

  const signIn = (via: 'token' | 'certificate') => async (req: Request, res: Response) => {
    const source = req.socket.remoteAddress ?? 'unknown';
    const requestId = requestIdOf(req);
    const nonce = readCookie(req, SIGNIN_COOKIE);
    if (!nonce || !sameSecret(nonce, field(req, '_nonce'))) {
      return signInPage(req, res, { status: 403, error: new TiercaError('forbidden', viewOf(res).t('csrf.signin')) });
    }
    let principal: Principal;
    try {
      principal = await deps.login({
        req, source, requestId, target: `POST /console/signin${via === 'certificate' ? '/certificate' : ''}`,
        ...(via === 'token' ? { token: field(req, 'token') } : {}),
      });
    } catch (err) {
      const e = formErrorOf(err);
      return signInPage(req, res, { status: e.code === 'rate-limited' ? 429 : 401, error: e });
    }
    const certificate = via === 'certificate' ? (req.socket as TLSSocket).getPeerCertificate().raw : undefined;
    // A fresh id at every sign-in: an id planted before cannot be carried into the signed-in session.
    deps.sessions.destroy(readCookie(req, SESSION_COOKIE));
    const { id } = deps.sessions.create({ principalId: principal.id, via, certificate });
    await deps.ra.authorizer.auditSession({ principal, source, requestId }, 'console.sign-in', { via });
    setCookie(req, res, SIGNIN_COOKIE, '', 0);
    setCookie(req, res, SESSION_COOKIE, id);
    res.redirect(303, '/console/');
  };
  r.post('/signin', signIn('token'));
  r.post('/signin/certificate', signIn('certificate'));
}

/** Sign-out (behind the session and its CSRF check). */
export function signOutPage(r: Router, deps: ConsoleDeps): void {
  r.post('/signout', async (req, res) => {
    await deps.ra.authorizer.auditSession(ctxOf(res), 'console.sign-out', { via: sessionOf(res).via });
    deps.sessions.destroy(readCookie(req, SESSION_COOKIE));
    setCookie(req, res, SESSION_COOKIE, '', 0);
    res.locals.view = makeView(viewOf(res).lang, '/console/signin');
    res.redirect(303, '/console/signin');
  });
}
