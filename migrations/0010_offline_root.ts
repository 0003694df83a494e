/**
 * The offline root (issue 20; docs/decisions/0026-offline-root.md). Forward-only; the same SQL on
 * SQLite and PostgreSQL.
 * - `offline_bundles`: every bundle that crossed the air gap, by direction (`request` written here,
 *   `response` imported here) and sequence number, with its SHA-256 — the record that refuses a
 *   replayed or out-of-order bundle. A request keeps its bytes so a response can be matched to it.
 * - `offline_pending_cas`: CAs made at `init --offline-root` that wait for the root's signature: a
 *   domain CA (no certificate yet) and the tier CAs under it (their certificates signed by the domain
 *   CA key already), as JSON CA records; `root import` moves them into `cas`.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('offline_bundles', (t) => {
    t.string('direction', 16).notNullable();
    t.integer('sequence').notNullable();
    t.string('digest', 64).notNullable();
    t.binary('bytes');
    t.string('created_at', 32).notNullable();
    t.integer('answered_by');
    t.primary(['direction', 'sequence']);
  });
  await knex.schema.createTable('offline_pending_cas', (t) => {
    t.string('id', 64).primary();
    t.string('certified_by', 64).notNullable();
    t.integer('request_sequence').notNullable();
    t.text('record').notNullable();
  });
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
