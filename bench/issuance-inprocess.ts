/**
 * Child process of the issuance benchmark: issuance without HTTP. Opens the demo services on a fresh
 * data folder, creates the subjects, prepares the CSRs, then times `ra.issue(ctx, {subjectId, csr})`
 * with `--concurrency` calls in flight. Prints one JSON line (IssuanceChildResult).
 *
 *   node --import tsx bench/issuance-inprocess.ts --count 2000 --concurrency 32
 *        [--warmup 64] [--profile out.cpuprofile] [--sql-stats]
 *
 * --profile records a V8 CPU profile of the timed window only (node:inspector); --sql-stats times
 * every SQLite statement of the timed window (by wrapping better-sqlite3's prepared statements).
 * --synchronous NORMAL|OFF is a what-if for the report only: it rewrites the store's
 * `PRAGMA synchronous = FULL` to show what the fsync per commit costs. tierca itself runs FULL.
 */
import { Session } from 'node:inspector/promises';
import { rmSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { freshDataDir } from './lib/tierca-process.ts';
import { openDemoServices } from './lib/demo-services.ts';
import { deviceSubject, prepareCsrs } from './lib/demo-data.ts';
import { mapConcurrent, percentile } from './lib/util.ts';

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
const demo = await openDemoServices(dataDir);
try {
  const { ra } = demo.services;
  const ctx = await demo.context('officer');
  const subjectStart = performance.now();
  const subjects = await mapConcurrent(Array.from({ length: count + warmup }, (_, i) => i), concurrency, async (i) => (await ra.addSubject(ctx(), deviceSubject('inproc', i))).id);
  const subjectsPerSecond = subjects.length / ((performance.now() - subjectStart) / 1000);
  const csrs = await prepareCsrs(count + warmup);

  // Warm-up (JIT, statement caches), not timed.
  await mapConcurrent(subjects.slice(count), concurrency, (id, i) => ra.issue(ctx(), { subjectId: id, csr: csrs[count + i] }));

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
  const started = performance.now();
  await mapConcurrent(subjects.slice(0, count), concurrency, async (id, i) => {
    const t0 = performance.now();
    try {
      const result = await ra.issue(ctx(), { subjectId: id, csr: csrs[i] });
      if (result.kind === 'issued') serials.push(result.certificate.serial);
      else failures.pending = (failures.pending ?? 0) + 1;
    } catch (err) {
      const code = (err as { code?: string }).code ?? (err as Error).name;
      failures[code] = (failures[code] ?? 0) + 1;
    }
    latencies[i] = performance.now() - t0;
  });
  const seconds = (performance.now() - started) / 1000;
  timingSql = false;
  if (session) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(values.profile!, JSON.stringify(profile));
    session.disconnect();
  }
  const result: IssuanceChildResult = {
    count,
    concurrency,
    seconds,
    perSecond: count / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: percentile(latencies, 100),
    issued: serials.length,
    failures,
    distinctSerials: new Set(serials).size,
    subjectsPerSecond,
    ...(values['sql-stats']
      ? { sql: [...sqlStats.entries()].map(([sql, s]) => ({ sql, calls: s.calls, totalMs: s.ms })).sort((a, b) => b.totalMs - a.totalMs) }
      : {}),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await demo.close();
  rmSync(dataDir, { recursive: true, force: true });
}
