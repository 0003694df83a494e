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
  "request_id", "created_at", "pop_identity")
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING RETURNING "serial"`;
const LOCK_SHARED_SQL = 'SELECT * FROM "certificates" WHERE "issuer_id" = ? AND "serial" = ? FOR SHARE';
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

  async lockShared(issuerId: string, serial: string): Promise<CertificateRecord | undefined> {
    if (this.ctx.engine !== 'postgres') return this.get(issuerId, serial);
    const row = await this.ctx.sql.first(LOCK_SHARED_SQL, [issuerId, serial]);
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

  /**
   * Keyset pagination: each page is one statement, `serial > <last serial of the previous page>
   * ORDER BY serial LIMIT n`, so a page costs the same at the end of a million rows as at the start
   * (OFFSET would rescan everything before it) and no more than two pages are held at once.
   *
   * Index: `certificates_listed` (migrations/0004_crl_index.ts), partial on the listed statuses and
   * covering every selected column: equality on issuer_id, a range on serial, rows already in ORDER BY
   * order, so each page is an index-only walk over listed rows that stops after `pageSize` matches.
   * Checked with EXPLAIN on both engines, with and without statistics (SQLite: "COVERING INDEX
   * certificates_listed"; PostgreSQL: "Index Only Scan using certificates_listed"). The statuses are
   * written as literals: SQLite uses a partial index only when the query's WHERE names its constants,
   * not bound parameters. (Before the index, the primary key served it and walked every certificate
   * of the issuer, good ones included; PostgreSQL without statistics sorted every remaining revoked
   * row for each page: 85 s for a million.)
   *
   * The next page is asked for before this one is handed over: on PostgreSQL the server reads it
   * while the caller encodes this one.
   */
  async *revokedEntryPages(issuerId: string, notAfterAfter: Date, pageSize: number): AsyncGenerator<RevokedEntryRecord[]> {
    if (!Number.isInteger(pageSize) || pageSize < 1) throw new RangeError(`pageSize must be a positive integer, not ${pageSize}`);
    const after = iso(notAfterAfter);
    const page = (last: string): Promise<Row[]> => {
      const rows: Promise<Row[]> = Promise.resolve(
        this.ctx
          .db('certificates')
          .select(REVOKED_ENTRY_COLUMNS)
          .where('issuer_id', issuerId)
          .where('serial', '>', last)
          .whereRaw(LISTED_STATUSES_SQL)
          .where('not_after', '>', after)
          .orderBy('serial')
          .limit(pageSize),
      );
      rows.catch(() => undefined); // awaited below; a page the caller no longer wants must not fail unhandled
      return rows;
    };
    let next: Promise<Row[]> | undefined = page('');
    try {
      while (next) {
        const rows: Row[] = await next;
        next = rows.length === pageSize ? page(rows[rows.length - 1].serial as string) : undefined;
        if (rows.length > 0) yield rows.map(rowToRevokedEntry);
      }
    } finally {
      // A caller that stops early must not leave a statement running into the rest of its transaction.
      await next?.catch(() => undefined);
    }
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

/** `status IN ('revoked', 'hold')` as literals (see revokedEntryPages). */
const LISTED_STATUSES_SQL = `"status" in (${LISTED_STATUSES.map((s) => `'${s}'`).join(', ')})`;
/** What a CRL entry needs (RevokedEntryRecord): not the DER, which is most of a row. */
const REVOKED_ENTRY_COLUMNS = ['serial', 'status', 'revoked_at', 'revocation_reason', 'invalidity_date'];

function rowToRevokedEntry(r: Row): RevokedEntryRecord {
  return {
    serial: r.serial as string,
    status: r.status as CertificateStatus,
    revokedAt: toDateOrNull(r.revoked_at),
    revocationReason: toNumberOrNull(r.revocation_reason),
    invalidityDate: toDateOrNull(r.invalidity_date),
  };
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
    c.popIdentity ?? null,
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
    // Only when recorded (SM2 CSRs), so that a record reads back as it was written.
    ...(r.pop_identity ? { popIdentity: r.pop_identity as 'default' | 'empty' } : {}),
  };
}
