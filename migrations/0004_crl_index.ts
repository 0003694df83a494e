/**
 * The index of full-CRL publication: only the listed rows (revoked or on hold), in (issuer, serial)
 * order and carrying every column a CRL entry needs, so that publication pages through a CA's listed
 * certificates without visiting its good ones (through the primary key, a CA with 10 million
 * certificates of which 1 % revoked walks 10 million rows). Issuance does not pay for it: a good
 * certificate is outside the predicate. Forward-only; the same SQL on SQLite and PostgreSQL.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // The predicate is written with literals, as the query is (certificate.repository.knex.ts,
  // revokedEntryPages): SQLite uses a partial index only when the query's WHERE implies it verbatim.
  await knex.raw(
    `CREATE INDEX certificates_listed ON certificates (issuer_id, serial, status, not_after, revoked_at, revocation_reason, invalidity_date)
     WHERE status IN ('revoked', 'hold')`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX certificates_listed');
}
