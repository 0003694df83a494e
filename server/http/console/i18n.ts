/**
 * The console's languages: Chinese (zh-CN) by default, English one click away. Every label, error
 * title and date on a page comes from here; the catalogues are messages.zh-CN.ts and messages.en.ts,
 * and the Chinese one is typed by the English one's keys, so a missing translation fails typecheck.
 */
import type { ErrorCode } from '../../errors.ts';
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

/** The localized title of an error code (the detail stays the service's own words, as the API gives it). */
export function errorTitle(t: Translate, code: ErrorCode | 'csrf'): string {
  return t(`error.${code}` as MessageKey);
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
