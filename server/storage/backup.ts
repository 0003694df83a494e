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

export const BACKUP_FORMAT = 'tierca-backup';
export const BACKUP_VERSION = 1;

/** How a column's values are written in a backup. */
export type BackupColumnType = 'text' | 'integer' | 'bigint' | 'boolean' | 'binary';

export interface BackupColumn {
  name: string;
  type: BackupColumnType;
}

export interface BackupTable {
  name: string;
  columns: BackupColumn[];
  /** Primary key columns in key order (rows are written in this order). */
  primaryKey: string[];
}

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

/** knex's own bookkeeping; the header's `migrations` stands for it. */
const BOOKKEEPING = new Set(['knex_migrations', 'knex_migrations_lock']);

/** Rows read per query when exporting (keyset pages, so memory stays flat on big tables). */
const EXPORT_PAGE = 1000;
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
  if (first.done) throw bad('the backup is empty');
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
      if (!there) throw bad(`the backup has a table ${table.name} that schema ${header.migrations.at(-1)} does not`);
      const missing = table.columns.filter((c) => !there.columns.some((t) => t.name === c.name));
      if (missing.length) throw bad(`table ${table.name} of the backup has columns the schema does not: ${missing.map((c) => c.name).join(', ')}`);
      tables.set(table.name, table);
    }
    const absent = [...target.keys()].filter((name) => !tables.has(name));
    if (absent.length) throw bad(`the backup lacks table(s) ${absent.join(', ')}`);

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
        throw bad('the backup has data after its end record');
      }
      if (line.startsWith('{')) {
        trailer = parseTrailer(line);
        continue;
      }
      hash.update(`${line}\n`);
      const values = parseJson(line, 'a row');
      if (!Array.isArray(values) || typeof values[0] !== 'string') throw bad('a row line must be ["table", value, …]');
      const table = tables.get(values[0]);
      if (!table) throw bad(`a row names table ${values[0]}, which the header does not list`);
      if (values.length !== table.columns.length + 1) throw bad(`a row of ${table.name} has ${values.length - 1} values for ${table.columns.length} columns`);
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
    if (!t) throw bad('the backup is truncated: it has no end record');
    if (t.sha256 !== hash.digest('hex')) throw bad('the backup does not match its SHA-256: it was altered or damaged');
    for (const name of tables.keys()) {
      if (t.rows[name] !== rows[name]) throw bad(`table ${name}: the end record counts ${t.rows[name]} rows, the backup holds ${rows[name]}`);
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

/** Application tables with their columns, primary keys, in foreign-key order (referenced first). */
async function describeTables(db: Knex, engine: Engine): Promise<BackupTable[]> {
  const tables: BackupTable[] = [];
  const references = new Map<string, string[]>();
  if (engine === 'postgres') {
    const names: string[] = (await db.raw(
      "select table_name as name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE' order by table_name",
    )).rows.map((r: { name: string }) => r.name);
    for (const name of names.filter((n) => !BOOKKEEPING.has(n))) {
      const columns = (await db.raw(
        'select column_name as name, data_type as type from information_schema.columns where table_schema = current_schema() and table_name = ? order by ordinal_position',
        [name],
      )).rows as { name: string; type: string }[];
      const pk = (await db.raw(
        `select a.attname as name from pg_index i
           join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
          where i.indrelid = (quote_ident(current_schema()) || '.' || quote_ident(?))::regclass and i.indisprimary
          order by array_position(i.indkey::int2[], a.attnum)`,
        [name],
      )).rows as { name: string }[];
      const fks = (await db.raw(
        `select distinct ccu.table_name as ref from information_schema.table_constraints tc
           join information_schema.constraint_column_usage ccu on ccu.constraint_schema = tc.constraint_schema and ccu.constraint_name = tc.constraint_name
          where tc.constraint_type = 'FOREIGN KEY' and tc.table_schema = current_schema() and tc.table_name = ?`,
        [name],
      )).rows as { ref: string }[];
      tables.push({ name, columns: columns.map((c) => ({ name: c.name, type: columnType(c.type, name, c.name) })), primaryKey: pk.map((p) => p.name) });
      references.set(name, fks.map((f) => f.ref).filter((r) => r !== name));
    }
  } else {
    const names = ((await db.raw("select name from sqlite_master where type = 'table' and name not like 'sqlite\\_%' escape '\\' order by name")) as { name: string }[])
      .map((r) => r.name);
    for (const name of names.filter((n) => !BOOKKEEPING.has(n))) {
      const info = (await db.raw(`pragma table_info(${quoteSqlite(name)})`)) as { name: string; type: string; pk: number | bigint }[];
      const fks = (await db.raw(`pragma foreign_key_list(${quoteSqlite(name)})`)) as { table: string }[];
      tables.push({
        name,
        columns: info.map((c) => ({ name: c.name, type: columnType(c.type, name, c.name) })),
        primaryKey: info.filter((c) => Number(c.pk) > 0).sort((x, y) => Number(x.pk) - Number(y.pk)).map((c) => c.name),
      });
      references.set(name, [...new Set(fks.map((f) => f.table))].filter((r) => r !== name));
    }
  }
  return inDependencyOrder(tables, references);
}

const quoteSqlite = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** The backup type of a column from its declared (SQLite) or catalog (PostgreSQL) type. */
function columnType(declared: string, table: string, column: string): BackupColumnType {
  const t = declared.toLowerCase();
  if (t === 'bytea' || t === 'blob') return 'binary';
  if (t === 'boolean') return 'boolean';
  if (t === 'bigint') return 'bigint';
  if (t === 'integer' || t === 'smallint') return 'integer';
  if (t === 'text' || t.startsWith('character varying') || t.startsWith('varchar') || t.startsWith('char')) return 'text';
  // A migration introduced a type this file does not know: say so rather than guess.
  throw new Error(`backup: column ${table}.${column} has type ${declared}, which backup.ts does not handle`);
}

/** Tables sorted so that each comes after those it references (ties by name; a cycle keeps the rest by name). */
function inDependencyOrder(tables: BackupTable[], references: Map<string, string[]>): BackupTable[] {
  const byName = new Map(tables.map((t) => [t.name, t]));
  const done = new Set<string>();
  const out: BackupTable[] = [];
  const visit = (name: string, path: Set<string>) => {
    if (done.has(name) || path.has(name) || !byName.has(name)) return;
    path.add(name);
    for (const ref of references.get(name) ?? []) visit(ref, path);
    path.delete(name);
    done.add(name);
    out.push(byName.get(name)!);
  };
  for (const t of [...tables].sort((x, y) => (x.name < y.name ? -1 : 1))) visit(t.name, new Set());
  return out;
}

/** Every row of `table`, by primary key, a page at a time (keyset pagination). */
async function* readTable(db: Knex, engine: Engine, table: BackupTable): AsyncGenerator<Record<string, unknown>> {
  const key = table.primaryKey;
  const select = () => {
    const q = db(table.name).select(table.columns.map((c) => c.name));
    // SQLite: integers exactly, as bigint (a JS number rounds above 2^53).
    return engine === 'sqlite' ? q.options({ safeIntegers: true }) : q;
  };
  if (key.length === 0) {
    yield* (await select().orderBy(table.columns.map((c) => c.name))) as Record<string, unknown>[];
    return;
  }
  let after: unknown[] | null = null;
  for (;;) {
    const q = select().orderBy(key).limit(EXPORT_PAGE);
    if (after) q.whereRaw(`(${key.map(() => '??').join(', ')}) > (${key.map(() => '?').join(', ')})`, [...key, ...after] as Knex.RawBinding[]);
    const page = (await q) as Record<string, unknown>[];
    yield* page;
    if (page.length < EXPORT_PAGE) return;
    const last = page[page.length - 1];
    after = key.map((k) => last[k]);
  }
}

// ---------------------------------------------------------------------------------------------
// Values

function encodeValue(value: unknown, column: BackupColumn, table: string): unknown {
  if (value === null || value === undefined) return null;
  switch (column.type) {
    case 'binary':
      return (value as Buffer).toString('base64');
    case 'boolean':
      return value === true || value === 1 || value === 1n;
    case 'bigint':
      return BigInt(value as string | number | bigint).toString();
    case 'integer': {
      const n = Number(value as number | bigint);
      if (!Number.isSafeInteger(n)) throw new Error(`backup: ${table}.${column.name} holds ${String(value)}, not an integer`);
      return n;
    }
    case 'text':
      return String(value);
  }
}

function decodeValue(value: unknown, column: BackupColumn, table: string): unknown {
  if (value === null) return null;
  const where = `${table}.${column.name}`;
  switch (column.type) {
    case 'binary':
      if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw bad(`${where} must be base64`);
      return Buffer.from(value, 'base64');
    case 'boolean':
      if (typeof value !== 'boolean') throw bad(`${where} must be true or false`);
      return value;
    case 'bigint':
      if (typeof value !== 'string' || !/^-?\d{1,19}$/.test(value)) throw bad(`${where} must be a decimal string`);
      return value;
    case 'integer':
      if (!Number.isSafeInteger(value)) throw bad(`${where} must be an integer`);
      return value;
    case 'text':
      if (typeof value !== 'string') throw bad(`${where} must be a string`);
      return value;
  }
}

// ---------------------------------------------------------------------------------------------
// Restore checks

function parseJson(line: string, what: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    throw bad(`${what} is not JSON`);
  }
}

