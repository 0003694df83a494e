/**
 * Signed audit checkpoints (server/audit/audit-checkpoints.ts, docs/decisions/0005-audit-log.md).
 * Forward-only; runs unchanged on SQLite and PostgreSQL, with the conventions of 0001_initial.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // One row per checkpoint: the hash of audit record `seq`, signed with an audit key (keys.purpose 'audit').
  await knex.schema.createTable('audit_checkpoints', (t) => {
    t.bigInteger('seq').primary(); // the audit_log record the checkpoint covers
    t.string('hash', 64).notNullable(); // that record's hash, hex
    t.string('at', 32).notNullable(); // when it was signed
    t.string('kind', 16).notNullable(); // 'periodic' | 'requested'
    t.string('key_id', 64).notNullable().references('keys.id');
    t.binary('signature').notNullable(); // over checkpointPayload(), see audit-checkpoints.ts
    t.index(['kind', 'seq']);
  });
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
