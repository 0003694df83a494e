/**
 * Row ↔ record conversion shared by the knex repositories, and the one place that knows how each
 * engine returns a value: SQLite gives booleans as 0/1 and integers as numbers (or bigints when asked),
 * PostgreSQL gives bigint columns and aggregates as strings. Times are ISO-8601 UTC text with
 * milliseconds, lists and objects are JSON text (see migrations/0001_initial.ts).
 */
import type { Knex } from 'knex';
import { UniqueViolationError } from './storage.ts';

export type Engine = 'sqlite' | 'postgres';

/** What a repository runs its statements on: the store's knex, or one transaction of it. */
export interface DbContext {
  readonly db: Knex;
  readonly engine: Engine;
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
  let inserted: unknown[];
  try {
    inserted = await ctx.db(table).insert(row).onConflict().ignore().returning(key);
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
export function inTransaction<T>(ctx: DbContext, fn: (trx: Knex) => Promise<T>): Promise<T> {
  if (ctx.db.isTransaction) return fn(ctx.db);
  return ctx.db.transaction((trx) => fn(trx));
}
