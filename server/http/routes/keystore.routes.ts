/**
 * Admin route of the keystore (sysadmins): where each CA and audit key is held and whether this
 * instance can sign with it now (`tierca keystore status`).
 */
import { Router } from 'express';
import type { RegistrationAuthority } from '../../ra/registration-authority.ts';
import { ctxOf } from '../authenticate.ts';

export function keystoreRoutes(ra: RegistrationAuthority): Router {
  const r = Router();
  r.get('/keystore', async (_req, res) => {
    res.json(await ra.keystore.status(ctxOf(res)));
  });
  return r;
}
