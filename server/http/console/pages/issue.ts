/**
 * Issuing: a CSR pasted or read from a file (console.js reads the file into the text area), or a
 * key the server makes, delivered once as PKCS#12 with its passphrase shown once. Where the tier's
 * rule for the subject's kind makes the encryption certificate optional, "an encryption certificate
 * too" asks for the KMC-made half of a dual pair (decision 0027); where it is required it always
 * comes. The form becomes the API's issue body and is parsed by the API's own schema; a t3 subject
 * opens a dual-control request instead (IssuanceService decides, as for the API). The result is
 * shown once through shown.ts (POST → 303 → /console/shown/<id>).
 */
import type { Request, Response, Router } from 'express';
import { ERROR_CODES, type TiercaError } from '../../../errors.ts';
import type { SubjectRecord } from '../../../storage/storage.ts';
import type { IssueResult } from '../../../ra/issuance.service.ts';
import type { EncryptionCertificateRule } from '../../../config/tier-policy.ts';
import { KEY_ALGORITHMS } from '../../../../pki/algorithms.ts';
import { parseWith } from '../../validate.ts';
import { issueBody } from '../../routes/certificate.routes.ts';
import { html, type SafeHtml } from '../html.ts';
import { csrfField, problemBox, select } from '../layout.ts';
import { ctxOf, field, formErrorOf, guard, param, sendPage, sessionOf, viewOf, type ConsoleDeps, type View } from '../console-context.ts';
import { pagePermissions } from '../menu.ts';
import { deliverOnce, pkcs12Box } from '../deliveries.ts';
import { showOnce } from '../shown.ts';
import { certificateFacts } from './certificates.ts';

const PROFILES = ['organ', 'organ-enc', 'device', 'device-enc', 'user-sign', 'user-enc'] as const;

