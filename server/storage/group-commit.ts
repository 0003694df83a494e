/**
 * Group commit: units of work that arrive while a commit is in progress are written together in the
 * next transaction, each in its own savepoint (Store.transactionBatch). A SQLite commit waits for an
 * fsync of the WAL (~1.6–4.6 ms on this machine kind; off the JavaScript thread since decision 0030),
 * which alone capped issuance near 600/s per process; sharing one fsync among the units that queued
 * during it keeps every unit's durability (nothing is acknowledged before its commit is on disk) and
 * lifts that cap.
 */
import type { Repositories, Store } from './storage.ts';

interface Pending<T> {
  unit: (tx: Repositories) => Promise<T>;
  resolve: (value: T) => void;
  reject: (reason: unknown) => void;
}

export class GroupCommit {
  private queue: Pending<any>[] = [];
  private flushing = false;

  /** `maxBatch`: units per transaction at most (default 64). */
  constructor(private readonly store: Store, private readonly maxBatch = 64) {}

  /** Runs `unit` in a shared transaction; resolves after that transaction has committed. */
  run<T>(unit: (tx: Repositories) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ unit, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const results = await this.store.transactionBatch(batch.map((p) => p.unit));
          results.forEach((r, i) => (r.status === 'fulfilled' ? batch[i].resolve(r.value) : batch[i].reject(r.reason)));
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}
