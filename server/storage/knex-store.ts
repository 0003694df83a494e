/**
 * The knex {@link Store}: SQLite (better-sqlite3, the embedded default) or PostgreSQL (`pg`), the same
 * repositories and migrations on both. See docs/decisions/0001-storage.md for the choices made here.
 *
 * SQLite specifics, all set on each new connection and in the client below:
 * - pragmas journal_mode=WAL (readers never block the writer), foreign_keys=ON, and for a store opened
 *   by {@link openStore} on a file synchronous=NORMAL with the WAL fsynced off the JavaScript thread
 *   (wal-sync.ts, decision 0030): every statement or transaction that commits resolves only once its
 *   commit is on disk, as with synchronous=FULL, which a bare {@link createKnex} keeps;
 * - every transaction starts with BEGIN IMMEDIATE, so it holds the file's write lock from its first
 *   statement: a read-then-write (the audit chain) cannot interleave with another connection's,
 *   whether in this process or in another one sharing the file;
 * - a locked database is waited for asynchronously (up to {@link SQLITE_BUSY_TIMEOUT_MS}) instead of
 *   by SQLite's busy handler, which sleeps on the one JavaScript thread: that would stall every other
 *   request of the process and can never succeed when the lock holder is another store of the same
 *   process waiting for its turn on that thread.
 */
import { createRequire } from 'node:module';
import knexFactory, { type Knex } from 'knex';
import BetterSqlite3, { type Database } from 'better-sqlite3';
import type { Repositories, Store } from './storage.ts';
import { migrateLatest } from './migrate.ts';
import { dbContext, type DbContext, type Engine } from './rows.ts';
import { cachedStatement } from './sqlite-statements.ts';
import { WalSyncer, type DurableSync } from './wal-sync.ts';
import { FALLBACK_AUTOCHECKPOINT_PAGES, WalCheckpointer } from './wal-checkpointer.ts';
import { KnexMetaRepository } from './meta.repository.knex.ts';
import { KnexDomainRepository } from './domain.repository.knex.ts';
import { KnexOrganRepository } from './organ.repository.knex.ts';
import { KnexKeyRepository } from './key.repository.knex.ts';
import { KnexCaRepository } from './ca.repository.knex.ts';
import { KnexSubjectRepository } from './subject.repository.knex.ts';
import { KnexCertificateRepository } from './certificate.repository.knex.ts';
import { KnexEscrowRepository } from './escrow.repository.knex.ts';
import { KnexRequestRepository } from './request.repository.knex.ts';
import { KnexPrincipalRepository } from './principal.repository.knex.ts';
import { KnexTokenRepository } from './token.repository.knex.ts';
import { KnexAuditRepository } from './audit.repository.knex.ts';
import { KnexAuditCheckpointRepository } from './audit-checkpoint.repository.knex.ts';
import { KnexOcspResponseRepository } from './ocsp-response.repository.knex.ts';
import { KnexResponderRepository } from './responder.repository.knex.ts';
import { KnexCrlRepository } from './crl.repository.knex.ts';
import { KnexRevocationEventRepository } from './revocation-event.repository.knex.ts';
import { KnexCaLinkRepository, KnexRenewalRepository, KnexRotationRequestRepository } from './rotation.repository.knex.ts';
import { KnexOfflineRootRepository } from './offline-root.repository.knex.ts';

/** Where the store lives. */
export interface StoreOptions {
  /** `postgres://…` or `postgresql://…`: use PostgreSQL. Takes precedence over `sqliteFile`. */
  databaseUrl?: string;
  /** The SQLite database file (the default engine); `':memory:'` is allowed. */
  sqliteFile?: string;
  /** PostgreSQL only: the schema to work in (tables and migrations); created if missing. */
  searchPath?: string;
  /**
   * SQLite files only: what every commit waits for before it resolves (default: a {@link WalSyncer}
   * on the file). Tests inject one to hold or fail the fsync.
   */
  durableSync?: DurableSync;
}

