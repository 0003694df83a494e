/**
 * Admin routes of ACME for officers: make an account-binding key (its HMAC key answered once), list
 * the ACME accounts and orders of their domains, deactivate an account. The ACME protocol itself is
 * acme.routes.ts.
 */
import { Router } from 'express';
import { z } from 'zod';
import type { RegistrationAuthority } from '../../ra/registration-authority.ts';
import type { AccountRecord, OrderRecord } from '../../enrol/acme/acme-store.ts';
import { ctxOf } from '../authenticate.ts';
import { durationField, parseWith } from '../validate.ts';

const slug = z.string().regex(/^[a-z0-9-]{1,64}$/);
const accountKeyBody = z.object({
  domain: slug, organ: slug, tier: slug,
  maxCertificates: z.number().int().positive().max(1_000_000).optional(),
  expires: durationField().optional(),
}).strict();

export function acmeAdminRoutes(ra: RegistrationAuthority): Router {
  const r = Router();
  r.post('/acme/account-keys', async (req, res) => {
    const body = parseWith(accountKeyBody, req.body ?? {});
    const key = await ra.acme.addAccountKey(ctxOf(res), {
      domain: body.domain, organ: body.organ, tier: body.tier, maxCertificates: body.maxCertificates, lifetimeMs: body.expires,
    });
    res.status(201).json({ ...key, expiresAt: key.expiresAt.toISOString() });
  });
  r.get('/acme/accounts', async (req, res) => {
    const domain = typeof req.query.domain === 'string' ? req.query.domain : undefined;
    res.json((await ra.acme.accounts(ctxOf(res), domain)).map(accountJson));
  });
  r.get('/acme/orders', async (req, res) => {
    const account = typeof req.query.account === 'string' ? req.query.account : undefined;
    const limit = typeof req.query.limit === 'string' ? parseWith(z.coerce.number().int().min(1).max(1000), req.query.limit) : undefined;
    res.json((await ra.acme.orders(ctxOf(res), { account, limit })).map(orderJson));
  });
  r.post('/acme/accounts/:id/deactivate', async (req, res) => {
    res.json(accountJson(await ra.acme.deactivate(ctxOf(res), req.params.id)));
  });
  return r;
}

function accountJson(a: AccountRecord) {
  return {
    id: a.id, status: a.status, domain: a.domain, organ: a.organ, tier: a.tier, contact: a.contact, accountKeyId: a.accountKeyId,
    thumbprint: a.thumbprint, issued: a.issued, maxCertificates: a.maxCertificates, boundBy: a.boundBy, createdAt: a.createdAt.toISOString(),
  };
}

function orderJson(o: OrderRecord & { domain: string }) {
  return {
    id: o.id, account: o.accountId, domain: o.domain, status: o.status, identifiers: o.identifiers.map((i) => i.value),
    issuerId: o.issuerId, serial: o.serial, replaces: o.replaces, error: o.error, createdAt: o.createdAt.toISOString(), expiresAt: o.expiresAt.toISOString(),
  };
}
