/**
 * The console's languages: Chinese (zh-CN) by default, English one click away. Every label, error
 * title and date on a page comes from here; the catalogues are messages.zh-CN.ts and messages.en.ts,
 * and the Chinese one is typed by the English one's keys, so a missing translation fails typecheck.
 */
import { ERROR_DETAIL_KEYS, type ErrorCode } from '../../errors.ts';
import { EN, type MessageKey } from './messages.en.ts';
import { ZH_CN } from './messages.zh-CN.ts';

export const LANGS = ['zh-CN', 'en'] as const;
export type Lang = (typeof LANGS)[number];
export const DEFAULT_LANG: Lang = 'zh-CN';

export type { MessageKey };
export type Translate = (key: MessageKey, params?: Record<string, string | number>) => string;

const CATALOGUES: Record<Lang, Record<MessageKey, string>> = { 'zh-CN': ZH_CN, en: EN };

/** The language a cookie value names, else the default. */
export const langOf = (value: string | undefined): Lang => (LANGS as readonly string[]).includes(value ?? '') ? (value as Lang) : DEFAULT_LANG;

/** A translator for `lang`: `{name}` in a message is replaced by `params.name`. */
export function translator(lang: Lang): Translate {
  const catalogue = CATALOGUES[lang];
  return (key, params) => {
    const text = catalogue[key];
    return params ? text.replace(/\{(\w+)\}/g, (m, name: string) => (name in params ? String(params[name]) : m)) : text;
  };
}

/** The localized title of an error code. */
export function errorTitle(t: Translate, code: ErrorCode | 'csrf'): string {
  return t(`error.${code}`);
}

/** The localized message of an error code (a whole sentence, in the chosen language). */
export function errorText(t: Translate, code: ErrorCode): string {
  return t(`errorText.${code}`);
}

const ISSUES = ['invalid_type', 'too_big', 'too_small', 'invalid_format', 'invalid_value', 'unrecognized_keys', 'invalid_union', 'custom'] as const;

/**
 * What an error is about, from the problem's detail (server/errors.ts ERROR_DETAIL_KEYS): each
 * member as a localized label and its value — names, ids and fields as the API gives them; a bad
 * field with the kind of its issue in this language. Members not in that list are not shown.
 */
export function errorFacts(t: Translate, detail: Record<string, unknown> | undefined): { key: string; label: string; value: string }[] {
  if (!detail) return [];
  const sep = t('list.separator');
  const show = (v: unknown): string => Array.isArray(v) ? v.map(show).join(sep) : typeof v === 'string' || typeof v === 'number' ? String(v) : '';
  const facts: { key: string; label: string; value: string }[] = [];
  for (const key of ERROR_DETAIL_KEYS) {
    const v = detail[key];
    if (v === undefined || v === null) continue;
    let value: string;
    if (key === 'fields' && Array.isArray(v)) {
      value = v.map((f: { field?: unknown; issue?: unknown }) => {
        const issue = (ISSUES as readonly unknown[]).includes(f.issue) ? (f.issue as (typeof ISSUES)[number]) : 'other';
        return t('detail.fieldIssue', { field: String(f.field), issue: t(`issue.${issue}`) });
      }).join(sep);
    } else value = show(v);
    if (value) facts.push({ key, label: t(`detail.${key}`), value });
  }
  return facts;
}

const dateTime: Record<Lang, Intl.DateTimeFormat> = {
  'zh-CN': new Intl.DateTimeFormat('zh-CN', { dateStyle: 'medium', timeStyle: 'medium', timeZone: 'UTC', hourCycle: 'h23' }),
  en: new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'medium', timeZone: 'UTC', hourCycle: 'h23' }),
};
const dateOnly: Record<Lang, Intl.DateTimeFormat> = {
  'zh-CN': new Intl.DateTimeFormat('zh-CN', { month: 'numeric', day: 'numeric', timeZone: 'UTC' }),
  en: new Intl.DateTimeFormat('en-GB', { month: 'short', day: 'numeric', timeZone: 'UTC' }),
};

/** A time as the console shows it: the language's own format, in UTC (as the audit log records time). */
export function formatDate(lang: Lang, d: Date | null | undefined): string {
  return d ? `${dateTime[lang].format(d)} UTC` : '—';
}

/** A day (month and day) for chart labels. */
export const formatDay = (lang: Lang, d: Date): string => dateOnly[lang].format(d);
