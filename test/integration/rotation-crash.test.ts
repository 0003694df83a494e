// Renewal and rollover are transactions. A fault is injected after each of their steps — thrown, or
// the process killed with SIGKILL — and then: the database holds either the old state or the new one,
// never half of it; and after a restart (a fresh instance: nothing in memory survives) a retry with the
// same request id completes the change exactly once.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FixedClock } from '../../server/clock.ts';
import type { StoreOptions } from '../../server/storage/knex-store.ts';
import { lineageOf } from '../../server/ca/ca-directory.ts';
import type { RenewalStep } from '../../server/ca/renewal.ts';
import type { RolloverStep } from '../../server/ca/ca-rollover.ts';
import { EXAMPLE_TIER_OIDS } from '../helpers/config.ts';
import { call, startTestTierca, TEST_PASSPHRASE, type TestTierca } from '../helpers/tierca.ts';
import { TempDir } from '../helpers/openssl.ts';
import { snapshotCounts } from '../helpers/database.ts';
import { openInstance, type ChildOrder } from '../helpers/rotation-instance.ts';
import { DAY_MS, caPem, issueLeaf, smallConfig, verifyAt, type IssuedLeaf } from '../helpers/rotation.ts';

const clock = new FixedClock(new Date('2027-04-01T10:00:00Z'));
let t: TestTierca;
let options: StoreOptions;
const tmp = new TempDir();
const CHILD = fileURLToPath(new URL('../helpers/rotation-instance.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

beforeAll(async () => {
  t = await startTestTierca({ clock, configData: smallConfig() });
  options = { sqliteFile: t.db.sqliteFile, databaseUrl: t.db.databaseUrl, searchPath: t.db.searchPath };
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

/** What a renewal changes: rows that must all appear together, or none. */
async function renewalState(leaf: IssuedLeaf, requestId: string) {
  const old = (await t.store.certificates.get(leaf.issuerId, leaf.serial))!;
  return {
    oldStatus: old.status,
    oldReason: old.revocationReason,
    renewal: await t.store.renewals.getByOld(leaf.issuerId, leaf.serial),
    request: await t.store.rotationRequests.get(requestId),
    certificates: await t.store.certificates.count({ subjectId: leaf.subjectId }),
  };
}

/** Runs one child instance that SIGKILLs itself after `order.kill`'s step; resolves with its exit. */
function runChild(order: ChildOrder): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(order)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, output }));
  });
}

