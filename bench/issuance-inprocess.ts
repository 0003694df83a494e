/**
 * Child process of the issuance benchmark: issuance without HTTP. Opens the demo services on a fresh
 * data folder, creates the subjects, prepares the CSRs, then times `ra.issuance.issue(ctx, {subjectId, csr})`
 * with `--concurrency` calls in flight. Prints one JSON line (IssuanceChildResult).
 *
 *   node --import tsx bench/issuance-inprocess.ts --count 2000 --concurrency 32
 *        [--warmup 64] [--profile out.cpuprofile] [--sql-stats] [--synchronous FULL|NORMAL|OFF]
 *        [--prefill N] [--analyze] [--max-seconds S]
 *
 * --profile records a V8 CPU profile of the timed window only (node:inspector); --sql-stats times
 * every SQLite statement of the timed window (by wrapping better-sqlite3's prepared statements).
 * --synchronous FULL|OFF is a what-if for the report only: it rewrites the store's
 * `PRAGMA synchronous = NORMAL`. tierca itself runs NORMAL and fdatasyncs the WAL off the JavaScript
 * thread after each commit (decision 0030); FULL adds SQLite's own fsync inside each COMMIT, on the
 * thread (what tierca did before), OFF shows the cost of SQLite's checkpoint syncs.
 * --prefill N first inserts N live (good) device certificates of the same CA straight into the
 * certificates table, to see how issuance behaves with a populated store. --analyze (what-if) runs
 * SQLite's ANALYZE before the timed window, so the query planner has statistics. --max-seconds S
 * stops starting new issuances after S seconds (the rate is then over those completed).
 */
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { knexOf } from '../server/storage/knex-store.ts';
import { freshDataDir } from './lib/tierca-process.ts';
import { openDemoServices } from './lib/demo-services.ts';
import { BENCH_DOMAIN, BENCH_TIER, deviceSubject, prepareCsrs } from './lib/demo-data.ts';
import { mapConcurrent, percentile } from './lib/util.ts';
import { DAY_MS } from '../pki/time-constants.ts';

export interface SqlStat {
  sql: string;
  calls: number;
  totalMs: number;
}

export interface IssuanceChildResult {
  count: number;
  concurrency: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p99: number;
  max: number;
  issued: number;
  failures: Record<string, number>;
  distinctSerials: number;
  subjectsPerSecond: number;
  /** CPU time (user + system, all threads) of this process per certificate during the timed window, ms. */
  cpuMsPerCertificate: number;
  prefilled: number;
  /** Share of the timed window the main thread's event loop was busy (not waiting for I/O or jobs). */
  mainThreadBusy: number;
  /** The same for each signing thread. */
  signingThreadsBusy: number[];
  sql?: SqlStat[];
}

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '32' },
    warmup: { type: 'string', default: '64' },
    profile: { type: 'string' },
    'sql-stats': { type: 'boolean', default: false },
    synchronous: { type: 'string' },
    prefill: { type: 'string', default: '0' },
    analyze: { type: 'boolean', default: false },
    'max-seconds': { type: 'string' },
  },
});
const count = Number(values.count);
const concurrency = Number(values.concurrency);
const warmup = Number(values.warmup);

// --sql-stats: time each statement by its SQL text. Installed before the store opens, so every
// statement tierca prepares is wrapped.
const sqlStats = new Map<string, { calls: number; ms: number }>();
let timingSql = false;
if (values['sql-stats']) {
  const proto = Database.prototype as unknown as { prepare(sql: string): Record<string, (...a: unknown[]) => unknown> };
  const prepare = proto.prepare;
  proto.prepare = function (this: unknown, sql: string) {
    const statement = prepare.call(this, sql);
    for (const method of ['run', 'all', 'get']) {
      const original = statement[method].bind(statement);
      statement[method] = (...args: unknown[]) => {
        const t0 = performance.now();
        try {
          return original(...args);
        } finally {
          if (timingSql) {
            const s = sqlStats.get(sql) ?? { calls: 0, ms: 0 };
            s.calls++;
            s.ms += performance.now() - t0;
            sqlStats.set(sql, s);
          }
        }
      };
    }
    return statement;
  };
}

if (values.synchronous) {
  const mode = values.synchronous.toUpperCase();
  if (!['NORMAL', 'OFF', 'FULL'].includes(mode)) throw new Error('--synchronous takes NORMAL, OFF or FULL');
  const proto = Database.prototype as unknown as { pragma(source: string, options?: unknown): unknown };
  const pragma = proto.pragma;
  proto.pragma = function (this: unknown, source: string, options?: unknown) {
    return pragma.call(this, /^\s*synchronous\s*=/i.test(source) ? `synchronous = ${mode}` : source, options);
  };
}

