/**
 * The `certificates` table over knex: every issued certificate keyed by (issuer, serial), its status
 * beside the DER (STYLE.md practice 8). Every method is one statement; `insert` is a single INSERT.
 */
import type { Knex } from 'knex';
import type {
  RevokedEntryRecord,
  CertificateFilter,
  CertificateProfile,
  CertificateRecord,
  CertificateRepository,
  CertificateStatus,
  StatusChange,
} from './storage.ts';
import { insertUniqueSql, iso, isoOrNull, toBuffer, toDate, toDateOrNull, toNumber, toNumberOrNull, type DbContext, type Row } from './rows.ts';

/** Status values that still make a certificate usable or pending release (RFC 5280 §5.3.1 certificateHold). */
const LIVE_STATUSES: CertificateStatus[] = ['good', 'hold'];
/** Status values that a CRL lists. */
const LISTED_STATUSES: CertificateStatus[] = ['revoked', 'hold'];

// The hot-path statements (rows.ts explains why they are raw SQL). INSERT_SQL's columns are those of
// certificateParams, in that order.
const INSERT_SQL = `INSERT INTO "certificates" ("issuer_id", "serial", "subject_id", "profile", "tier", "domain", "subject_dn",
  "not_before", "not_after", "status", "revoked_at", "revocation_reason", "invalidity_date", "fingerprint", "der", "key_algorithm",
  "request_id", "created_at")
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING RETURNING "serial"`;
const FIND_BY_SUBJECT_PROFILE_SQL = 'SELECT * FROM "certificates" WHERE "subject_id" = ? AND "profile" = ? ORDER BY "created_at" ASC, "serial" ASC';

export class KnexCertificateRepository implements CertificateRepository {
  constructor(private readonly ctx: DbContext) {}

  /** Inserts; a duplicate (issuer, serial) throws UniqueViolationError and leaves the row count unchanged. */
  async insert(cert: CertificateRecord): Promise<void> {
    await insertUniqueSql(this.ctx, INSERT_SQL, certificateParams(cert), () => `certificate ${cert.issuerId}/${cert.serial}`);
  }

  async get(issuerId: string, serial: string): Promise<CertificateRecord | undefined> {
    const row = await this.ctx.db('certificates').where({ issuer_id: issuerId, serial }).first();
    return row ? rowToCertificate(row) : undefined;
  }

  /** Every certificate with this serial, by issuer id. */
  async findBySerial(serial: string): Promise<CertificateRecord[]> {
    const rows = await this.ctx.db('certificates').where({ serial }).orderBy('issuer_id');
    return rows.map(rowToCertificate);
  }

  /** Certificates matching every given filter field, ordered by creation time then serial. */
  async list(filter: CertificateFilter): Promise<CertificateRecord[]> {
    const q = applyFilter(this.ctx.db('certificates'), filter).orderBy([{ column: 'created_at' }, { column: 'serial' }]);
    if (filter.limit !== undefined) q.limit(filter.limit);
    if (filter.offset !== undefined) q.offset(filter.offset);
    return (await q).map(rowToCertificate);
  }

  /** How many certificates match the filter (limit and offset ignored). */
  async count(filter: CertificateFilter): Promise<number> {
    const row = await applyFilter(this.ctx.db('certificates'), filter).count({ n: '*' }).first();
    return toNumber(row?.n ?? 0);
  }

  async findLive(subjectId: string, profile: CertificateProfile, now: Date): Promise<CertificateRecord[]> {
    // Only the subject's own rows, filtered here: with status and not_after in the WHERE clause,
    // SQLite's planner (without statistics) picked the (status, not_after) index and scanned every
    // live certificate — 117 ms per issuance at 100,000 certificates (docs/benchmarks.md).
    const rows = await this.ctx.sql.all(FIND_BY_SUBJECT_PROFILE_SQL, [subjectId, profile]);
    const after = iso(now);
    return rows
      .filter((r) => (LIVE_STATUSES as readonly string[]).includes(r.status as string) && (r.not_after as string) > after)
      .map(rowToCertificate);
  }

