/**
 * Row ↔ record conversion shared by the knex repositories, and the one place that knows how each
 * engine returns a value: SQLite gives booleans as 0/1 and integers as numbers (or bigints when asked),
 * PostgreSQL gives bigint columns and aggregates as strings. Times are ISO-8601 UTC text with
 * milliseconds, lists and objects are JSON text (see migrations/0001_initial.ts). Also the raw-SQL
 * executor of the hot path ({@link SqlExecutor}).
 */
import type { Knex } from 'knex';
import type { Database, Statement } from 'better-sqlite3';
import { UniqueViolationError } from './storage.ts';
import { cachedStatement } from './sqlite-statements.ts';

export type Engine = 'sqlite' | 'postgres';

/** What a repository runs its statements on: the store's knex, or one transaction of it. */
export interface DbContext {
  readonly db: Knex;
  readonly engine: Engine;
  /** Fixed SQL on the same connection or transaction as `db`, without the query builder. */
  readonly sql: SqlExecutor;
}

/**
 * Runs fixed SQL text with `?` placeholders on a context's connection or transaction.
 *
 * Why it exists: issuance is CPU-bound (issue #3) and knex's query builder costs ~30 µs of CPU to
 * build and compile each statement. Measured on `subjects.get`: 36 µs wall / 57 µs CPU through the
 * builder, 11 µs through `knex.raw`, 3.6 µs as a cached better-sqlite3 statement; an issuance runs about
 * ten statements and every API call authenticates. So the statements of issuance and authentication
 * are SQL constants run here; every other method (lists, filters, admin) keeps the builder.
 * - SQLite inside a transaction: the cached prepared statement runs straight on the transaction's
 *   connection. The transaction took the write lock with BEGIN IMMEDIATE, so no busy wait is needed.
 * - Otherwise (SQLite outside a transaction, PostgreSQL always): `knex.raw`, which skips the builder
 *   but keeps knex's runner: SQLite statements still queue for the one connection and get the busy
 *   retry of TiercaSqliteClient, and PostgreSQL gets `$1, $2, …` for the `?` and the pool.
 * Values go in as the builder would write them (see the converters below); rows come back as the
 * driver returns them, the same rows the builder returned.
 */
export interface SqlExecutor {
  /** Every row the statement returns. */
  all(sql: string, params?: readonly unknown[]): Promise<Row[]>;
  /** The first row the statement returns, or undefined (write `LIMIT 1` where several may match). */
  first(sql: string, params?: readonly unknown[]): Promise<Row | undefined>;
  /** Runs a statement for its effect; resolves to the number of rows it changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
}

/**
 * The context of `db` (the store's knex or a transaction of it), with the executor that suits it.
 * `reader`: the store's read-only SQLite connection, if it has one; reads outside a transaction
 * run on it directly (see SqliteReaderSql).
 */
export function dbContext(db: Knex, engine: Engine, reader?: Database): DbContext {
  let sql: SqlExecutor;
  if (engine === 'sqlite' && db.isTransaction) sql = new SqliteTransactionSql(db as Knex.Transaction);
  else if (engine === 'sqlite' && reader) sql = new SqliteReaderSql(reader, new KnexRawSql(db, engine));
  else sql = new KnexRawSql(db, engine);
  return { db, engine, sql };
}

/**
 * SQLite outside a transaction: a read-only statement runs on the store's read-only connection, which
 * sees every committed transaction (WAL) and does not queue behind the writer connection; anything
 * that writes (better-sqlite3 knows from the prepared statement) goes to the writer through knex.
 */
class SqliteReaderSql implements SqlExecutor {
  constructor(
    private readonly reader: Database,
    private readonly writer: SqlExecutor,
  ) {}

  async all(sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    const statement = this.readOnly(sql);
    return statement ? (statement.all(sqliteBindings(params)) as Row[]) : this.writer.all(sql, params);
  }

  async first(sql: string, params: readonly unknown[] = []): Promise<Row | undefined> {
    const statement = this.readOnly(sql);
    return statement ? (statement.get(sqliteBindings(params)) as Row | undefined) : this.writer.first(sql, params);
  }

  run(sql: string, params: readonly unknown[] = []): Promise<number> {
    return this.writer.run(sql, params);
  }

  private readOnly(sql: string): Statement | undefined {
    // Preparing a write on a read-only connection is allowed (running it is not): `readonly` tells.
    const statement = cachedStatement(this.reader, sql);
    return statement.readonly ? statement : undefined;
  }
}

/** `knex.raw`: one compile of the SQL text, then knex's runner and pool as for any query. */
class KnexRawSql implements SqlExecutor {
  constructor(
    private readonly db: Knex,
    private readonly engine: Engine,
  ) {}

  async all(sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    const result = await this.db.raw(sql, params as Knex.RawBinding[]);
    // pg returns its Result ({ rows }); better-sqlite3 returns the rows, or a RunResult for a statement
    // that returns none.
    if (this.engine === 'postgres') return (result as { rows: Row[] }).rows;
    return Array.isArray(result) ? (result as Row[]) : [];
  }

  async first(sql: string, params: readonly unknown[] = []): Promise<Row | undefined> {
    return (await this.all(sql, params))[0];
  }

  async run(sql: string, params: readonly unknown[] = []): Promise<number> {
    const result = await this.db.raw(sql, params as Knex.RawBinding[]);
    if (this.engine === 'postgres') return (result as { rowCount: number | null }).rowCount ?? 0;
    return Array.isArray(result) ? 0 : (result as { changes: number }).changes;
  }
}

/**
 * A SQLite transaction's (or savepoint's) own connection, with the per-connection statement cache.
 * knex's transaction client hands out the connection it holds; it is asked once per transaction.
 */
class SqliteTransactionSql implements SqlExecutor {
  private connection: Database | undefined;

