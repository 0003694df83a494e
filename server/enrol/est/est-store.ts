/**
 * EST's storage (migration 0009), over knex: one-time enrolment codes, kept only as SHA-256. Every
 * change of a code's state is a compare-and-set update whose row count says who won, so a code
 * issues at most once even when two enrolments race, on one instance or several.
 */
import type { Knex } from 'knex';

export type EstCodeState = 'unused' | 'claimed' | 'pending' | 'used';

export interface EstCodeRecord {
  id: string;
  codeHash: string;
  subjectId: string;
  domain: string;
  tier: string;
  state: EstCodeState;
  expiresAt: Date;
  createdBy: string;
  createdAt: Date;
  usedAt: Date | null;
  /** The dual-control request the enrolment waits for (state `pending`). */
  requestId: string | null;
  issuerId: string | null;
  serial: string | null;
}

const iso = (d: Date) => d.toISOString();
const dateOrNull = (v: unknown) => (v ? new Date(String(v)) : null);

function codeOf(r: Record<string, unknown>): EstCodeRecord {
  return {
    id: r.id as string, codeHash: r.code_hash as string, subjectId: r.subject_id as string, domain: r.domain as string, tier: r.tier as string,
    state: r.state as EstCodeState, expiresAt: new Date(String(r.expires_at)), createdBy: r.created_by as string, createdAt: new Date(String(r.created_at)),
    usedAt: dateOrNull(r.used_at), requestId: (r.request_id as string | null) ?? null, issuerId: (r.issuer_id as string | null) ?? null,
    serial: (r.serial as string | null) ?? null,
  };
}

export class EstStore {
  constructor(private readonly db: Knex) {}

  async insert(c: EstCodeRecord): Promise<void> {
    await this.db('est_codes').insert({
      id: c.id, code_hash: c.codeHash, subject_id: c.subjectId, domain: c.domain, tier: c.tier, state: c.state, expires_at: iso(c.expiresAt),
      created_by: c.createdBy, created_at: iso(c.createdAt), used_at: null, request_id: null, issuer_id: null, serial: null,
    });
  }

  async byHash(codeHash: string): Promise<EstCodeRecord | undefined> {
    const r = await this.db('est_codes').where({ code_hash: codeHash }).first();
    return r ? codeOf(r) : undefined;
  }

  /** Moves a code from `from` to `to` with `change`; false when another enrolment moved it first. */
  async move(id: string, from: EstCodeState, to: EstCodeState, change: { usedAt?: Date; requestId?: string | null; issuerId?: string; serial?: string } = {}): Promise<boolean> {
    const update: Record<string, unknown> = { state: to };
    if (change.usedAt) update.used_at = iso(change.usedAt);
    if (change.requestId !== undefined) update.request_id = change.requestId;
    if (change.issuerId) update.issuer_id = change.issuerId;
    if (change.serial) update.serial = change.serial;
    return (await this.db('est_codes').where({ id, state: from }).update(update)) === 1;
  }

  /** Codes of some domains (all when `domains` is absent), newest first. */
  async list(filter: { domains?: readonly string[]; subjectId?: string; limit?: number } = {}): Promise<EstCodeRecord[]> {
    let q = this.db('est_codes').orderBy('created_at', 'desc').orderBy('id').limit(filter.limit ?? 200);
    if (filter.domains) q = q.whereIn('domain', [...filter.domains]);
    if (filter.subjectId) q = q.where({ subject_id: filter.subjectId });
    return (await q).map(codeOf);
  }
}
