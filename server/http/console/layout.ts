/**
 * The page shell: header with the language switch and sign-out, the menu of the pages the role may
 * use, the one-time notice, the page itself. Styles and the one script come from /console/assets/.
 */
import { html, type SafeHtml } from './html.ts';
import type { View } from './console-context.ts';
import { MENU } from './menu.ts';
import { errorFacts, errorText, errorTitle } from './i18n.ts';
import type { TiercaError } from '../../errors.ts';

export function layout(view: View, title: string, body: SafeHtml): SafeHtml {
  const { t, principal } = view;
  const other = view.lang === 'zh-CN' ? { lang: 'en', label: 'English' } : { lang: 'zh-CN', label: '中文' };
  const menu = principal ? MENU.filter((m) => m.permissions.some((p) => view.can(p))) : [];
  return html`<!doctype html>
<html lang="${view.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · ${t('app.name')}</title>
<link rel="stylesheet" href="/console/assets/console.css">
<script src="/console/assets/console.js" defer></script>
</head>
<body>
<header class="top">
  <span class="brand">${t('app.name')}</span>
  <nav class="tools" aria-label="${t('nav.tools')}">
    <a href="/console/lang/${other.lang}?next=${encodeURIComponent(view.path)}" lang="${other.lang}" hreflang="${other.lang}" id="lang-switch">${other.label}</a>
    ${principal ? html`<span class="who" id="who">${principal.name} · ${t(`role.${principal.role}`)}</span>
    <form method="post" action="/console/signout" class="inline">
      <input type="hidden" name="_csrf" value="${view.csrf}">
      <button type="submit" id="sign-out">${t('action.signOut')}</button>
    </form>` : ''}
  </nav>
</header>
${menu.length ? html`<nav class="menu" aria-label="${t('nav.main')}"><ul>
${menu.map((m) => html`<li><a href="${m.href}"${view.path.startsWith(m.href) ? html` aria-current="page"` : ''}>${t(m.label)}</a></li>`)}
</ul></nav>` : ''}
<main id="main">
<h1>${title}</h1>
${view.flash ? html`<p class="notice ${view.flash.kind}" role="status">${view.flash.text}</p>` : ''}
${body}
</main>
</body>
</html>`;
}

/**
 * An error as a form shows it, all in the chosen language: the code's title and message from the
 * catalogue, then what it is about (the detail's names and fields). In English the message is the
 * API's own `detail` sentence, word for word (with each bad field when there are several); in
 * Chinese the catalogue's sentence stands for it (decision 0028).
 */
export function problemBox(view: View, err: TiercaError | { code: 'csrf'; message: string; options?: undefined }): SafeHtml {
  const { t } = view;
  const detail = err.options?.detail;
  const problems = (detail?.problems as string[] | undefined) ?? [];
  const english = view.lang === 'en';
  const message = err.code === 'csrf' || err.code === 'internal' || english ? err.message : errorText(t, err.code);
  const facts = err.code === 'csrf' ? [] : errorFacts(t, detail);
  return html`<div class="problem" role="alert" id="problem" data-code="${err.code}">
<p><strong>${errorTitle(t, err.code)}</strong></p>
<p class="detail">${message}</p>
${english && problems.length > 1 ? html`<ul>${problems.map((p) => html`<li>${p}</li>`)}</ul>` : ''}
${facts.length ? html`<dl class="facts">${facts.map((f) => html`<div data-fact="${f.key}"><dt>${f.label}</dt><dd>${f.value}</dd></div>`)}</dl>` : ''}
</div>`;
}

/** The hidden CSRF field every state-changing form carries. */
export const csrfField = (view: View): SafeHtml => html`<input type="hidden" name="_csrf" value="${view.csrf}">`;

/** A `<select>` of `options` (value, label) with `selected` chosen; `blank` adds an empty first choice. */
export function select(name: string, id: string, options: readonly (readonly [string, string])[], selected: string, blank?: string): SafeHtml {
  return html`<select name="${name}" id="${id}">${blank !== undefined ? html`<option value="">${blank}</option>` : ''}${options.map(([v, label]) => html`<option value="${v}"${v === selected ? html` selected` : ''}>${label}</option>`)}</select>`;
}

/** A status badge (good, revoked, hold, active, …): text and a class, never colour alone. */
export const badge = (view: View, status: string): SafeHtml => html`<span class="badge s-${status}">${view.t(`status.${status}` as never) ?? status}</span>`;
