/**
 * Rotation (sysadmins): what is due, a dry run first, then the run itself with progress — the run is
 * carried out in batches of the same run id (RotationRunService's `limit` and `remaining`: a repeated
 * id never renews twice), and each batch's lines are streamed to the page as it finishes.
 */
import { randomBytes } from 'node:crypto';
import type { Response, Router } from 'express';
import { ERROR_CODES, type TiercaError } from '../../../errors.ts';
import type { RunItem } from '../../../ra/rotation/rotation-run.service.ts';
import type { DueItem } from '../../../ca/rotation-planner.ts';
import { parseWith } from '../../validate.ts';
import { dueQuery, runBody } from '../../routes/rotation.routes.ts';
import { html, SafeHtml } from '../html.ts';
import { csrfField, layout, problemBox, select } from '../layout.ts';
import { ctxOf, field, formErrorOf, guard, param, redirectWith, sendPage, viewOf, type ConsoleDeps, type View } from '../console-context.ts';
import { pagePermissions } from '../menu.ts';

/** Renewals per batch of a run (a line of progress each). */
const BATCH = 5;
/** At most this many batches per run request (a bound, not a limit anyone should meet). */
const MAX_BATCHES = 2000;
const STREAM = '<!--stream-->';

export function rotationPages(r: Router, deps: ConsoleDeps): void {
  const rotation = deps.rotation;
  if (!rotation) return;
  const may = guard(deps.ra, pagePermissions('/console/rotation'), 'rotation.run');
  r.get('/rotation', may, async (req, res) => {
    await duePage(res, deps, param(req, 'within'));
  });

  // A CA key rollover is a dual-controlled request: a second sysadmin approves it under Pending requests.
  r.post('/rotation/rollover', guard(deps.ra, ['ca:rollover'], 'ca.rollover'), async (req, res) => {
    let id: string;
    try {
      id = (await rotation.rollovers.requestRollover(ctxOf(res), field(req, 'ca'))).request.id;
    } catch (err) {
      return duePage(res, deps, '', formErrorOf(err));
    }
    redirectWith(res, '/console/rotation', { kind: 'ok', text: viewOf(res).t('flash.rolloverRequested', { id }) });
  });

  r.post('/rotation/dry-run', may, async (req, res) => {
    const view = viewOf(res);
    const { t } = view;
    let report;
    try {
      report = await rotation.runs.run(ctxOf(res), parseWith(runBody, { dryRun: true }));
    } catch (err) {
      return duePage(res, deps, '', formErrorOf(err));
    }
    sendPage(res, {
      title: t('rotation.dryRunTitle'),
      body: html`<p id="dry-run-summary" role="status">${t('rotation.dryRunSummary', { n: report.items.length })} ${summary(report.summary)}</p>
${itemsTable(view, report.items, 'dry-run-items')}
<form method="post" action="/console/rotation/run" class="row">${csrfField(view)}
<input type="hidden" name="runId" value="console-${randomBytes(8).toString('hex')}">
<button type="submit" class="danger" id="execute">${t('rotation.execute')}</button></form>
<p><a href="/console/rotation">${t('action.back')}</a></p>`,
    });
  });

  r.post('/rotation/run', may, async (req, res) => {
    const view = viewOf(res);
    const { t } = view;
    const runId = field(req, 'runId');
    let first;
    try {
      // The first batch before anything is sent: a refusal still gets its form page and status.
      first = await rotation.runs.run(ctxOf(res), parseWith(runBody, { requestId: runId, limit: BATCH }));
    } catch (err) {
      return duePage(res, deps, '', formErrorOf(err));
    }
    const page = layout(view, t('rotation.runTitle'), html`<ol id="run-progress" class="progress">${new SafeHtml(STREAM)}`).value;
    const [head, tail] = page.split(STREAM);
    res.status(200).type('html');
    res.write(head);
    const batchLine = (n: number, items: RunItem[], remaining: number) =>
      html`<li class="batch" data-remaining="${remaining}">${t('rotation.batch', { n, done: items.filter((i) => i.outcome !== 'would-renew').length, remaining })}${itemsTable(view, items)}</li>`.value;
    res.write(batchLine(1, first.items, first.remaining));
    let remaining = first.remaining;
    let end: SafeHtml;
    try {
      for (let n = 2; remaining > 0 && n <= MAX_BATCHES; n++) {
        const next = await rotation.runs.run(ctxOf(res), { requestId: runId, limit: BATCH });
        remaining = next.remaining;
        res.write(batchLine(n, next.items.filter((i) => i.outcome !== 'already-renewed'), remaining));
      }
      end = html`<p id="run-done" class="notice ok" role="status">${t('rotation.done')}</p>`;
    } catch (err) {
      end = problemBox(view, formErrorOf(err));
    }
    res.end(html`</ol>${end}<p><a href="/console/rotation">${t('action.back')}</a></p>`.value + tail.replace(/^<\/ol>/, ''));
  });
}

