/**
 * Secrets handed out once: a server-made key as PKCS#12 is kept in the session (memory only) under a
 * random id until it is downloaded or five minutes pass, whichever is first. Its passphrase is on
 * the result page, which is itself shown once (shown.ts), and kept nowhere else.
 */
import { randomBytes } from 'node:crypto';
import type { Router } from 'express';
import { html, type SafeHtml } from './html.ts';
import { sessionOf, type ConsoleDeps, type View } from './console-context.ts';
import type { ConsoleSession } from './session-store.ts';
import { TiercaError } from '../../errors.ts';

const DELIVERY_MS = 5 * 60_000;

/** Keeps `body` for one download; returns its URL. */
export function deliverOnce(session: ConsoleSession, now: Date, p: { name: string; type: string; body: Buffer }): string {
  for (const [id, d] of session.deliveries) if (d.until <= now.getTime()) session.deliveries.delete(id);
  const id = randomBytes(16).toString('base64url');
  session.deliveries.set(id, { ...p, until: now.getTime() + DELIVERY_MS });
  return `/console/deliveries/${id}`;
}

export function deliveryRoutes(r: Router, deps: ConsoleDeps): void {
  r.get('/deliveries/:id', (req, res) => {
    const session = sessionOf(res);
    const d = session.deliveries.get(req.params.id);
    session.deliveries.delete(req.params.id);
    if (!d || d.until <= deps.clock.now().getTime()) throw new TiercaError('not-found', 'this download was given once already, or it expired');
    res.type(d.type).attachment(d.name).send(d.body);
  });
}

/** The once-only PKCS#12 link and passphrase of a result page. */
export function pkcs12Box(view: View, p: { href: string; passphrase: string; id: string }): SafeHtml {
  const { t } = view;
  return html`<div class="secret" id="${p.id}">
<p><a href="${p.href}" download class="button" id="${p.id}-download">${t('issue.downloadP12')}</a></p>
<p>${t('issue.passphrase')} <code class="passphrase" id="${p.id}-passphrase">${p.passphrase}</code></p>
<p class="warn">${t('issue.onceOnly')}</p>
</div>`;
}

/** A new principal's token on a result page (shown once through shown.ts). */
export function tokenBox(view: View, token: string): SafeHtml {
  const { t } = view;
  return html`<div class="secret" id="token-box"><p>${t('principals.token')}</p><p><code class="token" id="new-token">${token}</code></p><p class="warn">${t('issue.onceOnly')}</p></div>`;
}
