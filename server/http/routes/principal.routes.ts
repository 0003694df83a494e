/**
 * Admin routes for principals (the people and machines that use this API: their tokens and client
 * certificates), and the recovery of escrowed keys, which opens a request for a second officer.
 */
import { Router } from 'express';
import { z } from 'zod';
import type { RegistrationAuthority } from '../../ra/registration-authority.ts';
import type { PrincipalRecord } from '../../storage/storage.ts';
import { certificateToPem } from '../../../pki/pem.ts';
import { ctxOf } from '../authenticate.ts';
import { nameField, parseWith } from '../validate.ts';
import { certificateSummary, pemChain, requestView } from '../views.ts';

export const principalBody = z.object({
  name: nameField({ max: 200 }),
  role: z.enum(['sysadmin', 'officer', 'auditor', 'device']),
  domains: z.array(z.string().min(1).max(64)).max(100).optional(),
}).strict();

export const certificateBody = z.object({
  csr: z.string().min(1).max(32 * 1024),
  days: z.number().int().min(1).max(36_500).optional(),
}).strict();

const recoverBody = z.object({ reason: z.string().min(1).max(500).optional() }).strict();

/** A principal as the API shows it: never a token or its hash. */
export function principalView(p: PrincipalRecord) {
  return { id: p.id, name: p.name, role: p.role, domains: p.domains, disabled: p.disabled, createdAt: p.createdAt.toISOString() };
}

export function principalRoutes(ra: RegistrationAuthority): Router {
  const r = Router();
  r.get('/principals', async (_req, res) => {
    res.json((await ra.principals.list(ctxOf(res))).map(principalView));
  });
  r.post('/principals', async (req, res) => {
    const body = parseWith(principalBody, req.body);
    const added = await ra.principals.add(ctxOf(res), body);
    // A sysadmin or an officer waits for a second sysadmin (decision 0014); its approval shows the token.
    if (added.kind === 'pending') return void res.status(202).json({ request: requestView(added.request) });
    // The token is shown this once; only its hash is kept.
    res.status(201).set('cache-control', 'no-store').json({ ...principalView(added.principal), token: added.token });
  });
  r.post('/principals/:id/disable', async (req, res) => {
    res.json(principalView(await ra.principals.disable(ctxOf(res), req.params.id)));
  });
  r.post('/principals/:id/certificate', async (req, res) => {
    const body = parseWith(certificateBody, req.body);
    const { certificate, chain } = await ra.principals.issueCertificate(ctxOf(res), req.params.id, body);
    res.status(201).json({ certificate: certificateSummary(certificate), pem: certificateToPem(certificate.der), chain: pemChain(chain) });
  });
  r.post('/escrow/:issuer/:serial/recover', async (req, res) => {
    const { reason } = parseWith(recoverBody, req.body ?? {});
    const { request } = await ra.escrow.requestRecovery(ctxOf(res), req.params.issuer, req.params.serial, { reason });
    res.status(202).json({ request: requestView(request) });
  });
  return r;
}
