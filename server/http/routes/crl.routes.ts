/**
 * Admin routes for CRLs: publish now, and show the newest one decoded.
 */
import { Router } from 'express';
import { z } from 'zod';
import type { RegistrationAuthority } from '../../ra/registration-authority.ts';
import { parseCrl } from '../../../pki/crl-reader.ts';
import { reasonName } from '../../../pki/revocation-reason.ts';
import { ctxOf } from '../authenticate.ts';
import { parseWith } from '../validate.ts';

export function crlRoutes(ra: RegistrationAuthority): Router {
  const r = Router();
  r.post('/crls', async (req, res) => {
    const { ca } = parseWith(z.object({ ca: z.string().max(64).optional() }).strict(), req.body ?? {});
    const published = await ra.cas.generateCrls(ctxOf(res), ca);
    res.status(201).json(published.map((c) => ({
      caId: c.caId, number: c.number.toString(), delta: c.delta, thisUpdate: c.thisUpdate.toISOString(),
      nextUpdate: c.nextUpdate.toISOString(), entries: c.entries,
    })));
  });
  r.get('/crls/:ca', async (req, res) => {
    const { delta } = parseWith(z.object({ delta: z.enum(['true', 'false']).optional() }), req.query);
    const crl = await ra.cas.latestCrl(ctxOf(res), req.params.ca, delta === 'true');
    const parsed = parseCrl(crl.der);
    res.json({
      caId: crl.caId,
      number: crl.number.toString(),
      delta: crl.delta,
      baseNumber: crl.baseNumber?.toString() ?? null,
      thisUpdate: crl.thisUpdate.toISOString(),
      nextUpdate: crl.nextUpdate.toISOString(),
      entries: parsed.entries.map((e) => ({
        serial: e.serial, revokedAt: e.revokedAt.toISOString(), reason: e.reason == null ? null : reasonName(e.reason),
      })),
    });
  });
  return r;
}
