/**
 * SQLite checkpoints on a thread of their own (docs/decisions/0030).
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL past 1,000 pages, on the
 * committing connection — here the one JavaScript thread — and syncs twice (the WAL before, the
 * database file after), 10–60 ms on this machine kind under load. Instead, when the WAL syncer sees
 * the -wal file past {@link CHECKPOINT_WAL_BYTES}, a worker thread with its own connection runs
 * `PRAGMA wal_checkpoint(PASSIVE)`, which copies committed frames into the database file without
 * blocking the writer or the readers, then `wal_checkpoint(RESTART)`, which takes the write lock for
 * the frames committed meanwhile (a few) and makes the next writer restart the WAL from its beginning:
 * a PASSIVE checkpoint alone, under a steady stream of commits, never finds the WAL wholly copied when
 * a writer starts, and the WAL would grow. Meanwhile the JavaScript thread's BEGIN IMMEDIATE meets a
 * held lock and retries asynchronously, as it does for another process (knex-store.ts). Both sync as
 * SQLite always does: the WAL first, so a frame they copy is durable whether or not our own fdatasync
 * has run yet, and the database file after.
 *
 * The writer keeps an automatic checkpoint as a fallback, at {@link FALLBACK_AUTOCHECKPOINT_PAGES}:
 * if this thread dies or falls behind, the WAL still stops growing.
 *
 * The -wal file's size does not shrink when the WAL restarts, so it says "the WAL has been large";
 * {@link CHECKPOINT_INTERVAL_MS} keeps that from asking for a checkpoint after every commit.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** The -wal size at which a background checkpoint is asked for (SQLite's own default is 1,000 pages). */
export const CHECKPOINT_WAL_BYTES = 1000 * 4096;

/**
 * At most one background checkpoint per this many ms. Each syncs the WAL and the database file on its
 * thread, and each restart of the WAL costs one fsync on the JavaScript thread: SQLite syncs the new
 * WAL header in the first COMMIT after a restart, even at synchronous=NORMAL (its ticket ff5be73dee).
 */
export const CHECKPOINT_INTERVAL_MS = 1000;

/** wal_autocheckpoint of the writer connection while a checkpointer runs: a fallback only. */
export const FALLBACK_AUTOCHECKPOINT_PAGES = 10_000;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file, { fileMustExist: true });
// Waits on this thread only, and briefly: RESTART holds the write lock while it waits for readers
// (a long CRL read, say) to leave the WAL; past 100 ms it gives up (busy), and the next one tries again.
db.pragma('busy_timeout = 100');
db.pragma('synchronous = FULL');
parentPort.on('message', () => {
  try {
    // The bulk without blocking anyone, then the tail under the write lock so that the WAL restarts.
    db.pragma('wal_checkpoint(PASSIVE)');
    const [result] = db.pragma('wal_checkpoint(RESTART)');
    parentPort.postMessage({ ok: true, result });
  } catch (err) {
    parentPort.postMessage({ ok: false, error: String(err && err.message || err) });
  }
});
`;

export interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

export class WalCheckpointer {
  private worker: Worker | undefined;
  private running: Promise<CheckpointResult> | undefined;
  private closed = false;
  private lastEnded = 0;
  /** Checkpoints completed (for tests and the bench). */
  completed = 0;

  constructor(
    private readonly databaseFile: string,
    private readonly thresholdBytes = CHECKPOINT_WAL_BYTES,
    private readonly onError: (err: Error) => void = () => undefined,
  ) {}

  /** Called with the -wal file's size after each fsync: asks for a checkpoint past the threshold, one at a time. */
  walSize(bytes: number): void {
    if (bytes < this.thresholdBytes || this.running || this.closed || performance.now() - this.lastEnded < CHECKPOINT_INTERVAL_MS) return;
    void this.checkpoint().catch((err: unknown) => this.onError(err as Error));
  }

  /** Runs one PASSIVE checkpoint on the thread (started if needed); resolves with SQLite's answer. */
  checkpoint(): Promise<CheckpointResult> {
    if (this.running) return this.running;
    const worker = (this.worker ??= this.start());
    const run = new Promise<CheckpointResult>((resolve, reject) => {
      const done = (reply: { ok: boolean; result?: CheckpointResult; error?: string }) => {
        worker.off('error', failed);
        if (reply.ok) {
          this.completed++;
          resolve(reply.result!);
        } else reject(new Error(`background checkpoint failed: ${reply.error}`));
      };
      const failed = (err: Error) => {
        worker.off('message', done);
        reject(err);
      };
      worker.once('message', done);
      worker.once('error', failed);
      worker.postMessage('checkpoint');
    }).finally(() => {
      this.running = undefined;
      this.lastEnded = performance.now();
    });
    this.running = run;
    return run;
  }

  private start(): Worker {
    const module = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, file: this.databaseFile }, execArgv: [] });
    worker.unref();
    const forget = () => {
      if (this.worker === worker) this.worker = undefined;
    };
    worker.on('error', forget);
    worker.on('exit', forget);
    return worker;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.running?.catch(() => undefined);
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }
}