/** How long a statement waits for another connection's write lock before failing with SQLITE_BUSY. */
export const SQLITE_BUSY_TIMEOUT_MS = 5000;

/** Connections of the PostgreSQL pool of one store (one instance of the server). */
const PG_POOL_MAX = 10;

// knex does not export its dialect classes; load the better-sqlite3 client and its transaction to
// extend them. They are CommonJS classes with no type declarations.
type AnyClass = new (...args: any[]) => any;
const requireCjs = createRequire(import.meta.url);
const BetterSqlite3Client = requireCjs('knex/lib/dialects/better-sqlite3/index.js') as AnyClass;
const SqliteTransaction = requireCjs('knex/lib/dialects/sqlite3/execution/sqlite-transaction.js') as AnyClass;

/** A transaction that takes the write lock up front (https://sqlite.org/lang_transaction.html). */
class ImmediateSqliteTransaction extends SqliteTransaction {
  begin(conn: Database): Promise<unknown> {
    return this.query(conn, 'BEGIN IMMEDIATE;');
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** SQLITE_BUSY (another connection holds the write lock) or SQLITE_BUSY_RECOVERY: safe to retry as is. */
function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_RECOVERY';
}

/**
 * knex's better-sqlite3 client with BEGIN IMMEDIATE transactions and an asynchronous busy wait.
 * Retrying a statement that failed with SQLITE_BUSY is safe: it did nothing. With BEGIN IMMEDIATE the
 * only statements that meet a held lock are BEGIN itself and autocommit writes; COMMIT in WAL mode
 * does not wait for readers (and SQLite documents that a busy COMMIT may be retried).
 */
class TiercaSqliteClient extends BetterSqlite3Client {
  transaction(...args: unknown[]): unknown {
    return new ImmediateSqliteTransaction(this, ...args);
  }

  /** Set by createKnex: the connection runs synchronous=NORMAL and commits wait for this. */
  private get durableSync(): DurableSync | undefined {
    return (this.config as { tiercaDurableSync?: DurableSync }).tiercaDurableSync;
  }

  /**
   * Runs a statement (retrying SQLITE_BUSY) and, when it committed — a COMMIT (or ROLLBACK) that ended
   * a transaction, or a write outside one — resolves only once the commit is durable. Every commit of
   * the writer connection passes here: knex sends BEGIN, COMMIT and ROLLBACK through `_query`, and
   * rows.ts runs statements on the connection directly only inside a transaction.
   */
  async _query(connection: Database, obj: SqliteQuery): Promise<SqliteQuery> {
    const wasInTransaction = connection.inTransaction;
    const result = await this.runWithBusyRetry(connection, obj);
    const sync = this.durableSync;
    if (sync && !connection.inTransaction && (wasInTransaction || result.writes)) await sync.sync();
    return result;
  }

  private async runWithBusyRetry(connection: Database, obj: SqliteQuery): Promise<SqliteQuery> {
    const deadline = performance.now() + SQLITE_BUSY_TIMEOUT_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        return this.runStatement(connection, obj);
      } catch (err) {
        if (!isBusy(err) || performance.now() >= deadline) throw err;
        // Exponential backoff from 1 ms to 25 ms with jitter, so waiting writers do not move in step.
        await sleep(Math.min(2 ** attempt, 25) * (0.5 + Math.random()));
      }
    }
  }

  /**
   * knex's better-sqlite3 `_query`, with prepared statements kept per connection (sqlite-statements.ts).
   */
  private runStatement(connection: Database, obj: SqliteQuery): SqliteQuery {
    if (!obj.sql) throw new Error('The query is empty');
    const statement = cachedStatement(connection, obj.sql);
    statement.safeIntegers(obj.options?.safeIntegers === true);
    const bindings = this._formatBindings(obj.bindings) as unknown[];
    obj.writes = !statement.readonly;
    if (statement.reader) {
      obj.response = statement.all(bindings);
      return obj;
    }
    const result = statement.run(bindings);
    obj.response = result;
    obj.context = { lastID: result.lastInsertRowid, changes: result.changes };
    return obj;
  }
}

