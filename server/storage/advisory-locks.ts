/**
 * The one table of PostgreSQL advisory locks tierca takes (SQLite needs none: every transaction
 * starts with BEGIN IMMEDIATE and holds the database's write lock). All are transaction-scoped
 * (`pg_advisory_xact_lock`, released at commit or rollback).
 *
 * Two-key locks `(hashtext(schema), id)`: each schema (an installation, or one test file) has its own
 * set. A new lock takes the next free id here, never a number written at its call site.
 */
import type { DbContext } from './rows.ts';

export const ADVISORY_LOCK_IDS = {
  /** Appends to the hash-chained audit log: one record follows each record (audit.repository.knex.ts). */
  audit: 1,
  /** Appends to revocation_events: seqs become visible in order (revocation-event.repository.knex.ts). */
  revocationEvents: 2,
  /** Migration runs and backup restores take turns (migrate.ts, backup.ts). */
  migrations: 3,
} as const;

export type AdvisoryLock = keyof typeof ADVISORY_LOCK_IDS;

/**
 * One-key locks are a separate key space in PostgreSQL and never meet the two-key ones above:
 * `hashtextextended(schema || prefix || name, 0)`. One per CA for CRL numbering (crl.repository.knex.ts).
 */
export const ADVISORY_LOCK_PREFIXES = {
  crl: '/crl/',
} as const;

const XACT_LOCK_SQL = 'select pg_advisory_xact_lock(hashtext(current_schema()), ?)';

/** Takes advisory lock `lock` of the current schema until the transaction of `tx` ends (PostgreSQL only). */
export function advisoryXactLock(tx: DbContext, lock: AdvisoryLock): Promise<unknown> {
  return tx.sql.run(XACT_LOCK_SQL, [ADVISORY_LOCK_IDS[lock]]);
}
