/**
 * The console's cookies: read from the Cookie header (no parser dependency for three names), written
 * HttpOnly, SameSite=Strict, Path=/console, and Secure when the request came over TLS.
 */
import type { TLSSocket } from 'node:tls';
import type { Request, Response } from 'express';

export const SESSION_COOKIE = 'tierca_session';
export const SIGNIN_COOKIE = 'tierca_signin';
export const LANG_COOKIE = 'tierca_lang';

export function readCookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Sets a cookie; `maxAge` in seconds (absent: a browser-session cookie; 0: delete). */
export function setCookie(req: Request, res: Response, name: string, value: string, maxAge?: number): void {
  const secure = (req.socket as TLSSocket).encrypted ? '; Secure' : '';
  const age = maxAge === undefined ? '' : `; Max-Age=${maxAge}`;
  res.append('set-cookie', `${name}=${value}; Path=/console; HttpOnly; SameSite=Strict${secure}${age}`);
}