/** What knex hands a client's `_query`, and what it reads back from it. */
interface SqliteQuery {
  sql: string;
  bindings?: unknown[];
  options?: { safeIntegers?: boolean };
  response?: unknown;
  context?: { lastID: number | bigint; changes: number };
  /** The statement may change the database (better-sqlite3's `readonly` is false; BEGIN/COMMIT count as read-only). */
  writes?: boolean;
}

/**
 * Sets a new SQLite connection up; runs once per connection (pool `afterCreate`). With `durableSync`
 * the WAL is fsynced by it after each commit (synchronous=NORMAL), otherwise by SQLite in each COMMIT
 * (synchronous=FULL): either way a commit is on disk before it is acknowledged.
 */
function prepareSqliteConnection(conn: Database, durableSync: DurableSync | undefined, backgroundCheckpoints: boolean): void {
  // better-sqlite3 opens with a 5 s busy timeout; keep it while setting up (switching a fresh file to
  // WAL needs a moment of exclusive access), then hand waiting over to TiercaSqliteClient._query.
  switchToWal(conn);
  conn.pragma(durableSync ? 'synchronous = NORMAL' : 'synchronous = FULL');
  conn.pragma('foreign_keys = ON');
  // Checkpoints run on the checkpointer's thread; SQLite's own (inside a COMMIT) only if it falls behind.
  if (backgroundCheckpoints) conn.pragma(`wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT_PAGES}`);
  conn.pragma('busy_timeout = 0');
}

/**
 * `journal_mode = WAL`, retried while SQLite answers SQLITE_BUSY: two processes opening a fresh file
 * at once can each hold a shared lock and want the exclusive one, and SQLite then refuses one of them
 * at once, without its busy handler (it would deadlock otherwise). Seen in CI once in the
 * two-writer-processes storage test. Waits 25 ms between tries, up to 5 s in all, on this thread (a
 * connection is being set up; nothing else can use it yet).
 */
export function switchToWal(conn: Pick<Database, 'pragma'>): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let waited = 0; ; waited += 25) {
    try {
      conn.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || waited >= 5000) throw err;
      Atomics.wait(pause, 0, 0, 25);
    }
  }
}

/** The engine `options` select: PostgreSQL for a postgres:// URL, otherwise SQLite. */
export function engineOf(options: StoreOptions): Engine {
  return options.databaseUrl && /^postgres(ql)?:\/\//.test(options.databaseUrl) ? 'postgres' : 'sqlite';
}

/**
 * A knex instance for `options`, configured as described above; does not connect or migrate. On
 * SQLite it commits with synchronous=FULL unless given `durableSync` (which {@link openStore} passes).
 */
export function createKnex(options: StoreOptions, durableSync?: DurableSync, backgroundCheckpoints = false): Knex {
  if (engineOf(options) === 'postgres') {
    return knexFactory({
      client: 'pg',
      connection: options.databaseUrl,
      searchPath: options.searchPath ? [options.searchPath] : undefined,
      pool: { min: 0, max: PG_POOL_MAX },
    });
  }
  if (options.databaseUrl) throw new Error(`databaseUrl must start with postgres:// or postgresql:// (got ${options.databaseUrl.split(':')[0]}:)`);
  if (!options.sqliteFile) throw new Error('a store needs databaseUrl (PostgreSQL) or sqliteFile (SQLite)');
  const memory = options.sqliteFile === ':memory:';
  const config = {
    client: TiercaSqliteClient as unknown as typeof Knex.Client,
    connection: { filename: options.sqliteFile },
    useNullAsDefault: true,
    tiercaDurableSync: memory ? undefined : durableSync,
    // One connection: SQLite has one writer anyway, and queuing here is cheaper than lock retries.
    pool: {
      min: 1,
      max: 1,
      afterCreate: (conn: Database, done: (err: Error | null, conn: Database) => void) => {
        try {
          prepareSqliteConnection(conn, memory ? undefined : durableSync, !memory && backgroundCheckpoints);
          done(null, conn);
        } catch (err) {
          done(err as Error, conn);
        }
      },
    },
  };
  return knexFactory(config);
}

