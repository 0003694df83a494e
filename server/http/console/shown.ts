/**
 * Result pages shown once (decision 0028). A POST whose result carries a secret — a server-made
 * key's PKCS#12 passphrase, the KMC-made encryption key's, a new principal's token — does not answer
 * with it: the page is kept in the session (memory only, like deliveries.ts) under a random id, and
 * the POST answers `303 See Other` to `/console/shown/<id>`. The first GET renders it (with the
 * console's `Cache-Control: no-store`) and forgets it, so a reload, Back/Forward into it or a second
 * tab gets "already shown, or expired" in the chosen language, never the secret, and nothing is
 * posted again. A result waits five minutes at most, on the injected clock. The id is random and
 * names nothing; the secret is in no URL, log line or audit record.
 *
 * Every result page of a form goes this way (an issuance from a CSR, a pending request too): one
 * pattern, and a reload never repeats the POST.
 */
import { randomBytes } from 'node:crypto';
import type { Response, Router } from 'express';
import { html } from './html.ts';
import { sendPage, sessionOf, viewOf, type ConsoleDeps } from './console-context.ts';
import type { ShownEntry } from './session-store.ts';

/** How long a result waits for its one showing. */
export const SHOWN_MS = 5 * 60_000;
/** At most this many results wait per session (the oldest is dropped first). */
const MAX_SHOWN = 20;

/** Keeps the result page `render` for one showing and redirects (303) to it. */
export function showOnce(res: Response, deps: Pick<ConsoleDeps, 'clock'>, render: ShownEntry['render']): void {
  const shown = sessionOf(res).shown;
  const now = deps.clock.now().getTime();
  for (const [id, s] of shown) if (s.until <= now) shown.delete(id);
  while (shown.size >= MAX_SHOWN) shown.delete(shown.keys().next().value!);
  const id = randomBytes(16).toString('base64url');
  shown.set(id, { render, until: now + SHOWN_MS });
  res.redirect(303, `/console/shown/${id}`);
}

/**
 * Takes the result `id` out of `shown`: the entry when it is there and not expired, else undefined.
 * Either way it is gone afterwards.
 */
export function takeShown(shown: Map<string, ShownEntry>, id: string, now: Date): ShownEntry | undefined {
  const entry = shown.get(id);
  shown.delete(id);
  return entry && entry.until > now.getTime() ? entry : undefined;
}

export function shownRoutes(r: Router, deps: Pick<ConsoleDeps, 'clock'>): void {
  r.get('/shown/:id', (req, res) => {
    const view = viewOf(res);
    const entry = takeShown(sessionOf(res).shown, String(req.params.id), deps.clock.now());
    if (!entry) {
      return sendPage(res, {
        title: view.t('shown.goneTitle'), status: 410,
        body: html`<p class="notice" role="status" id="shown-gone">${view.t('shown.gone')}</p>
<p><a href="/console/certificates">${view.t('nav.certificates')}</a> · <a href="/console/">${view.t('action.home')}</a></p>`,
      });
    }
    const page = entry.render(view);
    res.setHeader('cache-control', 'no-store');
    sendPage(res, page);
  });
}