  async listRevoked(issuerId: string, notAfterAfter: Date): Promise<CertificateRecord[]> {
    const rows = await this.ctx
      .db('certificates')
      .where({ issuer_id: issuerId })
      .whereIn('status', LISTED_STATUSES)
      .where('not_after', '>', iso(notAfterAfter))
      .orderBy('serial');
    return rows.map(rowToCertificate);
  }

  async listRevokedEntries(issuerId: string, notAfterAfter: Date): Promise<RevokedEntryRecord[]> {
    const rows = await this.ctx
      .db('certificates')
      .select('serial', 'status', 'revoked_at', 'revocation_reason', 'invalidity_date')
      .where({ issuer_id: issuerId })
      .whereIn('status', LISTED_STATUSES)
      .where('not_after', '>', iso(notAfterAfter))
      .orderBy('serial');
    return rows.map((r: Row) => ({
      serial: r.serial as string,
      status: r.status as CertificateStatus,
      revokedAt: toDateOrNull(r.revoked_at),
      revocationReason: toNumberOrNull(r.revocation_reason),
      invalidityDate: toDateOrNull(r.invalidity_date),
    }));
  }

  async updateStatus(issuerId: string, serial: string, change: StatusChange): Promise<void> {
    await this.ctx
      .db('certificates')
      .where({ issuer_id: issuerId, serial })
      .update({
        status: change.status,
        revoked_at: isoOrNull(change.revokedAt),
        revocation_reason: change.revocationReason,
        invalidity_date: isoOrNull(change.invalidityDate),
      });
  }
}

function applyFilter(q: Knex.QueryBuilder, f: CertificateFilter): Knex.QueryBuilder {
  if (f.issuerId !== undefined) q.where('issuer_id', f.issuerId);
  if (f.subjectId !== undefined) q.where('subject_id', f.subjectId);
  if (f.domain !== undefined) q.where('domain', f.domain);
  if (f.tier !== undefined) q.where('tier', f.tier);
  if (f.profile !== undefined) q.where('profile', f.profile);
  if (f.status !== undefined) q.where('status', f.status);
  if (f.notAfterBefore !== undefined) q.where('not_after', '<=', iso(f.notAfterBefore));
  if (f.notAfterAfter !== undefined) q.where('not_after', '>', iso(f.notAfterAfter));
  return q;
}

/** The values of INSERT_SQL, column by column (an absent optional field is NULL, as the builder wrote it). */
function certificateParams(c: CertificateRecord): unknown[] {
  return [
    c.issuerId,
    c.serial,
    c.subjectId ?? null,
    c.profile,
    c.tier ?? null,
    c.domain ?? null,
    c.subjectDn,
    iso(c.notBefore),
    iso(c.notAfter),
    c.status,
    isoOrNull(c.revokedAt),
    c.revocationReason ?? null,
    isoOrNull(c.invalidityDate),
    c.fingerprint,
    c.der,
    c.keyAlgorithm,
    c.requestId ?? null,
    iso(c.createdAt),
  ];
}

/** A `certificates` row as a record (also used by the rotation repository's joins). */
export function rowToCertificate(r: Row): CertificateRecord {
  return {
    issuerId: r.issuer_id as string,
    serial: r.serial as string,
    subjectId: (r.subject_id as string | null) ?? null,
    profile: r.profile as CertificateProfile,
    tier: (r.tier as string | null) ?? null,
    domain: (r.domain as string | null) ?? null,
    subjectDn: r.subject_dn as string,
    notBefore: toDate(r.not_before),
    notAfter: toDate(r.not_after),
    status: r.status as CertificateStatus,
    revokedAt: toDateOrNull(r.revoked_at),
    revocationReason: toNumberOrNull(r.revocation_reason),
    invalidityDate: toDateOrNull(r.invalidity_date),
    fingerprint: r.fingerprint as string,
    der: toBuffer(r.der),
    keyAlgorithm: r.key_algorithm as string,
    requestId: (r.request_id as string | null) ?? null,
    createdAt: toDate(r.created_at),
  };
}