export function issuePages(r: Router, deps: ConsoleDeps): void {
  const may = guard(deps.ra, pagePermissions('/console/issue'), 'certificate.issue');
  r.get('/issue', may, async (req, res) => {
    await formPage(req, res, deps, { subjectId: param(req, 'subject'), mode: 'csr' });
  });
  r.post('/issue', may, async (req, res) => {
    const form = {
      subjectId: field(req, 'subjectId'), mode: field(req, 'mode') === 'generate' ? 'generate' as const : 'csr' as const,
      csr: field(req, 'csr'), algorithm: field(req, 'algorithm'), profile: field(req, 'profile'), days: field(req, 'days'),
      encryption: field(req, 'encryption') === 'yes',
    };
    let result: IssueResult;
    try {
      const body = parseWith(issueBody, {
        subjectId: form.subjectId,
        ...(form.mode === 'csr' ? { csr: form.csr || undefined } : { generate: form.algorithm ? { algorithm: form.algorithm } : {} }),
        ...(form.profile ? { profile: form.profile } : {}),
        ...(form.days ? { days: /^\d{1,6}$/.test(form.days) ? Number(form.days) : form.days } : {}),
        ...(form.encryption ? { encryption: true } : {}),
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
  /** "An encryption certificate too" was ticked. */
  encryption?: boolean;
}

async function formPage(_req: Request, res: Response, deps: ConsoleDeps, form: IssueForm, error?: TiercaError): Promise<void> {
  const view = viewOf(res);
  const { t } = view;
  const subjects: SubjectRecord[] = await deps.ra.subjects.list(ctxOf(res), { limit: 1000 });
  const active = subjects.filter((s) => s.status === 'active' || !s.status);
  const ruleOf = (s: SubjectRecord): EncryptionCertificateRule => deps.ra.issuance.encryptionRuleOf(s.tier, s.kind);
  const options = active.map((s) => ({ value: s.id, label: `${s.name} · ${s.kind} · ${s.domain}/${s.tier} (${s.id})`, rule: ruleOf(s) }));
  const chosen = options.find((o) => o.value === form.subjectId);
  sendPage(res, {
    title: t('nav.issue'), status: error ? ERROR_CODES[error.code].status : 200,
    body: html`
${error ? problemBox(view, error) : ''}
<form method="post" action="/console/issue" class="stack" id="issue-form">
${csrfField(view)}
<label for="subjectId">${t('field.subject')}</label><select name="subjectId" id="subjectId"><option value="" data-encryption="none">${t('field.choose')}</option>${options.map((o) => html`<option value="${o.value}" data-encryption="${o.rule}"${o.value === form.subjectId ? html` selected` : ''}>${o.label}</option>`)}</select>
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
${encryptionChoice(view, options, chosen?.rule, form.encryption === true)}
<button type="submit" id="issue">${t('action.issue')}</button>
</form>`,
  });
}

/**
 * The dual-certificate choice. The checkbox is offered where a subject's tier makes the encryption
 * certificate optional for its kind; where it is required the page says it comes anyway. With a
 * subject chosen, only what applies to it is shown (console.js follows the subject select, reading
 * each option's data-encryption); with none, the checkbox and both notes are there when any listed
 * subject has that rule; with no listed subject having either, nothing. The service decides either way (asking where the rule is none gives the
 * signing certificate alone, as the API does).
 */
function encryptionChoice(view: View, options: readonly { rule: EncryptionCertificateRule }[], rule: EncryptionCertificateRule | undefined, checked: boolean): SafeHtml {
  const { t } = view;
  const any = (r: EncryptionCertificateRule): boolean => options.some((o) => o.rule === r);
  if (!any('optional') && !any('required')) return html``;
  const offer = (r: EncryptionCertificateRule): boolean => rule ? rule === r : any(r);
  // Rendered, hidden, for a subject whose rule is none: console.js shows it when another is chosen.
  return html`<fieldset id="encryption-choice"${rule === 'none' ? html` hidden` : ''}><legend>${t('issue.dualTitle')}</legend>
<div id="encryption-optional"${offer('optional') ? '' : html` hidden`}><label><input type="checkbox" name="encryption" value="yes" id="encryption"${checked ? html` checked` : ''}> ${t('issue.encryptionToo')}</label></div>
<p id="encryption-required" class="muted"${offer('required') ? '' : html` hidden`}>${t('issue.encryptionRequired')}</p>
<p class="notice" id="encryption-notice">${t('issue.kmcNotice')}</p>
</fieldset>`;
}

/** The result of an issuance (or of an approved `issue` request), shown once through shown.ts. */
export function issuedPage(res: Response, deps: ConsoleDeps, result: IssueResult): void {
  if (result.kind === 'pending') {
    const { id, approvalsRequired } = result.request;
    return showOnce(res, deps, ({ t }) => ({
      title: t('issue.pendingTitle'),
      body: html`<p id="pending">${t('issue.pending', { id, n: approvalsRequired })}</p>
<p><a href="/console/requests">${t('nav.requests')}</a></p>`,
    }));
  }
  const now = deps.clock.now();
  const session = sessionOf(res);
  const c = result.certificate;
  // The secrets' downloads are made now, in this session; the page that names them is shown once.
  const once = (body: Buffer, name: string, type = 'application/x-pkcs12'): string => deliverOnce(session, now, { name, type, body });
  const p12 = result.pkcs12 && result.passphrase ? { href: once(result.pkcs12, `${c.serial}.p12`), passphrase: result.passphrase } : undefined;
  const enc = result.encryption;
  const encP12 = enc ? { href: once(enc.pkcs12, `${enc.certificate.serial}-enc.p12`), passphrase: enc.passphrase } : undefined;
  const enveloped = enc?.envelopedKey ? once(enc.envelopedKey, `${enc.certificate.serial}-enc.sm2-enveloped-key.der`, 'application/octet-stream') : undefined;
  const chainLength = result.chain.length + 1;
  showOnce(res, deps, (view) => {
    const { t } = view;
    return {
      title: t('issue.issuedTitle'),
      body: html`<p class="notice ok" role="status" id="issued">${t(enc ? 'issue.issuedPair' : 'issue.issued')}</p>
${enc ? html`<h2 id="h-signing">${t('issue.signingHalf')}</h2>` : ''}
${certificateFacts(view, c)}
${downloads(view, c, chainLength, '')}
${p12 ? pkcs12Box(view, { id: 'p12', ...p12 }) : ''}
${enc && encP12 ? html`<h2 id="h-encryption">${t('issue.encryptionHalf')}</h2>
<p class="muted">${t('issue.kmcNotice')}</p>
${certificateFacts(view, enc.certificate, 'enc-')}
${downloads(view, enc.certificate, enc.chain.length + 1, 'enc-')}
${pkcs12Box(view, { id: 'p12-enc', ...encP12 })}
${enveloped ? html`<p><a href="${enveloped}" download id="dl-enc-enveloped">${t('issue.downloadEnveloped')}</a></p>` : ''}` : ''}`,
    };
  });
}

/** A certificate's downloads (PEM, DER, chain) and its page. */
function downloads(view: View, c: IssuedCertificate, chainLength: number, idPrefix: string): SafeHtml {
  const { t } = view;
  const href = `/console/certificates/${encodeURIComponent(c.issuerId)}/${encodeURIComponent(c.serial)}`;
  return html`<p class="downloads"><a href="${href}/certificate.pem" download id="dl-${idPrefix}pem">${t('cert.downloadPem')}</a>
<a href="${href}/certificate.der" download id="dl-${idPrefix}der">${t('cert.downloadDer')}</a>
<a href="${href}/chain.pem" download id="dl-${idPrefix}chain">${t('cert.downloadChain', { n: chainLength })}</a>
<a href="${href}">${t('cert.title')}</a></p>`;
}

type IssuedCertificate = Extract<IssueResult, { kind: 'issued' }>['certificate'];

export type { View };
