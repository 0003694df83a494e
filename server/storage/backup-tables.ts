/**
 * The database as a backup (backup.ts) sees it: the application tables, each column's backup type,
 * the tables in foreign-key order, every row a page at a time, and how a value is written to and read
 * from a backup line. The same on SQLite and PostgreSQL.
 */
import type { Knex } from 'knex';
import { TiercaError } from '../errors.ts';
import type { Engine } from './rows.ts';

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

/** knex's own bookkeeping; the header's `migrations` stands for it. */
const BOOKKEEPING = new Set(['knex_migrations', 'knex_migrations_lock']);

/** Rows read per query when exporting (keyset pages, so memory stays flat on big tables). */
const EXPORT_PAGE = 1000;

/** Application tables with their columns, primary keys, in foreign-key order (referenced first). */
export async function describeTables(db: Knex, engine: Engine): Promise<BackupTable[]> {
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
export async function* readTable(db: Knex, engine: Engine, table: BackupTable): AsyncGenerator<Record<string, unknown>> {
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

export function encodeValue(value: unknown, column: BackupColumn, table: string): unknown {
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

export function decodeValue(value: unknown, column: BackupColumn, table: string): unknown {
  if (value === null) return null;
  const where = `${table}.${column.name}`;
  switch (column.type) {
    case 'binary':
      if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw malformedBackup(`${where} must be base64`);
      return Buffer.from(value, 'base64');
    case 'boolean':
      if (typeof value !== 'boolean') throw malformedBackup(`${where} must be true or false`);
      return value;
    case 'bigint':
      if (typeof value !== 'string' || !/^-?\d{1,19}$/.test(value)) throw malformedBackup(`${where} must be a decimal string`);
      return value;
    case 'integer':
      if (!Number.isSafeInteger(value)) throw malformedBackup(`${where} must be an integer`);
      return value;
    case 'text':
      if (typeof value !== 'string') throw malformedBackup(`${where} must be a string`);
      return value;
  }
}

/** A backup that cannot be read as one: `malformed-input`, with what is wrong. */
export const malformedBackup = (message: string): TiercaError => new TiercaError('malformed-input', message);
