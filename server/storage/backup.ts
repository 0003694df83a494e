/**
 * Logical backups of a tierca database, the same on SQLite and PostgreSQL (and restorable across
 * them): every application table as JSON lines, read in one consistent snapshot, and restored in one
 * transaction into an empty database only.
 *
 * The format (`tierca backup > file`), one JSON value per line, UTF-8:
 * 1. a header: `{"format":"tierca-backup","version":1,"engine":…,"createdAt":…,"migrations":[names
 *    applied, in order],"tables":[{"name","columns":[{"name","type"}],"primaryKey":[…]}]}` — tables in
 *    an order where every table comes after the tables its foreign keys point to;
 * 2. one line per row: `["<table>", value, …]` in the header's column order. Column types are
 *    `text` (string), `integer` (number), `bigint` (decimal string, exact beyond 2^53), `boolean`
 *    (true/false; SQLite's 0/1 converted) and `binary` (base64);
 * 3. a trailer: `{"end":true,"rows":{"<table>":count,…},"sha256":"<hex>"}`, the SHA-256 of every
 *    byte before it, so a truncated or edited file is refused rather than half restored.
 *
 * Keys stay sealed: the `keys` and `escrowed_keys` tables only ever hold sealed PKCS#8 (AES-256-GCM
 * under the keystore passphrase, see pki/keystore/key-sealing.ts) and the keystore header in `meta`
 * holds the scrypt salt and a check value, never the passphrase or a key. A restored database opens
 * with the passphrase of the original. API tokens are stored as hashes, so they keep working too.
 */
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { TiercaError } from '../errors.ts';
import { ADVISORY_LOCK_IDS } from './advisory-locks.ts';
import { migrations, migratorConfig, type Migration } from './migrate.ts';
import type { Engine } from './rows.ts';
import { decodeValue, describeTables, encodeValue, malformedBackup, readTable, type BackupTable } from './backup-tables.ts';

export type { BackupColumn, BackupColumnType, BackupTable } from './backup-tables.ts';

export const BACKUP_FORMAT = 'tierca-backup';
export const BACKUP_VERSION = 1;


/** The first line of a backup. */
export interface BackupHeader {
  format: typeof BACKUP_FORMAT;
  version: typeof BACKUP_VERSION;
  /** The engine the backup was taken from (informative: a backup restores into either). */
  engine: Engine;
  createdAt: string;
  /** The schema version: the migrations applied, in order. */
  migrations: string[];
  tables: BackupTable[];
}

/** What a backup or a restore covered. */
export interface BackupSummary {
  migrations: string[];
  /** Rows per table. */
  rows: Record<string, number>;
}

/** Rows per INSERT when restoring, and at most this many bound values per INSERT. */
const RESTORE_BATCH = 250;
const RESTORE_MAX_BINDINGS = 5000;


export interface ExportBackupParams {
  /** A knex from createKnex (knex-store.ts), not used by anything else while the export runs. */
  knex: Knex;
  /** Receives the backup, a line at a time; awaited, so a slow reader slows the export down. */
  write: (chunk: string) => void | Promise<void>;
  /** The time written in the header. */
  now: Date;
}

/**
 * Writes a backup of the database behind `knex`. The reads form one snapshot — a REPEATABLE READ,
 * READ ONLY transaction on PostgreSQL; a deferred read transaction on SQLite, which in WAL mode
 * does not hold back writers (a BEGIN IMMEDIATE one would, for as long as the export runs) — so a
 * backup taken while servers run is consistent: no certificate without its audit record.
 */
export async function exportBackup({ knex, write, now }: ExportBackupParams): Promise<BackupSummary> {
  const engine = engineOfKnex(knex);
  const run = async (db: Knex): Promise<BackupSummary> => {
    const applied = await appliedMigrations(db);
    const tables = await describeTables(db, engine);
    const header: BackupHeader = {
      format: BACKUP_FORMAT, version: BACKUP_VERSION, engine, createdAt: now.toISOString(), migrations: applied, tables,
    };
    const hash = createHash('sha256');
    const emit = async (value: unknown) => {
      const line = `${JSON.stringify(value)}\n`;
      hash.update(line);
      await write(line);
    };
    await emit(header);
    const rows: Record<string, number> = {};
    for (const table of tables) {
      rows[table.name] = 0;
      for await (const row of readTable(db, engine, table)) {
        await emit([table.name, ...table.columns.map((c) => encodeValue(row[c.name], c, table.name))]);
        rows[table.name]++;
      }
    }
    await write(`${JSON.stringify({ end: true, rows, sha256: hash.digest('hex') })}\n`);
    return { migrations: applied, rows };
  };
  if (engine === 'postgres') return knex.transaction((trx) => run(trx), { isolationLevel: 'repeatable read', readOnly: true });
  // SQLite: the store's pool holds exactly one connection (knex-store.ts), so every statement below
  // runs on it, inside this deferred transaction.
  const pool = (knex.client as { pool?: { max?: number } }).pool;
  if (pool?.max !== 1) throw new Error('exportBackup needs the single-connection SQLite knex of createKnex');
  await knex.raw('BEGIN DEFERRED');
  try {
    return await run(knex);
  } finally {
    await knex.raw('COMMIT');
  }
}

