/**
 * Who made each principal, for the dual-control rule (docs/decisions/0014-dual-control-principals.md):
 * an approval counts only from a principal that neither is the requester, nor was created by the
 * requester, nor was created by a request the requester approved. `created_by` is the principal that
 * asked for it (null for the ceremony's first principals and for rows older than this migration);
 * `created_by_request` the dual-control request that made it, if any.
 *
 * Principals made before this migration get their maker back from the audit log, which recorded each
 * `principal.add` (actor, target `principal:<id>`) in the transaction that made the principal — so a
 * sysadmin minted alone through the old direct path still counts as its maker, not as a second
 * person. The ceremony's records have no actor and leave the column null. Forward-only; the same SQL
 * on SQLite and PostgreSQL.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('principals', (t) => {
    t.string('created_by', 64);
    t.string('created_by_request', 64);
  });
  await knex.raw(
    `UPDATE principals SET created_by = (
       SELECT a.principal_id FROM audit_log a
       WHERE a.action = 'principal.add' AND a.outcome = 'success' AND a.target = 'principal:' || principals.id
       ORDER BY a.seq LIMIT 1
     )`,
  );
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
