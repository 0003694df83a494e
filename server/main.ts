/**
 * `npm start`: serves on PORT (default 8080), in TIERCA_WORKERS processes (default 1), with the data folder TIERCA_DATA (default ./data), or
 * DATABASE_URL for PostgreSQL. The passphrase comes from TIERCA_PASSPHRASE (the token PIN from
 * TIERCA_PKCS11_PIN when the CA keys are in a PKCS#11 token); with neither a passphrase nor a
 * hierarchy, the demo hierarchy is created (see bootstrap.ts). TIERCA_SIGNING_THREADS sets the
 * signing threads of each process (default cores − 1; server/ca/signing-pool.ts).
 *
 * HTTPS: TIERCA_TLS_CERT and TIERCA_TLS_KEY name PEM files (chain, key); an encrypted key's passphrase
 * is TIERCA_TLS_KEY_PASSPHRASE or the content of the file TIERCA_TLS_KEY_PASSPHRASE_FILE. PORT then
 * speaks HTTPS, and TIERCA_HTTP_PORT opens the plain-HTTP listener of OCSP, CRLs and CA certificates
 * (docs/decisions/0012-tls-listeners.md), as `tierca serve --tls-cert … --http-port …` does.
 */
import { readFileSync } from 'node:fs';
import { serveClustered } from './cluster.ts';
import { TiercaError } from './errors.ts';
import { loadTlsCredentials } from './tls-credentials.ts';

/** A port from the environment variable `name`, or `fallback` when it is unset. */
function portOf(name: string, fallback?: number): number | undefined {
  const text = process.env[name];
  if (!text) return fallback;
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) throw new TiercaError('bad-request', `${name}: "${text}" is not a TCP port`);
  return Number(text);
}

/** The HTTPS credentials named by the environment, or none. */
function tlsFromEnv(): { cert: string; key: string } | undefined {
  const { TIERCA_TLS_CERT: certFile, TIERCA_TLS_KEY: keyFile } = process.env;
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) throw new TiercaError('bad-request', 'TIERCA_TLS_CERT and TIERCA_TLS_KEY go together');
  let passphrase = process.env.TIERCA_TLS_KEY_PASSPHRASE || undefined;
  const passphraseFile = process.env.TIERCA_TLS_KEY_PASSPHRASE_FILE;
  if (!passphrase && passphraseFile) {
    try {
      passphrase = readFileSync(passphraseFile, 'utf8').replace(/\r?\n$/, '');
    } catch {
      throw new TiercaError('bad-request', `TIERCA_TLS_KEY_PASSPHRASE_FILE: cannot read ${passphraseFile}`);
    }
  }
  const { cert, key } = loadTlsCredentials({ certFile, keyFile, passphrase, names: { cert: 'TIERCA_TLS_CERT', key: 'TIERCA_TLS_KEY' } });
  return { cert, key };
}

try {
  const tls = tlsFromEnv();
  const httpPort = portOf('TIERCA_HTTP_PORT');
  if (httpPort !== undefined && !tls) throw new TiercaError('bad-request', 'TIERCA_HTTP_PORT goes with TIERCA_TLS_CERT and TIERCA_TLS_KEY');
  const service = await serveClustered({
    workers: Number(process.env.TIERCA_WORKERS ?? 1),
    dataDir: process.env.TIERCA_DATA ?? './data',
    databaseUrl: process.env.DATABASE_URL || undefined,
    host: process.env.HOST ?? '127.0.0.1',
    port: portOf('PORT', 8080)!,
    passphrase: process.env.TIERCA_PASSPHRASE || undefined,
    pin: process.env.TIERCA_PKCS11_PIN || undefined,
    tls,
    httpPort,
  });
  if (service) {
    process.stderr.write(`tierca listening on ${service.url}${service.httpUrl ? ` (OCSP, CRLs and CA certificates also on ${service.httpUrl})` : ''}\n`);
    const stop = () => {
      service.close().then(() => process.exit(0), () => process.exit(1));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  }
} catch (err) {
  process.stderr.write(`tierca: ${err instanceof TiercaError ? err.message : (err as Error).stack}\n`);
  process.exit(1);
}
