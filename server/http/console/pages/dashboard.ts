/**
 * The officer's dashboard: the hierarchy as a tree (status and validity of each CA), live
 * certificates per domain and tier, what expires within 30 days, revocations per day (an SVG bar
 * chart: attributes only, which the CSP allows, unlike inline styles).
 */
import type { Router } from 'express';
import type { LoadedCa } from '../../../ca/ca-directory.ts';
import type { CertificateRecord } from '../../../storage/storage.ts';
import { DAY_MS } from '../../../../pki/time-constants.ts';
import { html, type SafeHtml } from '../html.ts';
import { badge } from '../layout.ts';
import { ctxOf, guard, sendPage, viewOf, type ConsoleDeps, type View } from '../console-context.ts';
import { pagePermissions } from '../menu.ts';
import { formatDay } from '../i18n.ts';

/** At most this many certificates are counted; past it the count says "at least". */
const COUNT_LIMIT = 10_000;
const CHART_DAYS = 14;

export function dashboardPages(r: Router, deps: ConsoleDeps): void {
  r.get('/dashboard', guard(deps.ra, pagePermissions('/console/dashboard'), 'certificate.list'), async (_req, res) => {
    const ctx = ctxOf(res);
    const view = viewOf(res);
    const now = deps.clock.now();
    const cas = await deps.ra.cas.list(ctx);
    const live = await deps.ra.certificates.list(ctx, { status: 'good', notAfterAfter: now, limit: COUNT_LIMIT });
    const expiring = live.filter((c) => c.notAfter.getTime() <= now.getTime() + 30 * DAY_MS).sort((a, b) => a.notAfter.getTime() - b.notAfter.getTime());
    const revoked = await deps.ra.certificates.list(ctx, { status: 'revoked', limit: COUNT_LIMIT });
    const { t } = view;
    sendPage(res, {
      title: t('nav.dashboard'),
      body: html`
<div class="grid">
<section class="card" aria-labelledby="h-tree"><h2 id="h-tree">${t('dash.hierarchy')}</h2>${tree(view, cas, null, now)}</section>
<section class="card" aria-labelledby="h-counts"><h2 id="h-counts">${t('dash.live')}</h2>${counts(view, live)}</section>
<section class="card" aria-labelledby="h-exp"><h2 id="h-exp">${t('dash.expiring')}</h2>${expiringTable(view, expiring.slice(0, 50))}</section>
<section class="card" aria-labelledby="h-rev"><h2 id="h-rev">${t('dash.revocations', { days: CHART_DAYS })}</h2>${chart(view, revoked, now)}</section>
</div>`,
    });
  });
}

function tree(view: View, cas: readonly LoadedCa[], parent: string | null, now: Date): SafeHtml {
  const children = cas.filter((c) => c.record.parentId === parent);
  if (children.length === 0) return html``;
  return html`<ul${parent ? '' : html` class="tree" id="ca-tree"`}>${children.map((c) => {
    const r = c.record;
    const soon = r.notAfter.getTime() - now.getTime() < 90 * DAY_MS;
    return html`<li data-ca="${r.id}"><span class="ca-name">${r.name}</span> <code>${r.id}</code> ${badge(view, r.status)}
<span class="validity${soon ? ' soon' : ''}">${view.date(r.notBefore)} – ${view.date(r.notAfter)}</span>${tree(view, cas, r.id, now)}</li>`;
  })}</ul>`;
}

function counts(view: View, live: readonly CertificateRecord[]): SafeHtml {
  const tiers = [...new Set(live.map((c) => c.tier ?? '—'))].sort();
  const byDomain = new Map<string, Map<string, number>>();
  for (const c of live) {
    const row = byDomain.get(c.domain ?? '—') ?? new Map<string, number>();
    row.set(c.tier ?? '—', (row.get(c.tier ?? '—') ?? 0) + 1);
    byDomain.set(c.domain ?? '—', row);
  }
  if (live.length === 0) return html`<p>${view.t('dash.none')}</p>`;
  const at = live.length >= COUNT_LIMIT ? '≥' : '';
  return html`<table id="live-counts"><thead><tr><th scope="col">${view.t('field.domain')}</th>${tiers.map((tier) => html`<th scope="col">${tier}</th>`)}</tr></thead>
<tbody>${[...byDomain.keys()].sort().map((d) => html`<tr><th scope="row">${d}</th>${tiers.map((tier) => html`<td data-domain="${d}" data-tier="${tier}">${at}${byDomain.get(d)!.get(tier) ?? 0}</td>`)}</tr>`)}</tbody></table>`;
}

function expiringTable(view: View, certs: readonly CertificateRecord[]): SafeHtml {
  if (certs.length === 0) return html`<p>${view.t('dash.none')}</p>`;
  return html`<table id="expiring"><thead><tr><th scope="col">${view.t('field.subject')}</th><th scope="col">${view.t('field.serial')}</th><th scope="col">${view.t('field.notAfter')}</th></tr></thead>
<tbody>${certs.map((c) => html`<tr><td>${c.subjectDn}</td><td><a href="/console/certificates/${c.issuerId}/${c.serial}"><code>${c.serial}</code></a></td><td>${view.date(c.notAfter)}</td></tr>`)}</tbody></table>`;
}

function chart(view: View, revoked: readonly CertificateRecord[], now: Date): SafeHtml {
  const today = Math.floor(now.getTime() / DAY_MS);
  const perDay = Array.from({ length: CHART_DAYS }, (_, i) => ({ day: today - CHART_DAYS + 1 + i, n: 0 }));
  for (const c of revoked) {
    const day = c.revokedAt ? Math.floor(c.revokedAt.getTime() / DAY_MS) : NaN;
    const slot = perDay.find((p) => p.day === day);
    if (slot) slot.n++;
  }
  const max = Math.max(1, ...perDay.map((p) => p.n));
  const w = 28;
  const h = 100;
  const total = perDay.reduce((s, p) => s + p.n, 0);
  return html`<svg id="revocation-chart" viewBox="0 0 ${CHART_DAYS * w} ${h + 30}" width="100%" role="img" aria-labelledby="chart-title">
<title id="chart-title">${view.t('dash.chartTitle', { days: CHART_DAYS, total })}</title>
${perDay.map((p, i) => {
    const bh = Math.round((p.n / max) * h);
    const label = formatDay(view.lang, new Date(p.day * DAY_MS));
    return html`<g><rect class="bar" x="${i * w + 4}" y="${h - bh}" width="${w - 8}" height="${bh}"><title>${label}: ${p.n}</title></rect>
<text class="count" x="${i * w + w / 2}" y="${h - bh - 3}" text-anchor="middle">${p.n || ''}</text>
<text class="day" x="${i * w + w / 2}" y="${h + 16}" text-anchor="middle">${label}</text></g>`;
  })}
</svg>
<p class="sr">${view.t('dash.chartTitle', { days: CHART_DAYS, total })}</p>`;
}
