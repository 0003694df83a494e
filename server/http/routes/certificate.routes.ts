/**
 * Admin routes for certificates: issue, list, show, revoke, hold, release; and pending requests.
 */
import { Router } from 'express';
import { z } from 'zod';
import type { RegistrationAuthority } from '../../ra/registration-authority.ts';
import type { IssueResult } from '../../ra/issuance.service.ts';
import type { ApprovalResult } from '../../ra/dual-control.ts';
import { reasonOrRefuse } from '../../ra/certificate-status.service.ts';
import type { Clock } from '../../clock.ts';
import { ctxOf } from '../authenticate.ts';
import { durationField, parseWith, requestIdField } from '../validate.ts';
import { certificateSummary, pemChain, requestView } from '../views.ts';
import { certificateToPem } from '../../../pki/pem.ts';
import { TiercaError } from '../../errors.ts';

export const issueBody = z.object({
  subjectId: z.string().min(1).max(64),
  csr: z.string().min(1).max(32 * 1024).optional(),
  generate: z.object({ algorithm: z.string().max(16).optional(), passphrase: z.string().min(8).max(1024).optional() }).strict().optional(),
  profile: z.enum(['organ', 'organ-enc', 'device', 'device-enc', 'user-sign', 'user-enc']).optional(),
  days: z.number().int().min(1).max(36_500).optional(),
  requestId: requestIdField().optional(),
  /** At a tier where the encryption certificate is optional: issue it too (docs/api.md "Dual certificates"). */
  encryption: z.boolean().optional(),
}).strict();

export const certificateListQuery = z.object({
  domain: z.string().max(64).optional(),
  tier: z.string().max(16).optional(),
  status: z.enum(['good', 'revoked', 'hold']).optional(),
  issuer: z.string().max(64).optional(),
  subject: z.string().max(64).optional(),
  profile: z.enum(['organ', 'organ-enc', 'device', 'device-enc', 'user-sign', 'user-enc', 'ocsp']).optional(),
  expiringWithin: durationField().optional(),
  limit: z.coerce.number().int().min(1).max(10_000).optional(),
  offset: z.coerce.number().int().min(0).optional(),
});

const issuerOnly = z.object({ issuer: z.string().max(64).optional() }).strict();
export const revokeBody = z.object({
  reason: z.string().min(1).max(64),
  invalidityDate: z.iso.datetime().optional(),
  issuer: z.string().max(64).optional(),
}).strict();

export function renderIssued(result: IssueResult) {
  if (result.kind === 'pending') return { status: 202, body: { request: requestView(result.request) } };
  return {
    status: result.replayed ? 200 : 201,
    body: {
      ...(result.replayed ? { replayed: true } : {}),
      certificate: certificateSummary(result.certificate),
      pem: certificateToPem(result.certificate.der),
      chain: pemChain(result.chain),
      ...(result.pkcs12 ? { pkcs12: result.pkcs12.toString('base64') } : {}),
      ...(result.passphrase ? { passphrase: result.passphrase } : {}),
      ...(result.encryption ? { encryption: encryptionView(result.encryption) } : {}),
    },
  };
}

/** The encryption half of a dual certificate: its certificate and chain, and its KMC-made key, delivered once. */
function encryptionView(e: NonNullable<Extract<IssueResult, { kind: 'issued' }>['encryption']>) {
  return {
    certificate: certificateSummary(e.certificate),
    pem: certificateToPem(e.certificate.der),
    chain: pemChain(e.chain),
    pkcs12: e.pkcs12.toString('base64'),
    passphrase: e.passphrase,
    ...(e.envelopedKey ? { envelopedKey: e.envelopedKey.toString('base64') } : {}),
  };
}

/**
 * The answer to an approval: 200 `{ request }` while more approvals are needed; 201 *issued* for an
 * issuance; 200 *issued* + `{ request }` for a recovered escrowed key; 200 `{ request, result }` for
 * any other action (CA revocation, rollover).
 */
