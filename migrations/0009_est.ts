/**
 * EST enrolment codes (issue 18; docs/decisions/0024-est.md). Forward-only; the same SQL on SQLite
 * and PostgreSQL.
 * - `est_codes`: a one-time enrolment code an officer made for one subject; only its SHA-256 is
 *   kept. `state` moves unused → claimed (an enrolment is under way) → used (certificate issued) or
 *   pending (a second officer must approve the issuance: `request_id`) and back to unused if the
 *   enrolment failed, each move a compare-and-set, so a code issues at most once.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('est_codes', (t) => {
    t.string('id', 64).primary();
    t.string('code_hash', 64).notNullable().unique();
    t.string('subject_id', 64).notNullable();
    t.string('domain', 64).notNullable();
    t.string('tier', 16).notNullable();
    t.string('state', 16).notNullable();
    t.string('expires_at', 32).notNullable();
    t.string('created_by', 64).notNullable();
    t.string('created_at', 32).notNullable();
    t.string('used_at', 32);
    t.string('request_id', 64);
    t.string('issuer_id', 64);
    t.string('serial', 64);
    t.index(['subject_id'], 'est_codes_subject');
  });
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
