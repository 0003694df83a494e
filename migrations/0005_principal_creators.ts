/**
 * Who made each principal, for the dual-control rule (docs/decisions/0014-dual-control-principals.md):
 * an approval counts only from a principal that neither is the requester, nor was created by the
 * requester, nor was created by a request the requester approved. `created_by` is the principal that
 * asked for it (null for the ceremony's first principals and for rows older than this migration);
 * `created_by_request` the dual-control request that made it, if any. Forward-only; the same on
 * SQLite and PostgreSQL.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('principals', (t) => {
    t.string('created_by', 64);
    t.string('created_by_request', 64);
  });
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