const dataDir = freshDataDir('inproc');
let demo: Awaited<ReturnType<typeof openDemoServices>>;
try {
  demo = await openDemoServices(dataDir);
} catch (err) {
  rmSync(dataDir, { recursive: true, force: true });
  throw err;
}
try {
  const { ra } = demo.services;
  const ctx = await demo.context('officer');
  const subjectStart = performance.now();
  const subjects = await mapConcurrent(Array.from({ length: count + warmup }, (_, i) => i), concurrency, async (i) => (await ra.subjects.add(ctx(), deviceSubject('inproc', i))).id);
  const subjectsPerSecond = subjects.length / ((performance.now() - subjectStart) / 1000);
  const csrs = await prepareCsrs(count + warmup);
  const prefill = Number(values.prefill);
  if (prefill > 0) await prefillCertificates(prefill);
  if (values.analyze) await knexOf(demo.services.store).raw('analyze');

  // Warm-up (JIT, statement caches), not timed.
  await mapConcurrent(subjects.slice(count), concurrency, (id, i) => ra.issuance.issue(ctx(), { subjectId: id, csr: csrs[count + i] }));

  let session: Session | undefined;
  if (values.profile) {
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
    await session.post('Profiler.start');
  }
  timingSql = true;
  const latencies = new Array<number>(count);
  const serials: string[] = [];
  const failures: Record<string, number> = {};
  const cpuBefore = process.cpuUsage();
  const mainBefore = performance.eventLoopUtilization();
  const signingBefore = demo.services.signing.utilization();
  const started = performance.now();
  const deadline = values['max-seconds'] ? started + Number(values['max-seconds']) * 1000 : Infinity;
  let attempted = 0;
  await mapConcurrent(subjects.slice(0, count), concurrency, async (id, i) => {
    if (performance.now() > deadline) return;
    attempted++;
    const t0 = performance.now();
    try {
      const result = await ra.issuance.issue(ctx(), { subjectId: id, csr: csrs[i] });
      if (result.kind === 'issued') serials.push(result.certificate.serial);
      else failures.pending = (failures.pending ?? 0) + 1;
    } catch (err) {
      const code = (err as { code?: string }).code ?? (err as Error).name;
      failures[code] = (failures[code] ?? 0) + 1;
    }
    latencies[i] = performance.now() - t0;
  });
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const mainBusy = performance.eventLoopUtilization(mainBefore).utilization;
  const signingBusy = demo.services.signing.utilization().map((u, i) => {
    const before = signingBefore[i] ?? { idle: 0, active: 0 };
    const active = u.active - before.active;
    return active / (active + u.idle - before.idle);
  });
  timingSql = false;
  if (session) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(values.profile!, JSON.stringify(profile));
    session.disconnect();
  }
  const done = latencies.filter((x) => x !== undefined);
  const result: IssuanceChildResult = {
    count: attempted,
    concurrency,
    seconds,
    perSecond: attempted / seconds,
    p50: percentile(done, 50),
    p99: percentile(done, 99),
    max: percentile(done, 100),
    issued: serials.length,
    failures,
    distinctSerials: new Set(serials).size,
    subjectsPerSecond,
    cpuMsPerCertificate: (cpu.user + cpu.system) / 1000 / attempted,
    prefilled: prefill,
    mainThreadBusy: mainBusy,
    signingThreadsBusy: signingBusy,
    ...(values['sql-stats']
      ? { sql: [...sqlStats.entries()].map(([sql, s]) => ({ sql, calls: s.calls, totalMs: s.ms })).sort((a, b) => b.totalMs - a.totalMs) }
      : {}),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await demo.close();
  rmSync(dataDir, { recursive: true, force: true });
}

/**
 * Inserts `n` good device certificates of the bench CA in batches (raw rows, bypassing issuance: only
 * the row count matters here). Each row reuses the CA certificate's DER as a stand-in body.
 */
async function prefillCertificates(n: number): Promise<void> {
  const { store, cas } = demo.services;
  const ca = cas.issuingCa(BENCH_DOMAIN, BENCH_TIER);
  if (!ca) throw new Error('no bench CA');
  const now = new Date();
  const notAfter = new Date(now.getTime() + 365 * DAY_MS).toISOString();
  const knex = knexOf(store);
  for (let done = 0; done < n; ) {
    const rows = [];
    for (const end = Math.min(n, done + 10_000); done < end; done++) {
      rows.push({
        issuer_id: ca.record.id, serial: randomBytes(16).toString('hex'), subject_id: `sub-prefill-${done}`, profile: 'device', tier: BENCH_TIER,
        domain: BENCH_DOMAIN, subject_dn: `CN=prefill ${done}`, not_before: now.toISOString(), not_after: notAfter, status: 'good',
        fingerprint: randomBytes(32).toString('hex'), der: ca.record.certificate, key_algorithm: 'P-256', created_at: now.toISOString(),
      });
    }
    await knex.batchInsert('certificates', rows, 500);
  }
}
