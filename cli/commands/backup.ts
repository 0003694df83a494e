/**
 * `tierca backup` and `tierca restore`: a logical backup of the whole database as JSON lines
 * (server/storage/backup.ts), on the server machine against SQLite (`<data>/tierca.db`) or
 * PostgreSQL (`--database-url`). `backup` writes to stdout and reads one consistent snapshot while
 * servers keep running; `restore` reads stdin into an EMPTY database in one transaction. CA and
 * escrowed keys are in the backup only as stored: sealed under the keystore passphrase.
 *
 *   tierca backup > tierca-2026-11-25.backup
 *   DATABASE_URL=postgres://tierca@db1/tierca tierca restore < tierca-2026-11-25.backup
 */
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import type { ContextFactory } from '../context.ts';
import { CliError, EXIT, usageError } from '../cli-error.ts';
import { addDatabaseOptions, databaseParams, redactDatabaseUrl, type DatabaseOptionValues } from '../local-options.ts';
import type { TextSink } from '../output.ts';
import type { BackupSummary } from '../../server/storage/backup.ts';

/** Bytes gathered before one write to stdout (a write per line would be a system call per row). */
const CHUNK = 64 * 1024;

/** The store options for the database, and how to name it in messages (no password). */
function target(opts: DatabaseOptionValues): { store: { databaseUrl: string } | { sqliteFile: string }; label: string; sqliteFile?: string } {
  const { dataDir, databaseUrl } = databaseParams(opts);
  if (databaseUrl) return { store: { databaseUrl }, label: redactDatabaseUrl(databaseUrl) };
  const sqliteFile = join(dataDir, 'tierca.db');
  return { store: { sqliteFile }, label: sqliteFile, sqliteFile };
}

/** A buffered writer onto `sink` that waits for 'drain' when the sink is a stream that asks for it. */
function bufferedWriter(sink: TextSink): { write(chunk: string): Promise<void>; flush(): Promise<void> } {
  let buffered: string[] = [];
  let size = 0;
  const flush = () =>
    new Promise<void>((resolve) => {
      const text = buffered.join('');
      buffered = [];
      size = 0;
      if (!text) return resolve();
      const stream = sink as TextSink & { once?: (event: 'drain', cb: () => void) => unknown };
      if (sink.write(text) === false && typeof stream.once === 'function') stream.once('drain', resolve);
      else resolve();
    });
  return {
    async write(chunk) {
      buffered.push(chunk);
      size += chunk.length;
      if (size >= CHUNK) await flush();
    },
    flush,
  };
}

function describe(summary: BackupSummary): string {
  const tables = Object.keys(summary.rows).length;
  const rows = Object.values(summary.rows).reduce((a, b) => a + b, 0);
  return `schema ${summary.migrations.at(-1) ?? '(none)'}, ${tables} tables, ${rows} rows (${summary.rows.certificates ?? 0} certificates, ${summary.rows.audit_log ?? 0} audit records)`;
}

export function register(program: Command, context: ContextFactory): void {
  const env = context.io.env;

  addDatabaseOptions(
    program
      .command('backup')
      .description('write a backup of the database to stdout: every table as JSON lines, keys still sealed (local, no server needed)'),
    env,
  ).action(async (opts: DatabaseOptionValues, cmd: Command) => {
    const { io, out } = context(cmd);
    if (io.stdout.isTTY) throw usageError('the backup is written to stdout: redirect it to a file (tierca backup > tierca.backup)');
    const { store, label, sqliteFile } = target(opts);
    // Opening SQLite would create an empty file; a backup of nothing is a mistake.
    if (sqliteFile && !existsSync(sqliteFile)) throw new CliError(`no database at ${label} (give --data or --database-url)`, EXIT.notFound);
    const { createKnex } = await import('../../server/storage/knex-store.ts');
    const { exportBackup } = await import('../../server/storage/backup.ts');
    const knex = createKnex(store);
    try {
      const writer = bufferedWriter(io.stdout);
      const summary = await exportBackup({ knex, write: (chunk) => writer.write(chunk), now: new Date() });
      await writer.flush();
      out.note(`backed up ${label}: ${describe(summary)}`);
    } finally {
      await knex.destroy();
    }
  });

  addDatabaseOptions(
    program
      .command('restore')
      .description('restore a backup from stdin into an empty database, in one transaction (local, no server needed)'),
    env,
  ).action(async (opts: DatabaseOptionValues, cmd: Command) => {
    const { io, out } = context(cmd);
    if (io.stdin.isTTY) throw usageError('restore reads the backup from stdin: tierca restore < tierca.backup');
    const { store, label, sqliteFile } = target(opts);
    if (sqliteFile) mkdirSync(dirname(sqliteFile), { recursive: true, mode: 0o700 });
    const { createKnex } = await import('../../server/storage/knex-store.ts');
    const { restoreBackup } = await import('../../server/storage/backup.ts');
    const knex = createKnex(store);
    let summary: BackupSummary;
    try {
      summary = await restoreBackup({ knex, lines: createInterface({ input: io.stdin, crlfDelay: Infinity }) });
    } finally {
      await knex.destroy();
    }
    if (sqliteFile) {
      // It holds sealed keys and token hashes: owner only, as `tierca init` leaves it.
      for (const suffix of ['', '-wal', '-shm']) if (existsSync(`${sqliteFile}${suffix}`)) chmodSync(`${sqliteFile}${suffix}`, 0o600);
    }
    if (out.json) return out.printJson({ database: label, ...summary });
    out.print(`restored into ${label}: ${describe(summary)}`);
    out.print('start it with `tierca serve` and the keystore passphrase of the original.');
  });
}