/** Every repository over `ctx`. */
export function createRepositories(ctx: DbContext): Repositories {
  return {
    meta: new KnexMetaRepository(ctx),
    domains: new KnexDomainRepository(ctx),
    organs: new KnexOrganRepository(ctx),
    keys: new KnexKeyRepository(ctx),
    cas: new KnexCaRepository(ctx),
    subjects: new KnexSubjectRepository(ctx),
    certificates: new KnexCertificateRepository(ctx),
    escrow: new KnexEscrowRepository(ctx),
    requests: new KnexRequestRepository(ctx),
    principals: new KnexPrincipalRepository(ctx),
    tokens: new KnexTokenRepository(ctx),
    audit: new KnexAuditRepository(ctx),
    auditCheckpoints: new KnexAuditCheckpointRepository(ctx),
    ocspResponses: new KnexOcspResponseRepository(ctx),
    responders: new KnexResponderRepository(ctx),
    crls: new KnexCrlRepository(ctx),
    revocationEvents: new KnexRevocationEventRepository(ctx),
    renewals: new KnexRenewalRepository(ctx),
    caLinks: new KnexCaLinkRepository(ctx),
    rotationRequests: new KnexRotationRequestRepository(ctx),
    offlineRoot: new KnexOfflineRootRepository(ctx),
  };
}

/** The knex Store: its own repositories run on the pool; `transaction` binds a fresh set to one trx. */
class KnexStore implements Store {
  readonly meta;
  readonly domains;
  readonly organs;
  readonly keys;
  readonly cas;
  readonly subjects;
  readonly certificates;
  readonly escrow;
  readonly requests;
  readonly principals;
  readonly tokens;
  readonly audit;
  readonly auditCheckpoints;
  readonly ocspResponses;
  readonly responders;
  readonly crls;
  readonly revocationEvents;
  readonly renewals;
  readonly caLinks;
  readonly rotationRequests;
  readonly offlineRoot;

  constructor(
    readonly knex: Knex,
    readonly engine: Engine,
    /** SQLite files only: a read-only connection for reads outside transactions (see dbContext). */
    private readonly reader?: Database,
    /** SQLite files only: the syncer the commits of `knex` wait for. */
    private readonly durableSync?: DurableSync,
    private readonly checkpointer?: WalCheckpointer,
  ) {
    const repos = createRepositories(dbContext(knex, engine, reader));
    this.meta = repos.meta;
    this.domains = repos.domains;
    this.organs = repos.organs;
    this.keys = repos.keys;
    this.cas = repos.cas;
    this.subjects = repos.subjects;
    this.certificates = repos.certificates;
    this.escrow = repos.escrow;
    this.requests = repos.requests;
    this.principals = repos.principals;
    this.tokens = repos.tokens;
    this.audit = repos.audit;
    this.auditCheckpoints = repos.auditCheckpoints;
    this.ocspResponses = repos.ocspResponses;
    this.responders = repos.responders;
    this.crls = repos.crls;
    this.revocationEvents = repos.revocationEvents;
    this.renewals = repos.renewals;
    this.caLinks = repos.caLinks;
    this.rotationRequests = repos.rotationRequests;
    this.offlineRoot = repos.offlineRoot;
  }

  /**
   * Runs `fn` in one transaction with repositories bound to it. Inside `fn` use only `tx`: on SQLite
   * the transaction holds the store's one connection, so the store's own repositories would wait for it.
   */
  transaction<T>(fn: (tx: Repositories) => Promise<T>): Promise<T> {
    return this.knex.transaction((trx) => fn(createRepositories(dbContext(trx, this.engine))));
  }

