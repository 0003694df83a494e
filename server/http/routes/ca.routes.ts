/**
 * Admin routes for CAs, domains and principals.
 */
import { Router } from 'express';
import { z } from 'zod';
import type { RegistrationAuthority } from '../../ra/registration-authority.ts';
import { ctxOf } from '../authenticate.ts';
import { parseWith } from '../validate.ts';
import { caDetail, caSummary } from '../views.ts';

const principalBody = z.object({
  name: z.string().min(1).max(200),
  role: z.enum(['sysadmin', 'officer', 'auditor', 'device']),
  domains: z.array(z.string().min(1).max(64)).max(100).optional(),
}).strict();

export function caRoutes(ra: RegistrationAuthority, publicUrl: string): Router {
  const r = Router();
  r.get('/whoami', (_req, res) => {
    const { principal } = ctxOf(res);
    res.json({ id: principal.id, name: principal.name, role: principal.role, domains: principal.domains });
  });
  r.get('/cas', async (_req, res) => {
    res.json((await ra.listCas(ctxOf(res))).map((ca) => caSummary(ca, publicUrl)));
  });
  r.get('/cas/:id', async (req, res) => {
    const ctx = ctxOf(res);
    const ca = await ra.getCa(ctx, req.params.id);
    res.json(caDetail(ca, await ra.listCas(ctx), publicUrl));
  });
  r.post('/cas/:id/revoke', async (req, res) => {
    const { reason } = parseWith(z.object({ reason: z.string().min(1).max(64) }).strict(), req.body ?? {});
    const ca = await ra.revokeCa(ctxOf(res), req.params.id, reason);
    res.json(caSummary(ca, publicUrl));
  });
  r.get('/domains', async (_req, res) => {
    const domains = await ra.listDomains(ctxOf(res));
    res.json(domains.map((d) => ({
      slug: d.slug, name: d.name, dnsSuffix: d.dnsSuffix, emailSuffix: d.emailSuffix,
      organs: d.organs.map((o) => ({ slug: o.slug, name: o.name })),
    })));
  });
  r.post('/principals', async (req, res) => {
    const body = parseWith(principalBody, req.body);
    const { principal, token } = await ra.addPrincipal(ctxOf(res), body);
    res.status(201).json({ id: principal.id, name: principal.name, role: principal.role, domains: principal.domains, token });
  });
  return r;
}
