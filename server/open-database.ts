/**
 * Where an installation's database is (SQLite under the data folder, or PostgreSQL by URL) and opening
 * it, the embedded file readable by its owner only.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openStore, type StoreOptions } from './storage/knex-store.ts';
import type { DurableSync } from './storage/wal-sync.ts';
import type { Store } from './storage/storage.ts';

export interface DatabaseOptions {
  dataDir: string;
  /** postgres://… selects PostgreSQL; otherwise SQLite at `<dataDir>/tierca.db`. */
  databaseUrl?: string;
  /** PostgreSQL schema (tests use one per run). */
  searchPath?: string;
  /** SQLite file other than `<dataDir>/tierca.db`. */
  sqliteFile?: string;
  /** SQLite only: what commits wait for (tests; default the WAL's fdatasync, StoreOptions.durableSync). */
  durableSync?: DurableSync;
}

export function storeOptions({ dataDir, databaseUrl, searchPath, sqliteFile, durableSync }: DatabaseOptions): StoreOptions {
  if (databaseUrl) return { databaseUrl, searchPath };
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  return { sqliteFile: sqliteFile ?? join(dataDir, 'tierca.db'), ...(durableSync ? { durableSync } : {}) };
}

/** Opens the store; an embedded database file is readable by its owner only (it holds sealed keys). */
export async function openDatabase(opts: DatabaseOptions): Promise<Store> {
  const options = storeOptions(opts);
  const store = await openStore(options);
  if (options.sqliteFile && options.sqliteFile !== ':memory:') {
    for (const suffix of ['', '-wal', '-shm']) {
      try {
        chmodSync(`${options.sqliteFile}${suffix}`, 0o600);
      } catch {
        // -wal/-shm appear only once written.
      }
    }
  }
  return store;
}
