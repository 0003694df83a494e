/**
 * Admin routes for CRLs: publish now, and show the newest one decoded.
 */
import { Router } from 'express';
import { z } from 'zod';
import type { RegistrationAuthority } from '../../ra/registration-authority.ts';
import type { Store } from '../../storage/storage.ts';
import { parseCrl } from '../../../pki/crl.ts';
import { reasonName } from '../../../pki/revocation-reason.ts';
import { ctxOf } from '../authenticate.ts';
import { parseWith } from '../validate.ts';
import { TiercaError } from '../../errors.ts';

export function crlRoutes(ra: RegistrationAuthority, store: Store): Router {
  const r = Router();
  r.post('/crls', async (req, res) => {
    const { ca } = parseWith(z.object({ ca: z.string().max(64).optional() }).strict(), req.body ?? {});
    const published = await ra.generateCrls(ctxOf(res), ca);
    res.status(201).json(published.map((c) => ({
      caId: c.caId, number: c.number.toString(), delta: c.delta, thisUpdate: c.thisUpdate.toISOString(),
      nextUpdate: c.nextUpdate.toISOString(), entries: c.entries,
    })));
  });
  r.get('/crls/:ca', async (req, res) => {
    await ra.getCa(ctxOf(res), req.params.ca);
    const { delta } = parseWith(z.object({ delta: z.enum(['true', 'false']).optional() }), req.query);
    const crl = await store.crls.latest(req.params.ca, delta === 'true');
    if (!crl) throw new TiercaError('not-found', `no CRL published yet for ${req.params.ca}`);
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
