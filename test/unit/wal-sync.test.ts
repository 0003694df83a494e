// The WAL syncer of SQLite stores (server/storage/wal-sync.ts, decision 0030): one fdatasync shared by
// the commits made before it started, never a resolution before the fsync that covers the call, a
// reopened descriptor when the -wal file is another inode, and a failure that stays.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WalSyncer, type SyncFs } from '../../server/storage/wal-sync.ts';

interface Deferred {
  resolve(): void;
  reject(err: Error): void;
}

/** A file system whose fdatasyncs wait until the test settles them. */
class FakeFs implements SyncFs {
  inode = 1;
  walExists = true;
  readonly opened: string[] = [];
  readonly fullSyncs: string[] = [];
  readonly datasyncs: Deferred[] = [];
  closed = 0;

  async open(path: string): Promise<FileHandle> {
    this.opened.push(path);
    const ino = this.inode;
    const handle = {
      datasync: () => new Promise<void>((resolve, reject) => this.datasyncs.push({ resolve, reject })),
      sync: async () => void this.fullSyncs.push(path),
      stat: async () => ({ ino, dev: 7 }),
      close: async () => void this.closed++,
    };
    return handle as unknown as FileHandle;
  }

  async stat(path: string): Promise<{ ino: number; dev: number; size: number }> {
    if (!this.walExists && path.endsWith('-wal')) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    return { ino: this.inode, dev: 7, size: 4096 };
  }
}

/** Lets every pending promise callback and the fake's async steps run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function track(p: Promise<void>): { done: boolean; error?: unknown } {
  const state: { done: boolean; error?: unknown } = { done: false };
  p.then(() => (state.done = true), (err: unknown) => {
    state.done = true;
    state.error = err;
  });
  return state;
}

describe('WalSyncer', () => {
  it('resolves a call only after an fdatasync that started after it, shared by the calls that waited', async () => {
    const fs = new FakeFs();
    const syncer = new WalSyncer('/data/tierca.db', fs);
    const first = track(syncer.sync());
    await settle();
    expect(fs.datasyncs).toHaveLength(1);
    // Made while the first fdatasync is in flight: their commits may postdate it.
    const waiting = [track(syncer.sync()), track(syncer.sync()), track(syncer.sync())];
    await settle();
    expect(fs.datasyncs).toHaveLength(1);
    fs.datasyncs[0].resolve();
    await settle();
    expect(first.done).toBe(true);
    expect(waiting.map((w) => w.done)).toEqual([false, false, false]);
    expect(fs.datasyncs).toHaveLength(2); // one more, for all three
    fs.datasyncs[1].resolve();
    await settle();
    expect(waiting.map((w) => w.done)).toEqual([true, true, true]);
    expect(waiting.map((w) => w.error)).toEqual([undefined, undefined, undefined]);
    // The -wal file was opened once, and its directory synced once (a new inode).
    expect(fs.opened).toEqual(['/data/tierca.db-wal', '/data']);
    expect(fs.fullSyncs).toEqual(['/data']);
  });

  it('reopens the -wal file when the path names another inode, and syncs its directory again', async () => {
    const fs = new FakeFs();
    const syncer = new WalSyncer('/data/tierca.db', fs);
    const a = track(syncer.sync());
    await settle();
    fs.datasyncs[0].resolve();
    await settle();
    expect(a.done).toBe(true);
    fs.inode = 2; // the -wal file was removed and made again
    const b = track(syncer.sync());
    await settle();
    fs.datasyncs[1].resolve();
    await settle();
    expect(b.done).toBe(true);
    expect(fs.opened).toEqual(['/data/tierca.db-wal', '/data', '/data/tierca.db-wal', '/data']);
    expect(fs.closed).toBe(1 + 2); // the old descriptor, and the two directory descriptors
  });

  it('syncs the database file when there is no -wal file', async () => {
    const fs = new FakeFs();
    fs.walExists = false;
    const syncer = new WalSyncer('/data/tierca.db', fs);
    await syncer.sync();
    expect(fs.datasyncs).toHaveLength(0);
    expect(fs.fullSyncs).toEqual(['/data/tierca.db']);
  });

  it('rejects every call once an fdatasync failed, without trying again', async () => {
    const fs = new FakeFs();
    const syncer = new WalSyncer('/data/tierca.db', fs);
    const first = track(syncer.sync());
    await settle();
    const second = track(syncer.sync());
    fs.datasyncs[0].reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    await settle();
    await settle();
    expect(String(first.error)).toMatch(/fsync of the SQLite WAL failed: EIO.*writes are refused until tierca restarts/);
    expect(second.done).toBe(true);
    expect(second.error).toBe(first.error);
    await expect(syncer.sync()).rejects.toBe(first.error);
    expect(fs.datasyncs).toHaveLength(1);
  });
});

describe('WalSyncer on the real file system', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('fdatasyncs an existing -wal file, and the database file when there is none', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tierca-walsync-'));
    const file = join(dir, 'tierca.db');
    writeFileSync(file, 'db');
    const syncer = new WalSyncer(file);
    await syncer.sync(); // no -wal yet
    writeFileSync(`${file}-wal`, 'frames');
    await Promise.all([syncer.sync(), syncer.sync(), syncer.sync()]);
    await syncer.close();
  });
});