describe('renewal interrupted after each step', () => {
  // t2 has no grace in this config: the old certificate is revoked in the renewal's own transaction.
  const steps: { step: RenewalStep; committed: boolean }[] = [
    { step: 'prepared', committed: false },
    { step: 'in-transaction', committed: false },
    { step: 'committed', committed: true },
  ];
  it.each(steps)('a throw after $step leaves the old or the new state; the retry completes it once', async ({ step, committed }) => {
    const leaf = await issueLeaf(t, tmp, { kind: 'device', tier: 't2' });
    const requestId = `crash-renew-${step}`;
    const before = await snapshotCounts(t.store);
    const faulty = await openInstance(options, TEST_PASSPHRASE, clock, { renewal: step });
    try {
      await expect(faulty.rotation.renewals.renew(await faulty.ctx('officer'), leaf.serial, { requestId })).rejects.toThrow(`injected fault at ${step}`);
    } finally {
      await faulty.close();
    }
    const state = await renewalState(leaf, requestId);
    const after = await snapshotCounts(t.store);
    if (committed) {
      expect(state).toMatchObject({ oldStatus: 'revoked', oldReason: 4, certificates: 2 });
      expect(state.renewal).toBeDefined();
      expect(state.request).toBeDefined();
      expect(after.certificates).toBe(before.certificates + 1);
    } else {
      expect(state).toMatchObject({ oldStatus: 'good', oldReason: null, renewal: undefined, request: undefined, certificates: 1 });
      // Nothing but the audit record of the failure was written.
      expect({ ...after, audit_log: 0, ocsp_responders: 0, keys: 0, crls: 0 }).toEqual({ ...before, audit_log: 0, ocsp_responders: 0, keys: 0, crls: 0 });
    }

    // Restart: a fresh instance retries with the same request id.
    const restarted = await openInstance(options, TEST_PASSPHRASE, clock);
    try {
      const retry = await restarted.rotation.renewals.renew(await restarted.ctx('officer'), leaf.serial, { requestId });
      expect(retry.replayed).toBe(committed);
      if (committed) expect(retry.certificate.serial).toBe(state.renewal!.newSerial);
      const again = await restarted.rotation.renewals.renew(await restarted.ctx('officer'), leaf.serial, { requestId });
      expect(again.replayed).toBe(true);
      expect(again.certificate.serial).toBe(retry.certificate.serial);
    } finally {
      await restarted.close();
    }
    const done = await renewalState(leaf, requestId);
    expect(done).toMatchObject({ oldStatus: 'revoked', oldReason: 4, certificates: 2 });
    expect((await snapshotCounts(t.store)).certificates).toBe(before.certificates + 1);
    const events = (await t.store.revocationEvents.since(0, 100_000)).filter((e) => e.serial === leaf.serial);
    expect(events).toHaveLength(1);
  });

  it.each(['supersede:in-transaction', 'supersede:committed'] as RenewalStep[])('a throw after %s (the end of a grace period) revokes the old certificate exactly once', async (step) => {
    const leaf = await issueLeaf(t, tmp, { kind: 'device', tier: 't1' }); // 4 days of grace
    const renewed = await call(t, 'officer', 'POST', `/api/v1/certificates/${leaf.serial}/renew`, { requestId: `grace-${step}` });
    expect(renewed.status).toBe(201);
    clock.advance(5 * DAY_MS);
    const faulty = await openInstance(options, TEST_PASSPHRASE, clock, { renewal: step });
    try {
      await expect(faulty.rotation.caRenewals.supersedeDue(clock.now(), { principalId: null, role: null, source: 'test', requestId: null }))
        .rejects.toThrow(`injected fault at ${step}`);
    } finally {
      await faulty.close();
    }
    const mid = await renewalState(leaf, `grace-${step}`);
    expect(mid.oldStatus).toBe(step === 'supersede:committed' ? 'revoked' : 'good');
    expect(mid.renewal!.supersededAt === null).toBe(step !== 'supersede:committed');
    const restarted = await openInstance(options, TEST_PASSPHRASE, clock);
    try {
      await restarted.rotation.runs.tick();
      await restarted.rotation.runs.tick();
    } finally {
      await restarted.close();
    }
    const done = await renewalState(leaf, `grace-${step}`);
    expect(done).toMatchObject({ oldStatus: 'revoked', oldReason: 4 });
    expect((await t.store.revocationEvents.since(0, 100_000)).filter((e) => e.serial === leaf.serial)).toHaveLength(1);
  });

  it('a process killed in the middle of the renewal transaction leaves the old state; the retry completes it once', async () => {
    const leaf = await issueLeaf(t, tmp, { kind: 'device', tier: 't2' });
    const requestId = 'kill-renew-in-transaction';
    const before = await snapshotCounts(t.store);
    const child = await runChild({
      options, passphrase: TEST_PASSPHRASE, now: clock.now().toISOString(), kill: { renewal: 'in-transaction' },
      renew: { serial: leaf.serial, principal: 'officer', requestId },
    });
    expect(child.signal, child.output).toBe('SIGKILL');
    const state = await renewalState(leaf, requestId);
    expect(state).toMatchObject({ oldStatus: 'good', renewal: undefined, request: undefined, certificates: 1 });
    const after = await snapshotCounts(t.store);
    expect({ ...after, ocsp_responders: 0, keys: 0, crls: 0 }).toEqual({ ...before, ocsp_responders: 0, keys: 0, crls: 0 });
    const res = await call(t, 'officer', 'POST', `/api/v1/certificates/${leaf.serial}/renew`, { requestId });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect((await renewalState(leaf, requestId)).certificates).toBe(2);
  });
});