export interface RestoreBackupParams {
  /** A knex from createKnex for the target, which must hold no tierca data. */
  knex: Knex;
  /** The backup, line by line (e.g. `readline` over stdin, or an array). */
  lines: AsyncIterable<string> | Iterable<string>;
}

/**
 * Restores a backup into an empty database in one transaction: brings the schema to the backup's
 * migrations, inserts every row, checks the trailer (row counts, SHA-256), moves PostgreSQL
 * sequences past the restored rows, then applies any newer migrations. Anything wrong — a database
 * that already holds data, a backup from a newer tierca, a truncated or altered file — throws and
 * leaves the target as it was.
 *
 * @throws TiercaError 'conflict' when the target is not empty; 'malformed-input' for a bad backup.
 */
export async function restoreBackup({ knex, lines }: RestoreBackupParams): Promise<BackupSummary> {
  const engine = engineOfKnex(knex);
  const iterator: AsyncIterator<string> | Iterator<string> = Symbol.asyncIterator in lines ? lines[Symbol.asyncIterator]() : lines[Symbol.iterator]();
  const hash = createHash('sha256');
  const first = await iterator.next();
  if (first.done) throw malformedBackup('the backup is empty');
  hash.update(`${first.value}\n`);
  const header = parseHeader(first.value);
  const prefix = migrationsOf(header.migrations);

  if (engine === 'postgres') await createSchemaIfMissing(knex);
  return knex.transaction(async (trx) => {
    // The migrations lock (advisory-locks.ts): a restore and a starting server take turns.
    if (engine === 'postgres') await trx.raw('select pg_advisory_xact_lock(hashtext(current_schema()), ?)', [ADVISORY_LOCK_IDS.migrations]);
    await requireEmpty(trx, engine, header.migrations);
    await trx.migrate.latest({ ...migratorConfig, migrationSource: sourceOf(prefix) });
    const target = new Map((await describeTables(trx, engine)).map((t) => [t.name, t]));
    const tables = new Map<string, BackupTable>();
    for (const table of header.tables) {
      const there = target.get(table.name);
      if (!there) throw malformedBackup(`the backup has a table ${table.name} that schema ${header.migrations.at(-1)} does not`);
      const missing = table.columns.filter((c) => !there.columns.some((t) => t.name === c.name));
      if (missing.length) throw malformedBackup(`table ${table.name} of the backup has columns the schema does not: ${missing.map((c) => c.name).join(', ')}`);
      tables.set(table.name, table);
    }
    const absent = [...target.keys()].filter((name) => !tables.has(name));
    if (absent.length) throw malformedBackup(`the backup lacks table(s) ${absent.join(', ')}`);

    const rows: Record<string, number> = Object.fromEntries(header.tables.map((t) => [t.name, 0]));
    // Rows go in as multi-row INSERTs of one table, flushed when the table changes or the batch is full.
    let pending: Record<string, unknown>[] = [];
    let pendingTable: BackupTable | null = null;
    const flush = async () => {
      if (pendingTable && pending.length) await trx(pendingTable.name).insert(pending);
      pending = [];
    };
    let trailer: Trailer | null = null;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      const line = next.value;
      if (trailer) {
        if (line.trim() === '') continue;
        throw malformedBackup('the backup has data after its end record');
      }
      if (line.startsWith('{')) {
        trailer = parseTrailer(line);
        continue;
      }
      hash.update(`${line}\n`);
      const values = parseJson(line, 'a row');
      if (!Array.isArray(values) || typeof values[0] !== 'string') throw malformedBackup('a row line must be ["table", value, …]');
      const table = tables.get(values[0]);
      if (!table) throw malformedBackup(`a row names table ${values[0]}, which the header does not list`);
      if (values.length !== table.columns.length + 1) throw malformedBackup(`a row of ${table.name} has ${values.length - 1} values for ${table.columns.length} columns`);
      const row: Record<string, unknown> = {};
      table.columns.forEach((c, i) => (row[c.name] = decodeValue(values[i + 1], c, table.name)));
      if (pendingTable !== table || pending.length >= Math.min(RESTORE_BATCH, Math.floor(RESTORE_MAX_BINDINGS / table.columns.length))) {
        await flush();
        pendingTable = table;
      }
      pending.push(row);
      rows[table.name]++;
    }
    await flush();
    const t = trailer as Trailer | null;
    if (!t) throw malformedBackup('the backup is truncated: it has no end record');
    if (t.sha256 !== hash.digest('hex')) throw malformedBackup('the backup does not match its SHA-256: it was altered or damaged');
    for (const name of tables.keys()) {
      if (t.rows[name] !== rows[name]) throw malformedBackup(`table ${name}: the end record counts ${t.rows[name]} rows, the backup holds ${rows[name]}`);
    }
    if (engine === 'postgres') await advanceSequences(trx, [...tables.values()]);
    // A backup of an older schema: bring the restored data up to this version's schema.
    await trx.migrate.latest(migratorConfig);
    return { migrations: (await appliedMigrations(trx)), rows };
  });
}

