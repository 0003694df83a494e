/** The `requests` table (requests awaiting approval; idempotency by request id) over knex. */
import type { RequestRecord, RequestRepository } from './storage.ts';
import { fromJson, fromJsonOrNull, insertUnique, iso, toDate, toJson, toNumber, type DbContext, type Row } from './rows.ts';

export class KnexRequestRepository implements RequestRepository {
  constructor(private readonly ctx: DbContext) {}

  async insert(request: RequestRecord): Promise<void> {
    await insertUnique(this.ctx, 'requests', requestToRow(request), 'id', () => `request ${request.id}`);
  }

  async get(id: string): Promise<RequestRecord | undefined> {
    const row = await this.ctx.db('requests').where({ id }).first();
    return row ? rowToRequest(row) : undefined;
  }

  /** Requests matching every given filter field, oldest first. */
  async list(filter: { status?: RequestRecord['status']; domain?: string; limit?: number }): Promise<RequestRecord[]> {
    const q = this.ctx.db('requests').orderBy([{ column: 'created_at' }, { column: 'id' }]);
    if (filter.status !== undefined) q.where('status', filter.status);
    if (filter.domain !== undefined) q.where('domain', filter.domain);
    if (filter.limit !== undefined) q.limit(filter.limit);
    return (await q).map(rowToRequest);
  }

  /** Changes the given fields only; an empty change writes nothing. */
  async update(id: string, change: Partial<Pick<RequestRecord, 'approvals' | 'status' | 'result'>>): Promise<void> {
    const row: Row = {};
    if (change.approvals !== undefined) row.approvals = toJson(change.approvals);
    if (change.status !== undefined) row.status = change.status;
    if (change.result !== undefined) row.result = change.result === null ? null : toJson(change.result);
    if (Object.keys(row).length === 0) return;
    await this.ctx.db('requests').where({ id }).update(row);
  }

  async lockPending(id: string): Promise<boolean> {
    const updated = await this.ctx.db('requests').where({ id, status: 'pending' }).update({ status: 'pending' });
    return Number(updated) === 1;
  }
}

function requestToRow(r: RequestRecord): Row {
  return {
    id: r.id,
    action: r.action,
    subject_id: r.subjectId,
    domain: r.domain,
    tier: r.tier,
    payload: toJson(r.payload),
    requested_by: r.requestedBy,
    approvals: toJson(r.approvals),
    approvals_required: r.approvalsRequired,
    status: r.status,
    result: r.result === null ? null : toJson(r.result),
    created_at: iso(r.createdAt),
    expires_at: iso(r.expiresAt),
  };
}

function rowToRequest(r: Row): RequestRecord {
  return {
    id: r.id as string,
    action: r.action as string,
    subjectId: (r.subject_id as string | null) ?? null,
    domain: (r.domain as string | null) ?? null,
    tier: (r.tier as string | null) ?? null,
    payload: fromJson<Record<string, unknown>>(r.payload),
    requestedBy: r.requested_by as string,
    approvals: fromJson<string[]>(r.approvals),
    approvalsRequired: toNumber(r.approvals_required),
    status: r.status as RequestRecord['status'],
    result: fromJsonOrNull<Record<string, unknown>>(r.result),
    createdAt: toDate(r.created_at),
    expiresAt: toDate(r.expires_at),
  };
}
