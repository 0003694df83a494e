/**
 * Admin routes of the key-management centre: a subject's escrowed key history (officers of its
 * domain), the recovery of that whole history (an officer asks, a second approves) and the master-key
 * rotation (sysadmins). Recovery of one certificate's key is `POST /escrow/…/recover`.
 */
import { Router } from 'express';
import type { RegistrationAuthority } from '../../ra/registration-authority.ts';
import { z } from 'zod';
import { ctxOf } from '../authenticate.ts';
import { parseWith } from '../validate.ts';
import { requestView } from '../views.ts';

export function kmcRoutes(ra: RegistrationAuthority): Router {
  const r = Router();
  r.get('/subjects/:id/keys', async (req, res) => {
    const keys = await ra.escrow.keyHistory(ctxOf(res), req.params.id);
    res.json(keys.map((k) => ({
      keyId: k.id, subjectId: k.subjectId, algorithm: k.algorithm, issuerId: k.issuerId, serial: k.serial, createdAt: k.createdAt.toISOString(),
      masterKeyId: k.masterKeyId,
    })));
  });
  r.post('/subjects/:id/keys/recover', async (req, res) => {
    const { reason } = parseWith(z.object({ reason: z.string().min(1).max(500).optional() }).strict(), req.body ?? {});
    const { request } = await ra.escrow.requestHistoryRecovery(ctxOf(res), req.params.id, { reason });
    res.status(202).json({ request: requestView(request) });
  });
  r.post('/kmc/rotate-master', async (req, res) => {
    const { execute } = parseWith(z.object({ execute: z.boolean().optional() }).strict(), req.body ?? {});
    res.json(await ra.escrow.rotateMaster(ctxOf(res), execute === true));
  });
  return r;
}
