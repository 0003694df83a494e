/**
 * Issuing: a CSR pasted or read from a file (console.js reads the file into the text area), or a
 * key the server makes, delivered once as PKCS#12 with its passphrase shown once. The form becomes
 * the API's issue body and is parsed by the API's own schema; a t3 subject opens a dual-control
 * request instead (IssuanceService decides, as for the API).
 */
import type { Request, Response, Router } from 'express';
import { ERROR_CODES, type TiercaError } from '../../../errors.ts';
import type { SubjectRecord } from '../../../storage/storage.ts';
import type { IssueResult } from '../../../ra/issuance.service.ts';
import { KEY_ALGORITHMS } from '../../../../pki/algorithms.ts';
import { parseWith } from '../../validate.ts';
import { issueBody } from '../../routes/certificate.routes.ts';
import { html, type SafeHtml } from '../html.ts';
import { csrfField, problemBox, select } from '../layout.ts';
import { ctxOf, field, formErrorOf, guard, param, sendPage, sessionOf, viewOf, type ConsoleDeps, type View } from '../console-context.ts';
import { pagePermissions } from '../menu.ts';
import { deliverOnce, pkcs12Box } from '../deliveries.ts';
import { certificateFacts } from './certificates.ts';

const PROFILES = ['organ', 'device', 'user-sign', 'user-enc'] as const;

export function issuePages(r: Router, deps: ConsoleDeps): void {
  const may = guard(deps.ra, pagePermissions('/console/issue'), 'certificate.issue');
  r.get('/issue', may, async (req, res) => {
    await formPage(req, res, deps, { subjectId: param(req, 'subject'), mode: 'csr' });
  });
  r.post('/issue', may, async (req, res) => {
    const form = {
      subjectId: field(req, 'subjectId'), mode: field(req, 'mode') === 'generate' ? 'generate' as const : 'csr' as const,
      csr: field(req, 'csr'), algorithm: field(req, 'algorithm'), profile: field(req, 'profile'), days: field(req, 'days'),
    };
    let result: IssueResult;
    try {
      const body = parseWith(issueBody, {
        subjectId: form.subjectId,
        ...(form.mode === 'csr' ? { csr: form.csr || undefined } : { generate: form.algorithm ? { algorithm: form.algorithm } : {} }),
        ...(form.profile ? { profile: form.profile } : {}),
        ...(form.days ? { days: /^\d{1,6}$/.test(form.days) ? Number(form.days) : form.days } : {}),
      });
      result = await deps.ra.issuance.issue(ctxOf(res), body);
    } catch (err) {
      return formPage(req, res, deps, form, formErrorOf(err));
    }
    issuedPage(res, deps, result);
  });
}

interface IssueForm {
  subjectId: string;
  mode: 'csr' | 'generate';
  csr?: string;
  algorithm?: string;
  profile?: string;
  days?: string;
}

async function formPage(_req: Request, res: Response, deps: ConsoleDeps, form: IssueForm, error?: TiercaError): Promise<void> {
  const view = viewOf(res);
  const { t } = view;
  const subjects: SubjectRecord[] = await deps.ra.subjects.list(ctxOf(res), { limit: 1000 });
  const options = subjects.filter((s) => s.status === 'active' || !s.status).map((s) => [s.id, `${s.name} · ${s.kind} · ${s.domain}/${s.tier} (${s.id})`] as const);
  sendPage(res, {
    title: t('nav.issue'), status: error ? ERROR_CODES[error.code].status : 200,
    body: html`
${error ? problemBox(view, error) : ''}
<form method="post" action="/console/issue" class="stack" id="issue-form">
${csrfField(view)}
<label for="subjectId">${t('field.subject')}</label>${select('subjectId', 'subjectId', options, form.subjectId, t('field.choose'))}
<label for="profile">${t('field.profile')}</label>${select('profile', 'profile', PROFILES.map((p) => [p, p] as const), form.profile ?? '', t('field.default'))}
<fieldset><legend>${t('issue.keySource')}</legend>
<label><input type="radio" name="mode" value="csr" id="mode-csr"${form.mode === 'csr' ? html` checked` : ''}> ${t('issue.fromCsr')}</label>
<label><input type="radio" name="mode" value="generate" id="mode-generate"${form.mode === 'generate' ? html` checked` : ''}> ${t('issue.serverKey')}</label>
</fieldset>
<label for="csr">${t('issue.csr')}</label>
<textarea name="csr" id="csr" rows="10" spellcheck="false">${form.csr ?? ''}</textarea>
<label for="csr-file">${t('issue.csrFile')}</label>
<input type="file" id="csr-file" accept=".csr,.pem,.req,.der" data-fills="csr">
<label for="algorithm">${t('issue.algorithm')}</label>${select('algorithm', 'algorithm', KEY_ALGORITHMS.map((a) => [a, a] as const), form.algorithm ?? '', t('field.default'))}
<label for="days">${t('issue.days')}</label><input id="days" name="days" inputmode="numeric" value="${form.days ?? ''}">
<button type="submit" id="issue">${t('action.issue')}</button>
</form>`,
  });
}

export function issuedPage(res: Response, deps: ConsoleDeps, result: IssueResult): void {
  const view = viewOf(res);
  const { t } = view;
  if (result.kind === 'pending') {
    return sendPage(res, {
      title: t('issue.pendingTitle'), status: 202,
      body: html`<p id="pending">${t('issue.pending', { id: result.request.id, n: result.request.approvalsRequired })}</p>
<p><a href="/console/requests">${t('nav.requests')}</a></p>`,
    });
  }
  const now = deps.clock.now();
  const c = result.certificate;
  const session = sessionOf(res);
  const p12 = (id: string, body: Buffer, passphrase: string, serial: string): SafeHtml =>
    pkcs12Box(view, { id, passphrase, href: deliverOnce(session, now, { name: `${serial}.p12`, type: 'application/x-pkcs12', body }) });
  const href = `/console/certificates/${encodeURIComponent(c.issuerId)}/${encodeURIComponent(c.serial)}`;
  sendPage(res, {
    title: t('issue.issuedTitle'), status: 201,
    body: html`<p class="notice ok" role="status" id="issued">${t('issue.issued')}</p>
${certificateFacts(view, c)}
<p class="downloads"><a href="${href}/certificate.pem" download id="dl-pem">${t('cert.downloadPem')}</a>
<a href="${href}/certificate.der" download id="dl-der">${t('cert.downloadDer')}</a>
<a href="${href}/chain.pem" download id="dl-chain">${t('cert.downloadChain', { n: result.chain.length + 1 })}</a>
<a href="${href}">${t('cert.title')}</a></p>
${result.pkcs12 && result.passphrase ? p12('p12', result.pkcs12, result.passphrase, c.serial) : ''}
${result.encryption ? html`<h2>${t('issue.encryptionHalf')}</h2>${certificateFacts(view, result.encryption.certificate)}
${p12('p12-enc', result.encryption.pkcs12, result.encryption.passphrase, result.encryption.certificate.serial)}` : ''}`,
  });
}

export type { View };