describe('CA rollover interrupted after each step', () => {
  const steps: { step: RolloverStep; committed: boolean }[] = [
    { step: 'key-made', committed: false },
    { step: 'certificate-signed', committed: false },
    { step: 'links-signed', committed: false },
    { step: 'in-transaction', committed: false },
    { step: 'committed', committed: true },
  ];
  const generations = async (lineage: string) => (await t.store.cas.list()).filter((c) => lineageOf(c) === lineage);

  it.each(steps)('a throw after $step leaves the old or the new generation; the retry completes it once', async ({ step, committed }) => {
    const lineage = 'yuhu-t1';
    const requestId = `crash-rollover-${step}`;
    const before = await generations(lineage);
    const counts = await snapshotCounts(t.store);
    const faulty = await openInstance(options, TEST_PASSPHRASE, clock, { rollover: step });
    try {
      await expect(faulty.rotation.rollovers.executeRollover(await faulty.ctx('admin'), { caName: lineage, requestId })).rejects.toThrow(`injected fault at ${step}`);
    } finally {
      await faulty.close();
    }
    const mid = await generations(lineage);
    const after = await snapshotCounts(t.store);
    if (committed) {
      expect(mid).toHaveLength(before.length + 1);
      expect(mid.filter((c) => !c.successorId)).toHaveLength(1);
      expect(after.ca_links).toBe(counts.ca_links + 2);
      expect(after.keys).toBe(counts.keys + 1);
    } else {
      expect(mid).toEqual(before);
      // CRLs are republished in the background (after earlier revocations); everything else is as it was.
      expect({ ...after, audit_log: 0, crls: 0 }).toEqual({ ...counts, audit_log: 0, crls: 0 });
    }
    const restarted = await openInstance(options, TEST_PASSPHRASE, clock);
    try {
      const retry = await restarted.rotation.rollovers.executeRollover(await restarted.ctx('admin'), { caName: lineage, requestId });
      expect(retry.replayed).toBe(committed);
      const again = await restarted.rotation.rollovers.executeRollover(await restarted.ctx('admin'), { caName: lineage, requestId });
      expect(again.replayed).toBe(true);
      expect(again.current.record.id).toBe(retry.current.record.id);
    } finally {
      await restarted.close();
    }
    const done = await generations(lineage);
    expect(done).toHaveLength(before.length + 1);
    expect(done.filter((c) => !c.successorId)).toHaveLength(1);
    expect((await snapshotCounts(t.store)).ca_links).toBe(counts.ca_links + 2);
  });

  it('a process killed in the middle of the rollover transaction leaves the old generation; after the retry, issuance moves on', async () => {
    const lineage = 'yuhu-t3';
    const requestId = 'kill-rollover-in-transaction';
    const before = await generations(lineage);
    const child = await runChild({
      options, passphrase: TEST_PASSPHRASE, now: clock.now().toISOString(), kill: { rollover: 'in-transaction' },
      rollover: { caName: lineage, principal: 'admin', requestId },
    });
    expect(child.signal, child.output).toBe('SIGKILL');
    expect(await generations(lineage)).toEqual(before);
    // The running server retries it (the seam the approval flow calls), then issues from the new key.
    const ctx = { principal: { id: 'prn-test', name: 'admin', role: 'sysadmin' as const, domains: [] }, source: 'test', requestId };
    const outcome = await t.service.services.rotation.rollovers.executeRollover(ctx, { caName: lineage, requestId });
    expect(outcome.replayed).toBe(false);
    expect(outcome.current.record.id).toBe('yuhu-t3-g2');
    const leaf = await issueLeaf(t, tmp, { kind: 'device', tier: 't3' });
    expect(leaf.issuerId).toBe('yuhu-t3-g2');
    const v = await verifyAt(tmp, {
      leafPem: leaf.pem, anchors: [await caPem(t, 'root')], untrusted: [await caPem(t, 'yuhu-t3-g2'), await caPem(t, 'yuhu')], at: clock.now(), policy: EXAMPLE_TIER_OIDS.t3,
    });
    expect(v.ok, v.stdout + v.stderr).toBe(true);
  });

  it('the running server learns generations made by another instance, and issues from the newest', async () => {
    // The throw tests above rolled yuhu-t1 over from other instances; this server has not been told.
    const newest = (await generations('yuhu-t1')).find((c) => !c.successorId)!;
    await t.service.services.rotation.runs.tick();
    const leaf = await issueLeaf(t, tmp, { kind: 'device', tier: 't1' });
    expect(leaf.issuerId).toBe(newest.id);
    const v = await verifyAt(tmp, {
      leafPem: leaf.pem, anchors: [await caPem(t, 'root')], untrusted: [await caPem(t, newest.id), await caPem(t, 'yuhu')], at: clock.now(), policy: EXAMPLE_TIER_OIDS.t1,
    });
    expect(v.ok, v.stdout + v.stderr).toBe(true);
  });
});

