/**
 * Admin routes of EST for officers: make a one-time enrolment code for a device subject (the code
 * answered once), and list the codes of their domains with what became of each. The EST protocol
 * itself is est.routes.ts.
 */
import { Router } from 'express';
import { z } from 'zod';
import type { RegistrationAuthority } from '../../ra/registration-authority.ts';
import { ctxOf } from '../authenticate.ts';
import { durationField, parseWith } from '../validate.ts';

const codeBody = z.object({ subject: z.string().min(1).max(64), expires: durationField().optional() }).strict();

export function estAdminRoutes(ra: RegistrationAuthority): Router {
  const r = Router();
  r.post('/est/codes', async (req, res) => {
    const body = parseWith(codeBody, req.body ?? {});
    const made = await ra.est.addCode(ctxOf(res), { subjectId: body.subject, lifetimeMs: body.expires });
    // The code is shown this once; only its hash is kept.
    res.status(201).set('cache-control', 'no-store').json({ ...made, expiresAt: made.expiresAt.toISOString() });
  });
  r.get('/est/codes', async (req, res) => {
    const subjectId = typeof req.query.subject === 'string' ? req.query.subject : undefined;
    const codes = await ra.est.codes(ctxOf(res), { subjectId });
    res.json(codes.map((c) => ({
      id: c.id, subjectId: c.subjectId, label: `${c.domain}-${c.tier}`, state: c.state, createdBy: c.createdBy, createdAt: c.createdAt.toISOString(),
      expiresAt: c.expiresAt.toISOString(), usedAt: c.usedAt?.toISOString() ?? null, requestId: c.requestId, issuerId: c.issuerId, serial: c.serial,
    })));
  });
  return r;
}
