/** The `subjects` table (organs, devices and users that hold certificates) over knex. */
import type { SubjectFilter, SubjectKind, SubjectRecord, SubjectRepository } from './storage.ts';
import { fromJson, insertUnique, iso, toDate, toJson, type DbContext, type Row } from './rows.ts';
import { advisoryXactLock } from './advisory-locks.ts';

/** The hot-path statement (rows.ts explains why it is raw SQL). */
const GET_SQL = 'SELECT * FROM "subjects" WHERE "id" = ? LIMIT 1';
const LOCK_SHARE_SQL = 'SELECT * FROM "subjects" WHERE "id" = ? FOR SHARE';
const LOCK_UPDATE_SQL = 'SELECT * FROM "subjects" WHERE "id" = ? FOR UPDATE';
const STATUS_SQL = 'SELECT "status" FROM "subjects" WHERE "id" = ? LIMIT 1';
const LOCK_STATUS_SHARE_SQL = 'SELECT "status" FROM "subjects" WHERE "id" = ? FOR SHARE';
const LOCK_STATUS_UPDATE_SQL = 'SELECT "status" FROM "subjects" WHERE "id" = ? FOR UPDATE';

export class KnexSubjectRepository implements SubjectRepository {
  constructor(private readonly ctx: DbContext) {}

  async insert(subject: SubjectRecord): Promise<void> {
    await insertUnique(this.ctx, 'subjects', subjectToRow(subject), 'id', () => `subject ${subject.id}`);
  }

  async get(id: string): Promise<SubjectRecord | undefined> {
    const row = await this.ctx.sql.first(GET_SQL, [id]);
    return row ? rowToSubject(row) : undefined;
  }

  /** Subjects matching every given filter field, oldest first. */
  async list(filter: SubjectFilter): Promise<SubjectRecord[]> {
    const q = this.ctx.db('subjects').orderBy([{ column: 'created_at' }, { column: 'id' }]);
    if (filter.domain !== undefined) q.where('domain', filter.domain);
    if (filter.tier !== undefined) q.where('tier', filter.tier);
    if (filter.kind !== undefined) q.where('kind', filter.kind);
    if (filter.limit !== undefined) q.limit(filter.limit);
    return (await q).map(rowToSubject);
  }

  async lock(id: string, mode: 'share' | 'update'): Promise<SubjectRecord | undefined> {
    if (this.ctx.engine !== 'postgres') return this.get(id);
    await advisoryXactLock(this.ctx, 'audit');
    const row = await this.ctx.sql.first(mode === 'update' ? LOCK_UPDATE_SQL : LOCK_SHARE_SQL, [id]);
    return row ? rowToSubject(row) : undefined;
  }

  async lockStatus(id: string, mode: 'share' | 'update'): Promise<SubjectRecord['status'] | undefined> {
    if (this.ctx.engine === 'postgres') await advisoryXactLock(this.ctx, 'audit');
    const sql = this.ctx.engine !== 'postgres' ? STATUS_SQL : mode === 'update' ? LOCK_STATUS_UPDATE_SQL : LOCK_STATUS_SHARE_SQL;
    const row = await this.ctx.sql.first(sql, [id]);
    return row ? (row.status as SubjectRecord['status']) : undefined;
  }

  async setStatus(id: string, status: SubjectRecord['status']): Promise<void> {
    await this.ctx.db('subjects').where({ id }).update({ status });
  }
}

function subjectToRow(s: SubjectRecord): Row {
  return {
    id: s.id,
    kind: s.kind,
    domain: s.domain,
    organ: s.organ,
    tier: s.tier,
    name: s.name,
    dns_names: toJson(s.dnsNames),
    ip_addresses: toJson(s.ipAddresses),
    emails: toJson(s.emails),
    status: s.status,
    created_by: s.createdBy,
    created_at: iso(s.createdAt),
  };
}

function rowToSubject(r: Row): SubjectRecord {
  return {
    id: r.id as string,
    kind: r.kind as SubjectKind,
    domain: r.domain as string,
    organ: r.organ as string,
    tier: r.tier as string,
    name: r.name as string,
    dnsNames: fromJson<string[]>(r.dns_names),
    ipAddresses: fromJson<string[]>(r.ip_addresses),
    emails: fromJson<string[]>(r.emails),
    status: r.status as SubjectRecord['status'],
    createdBy: (r.created_by as string | null) ?? null,
    createdAt: toDate(r.created_at),
  };
}
