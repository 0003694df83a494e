/**
 * Admin routes for CAs and domains (principals: principal.routes.ts).
 */
import { Router } from 'express';
import { z } from 'zod';
import type { RegistrationAuthority } from '../../ra/registration-authority.ts';
import { ctxOf } from '../authenticate.ts';
import { parseWith } from '../validate.ts';
import { children, decodeOid, readOnly } from '../../../pki/der-reader.ts';
import { readExtensions } from '../../../pki/certificate-reader.ts';
import { EXTENSION_OID } from '../../../pki/extensions.ts';
import { caDetail, caSummary, requestView } from '../views.ts';

export function caRoutes(ra: RegistrationAuthority, publicUrl: string): Router {
  const r = Router();
  r.get('/whoami', (_req, res) => {
    const { principal } = ctxOf(res);
    res.json({ id: principal.id, name: principal.name, role: principal.role, domains: principal.domains });
  });
  r.get('/cas', async (_req, res) => {
    res.json((await ra.cas.list(ctxOf(res))).map((ca) => caSummary(ca, publicUrl)));
  });
  r.get('/cas/:id', async (req, res) => {
    const ctx = ctxOf(res);
    const ca = await ra.cas.get(ctx, req.params.id);
    res.json({ ...caDetail(ca, await ra.cas.list(ctx), publicUrl), policies: policiesOf(ca.record.certificate) });
  });
  r.post('/cas/:id/revoke', async (req, res) => {
    const { reason } = parseWith(z.object({ reason: z.string().min(1).max(64) }).strict(), req.body ?? {});
    // Dual control: a second sysadmin approves through POST /requests/{id}/approve.
    const { request } = await ra.cas.revoke(ctxOf(res), req.params.id, reason);
    res.status(202).json({ request: requestView(request) });
  });
  r.post('/domains', async (req, res) => {
    const slug = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/);
    const domain = parseWith(z.object({
      slug, name: z.string().min(1).max(64), dnsSuffix: z.string().min(1).max(253), emailSuffix: z.string().min(1).max(253),
      ipRanges: z.array(z.string().max(64)).max(64).default([]), organNames: z.record(slug, z.string().min(1).max(64)).optional(),
    }).strict(), req.body ?? {});
    // Dual control: a second sysadmin approves through POST /requests/{id}/approve.
    const { request } = await ra.domains.request(ctxOf(res), domain);
    res.status(202).json({ request: requestView(request) });
  });
  r.get('/domains', async (_req, res) => {
    const domains = await ra.cas.domains(ctxOf(res));
    res.json(domains.map((d) => ({
      slug: d.slug, name: d.name, dnsSuffix: d.dnsSuffix, emailSuffix: d.emailSuffix,
      organs: d.organs.map((o) => ({ slug: o.slug, name: o.name })),
    })));
  });
  return r;
}

/**
 * The policy OIDs a CA certificate carries in certificatePolicies (RFC 5280 §4.2.1.4), as written: a
 * tier CA its tier's OID, a CA above it anyPolicy (2.5.29.32.0) or the list; none, `[]`.
 */
export function policiesOf(der: Buffer): string[] {
  // tierca's own DER reader: it keeps arcs of any size (a general ASN.1 library may not, issue 11).
  const [tbs] = children(readOnly(der, 0x30));
  const wrapper = tbs ? children(tbs).find((el) => el.tag === 0xa3) : undefined;
  const value = wrapper ? readExtensions(wrapper).get(EXTENSION_OID.certificatePolicies) : undefined;
  if (!value) return [];
  return children(readOnly(value, 0x30)).map((info) => decodeOid(children(info)[0]!));
}