async function duePage(res: Response, deps: ConsoleDeps, within: string, error?: TiercaError): Promise<void> {
  const view = viewOf(res);
  const { t } = view;
  let items: DueItem[] = [];
  try {
    const q = parseWith(dueQuery, within ? { within } : {});
    items = (await deps.rotation!.runs.due(ctxOf(res), { withinMs: q.within ?? 0 })).items;
  } catch (err) {
    error ??= formErrorOf(err);
  }
  const cas = (await deps.ra.cas.list(ctxOf(res))).filter((c) => c.record.status === 'active' && c.record.layer !== 'root');
  sendPage(res, {
    title: t('nav.rotation'), status: error ? ERROR_CODES[error.code].status : 200,
    body: html`${error ? problemBox(view, error) : ''}
<form method="get" action="/console/rotation" class="search"><label for="within">${t('rotation.within')}</label>
<input id="within" name="within" value="${within}" spellcheck="false"><button type="submit" id="show-due">${t('action.search')}</button></form>
${items.length === 0 ? html`<p id="nothing-due">${t('rotation.nothingDue')}</p>` : html`<table id="due"><caption>${t('list.count', { n: items.length })}</caption><thead><tr>
<th scope="col">${t('rotation.kind')}</th><th scope="col">${t('rotation.target')}</th><th scope="col">${t('field.domain')} / ${t('field.tier')}</th><th scope="col">${t('rotation.dueAt')}</th></tr></thead>
<tbody>${items.map((i) => html`<tr><td>${i.kind}</td><td class="wrap">${targetOf(i)}</td><td>${i.domain ?? '—'} / ${i.tier ?? '—'}</td><td>${view.date(i.dueAt)}</td></tr>`)}</tbody></table>`}
<form method="post" action="/console/rotation/dry-run" class="row">${csrfField(view)}<button type="submit" id="dry-run">${t('rotation.dryRun')}</button></form>
${view.can('ca:rollover') ? html`<section class="card" aria-labelledby="h-rollover"><h2 id="h-rollover">${t('rotation.rollover')}</h2>
<p>${t('rotation.rolloverHelp')}</p>
<form method="post" action="/console/rotation/rollover" class="row">${csrfField(view)}
<label for="rollover-ca">${t('field.ca')}</label>${select('ca', 'rollover-ca', cas.map((c) => [c.record.id, `${c.record.name} (${c.record.id})`] as const), '')}
<button type="submit" id="request-rollover">${t('rotation.requestRollover')}</button></form></section>` : ''}`,
  });
}

function targetOf(i: DueItem): string {
  const o = i as unknown as Record<string, unknown>;
  if (typeof o.serial === 'string') return `certificate:${String(o.issuerId)}/${o.serial}`;
  return `ca:${String(o.caId ?? o.ca ?? o.lineage ?? '')}`;
}

const summary = (s: Partial<Record<string, number>>): string => Object.entries(s).map(([k, v]) => `${k}: ${v}`).join(', ');

function itemsTable(view: View, items: readonly RunItem[], id?: string): SafeHtml {
  const { t } = view;
  if (items.length === 0) return html``;
  return html`<table${id ? html` id="${id}"` : ''} class="items"><thead><tr><th scope="col">${t('rotation.target')}</th><th scope="col">${t('rotation.outcome')}</th><th scope="col">${t('rotation.why')}</th></tr></thead>
<tbody>${items.map((i) => html`<tr data-outcome="${i.outcome}"><td class="wrap">${i.target}</td><td>${i.outcome}</td><td>${i.error ? `${i.error.code}: ${i.error.message}` : i.why ?? (i.successor ? i.successor.serial : '')}</td></tr>`)}</tbody></table>`;
}
