/** The offline-root tables (migrations/0010_offline_root.ts) over knex: bundles that crossed, CAs awaiting the root. */
import type { CaRecord, OfflineBundleRecord, OfflineRootRepository, PendingCaRecord } from './storage.ts';
import { insertUnique, iso, toBufferOrNull, toDate, toNumber, toNumberOrNull, type DbContext, type Row } from './rows.ts';

export class KnexOfflineRootRepository implements OfflineRootRepository {
  constructor(private readonly ctx: DbContext) {}

  /** Records a bundle; a second one of the same direction and sequence is a UniqueViolationError. */
  async insertBundle(b: OfflineBundleRecord): Promise<void> {
    await insertUnique(this.ctx, 'offline_bundles', {
      direction: b.direction, sequence: b.sequence, digest: b.digest, bytes: b.bytes, created_at: iso(b.createdAt), answered_by: b.answeredBy,
    }, 'direction', () => `${b.direction} bundle ${b.sequence}`);
  }

  async getBundle(direction: OfflineBundleRecord['direction'], sequence: number): Promise<OfflineBundleRecord | undefined> {
    const row = await this.ctx.db('offline_bundles').where({ direction, sequence }).first();
    return row ? rowToBundle(row) : undefined;
  }

  async lastSequence(direction: OfflineBundleRecord['direction']): Promise<number> {
    const row = await this.ctx.db('offline_bundles').where({ direction }).max({ m: 'sequence' }).first();
    return row?.m === null || row?.m === undefined ? 0 : toNumber(row.m);
  }

  async markAnswered(sequence: number, response: number): Promise<boolean> {
    const n = await this.ctx.db('offline_bundles').where({ direction: 'request', sequence }).whereNull('answered_by').update({ answered_by: response });
    return Number(n) === 1;
  }

  async insertPending(p: PendingCaRecord): Promise<void> {
    await this.ctx.db('offline_pending_cas').insert({ id: p.record.id, certified_by: p.certifiedBy, request_sequence: p.requestSequence, record: JSON.stringify(caToJson(p.record)) });
  }

  async listPending(): Promise<PendingCaRecord[]> {
    const rows = await this.ctx.db('offline_pending_cas').orderBy('id');
    return rows.map((r: Row) => ({ certifiedBy: r.certified_by as string, requestSequence: toNumber(r.request_sequence), record: caFromJson(JSON.parse(r.record as string)) }));
  }

  async deletePending(certifiedBy: string): Promise<number> {
    return Number(await this.ctx.db('offline_pending_cas').where({ certified_by: certifiedBy }).delete());
  }
}

function rowToBundle(r: Row): OfflineBundleRecord {
  return {
    direction: r.direction as OfflineBundleRecord['direction'],
    sequence: toNumber(r.sequence),
    digest: r.digest as string,
    bytes: toBufferOrNull(r.bytes),
    createdAt: toDate(r.created_at),
    answeredBy: toNumberOrNull(r.answered_by),
  };
}

type Json = Record<string, unknown>;

function caToJson(r: CaRecord): Json {
  return {
    ...r, certificate: r.certificate.toString('base64'), notBefore: iso(r.notBefore), notAfter: iso(r.notAfter), createdAt: iso(r.createdAt),
    revokedAt: r.revokedAt ? iso(r.revokedAt) : null, retiredAt: r.retiredAt ? iso(r.retiredAt) : null,
  };
}

function caFromJson(j: Json): CaRecord {
  return {
    ...(j as unknown as CaRecord),
    certificate: Buffer.from(j.certificate as string, 'base64'),
    notBefore: new Date(j.notBefore as string), notAfter: new Date(j.notAfter as string), createdAt: new Date(j.createdAt as string),
    revokedAt: j.revokedAt ? new Date(j.revokedAt as string) : null, retiredAt: j.retiredAt ? new Date(j.retiredAt as string) : null,
  };
}
