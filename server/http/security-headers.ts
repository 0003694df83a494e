/**
 * Security headers of every express response (defect 8 of issue 13), set once before any route so
 * that answers from every layer — problems from authentication included — carry them:
 *
 * - `X-Content-Type-Options: nosniff` — a browser never guesses HTML out of JSON, PEM or DER;
 * - `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'` — an API response loads
 *   nothing and is framed by no one, even if a browser renders it;
 * - `X-Frame-Options: DENY` (the older form of frame-ancestors), `Referrer-Policy: no-referrer`;
 * - `Strict-Transport-Security: max-age=31536000` only on a TLS connection (RFC 6797 §7.2: a host
 *   MUST NOT send it over plain HTTP, where it would be ignored anyway);
 * - `Cache-Control: no-store` on the admin API (`/api/v1`, answers to authenticated principals:
 *   certificates, tokens, audit records) and `/metrics`, unless a route sets its own.
 *
 * Public artifacts keep the caching their routes give them (CRLs and CA certificates: public, max-age;
 * RFC 5019 OCSP GET answers are sent by ocsp-handler.ts on bare node:http, which adds only nosniff).
 */
import type { TLSSocket } from 'node:tls';
import type { RequestHandler } from 'express';

/** The headers every response gets, whatever its route. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
});

/** HSTS value sent over TLS: one year; no includeSubDomains (other intranet hosts are not ours to bind). */
export const HSTS = 'max-age=31536000';

/** Express middleware setting {@link SECURITY_HEADERS}, HSTS over TLS, and no-store on private paths. */
export function securityHeaders(): RequestHandler {
  return (req, res, next) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    if ((req.socket as TLSSocket).encrypted) res.setHeader('strict-transport-security', HSTS);
    if (req.path === '/metrics' || req.path === '/api/v1' || req.path.startsWith('/api/v1/')) res.setHeader('cache-control', 'no-store');
    next();
  };
}