// ---------------------------------------------------------------------------------------------
// Schema discovery

interface Trailer {
  end: true;
  rows: Record<string, number>;
  sha256: string;
}

function engineOfKnex(knex: Knex): Engine {
  const client = (knex.client as { config?: { client?: unknown } }).config?.client;
  return client === 'pg' || client === 'postgres' || client === 'postgresql' ? 'postgres' : 'sqlite';
}

async function appliedMigrations(db: Knex): Promise<string[]> {
  if (!(await db.schema.hasTable('knex_migrations'))) return [];
  const rows: { name: string }[] = await db('knex_migrations').select('name').orderBy('id');
  return rows.map((r) => r.name);
}

// ---------------------------------------------------------------------------------------------
// Restore checks

function parseJson(line: string, what: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    throw malformedBackup(`${what} is not JSON`);
  }
}

function parseHeader(line: string): BackupHeader {
  const h = parseJson(line, 'the first line') as Partial<BackupHeader> | null;
  if (!h || typeof h !== 'object' || h.format !== BACKUP_FORMAT) throw malformedBackup('this is not a tierca backup (no tierca-backup header)');
  if (h.version !== BACKUP_VERSION) throw malformedBackup(`backup format version ${String(h.version)} is not supported (this tierca reads ${BACKUP_VERSION})`);
  const types: readonly string[] = ['text', 'integer', 'bigint', 'boolean', 'binary'];
  const okTables = Array.isArray(h.tables) && h.tables.every((t) =>
    t && typeof t.name === 'string' && Array.isArray(t.columns) && t.columns.every((c) => c && typeof c.name === 'string' && types.includes(c.type)));
  if (!Array.isArray(h.migrations) || !h.migrations.every((m) => typeof m === 'string') || !okTables) throw malformedBackup('the backup header is malformed');
  return h as BackupHeader;
}

function parseTrailer(line: string): Trailer {
  const t = parseJson(line, 'the end record') as Partial<Trailer> | null;
  if (!t || t.end !== true || typeof t.sha256 !== 'string' || typeof t.rows !== 'object' || t.rows === null) throw malformedBackup('the end record is malformed');
  return t as Trailer;
}

/** The migrations of this tierca that the backup names, in order; refuses names it does not know. */
function migrationsOf(names: string[]): Migration[] {
  names.forEach((name, i) => {
    if (migrations[i]?.name !== name) {
      throw malformedBackup(`the backup's schema (${names.join(', ')}) is not one this tierca knows (${migrations.map((m) => m.name).join(', ')}): restore it with the tierca version that made it`);
    }
  });
  return migrations.slice(0, names.length);
}

function sourceOf(list: Migration[]): Knex.MigrationSource<Migration> {
  return {
    getMigrations: async () => [...list],
    getMigrationName: (m) => m.name,
    getMigration: async (m) => ({ up: m.up, down: m.down }),
  };
}

/** Refuses a target that holds any tierca data, or a schema ahead of the backup's. */
async function requireEmpty(trx: Knex, engine: Engine, backupMigrations: string[]): Promise<void> {
  const applied = await appliedMigrations(trx);
  if (applied.some((name, i) => backupMigrations[i] !== name)) {
    throw new TiercaError('conflict', `restore needs an empty database: this one is at schema ${applied.at(-1)}, the backup at ${backupMigrations.at(-1) ?? 'none'}`);
  }
  if (applied.length === 0) return;
  for (const table of await describeTables(trx, engine)) {
    const row = await trx(table.name).count({ n: '*' }).first();
    const n = Number(row?.n ?? 0);
    if (n > 0) throw new TiercaError('conflict', `restore needs an empty database: table ${table.name} holds ${n} row(s)`);
  }
}

/** PostgreSQL: sets each serial column's sequence past the highest restored value. */
async function advanceSequences(trx: Knex, tables: BackupTable[]): Promise<void> {
  for (const table of tables) {
    for (const column of table.columns) {
      if (column.type !== 'integer' && column.type !== 'bigint') continue;
      const seq = (await trx.raw("select pg_get_serial_sequence(quote_ident(current_schema()) || '.' || quote_ident(?), ?) as seq", [table.name, column.name])).rows[0]?.seq as string | null;
      if (!seq) continue;
      await trx.raw(`select setval(?::regclass, coalesce((select max(??) from ??), 0) + 1, false)`, [seq, column.name, table.name]);
    }
  }
}

async function createSchemaIfMissing(knex: Knex): Promise<void> {
  const searchPath = (knex.client as { searchPath?: string | string[] }).searchPath;
  const schema = Array.isArray(searchPath) ? searchPath[0] : searchPath;
  if (!schema) return;
  try {
    await knex.raw('create schema if not exists ??', [schema]);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== '23505' && code !== '42P06') throw err;
  }
}

