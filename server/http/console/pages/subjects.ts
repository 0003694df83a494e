/**
 * Subjects (officers): search by domain, tier and kind, and add one — the API's subject schema and
 * SubjectService, so a name outside the domain's constraints is refused here exactly as there.
 */
import type { Response, Router } from 'express';
import { ERROR_CODES, type TiercaError } from '../../../errors.ts';
import type { SubjectRecord } from '../../../storage/storage.ts';
import { parseWith } from '../../validate.ts';
import { subjectBody } from '../../routes/subject.routes.ts';
import { html } from '../html.ts';
import { badge, csrfField, problemBox, select } from '../layout.ts';
import { ctxOf, field, formErrorOf, guard, listField, param, redirectWith, sendPage, viewOf, type ConsoleDeps } from '../console-context.ts';
import { pagePermissions } from '../menu.ts';

const KINDS = ['organ', 'device', 'user'] as const;
type SubjectForm = Record<'kind' | 'domain' | 'organ' | 'tier' | 'name' | 'dns' | 'ips' | 'emails', string>;

export function subjectPages(r: Router, deps: ConsoleDeps): void {
  const may = guard(deps.ra, pagePermissions('/console/subjects'), 'subject.list');
  r.get('/subjects', may, async (req, res) => {
    await page(res, deps, { domain: param(req, 'domain'), tier: param(req, 'tier'), kind: param(req, 'kind') });
  });
  r.post('/subjects', may, async (req, res) => {
    const form: SubjectForm = {
      kind: field(req, 'kind'), domain: field(req, 'domain'), organ: field(req, 'organ'), tier: field(req, 'tier'), name: field(req, 'name'),
      dns: field(req, 'dns'), ips: field(req, 'ips'), emails: field(req, 'emails'),
    };
    let added: SubjectRecord;
    try {
      const dns = listField(req, 'dns');
      const ips = listField(req, 'ips');
      const emails = listField(req, 'emails');
      added = await deps.ra.subjects.add(ctxOf(res), parseWith(subjectBody, {
        kind: form.kind, domain: form.domain, organ: form.organ, tier: form.tier, name: form.name,
        ...(dns.length ? { dns } : {}), ...(ips.length ? { ips } : {}), ...(emails.length ? { emails } : {}),
      }));
    } catch (err) {
      return page(res, deps, {}, form, formErrorOf(err));
    }
    redirectWith(res, `/console/issue?subject=${encodeURIComponent(added.id)}`, { kind: 'ok', text: viewOf(res).t('flash.subjectAdded', { name: added.name, id: added.id }) });
  });
}

async function page(res: Response, deps: ConsoleDeps, filter: { domain?: string; tier?: string; kind?: string }, form?: SubjectForm, error?: TiercaError): Promise<void> {
  const view = viewOf(res);
  const { t } = view;
  const ctx = ctxOf(res);
  const domains = await deps.ra.cas.domains(ctx);
  const tiers = [...new Set((await deps.ra.cas.list(ctx)).map((c) => c.record.tier).filter((x): x is string => !!x))].sort();
  const organs = [...new Map(domains.flatMap((d) => d.organs).map((o) => [o.slug, o.name])).entries()];
  const kind = KINDS.find((k) => k === filter.kind);
  const subjects = await deps.ra.subjects.list(ctx, { domain: filter.domain || undefined, tier: filter.tier || undefined, kind, limit: 500 });
  const f = form ?? { kind: 'device', domain: view.principal?.domains[0] ?? '', organ: '', tier: tiers[0] ?? '', name: '', dns: '', ips: '', emails: '' };
  sendPage(res, {
    title: t('nav.subjects'), status: error ? ERROR_CODES[error.code].status : 200,
    body: html`
<section class="card" aria-labelledby="h-add"><h2 id="h-add">${t('subjects.add')}</h2>
${error ? problemBox(view, error) : ''}
<form method="post" action="/console/subjects" class="stack" id="add-subject">${csrfField(view)}
<label for="s-kind">${t('subjects.kind')}</label>${select('kind', 's-kind', KINDS.map((k) => [k, t(`kind.${k}`)] as const), f.kind)}
<label for="s-domain">${t('field.domain')}</label>${select('domain', 's-domain', domains.map((d) => [d.slug, `${d.name} (${d.slug})`] as const), f.domain)}
<label for="s-organ">${t('subjects.organ')}</label>${select('organ', 's-organ', organs.map(([slug, name]) => [slug, `${name} (${slug})`] as const), f.organ)}
<label for="s-tier">${t('field.tier')}</label>${select('tier', 's-tier', tiers.map((x) => [x, x] as const), f.tier)}
<label for="s-name">${t('field.name')}</label><input id="s-name" name="name" value="${f.name}">
<label for="s-dns">${t('subjects.dns')}</label><textarea id="s-dns" name="dns" rows="2">${f.dns}</textarea>
<label for="s-ips">${t('subjects.ips')}</label><textarea id="s-ips" name="ips" rows="2">${f.ips}</textarea>
<label for="s-emails">${t('subjects.emails')}</label><textarea id="s-emails" name="emails" rows="2">${f.emails}</textarea>
<button type="submit" id="add">${t('action.add')}</button>
</form></section>
<form method="get" action="/console/subjects" class="search" role="search">
<label for="q-domain">${t('field.domain')}</label>${select('domain', 'q-domain', domains.map((d) => [d.slug, d.name] as const), filter.domain ?? '', t('field.any'))}
<label for="q-tier">${t('field.tier')}</label>${select('tier', 'q-tier', tiers.map((x) => [x, x] as const), filter.tier ?? '', t('field.any'))}
<label for="q-kind">${t('subjects.kind')}</label>${select('kind', 'q-kind', KINDS.map((k) => [k, t(`kind.${k}`)] as const), filter.kind ?? '', t('field.any'))}
<button type="submit" id="search">${t('action.search')}</button></form>
${subjects.length === 0 ? html`<p>${t('list.empty')}</p>` : html`<table id="subjects"><caption>${t('list.count', { n: subjects.length })}</caption><thead><tr>
<th scope="col">${t('field.name')}</th><th scope="col">${t('subjects.kind')}</th><th scope="col">${t('field.domain')} / ${t('field.tier')}</th><th scope="col">${t('field.status')}</th><th scope="col">${t('nav.issue')}</th></tr></thead>
<tbody>${subjects.map((s) => html`<tr><td>${s.name}<br><small><code>${s.id}</code></small></td><td>${t(`kind.${s.kind}`)}</td><td>${s.domain} / ${s.tier}</td><td>${badge(view, s.status)}</td>
<td>${s.status === 'active' ? html`<a href="/console/issue?subject=${encodeURIComponent(s.id)}">${t('action.issue')}</a>` : ''}</td></tr>`)}</tbody></table>`}`,
  });
}
