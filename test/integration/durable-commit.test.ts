// No answer before its commit is on disk (decision 0030): on SQLite the WAL is fsynced off the
// JavaScript thread after each commit, and every write waits for that fsync before it resolves. Here
// the fsync is a gate the test holds: the certificate (or the revocation) is committed and visible to
// another connection, yet the API has not answered; once the gate opens the answer arrives. A failed
// fsync answers an error, never a 201. PostgreSQL commits durably itself: nothing to hold there.
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestTierca, type TestTierca } from '../helpers/tierca.ts';
import { testEngine, testStore } from '../helpers/database.ts';
import { nodeCsr } from '../helpers/pki-fixtures.ts';
import type { DurableSync } from '../../server/storage/wal-sync.ts';
import type { Store } from '../../server/storage/storage.ts';

/** A DurableSync the test opens and closes; counts the calls it holds. */
class GateSync implements DurableSync {
  private held: { resolve(): void; reject(err: Error): void }[] = [];
  private closed = false;
  private failure: Error | undefined;

  hold(): void {
    this.closed = true;
  }

  /** Opens the gate: every held sync resolves (or rejects with `failure`). */
  release(failure?: Error): void {
    this.closed = false;
    const held = this.held.splice(0);
    for (const h of held) (failure ? h.reject(failure) : h.resolve());
  }

  /** The next sync made while the gate is open fails with `err`. */
  failNext(err: Error): void {
    this.failure = err;
  }

  get waiting(): number {
    return this.held.length;
  }

  sync(): Promise<void> {
    if (this.failure) {
      const err = this.failure;
      this.failure = undefined;
      return Promise.reject(err);
    }
    if (!this.closed) return Promise.resolve();
    return new Promise<void>((resolve, reject) => this.held.push({ resolve, reject }));
  }

  async close(): Promise<void> {
    this.release();
  }
}