  /**
   * One transaction, a savepoint per unit. The savepoints are plain SQL with one fixed name (units run
   * one after the other, so they never nest), not knex's nested transactions: those build a knex
   * instance and two never-reused statements per unit (~40 µs of an issuance's CPU). A unit's
   * repositories run on the outer transaction, inside its savepoint.
   */
  transactionBatch<T>(units: readonly ((tx: Repositories) => Promise<T>)[]): Promise<PromiseSettledResult<T>[]> {
    return this.knex.transaction(async (trx) => {
      const outer = dbContext(trx, this.engine);
      const results: PromiseSettledResult<T>[] = [];
      for (const unit of units) {
        await outer.sql.run('SAVEPOINT tierca_unit');
        try {
          const value = await unit(createRepositories(outer));
          await outer.sql.run('RELEASE SAVEPOINT tierca_unit');
          results.push({ status: 'fulfilled', value });
        } catch (reason) {
          await outer.sql.run('ROLLBACK TO SAVEPOINT tierca_unit');
          await outer.sql.run('RELEASE SAVEPOINT tierca_unit');
          results.push({ status: 'rejected', reason });
        }
      }
      return results;
    });
  }

  async close(): Promise<void> {
    this.reader?.close();
    await this.knex.destroy();
    await this.durableSync?.close();
    await this.checkpointer?.close();
  }
}

/**
 * Opens a store: connects, creates the PostgreSQL schema named by `searchPath` if missing, applies
 * pending migrations (safe when several processes start at once), and returns the {@link Store}.
 */
export async function openStore(options: StoreOptions): Promise<Store> {
  const engine = engineOf(options);
  const file = engine === 'sqlite' && options.sqliteFile !== ':memory:' ? options.sqliteFile : undefined;
  // A syncer injected by a test comes without the checkpointer: SQLite then checkpoints as usual.
  const checkpointer = file && !options.durableSync ? new WalCheckpointer(file) : undefined;
  const durableSync = file ? (options.durableSync ?? new WalSyncer(file, undefined, (bytes) => checkpointer!.walSize(bytes))) : undefined;
  const knex = createKnex(options, durableSync, !!checkpointer);
  try {
    if (engine === 'postgres' && options.searchPath) await createSchemaIfMissing(knex, options.searchPath);
    await migrateLatest(knex);
    // Let SQLite gather the statistics its planner needs (a query on certificates once picked the
    // wrong index without them); cheap when nothing changed (https://sqlite.org/pragma.html#pragma_optimize).
    if (engine === 'sqlite') await knex.raw('PRAGMA optimize');
  } catch (err) {
    await knex.destroy();
    await durableSync?.close();
    await checkpointer?.close();
    throw err;
  }
  return new KnexStore(knex, engine, engine === 'sqlite' ? openReader(options.sqliteFile!) : undefined, durableSync, checkpointer);
}

/** The knex instance behind a store made by {@link openStore} (for tests and the `db` CLI commands). */
export function knexOf(store: Store): Knex {
  if (!(store instanceof KnexStore)) throw new TypeError('not a knex store');
  return store.knex;
}

/**
 * A read-only connection to a SQLite file, for the hot reads outside transactions (authentication,
 * the subject of an issuance). In WAL mode it reads the last committed state without waiting for the
 * writer connection, which a group commit holds across many statements. None for ':memory:' (a
 * second connection would open another, empty database).
 */
function openReader(file: string): Database | undefined {
  if (file === ':memory:' || file === '') return undefined;
  const reader = new BetterSqlite3(file, { readonly: true, fileMustExist: true });
  // Readers in WAL mode wait only while a connection recovers the WAL (after a crash): rare and short.
  reader.pragma('busy_timeout = 1000');
  return reader;
}

async function createSchemaIfMissing(knex: Knex, schema: string): Promise<void> {
  try {
    await knex.raw('create schema if not exists ??', [schema]);
  } catch (err) {
    // Two processes creating it at once: one meets the other's catalog row (23505) or schema (42P06).
    const code = (err as { code?: string }).code;
    if (code !== '23505' && code !== '42P06') throw err;
  }
}
