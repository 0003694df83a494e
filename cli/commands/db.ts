/**
 * `tierca db migrate|status`: the forward-only schema migrations, run on the server machine against
 * SQLite (`<data>/tierca.db`) or PostgreSQL (`--database-url`). `tierca serve` migrates by itself at
 * start; these commands are for deployments that migrate as a separate step and for checking.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { ContextFactory } from '../context.ts';
import { addDatabaseOptions, databaseParams, redactDatabaseUrl, type DatabaseOptionValues } from '../local-options.ts';
import { type Column } from '../output.ts';

interface MigrationState {
  name: string;
  applied: boolean;
}

const COLUMNS: Column<MigrationState>[] = [
  { header: 'migration', value: (m) => m.name },
  { header: 'state', value: (m) => (m.applied ? 'applied' : 'pending'), colour: (s) => (s === 'applied' ? 'green' : 'yellow') },
];

/** The store options for the database, and how to name it in messages (no password). */
function target(opts: DatabaseOptionValues): { store: { databaseUrl: string } | { sqliteFile: string }; label: string; sqliteFile?: string } {
  const { dataDir, databaseUrl } = databaseParams(opts);
  if (databaseUrl) return { store: { databaseUrl }, label: redactDatabaseUrl(databaseUrl) };
  const sqliteFile = join(dataDir, 'tierca.db');
  return { store: { sqliteFile }, label: sqliteFile, sqliteFile };
}

export function register(program: Command, context: ContextFactory): void {
  const db = program.command('db').description('database schema migrations (local, no server needed)');

  addDatabaseOptions(db.command('migrate').description('apply every pending migration'), context.io.env).action(
    async (opts: DatabaseOptionValues, cmd: Command) => {
      const { out } = context(cmd);
      const { store, label, sqliteFile } = target(opts);
      if (sqliteFile) mkdirSync(join(sqliteFile, '..'), { recursive: true, mode: 0o700 });
      const { createKnex } = await import('../../server/storage/knex-store.ts');
      const { migrateLatest } = await import('../../server/storage/migrate.ts');
      const knex = createKnex(store);
      try {
        const applied = await migrateLatest(knex);
        if (out.json) return out.printJson({ database: label, applied });
        out.print(applied.length ? `applied to ${label}: ${applied.join(', ')}` : `${label} is up to date`);
      } finally {
        await knex.destroy();
      }
    },
  );

  addDatabaseOptions(db.command('status').description('list the migrations and whether each is applied (changes nothing)'), context.io.env).action(
    async (opts: DatabaseOptionValues, cmd: Command) => {
      const { out } = context(cmd);
      const { store, label, sqliteFile } = target(opts);
      const { createKnex } = await import('../../server/storage/knex-store.ts');
      const { migrationStatus, migrations } = await import('../../server/storage/migrate.ts');
      let states: MigrationState[];
      if (sqliteFile && !existsSync(sqliteFile)) {
        // Opening SQLite would create the file; a status check must not.
        states = migrations.map((m) => ({ name: m.name, applied: false }));
        if (!out.json) out.note(`no database at ${label} yet (tierca db migrate or tierca init creates it)`);
      } else {
        const knex = createKnex(store);
        try {
          states = await migrationStatus(knex);
        } finally {
          await knex.destroy();
        }
      }
      if (out.json) return out.printJson({ database: label, migrations: states });
      out.print(`database: ${label}`);
      out.table(COLUMNS, states, 'no migrations');
    },
  );
}
