/**
 * Several tierca processes on one port (node:cluster): the primary prepares the database once (demo
 * or migrations), then forks workers that each open the same database and serve. Workers are
 * stateless apart from caches, exactly like separate `tierca serve` instances on one PostgreSQL.
 */
import cluster from 'node:cluster';
import pino from 'pino';
import { startService, prepareDatabase, type ServeOptions, type RunningService } from './bootstrap.ts';

export async function serveClustered(opts: ServeOptions & { workers: number }): Promise<RunningService | null> {
  if (opts.workers <= 1) return startService(opts);
  if (cluster.isPrimary) {
    await prepareDatabase(opts);
    const log = opts.log ?? pino({ name: 'tierca' });
    for (let i = 0; i < opts.workers; i++) cluster.fork();
    let stopping = false;
    cluster.on('exit', (worker, code, signal) => {
      if (stopping) return;
      log.error({ pid: worker.process.pid, code, signal }, 'worker exited; starting another');
      cluster.fork();
    });
    const stop = () => {
      stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGTERM');
      setTimeout(() => process.exit(0), 2000).unref();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    log.info({ workers: opts.workers, port: opts.port }, 'tierca primary started workers');
    return null;
  }
  return startService(opts);
}
