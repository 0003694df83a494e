/**
 * `tierca serve`: open the database, unlock the keystore and serve the API, OCSP and CRLs until
 * SIGINT or SIGTERM. On an empty SQLite data folder with no passphrase given it builds the demo
 * hierarchy (server/bootstrap.ts says so loudly).
 *
 * With `--tls-cert/--tls-key` the `--port` listener speaks HTTPS (everything, and principals may log
 * in with their client certificate), and `--http-port` opens a plain-HTTP listener that serves only
 * OCSP, CRLs, CA certificates and status (docs/decisions/0012-tls-listeners.md).
 */
import { InvalidArgumentError, type Command } from 'commander';
import { usageError } from '../cli-error.ts';
import type { ContextFactory } from '../context.ts';
import { addDatabaseOptions, databaseParams, type DatabaseOptionValues } from '../local-options.ts';
import { promptHidden, readPassphraseFile } from '../passphrase.ts';
import { loadTlsCredentials } from '../../server/tls-credentials.ts';

interface ServeOptions extends DatabaseOptionValues {
  port?: number;
  host: string;
  passphraseFile?: string;
  pinFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsKeyPassphraseFile?: string;
  httpPort?: number;
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
    .option('--host <address>', 'address to listen on (env HOST)', env.HOST || '127.0.0.1')
    .option('--tls-cert <file>', 'PEM certificate chain of the HTTPS listener (leaf first, then intermediates): --port speaks HTTPS (env TIERCA_TLS_CERT)', env.TIERCA_TLS_CERT || undefined)
    .option('--tls-key <file>', 'PEM private key of --tls-cert, plain or encrypted (env TIERCA_TLS_KEY)', env.TIERCA_TLS_KEY || undefined)
    .option('--tls-key-passphrase-file <file>', 'file holding the passphrase of an encrypted --tls-key; else env TIERCA_TLS_KEY_PASSPHRASE')
    .option('--http-port <port>', 'with TLS: a plain-HTTP listener serving only OCSP, CRLs, CA certificates and status (env TIERCA_HTTP_PORT)', port);
  addDatabaseOptions(serve, env)
    .option(
      '--passphrase-file <file>',
      'file holding the keystore passphrase; else env TIERCA_PASSPHRASE; else asked on a terminal (an empty answer gives none, as the demo needs)',
    )
    .option('--pin-file <file>', 'CA keys in a PKCS#11 token: file holding its user PIN; else env TIERCA_PKCS11_PIN (the module and token are those of the ceremony)')
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
      const tls = tlsOf(opts, io.env);
      let httpPort = opts.httpPort;
      if (httpPort === undefined && io.env.TIERCA_HTTP_PORT) {
        try {
          httpPort = port(io.env.TIERCA_HTTP_PORT);
        } catch {
          throw usageError(`TIERCA_HTTP_PORT: "${io.env.TIERCA_HTTP_PORT}" is not a TCP port`);
        }
      }
      if (httpPort !== undefined && !tls) throw usageError('--http-port goes with --tls-cert and --tls-key (without TLS, --port serves everything over HTTP)');
      const pin = opts.pinFile ? readPassphraseFile(opts.pinFile, '--pin-file') : io.env.TIERCA_PKCS11_PIN || undefined;
      let passphrase: string | undefined;
      if (pin && !opts.passphraseFile && !io.env.TIERCA_PASSPHRASE) passphrase = undefined;
      else if (opts.passphraseFile) passphrase = readPassphraseFile(opts.passphraseFile, '--passphrase-file');
      else if (io.env.TIERCA_PASSPHRASE) passphrase = io.env.TIERCA_PASSPHRASE;
      else if (io.stdin.isTTY) {
        passphrase = (await promptHidden({ stdin: io.stdin, stderr: io.stderr, prompt: 'Keystore passphrase (empty for the demo): ' })) || undefined;
      }
      // Without a passphrase the server runs the demo on an empty data folder, and otherwise refuses
      // with "the keystore passphrase is needed" (exit 2).
      const { startService } = await import('../../server/bootstrap.ts');
      const service = await startService({ ...databaseParams(opts), host: opts.host, port: listenPort, passphrase, pin, tls, httpPort });
      io.stderr.write(`tierca listening on ${service.url}${service.httpUrl ? ` (OCSP, CRLs and CA certificates also on ${service.httpUrl})` : ''} (Ctrl-C stops)\n`);
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

/** The HTTPS listener's credentials from --tls-cert/--tls-key (or their environment), checked; none without them. */
function tlsOf(opts: ServeOptions, env: Record<string, string | undefined>): { cert: string; key: string } | undefined {
  if (!opts.tlsCert && !opts.tlsKey) {
    if (opts.tlsKeyPassphraseFile) throw usageError('--tls-key-passphrase-file goes with --tls-cert and --tls-key');
    return undefined;
  }
  if (!opts.tlsCert || !opts.tlsKey) throw usageError('--tls-cert and --tls-key go together (or TIERCA_TLS_CERT and TIERCA_TLS_KEY)');
  const passphrase = opts.tlsKeyPassphraseFile
    ? readPassphraseFile(opts.tlsKeyPassphraseFile, '--tls-key-passphrase-file')
    : env.TIERCA_TLS_KEY_PASSPHRASE || undefined;
  const { cert, key } = loadTlsCredentials({ certFile: opts.tlsCert, keyFile: opts.tlsKey, passphrase });
  return { cert, key };
}
