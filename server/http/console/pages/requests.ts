/**
 * Pending dual-control requests: approve or reject, through DualControl as the API does. One's own
 * request shows no approve button (the service refuses it anyway: `policy-self-approval`). What an
 * approval gives is shown once: an issued certificate, a recovered key (PKCS#12 and passphrase), a
 * new principal's token.
 */
import type { Response, Router } from 'express';
import { ERROR_CODES, type TiercaError } from '../../../errors.ts';
import type { RequestRecord } from '../../../storage/storage.ts';
import type { ApprovalResult } from '../../../ra/dual-control.ts';
import { html, type SafeHtml } from '../html.ts';
import { badge, csrfField, problemBox } from '../layout.ts';
import { ctxOf, formErrorOf, guard, redirectWith, sendPage, sessionOf, viewOf, type ConsoleDeps, type View } from '../console-context.ts';
import { pagePermissions } from '../menu.ts';
import { deliverOnce, pkcs12Box, tokenBox } from '../deliveries.ts';
import { showOnce } from '../shown.ts';
import { issuedPage } from './issue.ts';
import { certificateFacts } from './certificates.ts';

export function requestPages(r: Router, deps: ConsoleDeps): void {
  const may = guard(deps.ra, pagePermissions('/console/requests'), 'request.list');
  r.get('/requests', may, async (_req, res) => {
    await listPage(res, deps);
  });
  r.post('/requests/:id/approve', may, async (req, res) => {
    let result: ApprovalResult;
    try {
      result = await deps.ra.requests.approve(ctxOf(res), String(req.params.id));
    } catch (err) {
      return listPage(res, deps, formErrorOf(err));
    }
    approvedPage(res, deps, result);
  });
  r.post('/requests/:id/reject', may, async (req, res) => {
    try {
      await deps.ra.requests.reject(ctxOf(res), String(req.params.id));
    } catch (err) {
      return listPage(res, deps, formErrorOf(err));
    }
    redirectWith(res, '/console/requests', { kind: 'ok', text: viewOf(res).t('flash.rejected', { id: String(req.params.id) }) });
  });
}

async function listPage(res: Response, deps: ConsoleDeps, error?: TiercaError): Promise<void> {
  const view = viewOf(res);
  const { t } = view;
  const pending = await deps.ra.requests.list(ctxOf(res), { status: 'pending' });
  sendPage(res, {
    title: t('nav.requests'), status: error ? ERROR_CODES[error.code].status : 200,
    body: html`${error ? problemBox(view, error) : ''}
${pending.length === 0 ? html`<p id="no-requests">${t('requests.none')}</p>` : html`<table id="requests"><thead><tr>
<th scope="col">${t('field.request')}</th><th scope="col">${t('field.action')}</th><th scope="col">${t('field.domain')} / ${t('field.tier')}</th>
<th scope="col">${t('field.requestedBy')}</th><th scope="col">${t('requests.approvals')}</th><th scope="col">${t('field.expires')}</th><th scope="col">${t('requests.decide')}</th></tr></thead>
<tbody>${pending.map((q) => row(view, q))}</tbody></table>`}`,
  });
}

function row(view: View, q: RequestRecord): SafeHtml {
  const { t } = view;
  const own = q.requestedBy === view.principal?.id;
  return html`<tr data-request="${q.id}"><td><code>${q.id}</code></td><td>${t(`requestKind.${q.action}` as 'requestKind.issue') ?? q.action}${q.subjectId ? html`<br><small>${q.subjectId}</small>` : ''}</td>
<td>${q.domain ?? '—'} / ${q.tier ?? '—'}</td><td><code>${q.requestedBy}</code>${own ? html` <small>(${t('requests.you')})</small>` : ''}</td>
<td>${q.approvals.length} / ${q.approvalsRequired}</td><td>${view.date(q.expiresAt)}</td>
<td>${own ? html`<span class="muted" id="own-${q.id}">${t('requests.ownCannotApprove')}</span>` : html`<form method="post" action="/console/requests/${q.id}/approve" class="inline">${csrfField(view)}<button type="submit" class="approve" id="approve-${q.id}">${t('action.approve')}</button></form>`}
<form method="post" action="/console/requests/${q.id}/reject" class="inline">${csrfField(view)}<button type="submit" class="danger" id="reject-${q.id}">${t('action.reject')}</button></form></td></tr>`;
}

/** What an approval gives, shown once through shown.ts (a recovered key's passphrase, a new principal's token). */
function approvedPage(res: Response, deps: ConsoleDeps, result: ApprovalResult): void {
  const { t } = viewOf(res);
  if (result.kind === 'pending') {
    return redirectWith(res, '/console/requests', { kind: 'ok', text: t('flash.approvalRecorded', { id: result.request.id, n: result.request.approvals.length, m: result.request.approvalsRequired }) });
  }
  if (result.kind === 'issued') return issuedPage(res, deps, result);
  const now = deps.clock.now();
  if (result.kind === 'recovered') {
    const { certificate, passphrase } = result;
    const href = deliverOnce(sessionOf(res), now, { name: `${certificate.serial}-recovered.p12`, type: 'application/x-pkcs12', body: result.pkcs12 });
    return showOnce(res, deps, (view) => ({
      title: view.t('requests.recovered'),
      body: html`${badge(view, 'done')}${certificateFacts(view, certificate)}${pkcs12Box(view, { id: 'p12', href, passphrase })}`,
    }));
  }
  if (result.kind === 'recovered-history') {
    // A whole key history: one PKCS#12 per key, each downloadable once, one passphrase.
    const links = result.keys.map((k) => ({
      serial: k.certificate.serial,
      href: deliverOnce(sessionOf(res), now, { name: `${k.certificate.serial}-recovered.p12`, type: 'application/x-pkcs12', body: k.pkcs12 }),
    }));
    const { passphrase } = result;
    return showOnce(res, deps, (view) => ({
      title: view.t('requests.recovered'),
      body: html`${badge(view, 'done')}<ul>${links.map((l) => html`<li><a href="${l.href}">${l.serial}.p12</a></li>`)}</ul>${pkcs12Box(view, { id: 'p12', href: links[0]?.href ?? '', passphrase })}`,
    }));
  }
  const token = typeof result.result.token === 'string' ? result.result.token : undefined;
  const id = result.request.id;
  showOnce(res, deps, (view) => ({
    title: view.t('requests.done'),
    body: html`<p class="notice ok" role="status" id="done">${view.t('flash.requestDone', { id })}</p>
${token ? tokenBox(view, token) : ''}
<p><a href="/console/requests">${view.t('nav.requests')}</a></p>`,
  }));
}
