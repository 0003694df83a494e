/**
 * The forward-only migration runner. Migrations are listed here explicitly (no directory scanning:
 * under ES modules and tsx a scanned `.ts` file would not load the same way everywhere), and recorded
 * by name in knex's `knex_migrations` table.
 *
 * Several processes may start at once on a fresh database, and knex's own bookkeeping (create the
 * migrations tables, insert the lock row) is not safe against that, so the whole run happens in one
 * transaction that first takes the engine's write lock: BEGIN IMMEDIATE on SQLite (see knex-store.ts),
 * a transaction-scoped advisory lock on PostgreSQL. A process that waited finds nothing left to apply.
 */
import type { Knex } from 'knex';
import { ADVISORY_LOCK_IDS } from './advisory-locks.ts';
import * as initial from '../../migrations/0001_initial.ts';
import * as auditCheckpoints from '../../migrations/0002_audit_checkpoints.ts';
import * as rotation from '../../migrations/0003_rotation.ts';
import * as crlIndex from '../../migrations/0004_crl_index.ts';
import * as principalCreators from '../../migrations/0005_principal_creators.ts';
import * as popIdentity from '../../migrations/0006_pop_identity.ts';
import * as kmc from '../../migrations/0007_kmc.ts';
import * as acme from '../../migrations/0008_acme.ts';
import * as est from '../../migrations/0009_est.ts';
import * as offlineRoot from '../../migrations/0010_offline_root.ts';
import * as offlineRootRequests from '../../migrations/0011_offline_root_requests.ts';

/** One migration: a stable name and its `up`/`down` functions. */
export interface Migration {
  name: string;
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

/** Every migration, in the order they apply. Append new ones; never edit or reorder applied ones. */
export const migrations: readonly Migration[] = [
  { name: '0001_initial', up: initial.up, down: initial.down },
  { name: '0002_audit_checkpoints', up: auditCheckpoints.up, down: auditCheckpoints.down },
  { name: '0003_rotation', up: rotation.up, down: rotation.down },
  { name: '0004_crl_index', up: crlIndex.up, down: crlIndex.down },
  { name: '0005_principal_creators', up: principalCreators.up, down: principalCreators.down },
  { name: '0006_pop_identity', up: popIdentity.up, down: popIdentity.down },
  { name: '0007_kmc', up: kmc.up, down: kmc.down },
  { name: '0008_acme', up: acme.up, down: acme.down },
  { name: '0009_est', up: est.up, down: est.down },
  { name: '0010_offline_root', up: offlineRoot.up, down: offlineRoot.down },
  { name: '0011_offline_root_requests', up: offlineRootRequests.up, down: offlineRootRequests.down },
];

/** The knex migration source over {@link migrations}. */
export const migrationSource: Knex.MigrationSource<Migration> = {
  getMigrations: async () => [...migrations],
  getMigrationName: (migration) => migration.name,
  getMigration: async (migration) => ({ up: migration.up, down: migration.down }),
};

/** The migrator settings used everywhere: our source and knex's default table name. */
export const migratorConfig: Knex.MigratorConfig = { migrationSource, tableName: 'knex_migrations' };


/** Applies every pending migration; returns the names applied (empty when up to date). */
export async function migrateLatest(knex: Knex): Promise<string[]> {
  const postgres = isPostgres(knex);
  return knex.transaction(async (trx) => {
    if (postgres) {
      // The migrations lock (advisory-locks.ts). The schema may not exist yet (current_schema() would
      // be null): key the lock by its name.
      await trx.raw('select pg_advisory_xact_lock(hashtext(?), ?)', [searchPathOf(knex) ?? 'public', ADVISORY_LOCK_IDS.migrations]);
    }
    // A transaction-bound migrator runs its bookkeeping and each migration inside `trx`.
    const [, applied] = (await trx.migrate.latest(migratorConfig)) as [number, string[]];
    return applied;
  });
}

/** Every known migration and whether it has been applied; does not create the migrations table. */
export async function migrationStatus(knex: Knex): Promise<{ name: string; applied: boolean }[]> {
  const done = new Set<string>();
  if (await knex.schema.hasTable('knex_migrations')) {
    const rows: { name: string }[] = await knex('knex_migrations').select('name');
    for (const row of rows) done.add(row.name);
  }
  return migrations.map((m) => ({ name: m.name, applied: done.has(m.name) }));
}

function isPostgres(knex: Knex): boolean {
  const client = (knex.client as { config?: { client?: unknown } }).config?.client;
  return client === 'pg' || client === 'postgres' || client === 'postgresql';
}

function searchPathOf(knex: Knex): string | undefined {
  const searchPath = (knex.client as { searchPath?: string | string[] }).searchPath;
  return Array.isArray(searchPath) ? searchPath[0] : searchPath;
}
