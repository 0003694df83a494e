/**
 * The hash-chained audit log. Each record's hash covers its fields and the previous record's hash,
 * so editing, deleting or reordering a record breaks the chain at that record. Records are written in
 * the same transaction as the change they describe (STYLE.md practice 9).
 */
import { createHash } from 'node:crypto';
import type { AuditRecord, AuditRepository } from '../storage/storage.ts';

export const GENESIS_HASH = '0'.repeat(64);

export interface AuditEvent {
  principalId: string | null;
  role: string | null;
  source: string | null;
  action: string;
  target: string | null;
  outcome: AuditRecord['outcome'];
  requestId: string | null;
  detail?: Record<string, unknown>;
}

/** The hash of a record: SHA-256 over a canonical JSON of every field but `hash`. */
export function auditRecordHash(record: Omit<AuditRecord, 'hash'>): string {
  const canonical = JSON.stringify([
    record.seq,
    record.at.toISOString(),
    record.principalId,
    record.role,
    record.source,
    record.action,
    record.target,
    record.outcome,
    record.requestId,
    canonicalJson(record.detail),
    record.prevHash,
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}

/** Appends one event to the chain (in the caller's transaction when `audit` is bound to one). */
export function appendAudit(audit: AuditRepository, at: Date, event: AuditEvent): Promise<AuditRecord> {
  return audit.appendChained((last) => {
    const base = {
      seq: (last?.seq ?? 0) + 1,
      at,
      principalId: event.principalId,
      role: event.role,
      source: event.source,
      action: event.action,
      target: event.target,
      outcome: event.outcome,
      requestId: event.requestId,
      detail: event.detail ?? {},
      prevHash: last?.hash ?? GENESIS_HASH,
    };
    return { ...base, hash: auditRecordHash(base) };
  });
}

export interface ChainVerification {
  ok: boolean;
  checked: number;
  /** The first record that does not match, and why. */
  firstBad?: { seq: number; problem: 'hash-mismatch' | 'broken-link' | 'sequence-gap' };
}

/** Recomputes the chain over records in seq order. */
export function verifyAuditChain(records: Iterable<AuditRecord>): ChainVerification {
  let prevHash = GENESIS_HASH;
  let expectedSeq = 1;
  let checked = 0;
  for (const r of records) {
    if (r.seq !== expectedSeq) return { ok: false, checked, firstBad: { seq: r.seq, problem: 'sequence-gap' } };
    if (r.prevHash !== prevHash) return { ok: false, checked, firstBad: { seq: r.seq, problem: 'broken-link' } };
    const { hash, ...rest } = r;
    if (auditRecordHash(rest) !== hash) return { ok: false, checked, firstBad: { seq: r.seq, problem: 'hash-mismatch' } };
    prevHash = hash;
    expectedSeq++;
    checked++;
  }
  return { ok: true, checked };
}

function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}
