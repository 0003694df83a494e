/**
 * Admin routes for subjects: the organs, devices and users certificates are issued to.
 */
import { Router } from 'express';
import { z } from 'zod';
import type { RegistrationAuthority } from '../../ra/registration-authority.ts';
import { ctxOf } from '../authenticate.ts';
import { nameField, parseWith } from '../validate.ts';
import { certificateSummary, subjectView } from '../views.ts';

const list = (max: number) => z.array(z.string().min(1).max(253)).max(max).optional();

export const subjectBody = z.object({
  kind: z.enum(['organ', 'device', 'user']),
  domain: z.string().min(1).max(64),
  organ: z.string().min(1).max(64),
  tier: z.string().min(1).max(16),
  name: nameField('CN'),
  dns: list(32),
  ips: list(32),
  emails: list(8),
}).strict();

const subjectQuery = z.object({
  domain: z.string().max(64).optional(),
  tier: z.string().max(16).optional(),
  kind: z.enum(['organ', 'device', 'user']).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).optional(),
});

const revokeBody = z.object({ reason: z.string().min(1).max(64) }).strict();

export function subjectRoutes(ra: RegistrationAuthority): Router {
  const r = Router();
  r.post('/subjects', async (req, res) => {
    const subject = await ra.subjects.add(ctxOf(res), parseWith(subjectBody, req.body));
    res.status(201).json(subjectView(subject));
  });
  r.get('/subjects', async (req, res) => {
    res.json((await ra.subjects.list(ctxOf(res), parseWith(subjectQuery, req.query))).map(subjectView));
  });
  r.get('/subjects/:id', async (req, res) => {
    const { subject, certificates } = await ra.subjects.get(ctxOf(res), req.params.id);
    res.json({ ...subjectView(subject), certificates: certificates.map(certificateSummary) });
  });
  r.post('/subjects/:id/revoke', async (req, res) => {
    const { reason } = parseWith(revokeBody, req.body);
    res.json({ revoked: await ra.subjects.revoke(ctxOf(res), req.params.id, reason) });
  });
  return r;
}
