/**
 * Admin routes for the audit log (auditors): read it, export it as JSON Lines, verify its hash chain
 * and signed checkpoints, list and make checkpoints.
 */
import { createPublicKey } from 'node:crypto';
import { Router } from 'express';
import { z } from 'zod';
import type { RegistrationAuthority } from '../../ra/registration-authority.ts';
import type { AuditCheckpointRecord, AuditRecord } from '../../storage/storage.ts';
import { checkpointPayload } from '../../audit/audit-checkpoints.ts';
import { ctxOf } from '../authenticate.ts';
import { parseWith } from '../validate.ts';

const time = z.iso.datetime({ offset: true }).transform((t) => new Date(t));
const seq = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const auditListQuery = z.object({
  since: time.optional(),
  until: time.optional(),
  actor: z.string().min(1).max(64).optional(),
  action: z.string().min(1).max(64).optional(),
  after: seq.optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(100),
}).strict();

export const exportQuery = z.object({ from: time.optional(), to: time.optional() }).strict();

const verifyQuery = z.object({
  anchor: z.string().regex(/^\d{1,15}:[0-9a-f]{64}$/, 'seq:hash, e.g. 1200:9f86d081…').optional(),
}).strict();

/**
 * An audit record as the API and the export give it: every field the hash covers, under its own
 * name, so anyone can recompute the chain from an export (docs/decisions/0005-audit-log.md).
 */
export function auditView(r: AuditRecord) {
  return {
    seq: r.seq,
    at: r.at.toISOString(),
    principalId: r.principalId,
    role: r.role,
    source: r.source,
    action: r.action,
    target: r.target,
    outcome: r.outcome,
    requestId: r.requestId,
    detail: r.detail,
    prevHash: r.prevHash,
    hash: r.hash,
  };
}

/** A checkpoint with its signature (base64) and the exact bytes signed (`payload`, UTF-8 text). */
export function checkpointView(c: AuditCheckpointRecord) {
  return {
    seq: c.seq,
    hash: c.hash,
    at: c.at.toISOString(),
    kind: c.kind,
    keyId: c.keyId,
    signature: c.signature.toString('base64'),
    payload: checkpointPayload(c).toString('utf8'),
  };
}

export function auditRoutes(ra: RegistrationAuthority): Router {
  const r = Router();
  r.get('/audit', async (req, res) => {
    const q = parseWith(auditListQuery, req.query);
    const records = await ra.audit.records(ctxOf(res), {
      since: q.since, until: q.until, actor: q.actor, action: q.action, afterSeq: q.after, limit: q.limit,
    });
    res.json(records.map(auditView));
  });
  r.get('/audit/export', async (req, res) => {
    const q = parseWith(exportQuery, req.query);
    const records = await ra.audit.export(ctxOf(res), { from: q.from, to: q.to });
    res.status(200).set({ 'content-type': 'application/jsonl; charset=utf-8', 'cache-control': 'no-store' });
    for await (const record of records) {
      if (!res.write(`${JSON.stringify(auditView(record))}\n`)) await new Promise((resolve) => res.once('drain', resolve));
    }
    res.end();
  });
  r.get('/audit/verify', async (req, res) => {
    const { anchor } = parseWith(verifyQuery, req.query);
    const [seqText, hash] = anchor?.split(':') ?? [];
    res.set('cache-control', 'no-store').json(await ra.audit.verify(ctxOf(res), anchor ? { anchor: { seq: Number(seqText), hash } } : {}));
  });
  r.get('/audit/checkpoints', async (_req, res) => {
    const { keys, checkpoints } = await ra.audit.checkpointList(ctxOf(res));
    res.json({
      keys: keys.map((k) => ({
        id: k.id, algorithm: k.algorithm, createdAt: k.createdAt.toISOString(),
        publicKey: createPublicKey({ key: k.publicKeyInfo, format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }),
      })),
      checkpoints: checkpoints.map(checkpointView),
    });
  });
  r.post('/audit/checkpoints', async (_req, res) => {
    res.status(201).json(checkpointView(await ra.audit.checkpoint(ctxOf(res))));
  });
  return r;
}
