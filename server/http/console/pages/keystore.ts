/**
 * Keystore status (sysadmins): where each CA and audit key is held and whether this instance can
 * sign with it now — KeystoreStatusService, as `tierca keystore status` shows it.
 */
import type { Router } from 'express';
import { html } from '../html.ts';
import { badge } from '../layout.ts';
import { ctxOf, guard, sendPage, viewOf, type ConsoleDeps } from '../console-context.ts';
import { pagePermissions } from '../menu.ts';

export function keystorePages(r: Router, deps: ConsoleDeps): void {
  r.get('/keystore', guard(deps.ra, pagePermissions('/console/keystore'), 'keystore.status'), async (_req, res) => {
    const view = viewOf(res);
    const { t } = view;
    const status = await deps.ra.keystore.status(ctxOf(res));
    sendPage(res, {
      title: t('nav.keystore'),
      body: html`<p id="custody">${t('keystore.custody')}: <strong>${status.custody}</strong></p>
<table id="keys"><thead><tr><th scope="col">${t('keystore.key')}</th><th scope="col">${t('keystore.purpose')}</th><th scope="col">${t('field.key')}</th>
<th scope="col">${t('keystore.where')}</th><th scope="col">${t('field.ca')}</th><th scope="col">${t('keystore.canSign')}</th></tr></thead>
<tbody>${status.keys.map((k) => html`<tr><td><code>${k.keyId}</code></td><td>${k.purpose}</td><td>${k.algorithm}</td>
<td>${k.location.custody === 'pkcs11' ? html`PKCS#11 ${k.location.tokenLabel} ${k.location.objectLabel}` : t('keystore.software')}</td>
<td>${k.cas.map((c) => html`<code>${c.id}</code> ${badge(view, c.status)} `)}</td>
<td>${k.canSign ? badge(view, 'yes') : html`${badge(view, 'no')} ${k.fault ?? ''}`}</td></tr>`)}</tbody></table>`,
    });
  });
}
