/** The `audit_checkpoints` table (signed audit checkpoints) over knex. */
import type { AuditCheckpointRecord, AuditCheckpointRepository } from './storage.ts';
import { insertUnique, iso, toBuffer, toDate, toNumber, type DbContext, type Row } from './rows.ts';

export class KnexAuditCheckpointRepository implements AuditCheckpointRepository {
  constructor(private readonly ctx: DbContext) {}

  /** Inserts; a checkpoint already at this seq throws UniqueViolationError (another instance made it). */
  async insert(checkpoint: AuditCheckpointRecord): Promise<void> {
    await insertUnique(this.ctx, 'audit_checkpoints', checkpointToRow(checkpoint), 'seq', () => `audit checkpoint at ${checkpoint.seq}`);
  }

  async list(filter: { fromSeq?: number; kind?: AuditCheckpointRecord['kind']; limit?: number }): Promise<AuditCheckpointRecord[]> {
    const q = this.ctx.db('audit_checkpoints').orderBy('seq');
    if (filter.fromSeq !== undefined) q.where('seq', '>=', filter.fromSeq);
    if (filter.kind !== undefined) q.where('kind', filter.kind);
    if (filter.limit !== undefined) q.limit(filter.limit);
    return (await q).map(rowToCheckpoint);
  }

  async last(kind?: AuditCheckpointRecord['kind']): Promise<AuditCheckpointRecord | undefined> {
    const q = this.ctx.db('audit_checkpoints').orderBy('seq', 'desc');
    if (kind !== undefined) q.where('kind', kind);
    const row = await q.first();
    return row ? rowToCheckpoint(row) : undefined;
  }
}

function checkpointToRow(c: AuditCheckpointRecord): Row {
  return { seq: c.seq, hash: c.hash, at: iso(c.at), kind: c.kind, key_id: c.keyId, signature: c.signature };
}

function rowToCheckpoint(r: Row): AuditCheckpointRecord {
  return {
    seq: toNumber(r.seq),
    hash: r.hash as string,
    at: toDate(r.at),
    kind: r.kind as AuditCheckpointRecord['kind'],
    keyId: r.key_id as string,
    signature: toBuffer(r.signature),
  };
}
