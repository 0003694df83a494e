/**
 * The migration runner on the engine chosen by TIERCA_TEST_DB: it applies the listed migrations once,
 * reports status without side effects, is idempotent, and survives several stores opening a fresh
 * database at the same moment.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Knex } from 'knex';
import { createKnex, knexOf, openStore, type StoreOptions } from '../../server/storage/knex-store.ts';
import { migrateLatest, migrationSource, migrationStatus, migrations } from '../../server/storage/migrate.ts';
import { BACKGROUND_TABLES, snapshotCounts, tableNames, testEngine, testStoreOptions } from '../helpers/database.ts';

const APP_TABLES = [
  'acme_account_keys', 'acme_accounts', 'acme_authorizations', 'acme_challenges', 'acme_nonces', 'acme_orders',
  'audit_checkpoints', 'audit_log', 'ca_links', 'cas', 'certificates', 'crls', 'domains', 'escrowed_keys', 'est_codes', 'keys', 'kmc_keys', 'kmc_master_keys', 'meta',
  'ocsp_responders', 'ocsp_responses', 'offline_bundles', 'offline_pending_cas', 'offline_root_requests', 'organs', 'principals', 'renewals', 'requests', 'revocation_events', 'rotation_requests',
  'subjects', 'tokens',
];

/** Every migration, in order. */
const NAMES = ['0001_initial', '0002_audit_checkpoints', '0003_rotation', '0004_crl_index', '0005_principal_creators', '0006_pop_identity', '0007_kmc', '0008_acme', '0009_est', '0010_offline_root', '0011_offline_root_requests'];

let options: StoreOptions & { cleanup(): Promise<void> };
let knex: Knex;

beforeEach(async () => {
  options = await testStoreOptions();
  knex = createKnex(options);
  // PostgreSQL: the runner works in the schema of the search path; openStore creates it, here we do.
  if (options.searchPath) await knex.raw('create schema ??', [options.searchPath]);
});
afterEach(async () => {
  await knex.destroy();
  await options.cleanup();
});

