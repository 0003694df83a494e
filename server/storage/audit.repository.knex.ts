/**
 * The hash-chained `audit_log` over knex. Appends are serialised so that exactly one record follows
 * each record:
 * - PostgreSQL: advisory lock `audit` of the schema (advisory-locks.ts), taken inside the caller's transaction and
 *   held until it commits or rolls back; the last record is read by the NEXT statement, whose
 *   snapshot (READ COMMITTED) therefore includes whatever the previous holder committed.
 * - SQLite: every transaction starts with BEGIN IMMEDIATE (see knex-store.ts), so the write lock of
 *   the database file is held from the first statement: no other connection, in this process or
 *   another, can read the same last record and append after it.
 * Called outside a transaction, appendChained opens one of its own.
 */
import { advisoryXactLock } from './advisory-locks.ts';
import type { AuditRecord, AuditRepository } from './storage.ts';
import { fromJson, inTransaction, iso, toDate, toJson, toNumber, type DbContext, type Row } from './rows.ts';


// The hot-path statements (rows.ts explains why they are raw SQL). INSERT_SQL's columns are those of
// auditParams, in that order.
const LAST_SQL = 'SELECT * FROM "audit_log" ORDER BY "seq" DESC LIMIT 1';
const INSERT_SQL = `INSERT INTO "audit_log" ("seq", "at", "principal_id", "role", "source", "action", "target", "outcome", "request_id",
  "detail", "prev_hash", "hash")
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

export interface AuditFilter {
  fromSeq?: number;
  since?: Date;
  until?: Date;
  actor?: string;
  action?: string;
  limit?: number;
}

export class KnexAuditRepository implements AuditRepository {
  constructor(private readonly ctx: DbContext) {}

  /**
   * Appends the record `build` makes from the last one. `build` must return seq = last.seq + 1
   * (1 for the first record); anything else is a programming error and throws before writing.
   */
  appendChained(build: (last: AuditRecord | undefined) => AuditRecord): Promise<AuditRecord> {
    return inTransaction(this.ctx, async (tx) => {
      if (tx.engine === 'postgres') await advisoryXactLock(tx, 'audit');
      const lastRow = await tx.sql.first(LAST_SQL);
      const last = lastRow ? rowToAudit(lastRow) : undefined;
      const record = build(last);
      const expected = (last?.seq ?? 0) + 1;
      if (record.seq !== expected) throw new Error(`audit record seq ${record.seq} does not follow ${expected - 1}`);
      await tx.sql.run(INSERT_SQL, auditParams(record));
      return record;
    });
  }

  /**
   * Records in seq order: seq ≥ fromSeq, since ≤ at < until, principal id = actor, action = action.
   */
  async list(filter: AuditFilter): Promise<AuditRecord[]> {
    const q = this.ctx.db('audit_log').orderBy('seq');
    if (filter.fromSeq !== undefined) q.where('seq', '>=', filter.fromSeq);
    if (filter.since !== undefined) q.where('at', '>=', iso(filter.since));
    if (filter.until !== undefined) q.where('at', '<', iso(filter.until));
    if (filter.actor !== undefined) q.where('principal_id', filter.actor);
    if (filter.action !== undefined) q.where('action', filter.action);
    if (filter.limit !== undefined) q.limit(filter.limit);
    return (await q).map(rowToAudit);
  }

  async last(): Promise<AuditRecord | undefined> {
    const row = await this.ctx.sql.first(LAST_SQL);
    return row ? rowToAudit(row) : undefined;
  }
}

/** The values of INSERT_SQL, column by column (an absent optional field is NULL, as the builder wrote it). */
function auditParams(a: AuditRecord): unknown[] {
  return [
    a.seq,
    iso(a.at),
    a.principalId ?? null,
    a.role ?? null,
    a.source ?? null,
    a.action,
    a.target ?? null,
    a.outcome,
    a.requestId ?? null,
    toJson(a.detail),
    a.prevHash,
    a.hash,
  ];
}

function rowToAudit(r: Row): AuditRecord {
  return {
    seq: toNumber(r.seq),
    at: toDate(r.at),
    principalId: (r.principal_id as string | null) ?? null,
    role: (r.role as string | null) ?? null,
    source: (r.source as string | null) ?? null,
    action: r.action as string,
    target: (r.target as string | null) ?? null,
    outcome: r.outcome as AuditRecord['outcome'],
    requestId: (r.request_id as string | null) ?? null,
    detail: fromJson<Record<string, unknown>>(r.detail),
    prevHash: r.prev_hash as string,
    hash: r.hash as string,
  };
}
