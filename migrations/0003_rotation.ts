/**
 * Rotation: renewal chains, CA key generations and link certificates, idempotent rotation requests.
 * Forward-only; runs unchanged on SQLite and PostgreSQL (see docs/decisions/0006-ca-rollover.md).
 *
 * - `cas` gains generations. A CA keeps its stable name (`lineage`, the first generation's id, e.g.
 *   `yuhu-t2`) across key rollovers; each generation is its own row (`yuhu-t2`, `yuhu-t2-g2`, …), so the
 *   (issuer_id, serial) keys of certificates, CRLs, OCSP answers and responders stay valid, and the
 *   newest generation points to nothing (`successor_id` null). Existing rows become generation 1.
 * - `ca_links`: the RFC 4210 §4.4 link certificates made at each rollover (old-with-new, new-with-old).
 * - `renewals`: which certificate replaced which, and when the old one is (or was) revoked as superseded.
 *   Its primary key is the OLD certificate, so two renewals of one certificate cannot both commit.
 * - `rotation_requests`: one row per completed renewal or rollover, keyed by the caller's request id,
 *   written in the same transaction as the change: a retry with the same id finds it and does nothing.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('cas', (t) => {
    t.string('lineage', 64);
    t.integer('generation');
    t.string('successor_id', 64);
    t.string('retired_at', 32);
  });
  await knex('cas').update({ lineage: knex.ref('id'), generation: 1 });
  await knex.schema.alterTable('cas', (t) => {
    t.index(['lineage']);
  });

  await knex.schema.createTable('ca_links', (t) => {
    t.string('id', 160).primary();
    t.string('lineage', 64).notNullable();
    t.string('old_ca_id', 64).notNullable().references('cas.id');
    t.string('new_ca_id', 64).notNullable().references('cas.id');
    t.string('kind', 16).notNullable(); // 'old-with-new' | 'new-with-old'
    t.binary('certificate').notNullable();
    t.string('not_before', 32).notNullable();
    t.string('not_after', 32).notNullable();
    t.string('created_at', 32).notNullable();
    t.index(['lineage']);
  });

  await knex.schema.createTable('renewals', (t) => {
    t.string('old_issuer_id', 64).notNullable();
    t.string('old_serial', 64).notNullable();
    t.string('new_issuer_id', 64).notNullable();
    t.string('new_serial', 64).notNullable();
    t.string('request_id', 255).notNullable();
    t.string('mode', 8).notNullable(); // 'renew' (same key) | 'rekey' (new key)
    t.string('requested_by', 200);
    t.string('supersede_at', 32).notNullable();
    t.string('superseded_at', 32);
    t.string('created_at', 32).notNullable();
    t.primary(['old_issuer_id', 'old_serial']);
    t.foreign(['old_issuer_id', 'old_serial']).references(['issuer_id', 'serial']).inTable('certificates');
    t.foreign(['new_issuer_id', 'new_serial']).references(['issuer_id', 'serial']).inTable('certificates');
    t.unique(['new_issuer_id', 'new_serial']);
    t.index(['superseded_at', 'supersede_at']);
  });

  await knex.schema.createTable('rotation_requests', (t) => {
    t.string('id', 255).primary();
    t.string('kind', 16).notNullable(); // 'renew' | 'rollover'
    t.string('target', 200).notNullable();
    t.string('principal_id', 200);
    t.text('result').notNullable(); // JSON
    t.string('created_at', 32).notNullable();
  });
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