async function until(what: string, condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The promise's state, readable synchronously. */
function track<T>(p: Promise<T>): { settled: boolean; value?: T; error?: unknown } {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  p.then((value) => Object.assign(state, { settled: true, value }), (error: unknown) => Object.assign(state, { settled: true, error }));
  return state;
}

describe.runIf(testEngine() === 'sqlite')('SQLite: every write waits for the fsync of its commit', () => {
  describe('through the API', () => {
    const gate = new GateSync();
    let t: TestTierca;
    let peek: Database.Database;
    let n = 0;

    beforeAll(async () => {
      t = await startTestTierca({ durableSync: gate });
      // Another connection on the file: it sees what is committed, durable or not.
      peek = new Database(t.db.sqliteFile!, { readonly: true });
    });
    afterAll(async () => {
      gate.release();
      peek?.close();
      await t?.close();
    });
    afterEach(() => gate.release());

    async function newSubject(): Promise<string> {
      n++;
      const res = await call(t, 'officer', 'POST', '/api/v1/subjects', {
        kind: 'device', domain: 'yuhu', organ: 'government', tier: 't1', name: `durable-${n}`, dns: [`durable-${n}.yuhu.xiangtan.intranet`],
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return res.body.id as string;
    }

    const certificatesOf = (subjectId: string) =>
      peek.prepare('SELECT serial, status FROM certificates WHERE subject_id = ?').all(subjectId) as { serial: string; status: string }[];

    it('sends no 201 before the fsync of the certificate\'s commit, and sends it once the fsync is done', async () => {
      const subjectId = await newSubject();
      const { csrPem } = await nodeCsr();
      gate.hold();
      const answer = track(call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, csr: csrPem }));
      await until('the certificate is committed', () => certificatesOf(subjectId).length === 1);
      await until('its commit waits for the fsync', () => gate.waiting > 0);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(answer.settled).toBe(false);
      gate.release();
      await until('the answer arrives', () => answer.settled);
      expect(answer.value?.status, JSON.stringify(answer.value?.body)).toBe(201);
      expect(answer.value?.body.certificate.serial).toBe(certificatesOf(subjectId)[0].serial);
    });

    it('sends no revocation answer before the fsync of the revocation\'s commit', async () => {
      const subjectId = await newSubject();
      const { csrPem } = await nodeCsr();
      const issued = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, csr: csrPem });
      expect(issued.status).toBe(201);
      gate.hold();
      const answer = track(call(t, 'officer', 'POST', `/api/v1/certificates/${issued.body.certificate.serial}/revoke`, { reason: 'keyCompromise', issuer: issued.body.certificate.issuerId }));
      await until('the revocation is committed', () => certificatesOf(subjectId)[0].status === 'revoked');
      await until('its commit waits for the fsync', () => gate.waiting > 0);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(answer.settled).toBe(false);
      gate.release();
      await until('the answer arrives', () => answer.settled);
      expect(answer.value?.status, JSON.stringify(answer.value?.body)).toBe(200);
      expect(answer.value?.body.status).toBe('revoked');
    });

    it('answers an error, not a 201, when the fsync of the certificate\'s commit fails', async () => {
      const subjectId = await newSubject();
      const { csrPem } = await nodeCsr();
      gate.hold();
      const answer = track(call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, csr: csrPem }));
      await until('the certificate is committed', () => certificatesOf(subjectId).length === 1);
      await until('its commit waits for the fsync', () => gate.waiting > 0);
      gate.release(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
      await until('the answer arrives', () => answer.settled);
      expect(answer.value?.status, JSON.stringify(answer.value?.body)).toBe(500);
      expect(answer.value?.body.certificate).toBeUndefined();
    });
  });

  it('checkpoints on a thread of its own, without waiting for SQLite\'s checkpoint inside a COMMIT', async () => {
    const { store, options, cleanup } = await testStore();
    try {
      const file = options.sqliteFile!;
      const dbBytesBefore = statSync(file).size;
      // 24 MiB in transactions of 128 KiB: past the checkpointer's 4 MB, below the writer's own
      // automatic checkpoint (10,000 pages, 40 MiB). (Random text: SQLite rewrites only the overflow
      // pages whose bytes change.)
      let last = '';
      for (let i = 0; i < 192; i++) {
        last = randomBytes(96 * 1024).toString('base64');
        const value = last;
        await store.transaction((tx) => tx.meta.set(`wal-${i % 8}`, value));
      }
      // A checkpoint is what copies pages into the database file; small writes keep asking for one
      // (it runs at most once a second).
      for (let i = 0; statSync(file).size < dbBytesBefore + 1024 * 1024; i++) {
        if (i > 100) throw new Error(`no checkpoint: the database file stayed at ${statSync(file).size} bytes`);
        await store.meta.set('wal-tick', String(i));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(await store.meta.get('wal-7')).toBe(last);
    } finally {
      await cleanup();
    }
  });

  describe('through the store', () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    const gate = new GateSync();

    beforeAll(async () => {
      const opened = await testStore();
      await opened.store.close();
      // Reopened on the same migrated file, with the gate.
      const { openStore } = await import('../../server/storage/knex-store.ts');
      store = await openStore({ ...opened.options, durableSync: gate });
      cleanup = async () => {
        gate.release();
        await store.close();
        await opened.cleanup().catch(() => undefined);
      };
    });
    afterAll(async () => cleanup?.());
    afterEach(() => gate.release());

    it('holds a transaction and a write outside one until the fsync, and rejects both when it fails', async () => {
      gate.hold();
      const inTransaction = track(store.transaction(async (tx) => {
        await tx.meta.set('durable-a', '1');
        return 'done';
      }));
      await until('the transaction waits for the fsync', () => gate.waiting === 1);
      expect(inTransaction.settled).toBe(false);
      gate.release();
      await until('it resolves', () => inTransaction.settled);
      expect(inTransaction.value).toBe('done');

      gate.hold();
      const outside = track(store.meta.set('durable-b', '2'));
      await until('the write waits for the fsync', () => gate.waiting === 1);
      expect(outside.settled).toBe(false);
      gate.release();
      await until('it resolves', () => outside.settled);
      expect(outside.error).toBeUndefined();

      gate.failNext(new Error('EIO'));
      await expect(store.transaction((tx) => tx.meta.set('durable-c', '3'))).rejects.toThrow('EIO');
      gate.failNext(new Error('EIO'));
      await expect(store.meta.set('durable-d', '4')).rejects.toThrow('EIO');
      // A read commits nothing and waits for nothing.
      gate.hold();
      expect(await store.meta.get('durable-a')).toBe('1');
      expect(gate.waiting).toBe(0);
    });
  });
});
