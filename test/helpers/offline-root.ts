/** What the offline-root integration tests share: waiting for the running service, and counting the online database's rows. */
import { sleep, type ProcessDatabase } from './processes.ts';
import { snapshotCounts } from './database.ts';
import { knexOf } from '../../server/storage/knex-store.ts';

/** Runs `check` until it stops throwing, at most `timeoutMs`; then throws its last error. */
export async function eventually(check: () => Promise<void>, timeoutMs: number, intervalMs: number): Promise<void> {
  const start = Date.now();
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() - start > timeoutMs) throw err;
    }
    await sleep(intervalMs);
  }
}

/**
 * Row counts of the online database without the tables the running service writes on its own timers
 * (responders, OCSP answers, keys; with `withoutCrls`, CRLs too — new CAs publish theirs), plus the
 * root's CRLs, which come only from imports.
 */
export async function countsOnline(db: ProcessDatabase, { withoutCrls = false } = {}): Promise<Record<string, number>> {
  const store = await db.openStore();
  try {
    const counts = await snapshotCounts(store);
    delete counts.ocsp_responders;
    delete counts.ocsp_responses;
    delete counts.keys;
    if (withoutCrls) delete counts.crls;
    counts.rootCrls = Number((await knexOf(store)('crls').where({ ca_id: 'root' }).count({ n: '*' }))[0]!.n);
    return counts;
  } finally {
    await store.close();
  }
}
