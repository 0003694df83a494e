/**
 * `tierca serve`: open the database, unlock the keystore and serve the API, OCSP and CRLs until
 * SIGINT or SIGTERM. On an empty SQLite data folder with no passphrase given it builds the demo
 * hierarchy (server/bootstrap.ts says so loudly).
 */
import { InvalidArgumentError, type Command } from 'commander';
import { usageError } from '../cli-error.ts';
import type { ContextFactory } from '../context.ts';
import { addDatabaseOptions, databaseParams, type DatabaseOptionValues } from '../local-options.ts';
import { promptHidden, readPassphraseFile } from '../passphrase.ts';

interface ServeOptions extends DatabaseOptionValues {
  port?: number;
  host: string;
  passphraseFile?: string;
}

const port = (value: string): number => {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError('expected a TCP port, 0 to 65535.');
  return Number(value);
};

export function register(program: Command, context: ContextFactory): void {
  const env = context.io.env;
  const serve = program
    .command('serve')
    .description('serve the API, OCSP and CRLs from this machine until Ctrl-C or SIGTERM (local; builds the demo on an empty data folder)')
    // PORT is read in the action, not here: a bad PORT must fail `serve`, not every command.
    .option('--port <port>', 'TCP port (default: env PORT, else 8080)', port)
    .option('--host <address>', 'address to listen on (env HOST)', env.HOST || '127.0.0.1');
  addDatabaseOptions(serve, env)
    .option(
      '--passphrase-file <file>',
      'file holding the keystore passphrase; else env TIERCA_PASSPHRASE; else asked on a terminal (an empty answer gives none, as the demo needs)',
    )
    .action(async (opts: ServeOptions, cmd: Command) => {
      const { io } = context(cmd);
      let listenPort = opts.port ?? 8080;
      if (opts.port === undefined && io.env.PORT) {
        try {
          listenPort = port(io.env.PORT);
        } catch {
          throw usageError(`PORT: "${io.env.PORT}" is not a TCP port`);
        }
      }
      let passphrase: string | undefined;
      if (opts.passphraseFile) passphrase = readPassphraseFile(opts.passphraseFile, '--passphrase-file');
      else if (io.env.TIERCA_PASSPHRASE) passphrase = io.env.TIERCA_PASSPHRASE;
      else if (io.stdin.isTTY) {
        passphrase = (await promptHidden({ stdin: io.stdin, stderr: io.stderr, prompt: 'Keystore passphrase (empty for the demo): ' })) || undefined;
      }
      // Without a passphrase the server runs the demo on an empty data folder, and otherwise refuses
      // with "the keystore passphrase is needed" (exit 2).
      const { startService } = await import('../../server/bootstrap.ts');
      const service = await startService({ ...databaseParams(opts), host: opts.host, port: listenPort, passphrase });
      io.stderr.write(`tierca listening on ${service.url} (Ctrl-C stops)\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      io.stderr.write('tierca stopping\n');
      await service.close();
    });
}
