/** The offline-root tables (migrations/0010_offline_root.ts) over knex: bundles that crossed, CAs awaiting the root. */
import type { CaRecord, OfflineBundleRecord, OfflineRootRepository, PendingCaRecord, RootRequestRecord } from './storage.ts';
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

  async insertRootRequest(r: RootRequestRecord): Promise<void> {
    await insertUnique(this.ctx, 'offline_root_requests', {
      id: r.id, kind: r.kind, ca: r.ca, body: JSON.stringify(r.body), created_at: iso(r.createdAt), request_sequence: r.requestSequence,
    }, 'id', () => `a ${r.kind} request of ${r.ca} to the offline root`);
  }

  async listRootRequests(q: { unsent?: boolean } = {}): Promise<RootRequestRecord[]> {
    let query = this.ctx.db('offline_root_requests').orderBy([{ column: 'created_at' }, { column: 'id' }]);
    if (q.unsent) query = query.whereNull('request_sequence');
    return (await query).map((r: Row) => ({
      id: r.id as string, kind: r.kind, ca: r.ca as string, body: JSON.parse(r.body as string), createdAt: toDate(r.created_at), requestSequence: toNumberOrNull(r.request_sequence),
    }) as RootRequestRecord);
  }

  async markRootRequestsSent(ids: readonly string[], sequence: number): Promise<void> {
    if (!ids.length) return;
    await this.ctx.db('offline_root_requests').whereIn('id', [...ids]).update({ request_sequence: sequence });
    const certified = ids.filter((id) => id.startsWith('certify:')).map((id) => id.slice('certify:'.length));
    if (certified.length) await this.ctx.db('offline_pending_cas').whereIn('certified_by', certified).update({ request_sequence: sequence });
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
