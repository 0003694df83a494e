/**
 * The hash-chained audit log. Each record's hash covers its fields and the previous record's hash,
 * so editing, deleting or reordering a record breaks the chain at that record. Records are written in
 * the same transaction as the change they describe (STYLE.md practice 9).
 */
import { createHash } from 'node:crypto';
import type { AuditRecord, AuditRepository } from '../storage/storage.ts';

export const GENESIS_HASH = '0'.repeat(64);

const recorded = new WeakSet<object>();

/**
 * Marks an error as already recorded in the audit log (a denial, or a failure `audited()` wrote), so
 * that the HTTP layer, which records every other failed write, does not record it twice.
 */
export function markAudited<T>(err: T): T {
  if (typeof err === 'object' && err !== null) recorded.add(err);
  return err;
}

/** Whether {@link markAudited} marked `err`. */
export const isAudited = (err: unknown): boolean => typeof err === 'object' && err !== null && recorded.has(err);

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

export type ChainProblem = 'hash-mismatch' | 'broken-link' | 'sequence-gap';

export interface ChainVerification {
  ok: boolean;
  checked: number;
  /**
   * The first record that does not match, and why: `hash-mismatch` (its fields were changed),
   * `broken-link` (its prevHash is not the previous record's hash: a record before it was removed,
   * replaced or moved), `sequence-gap` (record `seq` is missing: deleted, or renumbered).
   */
  firstBad?: { seq: number; problem: ChainProblem };
}

/**
 * Recomputes the chain one record at a time, so a log of any length is checked in pages. Feed
 * records in seq order; after the first problem it stops accepting records.
 */
export class ChainVerifier {
  private prevHash = GENESIS_HASH;
  private expectedSeq = 1;
  private checkedCount = 0;
  private bad: ChainVerification['firstBad'];

  /** Checks the next record; false (and {@link result} names it) when it does not match. */
  push(r: AuditRecord): boolean {
    if (this.bad) return false;
    // A missing record is named by the seq that should have come next.
    if (r.seq !== this.expectedSeq) this.bad = { seq: Math.min(r.seq, this.expectedSeq), problem: 'sequence-gap' };
    else if (r.prevHash !== this.prevHash) this.bad = { seq: r.seq, problem: 'broken-link' };
    else {
      const { hash, ...rest } = r;
      if (auditRecordHash(rest) !== hash) this.bad = { seq: r.seq, problem: 'hash-mismatch' };
    }
    if (this.bad) return false;
    this.prevHash = r.hash;
    this.expectedSeq++;
    this.checkedCount++;
    return true;
  }

  /** The hash of the last record that matched (GENESIS_HASH before any). */
  get lastHash(): string {
    return this.prevHash;
  }

  result(): ChainVerification {
    return this.bad ? { ok: false, checked: this.checkedCount, firstBad: this.bad } : { ok: true, checked: this.checkedCount };
  }
}

/** Recomputes the chain over records in seq order. */
export function verifyAuditChain(records: Iterable<AuditRecord>): ChainVerification {
  const verifier = new ChainVerifier();
  for (const r of records) if (!verifier.push(r)) break;
  return verifier.result();
}

function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}
