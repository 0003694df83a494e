/**
 * The audit log for auditors: records filtered by principal, action, target and time; "verify the
 * chain", whose page is streamed — the progress line first, the verdict when AuditQueryService has
 * recomputed every hash and checkpoint; and export as JSON Lines (the API's own record shape).
 */
import type { Request, Response, Router } from 'express';
import { AUDIT_ACTIONS } from '../../../ra/audit-actions.ts';
import type { AuditRecord } from '../../../storage/storage.ts';
import { ERROR_CODES, type TiercaError } from '../../../errors.ts';
import { parseWith } from '../../validate.ts';
import { auditListQuery, auditView, exportQuery } from '../../routes/audit.routes.ts';
import { html, SafeHtml } from '../html.ts';
import { layout, problemBox, select } from '../layout.ts';
import { ctxOf, formErrorOf, guard, param, sendPage, viewOf, type ConsoleDeps, type View } from '../console-context.ts';
import { pagePermissions } from '../menu.ts';

const LIMIT = 200;
const STREAM = '<!--stream-->';

/** A `datetime-local` value (taken as UTC, as the page says) as the API's ISO time; other text is passed on for the schema to refuse. */
const isoOf = (local: string): string | undefined => (!local ? undefined : /^\d{4}-\d\d-\d\dT\d\d:\d\d$/.test(local) ? `${local}:00Z` : local);

export function auditPages(r: Router, deps: ConsoleDeps): void {
  const may = guard(deps.ra, pagePermissions('/console/audit'), 'audit.read');
  r.get('/audit', may, async (req, res) => {
    const view = viewOf(res);
    const form = { actor: param(req, 'actor'), action: param(req, 'action'), target: param(req, 'target'), since: param(req, 'since'), until: param(req, 'until') };
    let records: AuditRecord[] = [];
    let error: TiercaError | undefined;
    try {
      const q = parseWith(auditListQuery, {
        ...(form.actor ? { actor: form.actor } : {}), ...(form.action ? { action: form.action } : {}),
        ...(form.since ? { since: isoOf(form.since) } : {}), ...(form.until ? { until: isoOf(form.until) } : {}), limit: String(LIMIT),
      });
      records = await deps.ra.audit.records(ctxOf(res), { since: q.since, until: q.until, actor: q.actor, action: q.action, limit: q.limit });
      if (form.target) records = records.filter((a) => a.target?.includes(form.target));
    } catch (err) {
      error = formErrorOf(err);
    }
    const { t } = view;
    const query = new URLSearchParams({ ...(form.since ? { from: isoOf(form.since)! } : {}), ...(form.until ? { to: isoOf(form.until)! } : {}) }).toString();
    sendPage(res, {
      title: t('nav.audit'), status: error ? ERROR_CODES[error.code].status : 200,
      body: html`
<p class="row"><a href="/console/audit/verify" class="button" id="verify">${t('audit.verify')}</a>
<a href="/console/audit/export${query ? `?${query}` : ''}" download class="button" id="export">${t('audit.export')}</a></p>
<form method="get" action="/console/audit" class="search" role="search">
<label for="a-actor">${t('audit.principal')}</label><input id="a-actor" name="actor" value="${form.actor}" spellcheck="false">
<label for="a-action">${t('field.action')}</label>${select('action', 'a-action', AUDIT_ACTIONS.map((a) => [a, a] as const), form.action, t('field.any'))}
<label for="a-target">${t('audit.target')}</label><input id="a-target" name="target" value="${form.target}">
<label for="a-since">${t('audit.since')}</label><input id="a-since" name="since" type="datetime-local" value="${form.since}">
<label for="a-until">${t('audit.until')}</label><input id="a-until" name="until" type="datetime-local" value="${form.until}">
<button type="submit" id="filter">${t('action.search')}</button>
</form>
<p class="muted">${t('audit.utc')}</p>
${error ? problemBox(view, error) : recordsTable(view, records)}`,
    });
  });

  r.get('/audit/verify', may, async (_req, res) => {
    const view = viewOf(res);
    const { t } = view;
    const page = layout(view, t('audit.verify'), html`<p id="verify-progress" role="status">${t('audit.verifying')}</p>${new SafeHtml(STREAM)}`).value;
    const [head, tail] = page.split(STREAM);
    res.status(200).type('html');
    res.write(head);
    let body: SafeHtml;
    try {
      const v = await deps.ra.audit.verify(ctxOf(res));
      body = html`<div id="verify-result" class="${v.ok ? 'notice ok' : 'problem'}" role="alert" data-ok="${String(v.ok)}">
<p><strong>${v.ok ? t('audit.chainOk') : t('audit.chainBad')}</strong></p>
<p>${t('audit.verified', { checked: v.checked, checkpoints: v.checkpoints, last: v.lastSeq, unanchored: v.unanchored })}</p>
${v.lastHash ? html`<p>${t('audit.lastHash')} <code class="wrap">${v.lastSeq}:${v.lastHash}</code></p>` : ''}
${v.firstBad ? html`<p>${t('audit.firstBad')} <code>${v.firstBad.seq}</code> ${v.firstBad.problem}: ${v.firstBad.detail}</p>` : ''}
</div><p><a href="/console/audit">${t('nav.audit')}</a></p>`;
    } catch (err) {
      body = problemBox(view, formErrorOf(err));
    }
    res.end(body.value + tail);
  });

  r.get('/audit/export', may, async (req: Request, res: Response) => {
    const q = parseWith(exportQuery, { ...(param(req, 'from') ? { from: param(req, 'from') } : {}), ...(param(req, 'to') ? { to: param(req, 'to') } : {}) });
    const records = await deps.ra.audit.export(ctxOf(res), { from: q.from, to: q.to });
    res.status(200).type('application/jsonl; charset=utf-8').attachment('tierca-audit.jsonl');
    for await (const record of records) {
      if (!res.write(`${JSON.stringify(auditView(record))}\n`)) await new Promise((resolve) => res.once('drain', resolve));
    }
    res.end();
  });
}

function recordsTable(view: View, records: readonly AuditRecord[]): SafeHtml {
  const { t } = view;
  if (records.length === 0) return html`<p id="no-results">${t('list.empty')}</p>`;
  return html`<table id="audit"><caption>${t('list.count', { n: records.length })}</caption><thead><tr>
<th scope="col">#</th><th scope="col">${t('audit.at')}</th><th scope="col">${t('audit.principal')}</th><th scope="col">${t('field.action')}</th>
<th scope="col">${t('audit.target')}</th><th scope="col">${t('audit.outcome')}</th><th scope="col">${t('audit.source')}</th><th scope="col">${t('audit.detail')}</th></tr></thead>
<tbody>${[...records].reverse().map((a) => html`<tr data-seq="${a.seq}" data-action="${a.action}"><td>${a.seq}</td><td>${view.date(a.at)}</td>
<td>${a.principalId ? html`<code>${a.principalId}</code>` : '—'} ${a.role ?? ''}</td><td>${a.action}</td><td class="wrap">${a.target ?? '—'}</td>
<td>${view.t(`outcome.${a.outcome}`)}</td><td>${a.source ?? '—'}</td><td class="wrap"><small>${JSON.stringify(a.detail).slice(0, 300)}</small></td></tr>`)}</tbody></table>`;
}
