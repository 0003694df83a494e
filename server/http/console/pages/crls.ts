/**
 * CRLs: each CA's newest CRL (the public /crl/ file) to download, and — for a role that may
 * (sysadmins: `crl:generate`) — publishing now, through CaAdminService as the API does.
 */
import type { Router } from 'express';
import { html } from '../html.ts';
import { badge, csrfField, problemBox } from '../layout.ts';
import { ctxOf, field, formErrorOf, guard, redirectWith, sendPage, viewOf, type ConsoleDeps } from '../console-context.ts';
import { pagePermissions } from '../menu.ts';
import { ERROR_CODES, type TiercaError } from '../../../errors.ts';
import type { Response } from 'express';

export function crlPages(r: Router, deps: ConsoleDeps): void {
  r.get('/crls', guard(deps.ra, pagePermissions('/console/crls'), 'ca.list'), async (_req, res) => {
    await page(res, deps);
  });
  r.post('/crls', guard(deps.ra, ['crl:generate'], 'crl.generate'), async (req, res) => {
    const ca = field(req, 'ca') || undefined;
    let n: number;
    try {
      n = (await deps.ra.cas.generateCrls(ctxOf(res), ca)).length;
    } catch (err) {
      return page(res, deps, formErrorOf(err));
    }
    redirectWith(res, '/console/crls', { kind: 'ok', text: viewOf(res).t('flash.crlsPublished', { n }) });
  });
}

async function page(res: Response, deps: ConsoleDeps, error?: TiercaError): Promise<void> {
  const view = viewOf(res);
  const { t } = view;
  const cas = (await deps.ra.cas.list(ctxOf(res))).filter((c) => c.record.status !== 'retired' as never);
  const publish = view.can('crl:generate');
  sendPage(res, {
    title: t('nav.crls'), status: error ? ERROR_CODES[error.code].status : 200,
    body: html`${error ? problemBox(view, error) : ''}
${publish ? html`<form method="post" action="/console/crls" class="row">${csrfField(view)}<button type="submit" id="publish-all">${t('crls.publishAll')}</button></form>` : ''}
<table id="crls"><thead><tr><th scope="col">${t('field.ca')}</th><th scope="col">${t('field.status')}</th><th scope="col">${t('crls.download')}</th>${publish ? html`<th scope="col">${t('crls.publish')}</th>` : ''}</tr></thead>
<tbody>${cas.map((c) => html`<tr><td>${c.record.name} <code>${c.record.id}</code></td><td>${badge(view, c.record.status)}</td>
<td><a href="/crl/${c.record.id}.crl" download id="crl-${c.record.id}">${c.record.id}.crl</a></td>
${publish ? html`<td><form method="post" action="/console/crls" class="inline">${csrfField(view)}<input type="hidden" name="ca" value="${c.record.id}"><button type="submit" id="publish-${c.record.id}">${t('crls.publishNow')}</button></form></td>` : ''}</tr>`)}</tbody></table>`,
  });
}