function parseHeader(line: string): BackupHeader {
  const h = parseJson(line, 'the first line') as Partial<BackupHeader> | null;
  if (!h || typeof h !== 'object' || h.format !== BACKUP_FORMAT) throw bad('this is not a tierca backup (no tierca-backup header)');
  if (h.version !== BACKUP_VERSION) throw bad(`backup format version ${String(h.version)} is not supported (this tierca reads ${BACKUP_VERSION})`);
  const types: readonly string[] = ['text', 'integer', 'bigint', 'boolean', 'binary'];
  const okTables = Array.isArray(h.tables) && h.tables.every((t) =>
    t && typeof t.name === 'string' && Array.isArray(t.columns) && t.columns.every((c) => c && typeof c.name === 'string' && types.includes(c.type)));
  if (!Array.isArray(h.migrations) || !h.migrations.every((m) => typeof m === 'string') || !okTables) throw bad('the backup header is malformed');
  return h as BackupHeader;
}

function parseTrailer(line: string): Trailer {
  const t = parseJson(line, 'the end record') as Partial<Trailer> | null;
  if (!t || t.end !== true || typeof t.sha256 !== 'string' || typeof t.rows !== 'object' || t.rows === null) throw bad('the end record is malformed');
  return t as Trailer;
}

/** The migrations of this tierca that the backup names, in order; refuses names it does not know. */
function migrationsOf(names: string[]): Migration[] {
  names.forEach((name, i) => {
    if (migrations[i]?.name !== name) {
      throw bad(`the backup's schema (${names.join(', ')}) is not one this tierca knows (${migrations.map((m) => m.name).join(', ')}): restore it with the tierca version that made it`);
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

const bad = (message: string): TiercaError => new TiercaError('malformed-input', message);
