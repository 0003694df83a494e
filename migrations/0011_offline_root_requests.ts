/**
 * Online requests to the offline root after the first ceremony (docs/decisions/0032-offline-root-online-requests.md).
 * Forward-only; the same SQL on SQLite and PostgreSQL.
 * - `offline_root_requests`: what the online side has decided and the root must sign — a domain CA
 *   certificate (`certify`: a new domain, or a domain CA's next generation; the body is the signed
 *   DomainCaRequest) or a domain CA's revocation (`revoke`: serial and reason) — until
 *   `tierca root request` writes it into request bundle `request_sequence` (null: not written yet).
 *   One row per kind and CA (`id` = `<kind>:<ca>`), so a CA is asked for once.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('offline_root_requests', (t) => {
    t.string('id', 96).primary();
    t.string('kind', 16).notNullable();
    t.string('ca', 64).notNullable();
    t.text('body').notNullable();
    t.string('created_at', 32).notNullable();
    t.integer('request_sequence');
  });
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
