/**
 * The OCSP route (RFC 6960 Appendix A, RFC 5019 §5–6) on bare node:http, ahead of express: express
 * alone caps near 10,000 requests/s on this machine kind, and the OCSP hot path is a map lookup.
 * Errors are OCSP responseStatus values, never problem documents.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { OcspSource, OcspAnswer } from '../ca/ocsp-source.ts';
import { ocspErrorResponse } from '../../pki/ocsp-response.ts';
import type { Clock } from '../clock.ts';

/** Largest POST body accepted; a request for 16 CertIDs with a nonce is well under 2 KiB. */
export const MAX_OCSP_BODY = 8 * 1024;
/** Largest GET path accepted (RFC 5019 §5 asks clients to POST requests over 255 bytes). */
export const MAX_OCSP_GET_PATH = 4 * 1024;

const OCSP_RESPONSE = 'application/ocsp-response';
const NOSNIFF = { 'x-content-type-options': 'nosniff' } as const;

/** Handles `/ocsp` requests; returns false for any other path so the caller passes them on. */
export function ocspHandler(source: OcspSource, clock: Clock): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const url = req.url ?? '';
    if (url !== '/ocsp' && !url.startsWith('/ocsp/') && !url.startsWith('/ocsp?')) return false;
    if (req.method === 'POST' && (url === '/ocsp' || url === '/ocsp/')) {
      readBody(req, MAX_OCSP_BODY).then(
        (body) => {
          if (!body) return send(res, { body: ocspErrorResponse('malformedRequest') }, false, clock, req, true);
          const memoKey = `p${body.toString('latin1')}`;
          const remembered = source.memoized(memoKey);
          if (remembered) send(res, remembered, false, clock, req);
          else source.respond(body, memoKey).then((answer) => send(res, answer, false, clock, req));
        },
        () => send(res, { body: ocspErrorResponse('malformedRequest') }, false, clock, req, true),
      );
      return true;
    }
    if (req.method === 'GET' && url.startsWith('/ocsp/')) {
      const encoded = url.slice('/ocsp/'.length);
      // A request seen before is answered from memory before its base64 is even decoded.
      const remembered = source.memoized(`g${encoded}`);
      if (remembered) {
        send(res, remembered, true, clock, req);
        return true;
      }
      let der: Buffer | null = null;
      if (encoded.length > 0 && encoded.length <= MAX_OCSP_GET_PATH) {
        try {
          // Node's base64 decoder also reads the URL-safe alphabet; percent-decoding only when needed.
          der = Buffer.from(encoded.includes('%') ? decodeURIComponent(encoded) : encoded, 'base64');
        } catch {
          der = null;
        }
      }
      if (!der || der.length === 0) {
        send(res, { body: ocspErrorResponse('malformedRequest') }, true, clock, req);
        return true;
      }
      source.respond(der, `g${encoded}`).then((answer) => send(res, answer, true, clock, req));
      return true;
    }
    res.writeHead(405, { allow: 'GET, POST', 'content-type': 'text/plain', ...NOSNIFF }).end('OCSP takes GET /ocsp/{base64} or POST /ocsp\n');
    return true;
  };
}

function send(res: ServerResponse, answer: OcspAnswer, get: boolean, clock: Clock, req: IncomingMessage, close = false): void {
  // nosniff only: the RFC 5019 §6 cache headers below are the whole caching story of this route.
  const headers: Record<string, string | number> = { 'content-type': OCSP_RESPONSE, 'content-length': answer.body.length, ...NOSNIFF };
  if (close) headers.connection = 'close';
  if (get && answer.cacheable) {
    const { thisUpdate, nextUpdate, etag } = answer.cacheable;
    const maxAge = Math.max(0, Math.floor((nextUpdate.getTime() - clock.now().getTime()) / 1000));
    headers['cache-control'] = `max-age=${maxAge}, public, no-transform, must-revalidate`;
    headers['last-modified'] = answer.cacheable.lastModified ?? thisUpdate.toUTCString();
    headers.expires = answer.cacheable.expires ?? nextUpdate.toUTCString();
    headers.etag = etag;
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag, 'cache-control': headers['cache-control'] as string, ...NOSNIFF }).end();
      return;
    }
  } else if (get) {
    headers['cache-control'] = 'no-cache';
  }
  res.writeHead(200, headers).end(answer.body);
}

/** Reads a body up to `limit` bytes; resolves null when it is larger (and stops reading). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      req.resume();
      return resolve(null);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > limit) {
        tooLarge = true;
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? null : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
