/**
 * EST (RFC 7030) over HTTPS at `/.well-known/est/<label>/…`: thin handlers over EstServer. Answers
 * as RFC 7030 and RFC 8951 say: base64 DER without line breaks, `application/pkcs7-mime;
 * smime-type=certs-only` for certificates, `application/csrattrs`, 202 with `Retry-After` for an
 * enrolment waiting for a second officer, 401 with `WWW-Authenticate: Basic` for a missing or
 * refused code. Refusals are problem documents (server/http/problem.ts) like the API's.
 */
import { Router, type NextFunction, type Request, type Response } from 'express';
import express from 'express';
import type { TLSSocket } from 'node:tls';
import { randomUUID } from 'node:crypto';
import type { EstServer, EnrolResult } from '../../enrol/est/est-server.ts';
import { certsOnly } from '../../../pki/pkcs7-certs.ts';
import { TiercaError } from '../../errors.ts';

const CERTS_ONLY = 'application/pkcs7-mime; smime-type=certs-only';
/** RFC 7030 §4.4.2: the key part when it is additionally encrypted (CMS EnvelopedData). */
const SERVER_GENERATED_KEY = 'application/pkcs7-mime; smime-type=server-generated-key';
const MAX_CSR = '16kb';

/** RFC 8951 §3.2: the body is base64 of the DER; line breaks (and a PEM armour, leniently) are allowed. */
function csrOf(req: Request): Buffer {
  if (!req.is('application/pkcs10')) throw new TiercaError('unsupported-media-type', 'send the CSR as application/pkcs10 (base64 DER)');
  const text = Buffer.isBuffer(req.body) ? req.body.toString('ascii') : '';
  const base64 = text.replace(/-----(BEGIN|END) [A-Z ]+-----/g, '').replace(/\s+/g, '');
  if (!base64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) throw new TiercaError('malformed-input', 'the body is not base64 (RFC 7030 §4.2.1)');
  return Buffer.from(base64, 'base64');
}

function basicAuth(req: Request): { user: string; password: string } | null {
  const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(req.headers.authorization ?? '');
  if (!m) return null;
  const text = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = text.indexOf(':');
  return colon < 0 ? null : { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** The client certificate the TLS handshake verified (against the hierarchy's CAs), or null. */
function clientCertificate(req: Request): Buffer | null {
  const socket = req.socket as TLSSocket;
  if (!socket.encrypted || !socket.authorized) return null;
  const raw = socket.getPeerCertificate()?.raw;
  return raw && raw.length ? raw : null;
}

function requireTls(req: Request): void {
  if (!(req.socket as TLSSocket).encrypted) throw new TiercaError('forbidden', 'EST is served over HTTPS only (RFC 7030 §3.2.1): start tierca serve with --tls-cert');
}

function sendEnrolled(res: Response, result: EnrolResult): void {
  if (result.kind === 'pending') {
    res.status(202).set('retry-after', String(result.retryAfter)).type('text/plain').send(`waiting for a second officer to approve request ${result.request}\n`);
    return;
  }
  res.status(200).set('content-transfer-encoding', 'base64').type(CERTS_ONLY).send(Buffer.from(certsOnly([result.certificate]).toString('base64')));
}

export function estRoutes(est: EstServer): Router {
  const r = Router();
  const body = express.raw({ type: () => true, limit: MAX_CSR });
  r.get('/.well-known/est/:label/cacerts', (req, res) => {
    res.set('content-transfer-encoding', 'base64').type(CERTS_ONLY).send(Buffer.from(est.cacerts(req.params.label).toString('base64')));
  });
  r.get('/.well-known/est/:label/csrattrs', (req, res) => {
    res.set('content-transfer-encoding', 'base64').type('application/csrattrs').send(Buffer.from(est.csrattrs(req.params.label).toString('base64')));
  });
  r.post('/.well-known/est/:label/simpleenroll', body, async (req, res) => {
    requireTls(req);
    sendEnrolled(res, await est.simpleenroll(req.params.label, basicAuth(req), csrOf(req), req.socket.remoteAddress ?? null));
  });
  r.post('/.well-known/est/:label/simplereenroll', body, async (req, res) => {
    requireTls(req);
    sendEnrolled(res, await est.simplereenroll(req.params.label, clientCertificate(req), csrOf(req), req.socket.remoteAddress ?? null, randomUUID()));
  });
  r.post('/.well-known/est/:label/serverkeygen', body, async (req, res) => {
    requireTls(req);
    const made = await est.serverkeygen(req.params.label, clientCertificate(req), csrOf(req), req.socket.remoteAddress ?? null);
    // RFC 7030 §4.4.2: multipart/mixed, the private key first (application/pkcs8, or CMS
    // EnvelopedData as server-generated-key when the CSR asked for encryption), then the certificate.
    const boundary = `est-${randomUUID()}`;
    const part = (type: string, der: Buffer) => `--${boundary}\r\nContent-Type: ${type}\r\nContent-Transfer-Encoding: base64\r\n\r\n${der.toString('base64')}\r\n`;
    const key = made.encrypted ? part(SERVER_GENERATED_KEY, made.encrypted) : part('application/pkcs8', made.pkcs8);
    const text = key + part(CERTS_ONLY, certsOnly([made.certificate])) + `--${boundary}--\r\n`;
    made.pkcs8?.fill(0);
    res.status(200).set('cache-control', 'no-store').type(`multipart/mixed; boundary=${boundary}`).send(Buffer.from(text));
  });
  r.use('/.well-known/est', (err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (err instanceof TiercaError && err.code === 'unauthenticated' && req.path.endsWith('/simpleenroll')) {
      res.set('www-authenticate', `Basic realm="tierca EST ${req.path.split('/')[1] ?? ''}"`);
    }
    next(err);
  });
  return r;
}
