/**
 * Admin routes of the key-management centre: a subject's escrowed key history (officers of its
 * domain) and the master-key rotation (sysadmins). Recovery is `POST /escrow/…/recover`.
 */
import { Router } from 'express';
import type { RegistrationAuthority } from '../../ra/registration-authority.ts';
import { z } from 'zod';
import { ctxOf } from '../authenticate.ts';
import { parseWith } from '../validate.ts';

export function kmcRoutes(ra: RegistrationAuthority): Router {
  const r = Router();
  r.get('/subjects/:id/keys', async (req, res) => {
    const keys = await ra.escrow.keyHistory(ctxOf(res), req.params.id);
    res.json(keys.map((k) => ({
      keyId: k.id, subjectId: k.subjectId, algorithm: k.algorithm, issuerId: k.issuerId, serial: k.serial, createdAt: k.createdAt.toISOString(),
      masterKeyId: k.masterKeyId,
    })));
  });
  r.post('/kmc/rotate-master', async (req, res) => {
    const { execute } = parseWith(z.object({ execute: z.boolean().optional() }).strict(), req.body ?? {});
    res.json(await ra.escrow.rotateMaster(ctxOf(res), execute === true));
  });
  return r;
}