describe(`migrations on ${testEngine()}`, () => {
  it('lists the migrations in order through the explicit source', async () => {
    expect(migrations.map((m) => m.name)).toEqual(NAMES);
    const listed = await migrationSource.getMigrations([]);
    expect(listed.map((m) => migrationSource.getMigrationName(m))).toEqual(NAMES);
    const loaded = await migrationSource.getMigration(listed[0]);
    expect(typeof loaded.up).toBe('function');
    await expect(loaded.down!(knex)).rejects.toThrow('migrations are forward-only');
  });

  it('reports pending migrations on an empty database without creating anything', async () => {
    expect(await migrationStatus(knex)).toEqual(NAMES.map((name) => ({ name, applied: false })));
    expect(await knex.schema.hasTable('knex_migrations')).toBe(false);
  });

  it('applies each migration once: a second run applies nothing', async () => {
    expect(await migrateLatest(knex)).toEqual(NAMES);
    expect(await migrationStatus(knex)).toEqual(NAMES.map((name) => ({ name, applied: true })));
    expect(await migrateLatest(knex)).toEqual([]);
    expect(await migrationStatus(knex)).toEqual(NAMES.map((name) => ({ name, applied: true })));
    expect((await knex('knex_migrations').select('name')).map((r: { name: string }) => r.name)).toEqual(NAMES);
  });

  it('0005 gives principals made before it their maker back from the audit log (the ceremony\'s stay null)', async () => {
    for (const m of migrations.slice(0, 4)) await m.up(knex);
    const row = (id: string) => ({ id, name: id, role: 'sysadmin', domains: '[]', disabled: false, created_at: '2026-01-01T00:00:00.000Z' });
    await knex('principals').insert([row('p-ceremony'), row('p-minted'), row('p-minted-by-minted')]);
    const audit = (seq: number, actor: string | null, target: string, outcome = 'success') => ({
      seq, at: '2026-01-01T00:00:00.000Z', principal_id: actor, role: actor ? 'sysadmin' : null, source: actor ? 'api' : 'ceremony', action: 'principal.add',
      target, outcome, request_id: null, detail: '{}', prev_hash: '0'.repeat(64), hash: String(seq).padStart(64, '0'),
    });
    await knex('audit_log').insert([
      audit(1, null, 'principal:p-ceremony'),
      audit(2, 'p-ceremony', 'principal:p-minted', 'denied'),
      audit(3, 'p-ceremony', 'principal:p-minted'),
      audit(4, 'p-minted', 'principal:p-minted-by-minted'),
    ]);
    await migrations[4]!.up(knex);
    const got = await knex('principals').select('id', 'created_by', 'created_by_request').orderBy('id');
    expect(got).toEqual([
      { id: 'p-ceremony', created_by: null, created_by_request: null },
      { id: 'p-minted', created_by: 'p-ceremony', created_by_request: null },
      { id: 'p-minted-by-minted', created_by: 'p-minted', created_by_request: null },
    ]);
  });

  it('creates every table of the schema, empty', async () => {
    const store = await openStore(options);
    try {
      expect(await tableNames(store)).toEqual(APP_TABLES);
      const counted = APP_TABLES.filter((t) => !BACKGROUND_TABLES.includes(t));
      expect(await snapshotCounts(store)).toEqual(Object.fromEntries(counted.map((t) => [t, 0])));
    } finally {
      await store.close();
    }
  });

  it('opens an up-to-date database without migrating again', async () => {
    const first = await openStore(options);
    await first.meta.set('kept', 'yes');
    await first.close();
    const second = await openStore(options);
    try {
      expect(await second.meta.get('kept')).toBe('yes');
      expect(await migrateLatest(knexOf(second))).toEqual([]);
      expect(await knexOf(second)('knex_migrations').count({ n: '*' }).first()).toEqual({ n: second.engine === 'postgres' ? String(NAMES.length) : NAMES.length });
    } finally {
      await second.close();
    }
  });

  it('lets several stores open one fresh database at the same moment: one migrates, all work', async () => {
    const stores = await Promise.all([openStore(options), openStore(options), openStore(options)]);
    try {
      expect((await knex('knex_migrations').select('name')).map((r: { name: string }) => r.name)).toEqual(NAMES);
      expect((await knex('knex_migrations_lock').select('is_locked')).map((r: { is_locked: number }) => Number(r.is_locked))).toEqual([0]);
      await Promise.all(stores.map((s, i) => s.meta.set(`store-${i}`, String(i))));
      expect(await stores[0].meta.get('store-2')).toBe('2');
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('opens an in-memory SQLite store with the pragmas that apply to it', async () => {
    const memory = await openStore({ sqliteFile: ':memory:' });
    try {
      expect(memory.engine).toBe('sqlite');
      await memory.meta.set('a', 'b');
      expect(await memory.meta.get('a')).toBe('b');
      const k = knexOf(memory);
      expect(await k.raw('pragma foreign_keys')).toEqual([{ foreign_keys: 1 }]);
      expect(await k.raw('pragma synchronous')).toEqual([{ synchronous: 2 }]); // FULL
      expect(await k.raw('pragma journal_mode')).toEqual([{ journal_mode: 'memory' }]); // WAL needs a file
    } finally {
      await memory.close();
    }
  });

  it.runIf(testEngine() === 'sqlite')('sets WAL, synchronous NORMAL (the WAL fsynced after each commit, decision 0030) and foreign keys on a SQLite file', async () => {
    const store = await openStore(options);
    try {
      const k = knexOf(store);
      expect(await k.raw('pragma journal_mode')).toEqual([{ journal_mode: 'wal' }]);
      expect(await k.raw('pragma synchronous')).toEqual([{ synchronous: 1 }]); // NORMAL
      // A bare createKnex (CLI db and backup commands) has no syncer: SQLite fsyncs in each COMMIT.
      expect(await knex.raw('pragma synchronous')).toEqual([{ synchronous: 2 }]); // FULL
      expect(await k.raw('pragma foreign_keys')).toEqual([{ foreign_keys: 1 }]);
      // Waiting for a locked file is done asynchronously by the client, not by SQLite's sleeping handler.
      expect(await k.raw('pragma busy_timeout')).toEqual([{ timeout: 0 }]);
    } finally {
      await store.close();
    }
  });

  it('refuses an options object that names no database', () => {
    expect(() => createKnex({})).toThrow('a store needs databaseUrl (PostgreSQL) or sqliteFile (SQLite)');
    expect(() => createKnex({ databaseUrl: 'mysql://x' })).toThrow('databaseUrl must start with postgres:// or postgresql:// (got mysql:)');
  });
});