export function renderApproval(result: ApprovalResult): { status: number; body: Record<string, unknown> } {
  switch (result.kind) {
    case 'pending':
      return { status: 200, body: { request: requestView(result.request) } };
    case 'issued':
      return renderIssued(result);
    case 'recovered':
      return {
        status: 200,
        body: {
          request: requestView(result.request),
          certificate: certificateSummary(result.certificate),
          pem: certificateToPem(result.certificate.der),
          chain: pemChain(result.chain),
          pkcs12: result.pkcs12.toString('base64'),
          passphrase: result.passphrase,
        },
      };
    case 'recovered-history':
      return {
        status: 200,
        body: {
          request: requestView(result.request),
          subjectId: result.subjectId,
          keys: result.keys.map((k) => ({
            keyId: k.keyId, certificate: certificateSummary(k.certificate), pem: certificateToPem(k.certificate.der), chain: pemChain(k.chain),
            pkcs12: k.pkcs12.toString('base64'),
          })),
          passphrase: result.passphrase,
        },
      };
    case 'done':
      return { status: 200, body: { request: requestView(result.request), result: result.result } };
  }
}

export function certificateRoutes(ra: RegistrationAuthority, clock: Clock): Router {
  const r = Router();
  r.post('/certificates', async (req, res) => {
    const body = parseWith(issueBody, req.body);
    const { status, body: out } = renderIssued(await ra.issuance.issue(ctxOf(res), body));
    res.status(status).set('cache-control', 'no-store').json(out);
  });
  r.get('/certificates', async (req, res) => {
    const q = parseWith(certificateListQuery, req.query);
    const now = clock.now();
    const certs = await ra.certificates.list(ctxOf(res), {
      domain: q.domain, tier: q.tier, status: q.status, issuerId: q.issuer, subjectId: q.subject, profile: q.profile,
      limit: q.limit ?? 1000, offset: q.offset,
      ...(q.expiringWithin ? { notAfterAfter: now, notAfterBefore: new Date(now.getTime() + q.expiringWithin) } : {}),
    });
    res.json(certs.map(certificateSummary));
  });
  r.get('/certificates/:serial', async (req, res) => {
    const { issuer } = parseWith(issuerOnly, req.query);
    const { certificate, chain } = await ra.certificates.get(ctxOf(res), req.params.serial, issuer);
    res.json({ ...certificateSummary(certificate), pem: certificateToPem(certificate.der), chain: pemChain(chain) });
  });
  r.post('/certificates/:serial/revoke', async (req, res) => {
    const body = parseWith(revokeBody, req.body ?? {});
    const reason = reasonOrRefuse(body.reason);
    const record = await ra.certificates.change(ctxOf(res), req.params.serial, body.issuer, {
      kind: 'revoke', reason, invalidityDate: body.invalidityDate ? new Date(body.invalidityDate) : null,
    });
    res.json(certificateSummary(record));
  });
  for (const kind of ['hold', 'release'] as const) {
    r.post(`/certificates/:serial/${kind}`, async (req, res) => {
      const { issuer } = parseWith(issuerOnly, req.body ?? {});
      res.json(certificateSummary(await ra.certificates.change(ctxOf(res), req.params.serial, issuer, { kind })));
    });
  }
  r.get('/requests', async (req, res) => {
    const { status } = parseWith(z.object({ status: z.enum(['pending', 'done', 'rejected', 'expired', 'failed']).optional() }), req.query);
    res.json((await ra.requests.list(ctxOf(res), { status })).map(requestView));
  });
  r.post('/requests/:id/approve', async (req, res) => {
    const { status, body } = renderApproval(await ra.requests.approve(ctxOf(res), req.params.id));
    res.status(status).set('cache-control', 'no-store').json(body);
  });
  r.post('/requests/:id/reject', async (req, res) => {
    res.json(requestView(await ra.requests.reject(ctxOf(res), req.params.id)));
  });
  r.use('/certificates/:serial/:action', (_req, _res, next) => next(new TiercaError('not-found', 'no such certificate action')));
  return r;
}
