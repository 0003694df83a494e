// switchToWal (server/storage/knex-store.ts): SQLITE_BUSY from `journal_mode = WAL` — which SQLite
// returns at once, without its busy handler, when two processes set up a fresh file together — is
// retried; any other error, or BUSY for longer than 5 s, is not.
import { describe, expect, it } from 'vitest';
import { switchToWal } from '../../server/storage/knex-store.ts';

const busy = () => Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });

function connection(failures: (() => Error)[]) {
  const calls: string[] = [];
  return {
    calls,
    pragma(source: string) {
      calls.push(source);
      const failure = failures.shift();
      if (failure) throw failure();
      return 'wal';
    },
  };
}

describe('switchToWal', () => {
  it('retries SQLITE_BUSY until the switch goes through', () => {
    const conn = connection([busy, busy]);
    switchToWal(conn as never);
    expect(conn.calls).toEqual(['journal_mode = WAL', 'journal_mode = WAL', 'journal_mode = WAL']);
  });

  it('throws any other error at once', () => {
    const conn = connection([() => Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' })]);
    expect(() => switchToWal(conn as never)).toThrow('disk I/O error');
    expect(conn.calls).toHaveLength(1);
  });

  it('gives up after about 5 s of SQLITE_BUSY', () => {
    const conn = connection(Array.from({ length: 1000 }, () => busy));
    const started = Date.now();
    expect(() => switchToWal(conn as never)).toThrow('database is locked');
    expect(conn.calls.length).toBeGreaterThan(100);
    expect(Date.now() - started).toBeGreaterThanOrEqual(4000);
  }, 15_000);
});
