/**
 * Rotation routes (docs/api.md "Rotation"): what is due, rotation runs, renewal, CA rollover and the
 * link certificates it publishes. Thin handlers: parse with zod, call the rotation authority, render.
 *
 * `rotationRoutes` sit under /api/v1 behind bearer authentication; `rotationPublicRoutes` sit in
 * front of it: the link certificates are public, and a device's signed renewal authenticates with
 * its certificate's key instead of a token.
 */
import express, { Router } from 'express';
import { z } from 'zod';
import type { RotationServices } from '../../ra/rotation/rotation-services.ts';
import type { RenewResult } from '../../ra/rotation/renewal.service.ts';
import type { RunReport } from '../../ra/rotation/rotation-run.service.ts';
import type { RotationPlan, DueItem } from '../../ca/rotation-planner.ts';
import type { CaLinkRecord } from '../../storage/storage.ts';
import { certificateToPem } from '../../../pki/pem.ts';
import { createHash } from 'node:crypto';
import { ctxOf } from '../authenticate.ts';
import { durationField, parseWith, requestIdField } from '../validate.ts';
import { certificateSummary, pemChain, requestView } from '../views.ts';
import { TiercaError } from '../../errors.ts';

export const dueQuery = z.object({
  within: durationField().optional(),
  domain: z.string().max(64).optional(),
  tier: z.string().max(16).optional(),
}).strict();

export const runBody = z.object({
  dryRun: z.boolean().optional(),
  domain: z.string().max(64).optional(),
  tier: z.string().max(16).optional(),
  requestId: requestIdField().optional(),
  limit: z.number().int().min(1).max(10_000).optional(),
}).strict();

const renewBody = z.object({
  issuer: z.string().max(64).optional(),
  csr: z.string().min(1).max(32 * 1024).optional(),
  generate: z.object({ algorithm: z.string().max(16).optional(), passphrase: z.string().min(8).max(1024).optional() }).strict().optional(),
  requestId: requestIdField().optional(),
}).strict();

const rolloverBody = z.object({ ceremony: z.boolean().optional() }).strict();

/** A renewal answer: 201 with the successor, or 200 when the request had already been done. */
export function renderRenewed(r: RenewResult): { status: number; body: Record<string, unknown> } {
  return {
    status: r.replayed ? 200 : 201,
    body: {
      certificate: certificateSummary(r.certificate),
      pem: certificateToPem(r.certificate.der),
      chain: pemChain(r.chain),
      replaced: certificateSummary(r.replaced),
      mode: r.renewal.mode,
      supersedeAt: r.renewal.supersedeAt.toISOString(),
      replayed: r.replayed,
      ...(r.pkcs12 ? { pkcs12: r.pkcs12.toString('base64') } : {}),
      ...(r.passphrase ? { passphrase: r.passphrase } : {}),
    },
  };
}

export function dueItemView(item: DueItem): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(item)) out[k] = v instanceof Date ? v.toISOString() : v;
  return out;
}

export function planView(plan: RotationPlan) {
  return { now: plan.now.toISOString(), horizon: plan.horizon.toISOString(), items: plan.items.map(dueItemView) };
}

export function runView(report: RunReport) {
  return {
    requestId: report.requestId,
    dryRun: report.dryRun,
    at: report.at.toISOString(),
    summary: report.summary,
    remaining: report.remaining,
    items: report.items.map((i) => ({ ...i, dueAt: i.dueAt.toISOString() })),
  };
}

export function linkView(l: CaLinkRecord) {
  return {
    id: l.id,
    kind: l.kind,
    lineage: l.lineage,
    oldCaId: l.oldCaId,
    newCaId: l.newCaId,
    notBefore: l.notBefore.toISOString(),
    notAfter: l.notAfter.toISOString(),
    fingerprint: createHash('sha256').update(l.certificate).digest('hex'),
    pem: certificateToPem(l.certificate),
  };
}

/** Admin routes under /api/v1 (mount before certificateRoutes, whose catch-all answers unknown certificate actions). */
export function rotationRoutes(rotation: RotationServices): Router {
  const r = Router();
  r.get('/rotation/due', async (req, res) => {
    const q = parseWith(dueQuery, req.query);
    const plan = await rotation.runs.due(ctxOf(res), { withinMs: q.within ?? 0, domain: q.domain, tier: q.tier });
    res.json(planView(plan));
  });
  r.post('/rotation/run', async (req, res) => {
    const body = parseWith(runBody, req.body ?? {});
    res.json(runView(await rotation.runs.run(ctxOf(res), body)));
  });
  r.post('/certificates/:serial/renew', async (req, res) => {
    const body = parseWith(renewBody, req.body ?? {});
    const { status, body: out } = renderRenewed(await rotation.renewals.renew(ctxOf(res), req.params.serial, body));
    res.status(status).set('cache-control', 'no-store').json(out);
  });
  r.post('/cas/:id/rollover', async (req, res) => {
    const body = parseWith(rolloverBody, req.body ?? {});
    // Dual control: a second sysadmin approves through POST /requests/{id}/approve.
    const { request } = await rotation.rollovers.requestRollover(ctxOf(res), req.params.id, body);
    res.status(202).json({ request: requestView(request) });
  });
  r.get('/cas/:id/links', async (req, res) => {
    res.json((await rotation.rollovers.listLinks(ctxOf(res), req.params.id)).map(linkView));
  });
  return r;
}

/** Public routes, mounted in front of the public routes and of /api/v1. */
export function rotationPublicRoutes(rotation: RotationServices, maxBody: string): Router {
  const r = Router();
  r.get('/ca/:file', async (req, res, next) => {
    const m = /^([a-z0-9-]{1,64})-links\.pem$/.exec(req.params.file);
    if (!m) return next();
    const links = await rotation.rollovers.links(m[1]);
    if (links.length === 0) throw new TiercaError('not-found', `no link certificates for CA ${m[1]} (it was never rolled over)`);
    res.set('cache-control', 'public, max-age=3600').type('application/x-pem-file').send(links.map((l) => certificateToPem(l.certificate)).join(''));
  });
  // A device's renewal signed with its current key; with a bearer token instead, /api/v1 answers.
  r.post(
    '/api/v1/certificates/:serial/renew',
    (req, _res, next) => (req.headers['tierca-signature'] && !req.headers.authorization ? next() : next('router')),
    express.raw({ type: () => true, limit: maxBody }),
    async (req, res) => {
      const signature = String(req.headers['tierca-signature']);
      const certificate = req.headers['tierca-certificate'];
      if (typeof certificate !== 'string') throw new TiercaError('unauthenticated', 'Tierca-Certificate (base64 DER of the certificate being renewed) is required with Tierca-Signature');
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const result = await rotation.devices.renewBySignature({
        serial: req.params.serial, body, signature, certificate, source: req.socket.remoteAddress ?? null,
      });
      const { status, body: out } = renderRenewed(result);
      res.status(status).set('cache-control', 'no-store').json(out);
    },
  );
  return r;
}
