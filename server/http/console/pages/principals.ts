/**
 * Principals (sysadmins): the list, adding one (an auditor or a device at once, its token shown
 * once through shown.ts; a sysadmin or an officer as a request for a second sysadmin), disabling, and issuing a
 * principal's client certificate from its CSR — PrincipalService, as the API calls it.
 */
import type { Response, Router } from 'express';
import { ERROR_CODES, type TiercaError } from '../../../errors.ts';
import { parseWith } from '../../validate.ts';
import { certificateBody, principalBody } from '../../routes/principal.routes.ts';
import { html } from '../html.ts';
import { badge, csrfField, problemBox, select } from '../layout.ts';
import { ctxOf, field, formErrorOf, guard, redirectWith, sendPage, viewOf, type ConsoleDeps } from '../console-context.ts';
import { pagePermissions } from '../menu.ts';
import { certificateFacts } from './certificates.ts';
import type { AddPrincipalResult } from '../../../ra/principal.service.ts';
import type { CertificateRecord } from '../../../storage/storage.ts';
import { tokenBox } from '../deliveries.ts';
import { showOnce } from '../shown.ts';

const ROLES = ['auditor', 'device', 'officer', 'sysadmin'] as const;

export function principalPages(r: Router, deps: ConsoleDeps): void {
  const may = guard(deps.ra, pagePermissions('/console/principals'), 'principal.list');
  r.get('/principals', may, async (_req, res) => {
    await listPage(res, deps);
  });
  r.post('/principals', may, async (req, res) => {
    const form = { name: field(req, 'name'), role: field(req, 'role'), domains: ([] as unknown[]).concat(req.body?.domains ?? []).filter((d): d is string => typeof d === 'string') };
    let added: AddPrincipalResult;
    try {
      added = await deps.ra.principals.add(ctxOf(res), parseWith(principalBody, { name: form.name, role: form.role, ...(form.domains.length ? { domains: form.domains } : {}) }));
    } catch (err) {
      return listPage(res, deps, formErrorOf(err), form);
    }
    const { t } = viewOf(res);
    if (added.kind === 'pending') return redirectWith(res, '/console/principals', { kind: 'ok', text: t('flash.principalRequested', { id: added.request.id }) });
    const { principal, token } = added;
    showOnce(res, deps, (view) => ({
      title: view.t('principals.added'),
      body: html`<p class="notice ok" role="status" id="added">${view.t('principals.addedText', { name: principal.name, id: principal.id })}</p>
${tokenBox(view, token)}
<p><a href="/console/principals">${view.t('nav.principals')}</a></p>`,
    }));
  });
  r.post('/principals/:id/disable', may, async (req, res) => {
    try {
      await deps.ra.principals.disable(ctxOf(res), String(req.params.id));
    } catch (err) {
      return listPage(res, deps, formErrorOf(err));
    }
    redirectWith(res, '/console/principals', { kind: 'ok', text: viewOf(res).t('flash.disabled', { id: String(req.params.id) }) });
  });
  r.post('/principals/:id/certificate', may, async (req, res) => {
    let certificate: CertificateRecord;
    let chain: readonly Buffer[];
    try {
      const body = parseWith(certificateBody, { csr: field(req, 'csr') });
      ({ certificate, chain } = await deps.ra.principals.issueCertificate(ctxOf(res), String(req.params.id), body));
    } catch (err) {
      return listPage(res, deps, formErrorOf(err));
    }
    const href = `/console/certificates/${encodeURIComponent(certificate.issuerId)}/${encodeURIComponent(certificate.serial)}`;
    showOnce(res, deps, (view) => ({
      title: view.t('principals.certificateIssued'),
      body: html`${certificateFacts(view, certificate)}<p class="downloads"><a href="${href}/certificate.pem" download id="dl-pem">${view.t('cert.downloadPem')}</a>
<a href="${href}/chain.pem" download id="dl-chain">${view.t('cert.downloadChain', { n: chain.length + 1 })}</a></p>`,
    }));
  });
}

async function listPage(res: Response, deps: ConsoleDeps, error?: TiercaError, form: { name?: string; role?: string; domains?: string[] } = {}): Promise<void> {
  const view = viewOf(res);
  const { t } = view;
  const ctx = ctxOf(res);
  const principals = await deps.ra.principals.list(ctx);
  const domains = await deps.ra.cas.domains(ctx);
  sendPage(res, {
    title: t('nav.principals'), status: error ? ERROR_CODES[error.code].status : 200,
    body: html`${error ? problemBox(view, error) : ''}
<table id="principals"><thead><tr><th scope="col">${t('field.name')}</th><th scope="col">ID</th><th scope="col">${t('principals.role')}</th><th scope="col">${t('field.domain')}</th>
<th scope="col">${t('field.status')}</th><th scope="col">${t('cert.actions')}</th></tr></thead>
<tbody>${principals.map((p) => html`<tr data-principal="${p.id}"><td>${p.name}</td><td><code>${p.id}</code></td><td>${t(`role.${p.role}`)}</td><td>${p.domains.join(', ') || '—'}</td>
<td>${badge(view, p.disabled ? 'disabled' : 'active')}</td><td>${!p.disabled && p.id !== view.principal?.id ? html`
<form method="post" action="/console/principals/${p.id}/disable" class="inline">${csrfField(view)}<button type="submit" class="danger" id="disable-${p.id}">${t('action.disable')}</button></form>
<details><summary>${t('principals.issueCertificate')}</summary><form method="post" action="/console/principals/${p.id}/certificate" class="stack">${csrfField(view)}
<label for="csr-${p.id}">${t('issue.csr')}</label><textarea name="csr" id="csr-${p.id}" rows="6" spellcheck="false"></textarea>
<button type="submit">${t('action.issue')}</button></form></details>` : ''}</td></tr>`)}</tbody></table>
<section class="card" aria-labelledby="h-add"><h2 id="h-add">${t('principals.add')}</h2>
<form method="post" action="/console/principals" class="stack" id="add-principal">${csrfField(view)}
<label for="p-name">${t('field.name')}</label><input id="p-name" name="name" value="${form.name ?? ''}">
<label for="p-role">${t('principals.role')}</label>${select('role', 'p-role', ROLES.map((r) => [r, t(`role.${r}`)] as const), form.role ?? 'auditor')}
<fieldset><legend>${t('principals.domains')}</legend>${domains.map((d) => html`<label><input type="checkbox" name="domains" value="${d.slug}"${form.domains?.includes(d.slug) ? html` checked` : ''}> ${d.name} (${d.slug})</label>`)}</fieldset>
<button type="submit" id="add">${t('action.add')}</button>
</form></section>`,
  });
}
