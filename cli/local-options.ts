/**
 * Options shared by the commands that work on the server machine itself (`init`, `serve`, `db`):
 * where the data lives and which database to use. They never go through the HTTP API.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';

export interface DatabaseOptionValues {
  data: string;
  databaseUrl?: string;
}

/** Adds `--data` (default env TIERCA_DATA or ./data) and `--database-url` (default env DATABASE_URL). */
export function addDatabaseOptions(cmd: Command, env: Record<string, string | undefined>): Command {
  return cmd
    .option('--data <dir>', 'data folder: the SQLite database tierca.db and the demo tokens (env TIERCA_DATA)', env.TIERCA_DATA || './data')
    .option(
      '--database-url <url>',
      'PostgreSQL URL (postgres://…) instead of SQLite; prefer env DATABASE_URL when it holds a password',
      env.DATABASE_URL || undefined,
    );
}

/** `{ dataDir, databaseUrl }` as server/bootstrap.ts takes them, the folder made absolute. */
export function databaseParams(values: DatabaseOptionValues): { dataDir: string; databaseUrl?: string } {
  return { dataDir: resolve(values.data), ...(values.databaseUrl ? { databaseUrl: values.databaseUrl } : {}) };
}

/** A database URL fit to print: the password replaced by `***`. */
export function redactDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable database URL)';
  }
}
