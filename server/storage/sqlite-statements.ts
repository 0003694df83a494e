/**
 * Prepared SQLite statements kept per connection, by SQL text. Shared by knex's runner
 * (TiercaSqliteClient in knex-store.ts) and the raw executor of the hot path (rows.ts): preparing a
 * statement anew, as knex does, costs about as much as running a small one.
 */
import type { Database, Statement } from 'better-sqlite3';

/**
 * knex's savepoint statements carry a new name each time (`SAVEPOINT trx1061`): caching them would
 * fill the cache and evict the hot statements every few hundred transactions. (The group commit's
 * own savepoint has a fixed name and is cached.)
 */
const ONE_OFF_STATEMENT = /^\s*(SAVEPOINT|RELEASE|ROLLBACK TO)\b(\s+SAVEPOINT)?\s+trx\d+/i;

/** Cleared when full: the set of queries tierca runs is small, so a full cache means one-off SQL. */
const STATEMENT_CACHE_SIZE = 500;

const statementCaches = new WeakMap<Database, Map<string, Statement>>();

/** The prepared statement of `sql` on `connection`: from the cache, or prepared (and kept unless one-off). */
export function cachedStatement(connection: Database, sql: string): Statement {
  let cache = statementCaches.get(connection);
  if (!cache) statementCaches.set(connection, (cache = new Map()));
  let statement = cache.get(sql);
  if (!statement) {
    statement = connection.prepare(sql);
    if (!ONE_OFF_STATEMENT.test(sql)) {
      if (cache.size >= STATEMENT_CACHE_SIZE) cache.clear();
      cache.set(sql, statement);
    }
  }
  return statement;
}
