/**
 * Throwaway databases for integration tests. The engine comes from `TIERCA_TEST_DB`: `sqlite`
 * (default; a fresh file in a temp folder per call) or `postgres` (a fresh schema `t_<random>` in the
 * database at `TIERCA_TEST_PG_URL`, default postgres://postgres@127.0.0.1:5432/test, dropped CASCADE
 * on cleanup). The same test file runs on both: `TIERCA_TEST_DB=postgres npx vitest run test/integration`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKnex, knexOf, openStore, type StoreOptions } from '../../server/storage/knex-store.ts';
import type { Store } from '../../server/storage/storage.ts';

export type TestEngine = 'sqlite' | 'postgres';

/** The engine the integration tests run on. */
export function testEngine(): TestEngine {
  const value = process.env.TIERCA_TEST_DB ?? 'sqlite';
  if (value !== 'sqlite' && value !== 'postgres') throw new Error(`TIERCA_TEST_DB must be sqlite or postgres, not ${value}`);
  return value;
}

export const testPgUrl = (): string => process.env.TIERCA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Options of a fresh, empty database for one test (nothing is opened yet: hand them to a server
 * process or to {@link openStore}); `cleanup` removes the file or drops the schema.
 */
export async function testStoreOptions(): Promise<StoreOptions & { cleanup(): Promise<void> }> {
  if (testEngine() === 'postgres') {
    const databaseUrl = testPgUrl();
    const searchPath = `t_${randomBytes(6).toString('hex')}`;
    return {
      databaseUrl,
      searchPath,
      async cleanup() {
        const knex = createKnex({ databaseUrl });
        try {
          await knex.raw('drop schema if exists ?? cascade', [searchPath]);
        } finally {
          await knex.destroy();
        }
      },
    };
  }
  const dir = await mkdtemp(join(tmpdir(), 'tierca-db-'));
  return {
    sqliteFile: join(dir, 'tierca.db'),
    async cleanup() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A migrated store on a fresh database; `cleanup` closes it and removes the database. */
export async function testStore(): Promise<{ store: Store; options: StoreOptions; cleanup(): Promise<void> }> {
  const { cleanup: removeDatabase, ...options } = await testStoreOptions();
  let store: Store;
  try {
    store = await openStore(options);
  } catch (err) {
    await removeDatabase();
    throw err;
  }
  return {
    store,
    options,
    async cleanup() {
      await store.close();
      await removeDatabase();
    },
  };
}

/** The application tables (knex's own bookkeeping tables excluded), by name. */
export async function tableNames(store: Store): Promise<string[]> {
  const knex = knexOf(store);
  const names: string[] =
    store.engine === 'postgres'
      ? (await knex.raw("select table_name as name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE'")).rows.map((r: { name: string }) => r.name)
      : (await knex.raw("select name from sqlite_master where type = 'table' and name not like 'sqlite\\_%' escape '\\'")).map((r: { name: string }) => r.name);
  return names.filter((n) => !n.startsWith('knex_migrations')).sort();
}

/** The number of rows in `table` (for "nothing changed" assertions). */
export async function countRows(store: Store, table: string): Promise<number> {
  const row = await knexOf(store)(table).count({ n: '*' }).first();
  return Number(row?.n ?? 0);
}

/**
 * Tables left out of {@link snapshotCounts}: a running service writes them in the background, on a
 * timer, so two reads may differ though no request changed anything — audit checkpoints (part of the
 * audit log, which tests count through `audit_log`) and CRLs (republished a second after a
 * revocation, and whenever the status scheduler finds one due).
 */
export const BACKGROUND_TABLES: readonly string[] = ['audit_checkpoints', 'crls'];

/** The row count of every application table but {@link BACKGROUND_TABLES}. */
export async function snapshotCounts(store: Store): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of await tableNames(store)) {
    if (!BACKGROUND_TABLES.includes(table)) counts[table] = await countRows(store, table);
  }
  return counts;
}
