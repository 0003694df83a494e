/**
 * Certificates: search (name, serial, domain, tier, status), a certificate's detail with PEM, DER
 * and chain downloads, and revoke / hold / release with a reason — through the same
 * CertificateStatusService calls and the same zod schemas as the API's routes.
 */
import type { Request, Response, Router } from 'express';
import { certificateToPem } from '../../../../pki/pem.ts';
import type { CertificateRecord } from '../../../storage/storage.ts';
import type { TiercaError } from '../../../errors.ts';
import { ERROR_CODES } from '../../../errors.ts';
import { reasonOrRefuse } from '../../../ra/certificate-status.service.ts';
import { reasonName } from '../../../../pki/revocation-reason.ts';
import { parseWith } from '../../validate.ts';
import { certificateListQuery, revokeBody } from '../../routes/certificate.routes.ts';
import { html, type SafeHtml } from '../html.ts';
import { badge, csrfField, problemBox, select } from '../layout.ts';
import { ctxOf, field, formErrorOf, guard, param, redirectWith, sendPage, viewOf, type ConsoleDeps, type View } from '../console-context.ts';
import { pagePermissions } from '../menu.ts';

/** Reasons an officer picks from (RFC 5280 §5.3.1 names); hold has its own button. */
export const REVOKE_REASONS = ['unspecified', 'keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'privilegeWithdrawn'] as const;
const LIST_LIMIT = 500;

/** A CRLReason as the page says it: the localized name of the reasons an officer picks, else the RFC 5280 name. */
function reasonLabel(view: View, code: number): string {
  const name = reasonName(code);
  return (REVOKE_REASONS as readonly string[]).includes(name) ? view.t(`reason.${name as (typeof REVOKE_REASONS)[number]}`) : name;
}

export function certificatePages(r: Router, deps: ConsoleDeps): void {
  const read = guard(deps.ra, pagePermissions('/console/certificates'), 'certificate.list');

  r.get('/certificates', read, async (req, res) => {
    const view = viewOf(res);
    const form = { name: param(req, 'name'), serial: param(req, 'serial').toLowerCase(), domain: param(req, 'domain'), tier: param(req, 'tier'), status: param(req, 'status') };
    let error: TiercaError | undefined;
    let found: CertificateRecord[] = [];
    try {
      if (form.serial) {
        const { certificate } = await deps.ra.certificates.get(ctxOf(res), form.serial);
        return res.redirect(303, detailHref(certificate));
      }
      const q = parseWith(certificateListQuery, { domain: form.domain || undefined, tier: form.tier || undefined, status: form.status || undefined, limit: String(LIST_LIMIT) });
      found = await deps.ra.certificates.list(ctxOf(res), { domain: q.domain, tier: q.tier, status: q.status, limit: q.limit });
      if (form.name) found = found.filter((c) => c.subjectDn.toLowerCase().includes(form.name.toLowerCase()));
    } catch (err) {
      error = formErrorOf(err);
    }
    const { t } = view;
    sendPage(res, {
      title: t('nav.certificates'), status: error ? ERROR_CODES[error.code].status : 200,
      body: html`
<form method="get" action="/console/certificates" class="search" role="search">
<label for="f-name">${t('field.name')}</label><input id="f-name" name="name" value="${form.name}">
<label for="f-serial">${t('field.serial')}</label><input id="f-serial" name="serial" value="${form.serial}" spellcheck="false">
<label for="f-domain">${t('field.domain')}</label><input id="f-domain" name="domain" value="${form.domain}">
<label for="f-tier">${t('field.tier')}</label><input id="f-tier" name="tier" value="${form.tier}">
<label for="f-status">${t('field.status')}</label>${select('status', 'f-status', ['good', 'revoked', 'hold'].map((s) => [s, t(`status.${s}` as 'status.good')] as const), form.status, t('field.any'))}
<button type="submit" id="search">${t('action.search')}</button>
</form>
${error ? problemBox(view, error) : ''}
${certificateTable(view, found)}`,
    });
  });

  r.get('/certificates/:issuer/:serial', read, async (req, res) => {
    await detailPage(req, res, deps);
  });

  r.get('/certificates/:issuer/:serial/:file', read, async (req, res, next) => {
    const file = String(req.params.file);
    if (!['certificate.pem', 'certificate.der', 'chain.pem'].includes(file)) return next();
    const { certificate, chain } = await deps.ra.certificates.get(ctxOf(res), String(req.params.serial), String(req.params.issuer));
    const base = `${certificate.issuerId}-${certificate.serial}`;
    if (file === 'certificate.der') {
      res.type('application/pkix-cert').attachment(`${base}.cer`).send(certificate.der);
    } else {
      const pems = file === 'chain.pem' ? [certificate.der, ...chain].map((d) => certificateToPem(d)) : [certificateToPem(certificate.der)];
      res.type('application/x-pem-file').attachment(`${base}${file === 'chain.pem' ? '-chain' : ''}.pem`).send(pems.join(''));
    }
  });

  const change = guard(deps.ra, ['certificate:revoke'], 'certificate.revoke');
  r.post('/certificates/:issuer/:serial/:kind', change, async (req, res, next) => {
    const kind = String(req.params.kind);
    if (kind !== 'revoke' && kind !== 'hold' && kind !== 'release') return next();
    const issuer = String(req.params.issuer);
    const serial = String(req.params.serial);
    const { t } = viewOf(res);
    try {
      if (kind === 'revoke') {
        const body = parseWith(revokeBody, { reason: field(req, 'reason'), issuer });
        await deps.ra.certificates.change(ctxOf(res), serial, body.issuer, { kind, reason: reasonOrRefuse(body.reason), invalidityDate: null });
      } else {
        await deps.ra.certificates.change(ctxOf(res), serial, issuer, { kind });
      }
    } catch (err) {
      return detailPage(req, res, deps, formErrorOf(err));
    }
    redirectWith(res, `/console/certificates/${encodeURIComponent(issuer)}/${encodeURIComponent(serial)}`, { kind: 'ok', text: t(`flash.${kind}`) });
  });
}

const detailHref = (c: Pick<CertificateRecord, 'issuerId' | 'serial'>) => `/console/certificates/${encodeURIComponent(c.issuerId)}/${encodeURIComponent(c.serial)}`;

async function detailPage(req: Request, res: Response, deps: ConsoleDeps, error?: TiercaError): Promise<void> {
  const view = viewOf(res);
  const { t } = view;
  const { certificate: c, chain } = await deps.ra.certificates.get(ctxOf(res), String(req.params.serial) as string, String(req.params.issuer) as string);
  const href = detailHref(c);
  sendPage(res, {
    title: t('cert.title'), status: error ? ERROR_CODES[error.code].status : 200,
    body: html`
${error ? problemBox(view, error) : ''}
${certificateFacts(view, c)}
<p class="downloads">
<a href="${href}/certificate.pem" download id="dl-pem">${t('cert.downloadPem')}</a>
<a href="${href}/certificate.der" download id="dl-der">${t('cert.downloadDer')}</a>
<a href="${href}/chain.pem" download id="dl-chain">${t('cert.downloadChain', { n: chain.length + 1 })}</a>
</p>
<details><summary>${t('cert.pem')}</summary><pre id="pem">${certificateToPem(c.der)}</pre></details>
${view.can('certificate:revoke') ? actions(view, c, href) : ''}`,
  });
}

/** A certificate's facts as a table; `idPrefix` tells two certificates on one page apart (`enc-`). */
export function certificateFacts(view: View, c: CertificateRecord, idPrefix = ''): SafeHtml {
  const { t } = view;
  return html`<table class="facts" id="${idPrefix}facts"><tbody>
<tr><th scope="row">${t('field.subject')}</th><td>${c.subjectDn}</td></tr>
<tr><th scope="row">${t('field.serial')}</th><td><code id="${idPrefix}serial">${c.serial}</code></td></tr>
<tr><th scope="row">${t('field.issuer')}</th><td><code>${c.issuerId}</code></td></tr>
<tr><th scope="row">${t('field.status')}</th><td id="${idPrefix}status">${badge(view, c.status)}${c.revocationReason != null && c.status === 'revoked' ? html` (${reasonLabel(view, c.revocationReason)})` : ''}</td></tr>
<tr><th scope="row">${t('field.profile')}</th><td>${c.profile}</td></tr>
<tr><th scope="row">${t('field.domain')} / ${t('field.tier')}</th><td>${c.domain ?? '—'} / ${c.tier ?? '—'}</td></tr>
<tr><th scope="row">${t('field.notBefore')}</th><td>${view.date(c.notBefore)}</td></tr>
<tr><th scope="row">${t('field.notAfter')}</th><td>${view.date(c.notAfter)}</td></tr>
${c.revokedAt ? html`<tr><th scope="row">${t('field.revokedAt')}</th><td>${view.date(c.revokedAt)}</td></tr>` : ''}
<tr><th scope="row">${t('field.key')}</th><td>${c.keyAlgorithm}</td></tr>
<tr><th scope="row">${t('field.fingerprint')}</th><td><code class="wrap">${c.fingerprint}</code></td></tr>
</tbody></table>`;
}

function actions(view: View, c: CertificateRecord, href: string): SafeHtml {
  const { t } = view;
  if (c.status === 'revoked') return html``;
  return html`<section class="card" aria-labelledby="h-actions"><h2 id="h-actions">${t('cert.actions')}</h2>
${c.status === 'good' ? html`<form method="post" action="${href}/revoke" class="row">${csrfField(view)}
<label for="reason">${t('field.reason')}</label>${select('reason', 'reason', REVOKE_REASONS.map((r) => [r, t(`reason.${r}`)] as const), 'unspecified')}
<button type="submit" class="danger" id="revoke">${t('action.revoke')}</button></form>
<form method="post" action="${href}/hold" class="row">${csrfField(view)}<button type="submit" id="hold">${t('action.hold')}</button></form>` : ''}
${c.status === 'hold' ? html`<form method="post" action="${href}/release" class="row">${csrfField(view)}<button type="submit" id="release">${t('action.release')}</button></form>` : ''}
</section>`;
}

export function certificateTable(view: View, certs: readonly CertificateRecord[]): SafeHtml {
  const { t } = view;
  if (certs.length === 0) return html`<p id="no-results">${t('list.empty')}</p>`;
  return html`<table id="certificates"><caption>${t('list.count', { n: certs.length })}</caption><thead><tr>
<th scope="col">${t('field.subject')}</th><th scope="col">${t('field.serial')}</th><th scope="col">${t('field.domain')}</th><th scope="col">${t('field.tier')}</th>
<th scope="col">${t('field.profile')}</th><th scope="col">${t('field.status')}</th><th scope="col">${t('field.notAfter')}</th></tr></thead>
<tbody>${certs.map((c) => html`<tr><td>${c.subjectDn}</td><td><a href="${detailHref(c)}"><code>${c.serial}</code></a></td><td>${c.domain ?? '—'}</td><td>${c.tier ?? '—'}</td>
<td>${c.profile}</td><td>${badge(view, c.status)}</td><td>${view.date(c.notAfter)}</td></tr>`)}</tbody></table>`;
}
