/**
 * Durability of SQLite commits without an fsync on the JavaScript thread (docs/decisions/0030).
 *
 * The writer connection runs `synchronous = NORMAL` in WAL mode: a COMMIT writes its frames to the
 * `-wal` file but does not fsync it (SQLite still fsyncs the WAL before a checkpoint and the database
 * file after one). Every write that commits then waits for {@link WalSyncer.sync}, an `fdatasync` of
 * the `-wal` file on libuv's thread pool, before it resolves — so nothing is acknowledged before its
 * commit is on disk, as with `synchronous = FULL`, but the event loop keeps serving meanwhile.
 *
 * Group sync: one fdatasync covers every commit that finished before it started. A call made while
 * one is in flight waits for the next one, which starts when the current one ends and is shared by
 * every call made in between.
 *
 * Why an fdatasync of our own descriptor is enough: it flushes the file's dirty pages whoever wrote
 * them (this connection, another process on the same file); a checkpoint restarts or truncates the
 * WAL in place (same inode); frames a checkpoint moved into the database file were fsynced there by
 * the checkpoint before the WAL was reused. The WAL is deleted only when the last connection closes;
 * if the path names another inode (recreated) the descriptor is reopened, and a new inode's directory
 * entry is fsynced once (SQLite would do so on its first sync of the file, which NORMAL defers to the
 * first checkpoint).
 *
 * A failed fsync is final: the kernel may have dropped the pages it could not write, and a later fsync
 * could succeed without them (PostgreSQL's "fsyncgate" lesson). Every sync after a failure rejects, so
 * the process answers errors for every write until it is restarted (SQLite recovers from the WAL).
 */
import { statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

/** What a store waits for after each commit of its SQLite writer connection. */
export interface DurableSync {
  /** Resolves once every commit that finished before the call is on disk; rejects if that cannot be. */
  sync(): Promise<void>;
  /** Closes what the syncer opened; pending syncs still settle. */
  close(): Promise<void>;
}

/** The fdatasync primitive, replaceable in tests. */
export interface SyncFs {
  open(path: string): Promise<FileHandle>;
  stat(path: string): Promise<{ ino: number; dev: number; size: number }>;
}

const nodeFs: SyncFs = {
  open: (path) => open(path, 'r'),
  // A stat of a cached inode is a microsecond on this thread; on libuv's pool it cost a thread hop
  // per group commit (two context switches on a 2-core machine whose cores issuance keeps busy).
  stat: async (path) => statSync(path),
};

/** {@link DurableSync} by fdatasync of `<databaseFile>-wal` (see the module comment). */
export class WalSyncer implements DurableSync {
  private readonly walPath: string;
  private handle: FileHandle | undefined;
  private handleId: { ino: number; dev: number } | undefined;
  /** The fdatasync in flight, if any. */
  private running: Promise<void> | undefined;
  /** The one that starts after it, shared by every call made while `running` was in flight. */
  private next: Promise<void> | undefined;
  private failure: Error | undefined;

  constructor(
    private readonly databaseFile: string,
    private readonly fs: SyncFs = nodeFs,
    /** Told the -wal file's size after each fdatasync (the background checkpointer, wal-checkpointer.ts). */
    private readonly onWalSize?: (bytes: number) => void,
  ) {
    this.walPath = `${databaseFile}-wal`;
  }

  sync(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.next) return this.next;
    if (!this.running) return this.start();
    // A commit made now may postdate the fsync in flight: it needs the one after.
    this.next ??= this.running.then(
      () => this.start(),
      () => this.start(),
    );
    return this.next;
  }

  private start(): Promise<void> {
    this.next = undefined;
    const run = this.flush().finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }

  private async flush(): Promise<void> {
    if (this.failure) throw this.failure;
    try {
      const wal = await this.walHandle();
      if (wal) await wal.handle.datasync();
      // No -wal file: every commit was checkpointed into the database file and the WAL removed
      // (the last connection closed); the checkpoint synced the file, syncing it again is cheap.
      else await this.syncFile(this.databaseFile);
      if (wal) this.onWalSize?.(wal.size);
    } catch (err) {
      this.failure = new Error(`fsync of the SQLite WAL failed: ${(err as Error).message}; writes are refused until tierca restarts`, { cause: err });
      await this.closeHandle().catch(() => undefined);
      throw this.failure;
    }
  }

  /** The open descriptor of the current -wal file (reopened if the path names another inode) and its size, or undefined if there is none. */
  private async walHandle(): Promise<{ handle: FileHandle; size: number } | undefined> {
    let current: { ino: number; dev: number; size: number };
    try {
      current = await this.fs.stat(this.walPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        await this.closeHandle();
        return undefined;
      }
      throw err;
    }
    if (this.handle && this.handleId?.ino === current.ino && this.handleId.dev === current.dev) return { handle: this.handle, size: current.size };
    await this.closeHandle();
    const handle = await this.fs.open(this.walPath);
    const id = await handle.stat();
    // A new inode: make its directory entry durable too, once.
    await this.syncFile(dirname(this.walPath));
    this.handle = handle;
    this.handleId = { ino: id.ino, dev: id.dev };
    return { handle, size: current.size };
  }

  private async syncFile(path: string): Promise<void> {
    const handle = await this.fs.open(path);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  private async closeHandle(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    this.handleId = undefined;
    await handle?.close();
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.running, this.next]);
    await this.closeHandle();
  }
}
