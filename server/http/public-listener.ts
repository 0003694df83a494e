/**
 * The plain-HTTP listener beside an HTTPS one: it serves only what relying parties fetch without TLS
 * — OCSP (RFC 6960 App. A, RFC 5019 §5), CRLs and CA certificates (RFC 5280 §4.2.1.13 and
 * §4.2.2.1 name http URIs), the CA index, JSON status, /healthz and /metrics — and refuses the admin
 * API and device renewal, which carry credentials and belong on HTTPS only
 * (docs/decisions/0012-tls-listeners.md).
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { problemOf } from './problem.ts';

/** Path prefixes answered over plain HTTP; everything else is refused there. */
const PUBLIC_PATH = /^\/(?:ocsp(?:\/|$)|crl\/|ca(?:\/|$)|status\/|healthz$|metrics$)/;

/** Whether `url` (a request target, query included) is one of the public routes. */
export function isPublicPath(url: string | undefined): boolean {
  const path = (url ?? '/').split('?')[0];
  return PUBLIC_PATH.test(path);
}

/**
 * Wraps `handler` (the whole application) so that only {@link isPublicPath} requests reach it; any
 * other answers 404 problem+json naming where the admin API is served (`httpsUrl`).
 */
export function publicOnly(handler: RequestListener, httpsUrl: string): RequestListener {
  const detail = `this plain-HTTP listener serves OCSP, CRLs, CA certificates and status only; the admin API is at ${httpsUrl}`;
  return (req: IncomingMessage, res: ServerResponse) => {
    if (isPublicPath(req.url)) return handler(req, res);
    const body = Buffer.from(JSON.stringify(problemOf('not-found', detail, { instance: (req.url ?? '/').slice(0, 300) })));
    // The request body (if any) is not read: the connection is closed after this answer.
    res.writeHead(404, { 'content-type': 'application/problem+json', 'content-length': String(body.length), connection: 'close' });
    res.end(body);
  };
}