  constructor(private readonly trx: Knex.Transaction) {}

  async all(sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    return (await this.statement(sql)).all(sqliteBindings(params)) as Row[];
  }

  async first(sql: string, params: readonly unknown[] = []): Promise<Row | undefined> {
    return (await this.statement(sql)).get(sqliteBindings(params)) as Row | undefined;
  }

  async run(sql: string, params: readonly unknown[] = []): Promise<number> {
    return (await this.statement(sql)).run(sqliteBindings(params)).changes;
  }

  private async statement(sql: string): Promise<Statement> {
    // The check knex's transaction client makes before every query: once the transaction has ended,
    // a statement on its connection would run outside it, or inside the next transaction.
    if (this.trx.isCompleted()) throw new Error(`Transaction query already complete: ${sql}`);
    this.connection ??= (await this.trx.client.acquireConnection()) as Database;
    const statement = cachedStatement(this.connection, sql);
    // The cache is shared with knex's runner, which turns safe integers on for some statements.
    statement.safeIntegers(false);
    return statement;
  }
}

/** Bindings as knex's better-sqlite3 client formats them (Date → ms, boolean → 0/1); undefined is refused as knex does. */
function sqliteBindings(params: readonly unknown[]): unknown[] {
  return params.map((value, i) => {
    if (value === undefined) throw new Error(`Undefined binding detected at index ${i}`);
    if (value instanceof Date) return value.valueOf();
    if (typeof value === 'boolean') return Number(value);
    return value;
  });
}

/** A raw row as a driver returns it. */
export type Row = Record<string, unknown>;

/** A Date as stored: `toISOString()` ('2026-11-25T12:00:00.000Z'), which sorts as text. */
export const iso = (date: Date): string => date.toISOString();

export const isoOrNull = (date: Date | null): string | null => (date === null ? null : date.toISOString());

export const toDate = (value: unknown): Date => new Date(value as string);

export const toDateOrNull = (value: unknown): Date | null => (value === null || value === undefined ? null : new Date(value as string));

export const toJson = (value: unknown): string => JSON.stringify(value);

export function fromJson<T>(value: unknown): T {
  return JSON.parse(value as string) as T;
}

export const fromJsonOrNull = <T>(value: unknown): T | null => (value === null || value === undefined ? null : fromJson<T>(value));

/** A boolean column: SQLite stores 0/1 (or 0n/1n with safe integers), PostgreSQL returns booleans. */
export const toBool = (value: unknown): boolean => value === true || value === 1 || value === 1n;

/** An integer column or aggregate: PostgreSQL returns bigint and count() as strings. */
export const toNumber = (value: unknown): number => (typeof value === 'number' ? value : Number(value));

export const toNumberOrNull = (value: unknown): number | null => (value === null || value === undefined ? null : toNumber(value));

/** A bigint column read exactly: a string (PostgreSQL) or a bigint (SQLite with safe integers). */
export const toBigInt = (value: unknown): bigint => BigInt(value as string | number | bigint);

export const toBigIntOrNull = (value: unknown): bigint | null => (value === null || value === undefined ? null : toBigInt(value));

/** A binary column: both drivers return a Buffer; copy nothing. */
export const toBuffer = (value: unknown): Buffer => value as Buffer;

export const toBufferOrNull = (value: unknown): Buffer | null => (value === null || value === undefined ? null : (value as Buffer));

/** True for a unique or primary-key violation of either engine. */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/**
 * Inserts one row in a single statement, throwing {@link UniqueViolationError} when a unique key
 * already holds it. The statement is `INSERT … ON CONFLICT DO NOTHING RETURNING <key>`: a conflict
 * inserts nothing and returns no row, and — unlike a failed INSERT — does not abort the enclosing
 * PostgreSQL transaction, so a caller may retry with another serial in the same transaction.
 * A unique error raised anyway (e.g. by a driver that ignores the clause) is mapped the same way.
 */
export async function insertUnique(ctx: DbContext, table: string, row: Row, key: string, what: () => string): Promise<void> {
  await mapUniqueViolation(() => ctx.db(table).insert(row).onConflict().ignore().returning(key), what);
}

/**
 * {@link insertUnique} for the hot path: `sql` is the whole `INSERT … ON CONFLICT DO NOTHING
 * RETURNING <key>` statement, run by the context's {@link SqlExecutor}.
 */
export async function insertUniqueSql(ctx: DbContext, sql: string, params: readonly unknown[], what: () => string): Promise<void> {
  await mapUniqueViolation(() => ctx.sql.all(sql, params), what);
}

async function mapUniqueViolation(insert: () => Promise<unknown[]>, what: () => string): Promise<void> {
  let inserted: unknown[];
  try {
    inserted = await insert();
  } catch (err) {
    if (isUniqueViolation(err)) throw new UniqueViolationError(`${what()} already exists`);
    throw err;
  }
  if (inserted.length === 0) throw new UniqueViolationError(`${what()} already exists`);
}

/**
 * Runs `fn` inside a transaction: the context's own when it is bound to one, otherwise a new one on
 * the store's knex (used by the few methods that must read and write atomically).
 */
export function inTransaction<T>(ctx: DbContext, fn: (tx: DbContext) => Promise<T>): Promise<T> {
  if (ctx.db.isTransaction) return fn(ctx);
  return ctx.db.transaction((trx) => fn(dbContext(trx, ctx.engine)));
}
