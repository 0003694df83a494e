/**
 * `npm start`: serves on PORT (default 8080), in TIERCA_WORKERS processes (default 1), with the data folder TIERCA_DATA (default ./data), or
 * DATABASE_URL for PostgreSQL. The passphrase comes from TIERCA_PASSPHRASE; with neither a passphrase
 * nor a hierarchy, the demo hierarchy is created (see bootstrap.ts). TIERCA_SIGNING_THREADS sets the
 * signing threads of each process (default cores − 1; server/ca/signing-pool.ts).
 */
import { serveClustered } from './cluster.ts';
import { TiercaError } from './errors.ts';

const port = Number(process.env.PORT ?? 8080);
try {
  const service = await serveClustered({
    workers: Number(process.env.TIERCA_WORKERS ?? 1),
    dataDir: process.env.TIERCA_DATA ?? './data',
    databaseUrl: process.env.DATABASE_URL || undefined,
    host: process.env.HOST ?? '127.0.0.1',
    port,
    passphrase: process.env.TIERCA_PASSPHRASE || undefined,
  });
  if (service) {
    process.stderr.write(`tierca listening on ${service.url}\n`);
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
