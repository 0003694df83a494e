/**
 * Benchmark 1: certificate issuance.
 *
 * Through the API: a fresh demo data folder per run, tierca started as a child process
 * (TIERCA_WORKERS=1 and =2), N device subjects created first (t1, Yuhu, DNS under
 * yuhu.xiangtan.intranet), P-256 CSRs made before the clock starts, then POST /api/v1/certificates
 * from 32 concurrent keep-alive clients with the demo officer's token. Afterwards: every answer 201,
 * every serial distinct, and the database holds exactly the certificates answered.
 *
 * In-process: the same issuance through `services.ra.issuance.issue(ctx, …)` with 32 in flight and no HTTP
 * (bench/issuance-inprocess.ts, in a child process of its own).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { KeepAliveClient } from './lib/http-client.ts';
import { createSubjectsViaApi, prepareCsrs } from './lib/demo-data.ts';
import { freshDataDir, startTierca } from './lib/tierca-process.ts';
import { log, mapConcurrent, percentile, runNodeJson } from './lib/util.ts';
import { processGroupCpuSeconds } from './lib/proc-cpu.ts';
import type { IssuanceChildResult } from './issuance-inprocess.ts';
import { formatProfile, summariseProfile } from './lib/cpu-profile.ts';

export const CLIENTS = 32;

export interface IssuanceRun {
  label: string;
  mode: 'api' | 'in-process';
  workers: number | null;
  count: number;
  concurrency: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p99: number;
  max: number;
  /** HTTP status (or error code in-process) → count. */
  outcomes: Record<string, number>;
  distinctSerials: number;
  /** Device certificates found in the database afterwards (API runs), warm-up included. */
  storedCertificates?: number;
  expectedStored?: number;
  subjectsPerSecond: number;
  /** Server CPU (user + system, every process of it) per certificate during the timed window, ms. */
  cpuMsPerCertificate: number | null;
  prefilled: number;
  /** Problems found by the checks; empty when every answer was 201 and every serial distinct. */
  problems: string[];
}

export interface IssuanceOptions {
  count: number;
  warmup: number;
  workers: number[];
  /** An extra in-process run over a store that already holds this many live certificates (0: none). */
  prefill: number;
  prefillCount: number;
  /** Time bound of the prefilled run (it may be slow): no new issuance starts after this. */
  prefillMaxSeconds: number;
}

export async function runIssuanceBenchmarks(opts: IssuanceOptions): Promise<IssuanceRun[]> {
  const runs: IssuanceRun[] = [];
  log(`issuance: preparing ${opts.count + opts.warmup} P-256 CSRs`);
  const csrs = await prepareCsrs(opts.count + opts.warmup);
  for (const workers of opts.workers) runs.push(await apiRun(workers, opts, csrs));
  runs.push(await inProcessRun(opts.count, opts.warmup, 0));
  if (opts.prefill > 0) runs.push(await inProcessRun(opts.prefillCount, Math.min(opts.warmup, 32), opts.prefill, opts.prefillMaxSeconds));
  return runs;
}

async function apiRun(workers: number, opts: IssuanceOptions, csrs: string[]): Promise<IssuanceRun> {
  const { count, warmup } = opts;
  const dataDir = freshDataDir(`issue-${workers}w`);
  log(`issuance: starting tierca with TIERCA_WORKERS=${workers} on a fresh demo folder ${dataDir}`);
  const server = await startTierca({ workers, dataDir });
  const client = new KeepAliveClient(server.url, { authorization: `Bearer ${server.token('officer')}` }, CLIENTS);
  try {
    const subjectStart = performance.now();
    const subjects = await createSubjectsViaApi(client, `api${workers}`, count + warmup);
    const subjectsPerSecond = subjects.length / ((performance.now() - subjectStart) / 1000);
    log(`issuance: ${subjects.length} subjects created (${subjectsPerSecond.toFixed(0)}/s); warming up with ${warmup} issuances`);
    const issue = (i: number) => client.json<{ certificate?: { serial: string } }>('POST', '/api/v1/certificates', { subjectId: subjects[i], csr: csrs[i] });
    const warm = await mapConcurrent(Array.from({ length: warmup }, (_, i) => count + i), CLIENTS, issue);
    const warmFailures = warm.filter((r) => r.status !== 201).length;

    log(`issuance: timing ${count} POST /api/v1/certificates, ${CLIENTS} clients, keep-alive`);
    const latencies = new Array<number>(count);
    const outcomes: Record<string, number> = {};
    const serials: string[] = [];
    const problems: string[] = [];
    const cpuBefore = processGroupCpuSeconds(server.child.pid!);
    const started = performance.now();
    await mapConcurrent(Array.from({ length: count }, (_, i) => i), CLIENTS, async (i) => {
      let status: string;
      try {
        const res = await issue(i);
        latencies[i] = res.ms;
        status = String(res.status);
        if (res.status === 201 && res.json?.certificate?.serial) serials.push(res.json.certificate.serial);
        else if (problems.length < 5) problems.push(`answer ${res.status}: ${res.body.toString('utf8').slice(0, 200)}`);
      } catch (err) {
        status = (err as NodeJS.ErrnoException).code ?? 'error';
        if (problems.length < 5) problems.push(`request failed: ${(err as Error).message}`);
      }
      outcomes[status] = (outcomes[status] ?? 0) + 1;
    });
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = processGroupCpuSeconds(server.child.pid!);
    client.close();
    await server.stop();

    const distinct = new Set(serials).size;
    if ((outcomes['201'] ?? 0) !== count) problems.unshift(`${count - (outcomes['201'] ?? 0)} of ${count} answers were not 201`);
    if (distinct !== serials.length) problems.unshift(`${serials.length - distinct} duplicate serials`);
    if (warmFailures) problems.push(`${warmFailures} warm-up answers were not 201`);
    // The database must hold exactly what was answered 201 (warm-up included), each (issuer, serial) once.
    const db = new Database(join(dataDir, 'tierca.db'), { readonly: true });
    const row = db.prepare("select count(*) as n, count(distinct issuer_id || '/' || serial) as d from certificates where profile = 'device'").get() as { n: number; d: number };
    db.close();
    const expectedStored = (outcomes['201'] ?? 0) + (warmup - warmFailures);
    if (row.n !== expectedStored || row.d !== row.n) problems.push(`database holds ${row.n} device certificates (${row.d} distinct), expected ${expectedStored}`);
    rmSync(dataDir, { recursive: true, force: true });
    const run: IssuanceRun = {
      label: `API, ${workers} process${workers > 1 ? 'es' : ''}`,
      mode: 'api',
      workers,
      count,
      concurrency: CLIENTS,
      seconds,
      perSecond: count / seconds,
      p50: percentile(latencies.filter(Number.isFinite), 50),
      p99: percentile(latencies.filter(Number.isFinite), 99),
      max: percentile(latencies.filter(Number.isFinite), 100),
      outcomes,
      distinctSerials: distinct,
      storedCertificates: row.n,
      expectedStored,
      subjectsPerSecond,
      cpuMsPerCertificate: cpuBefore === null || cpuAfter === null ? null : ((cpuAfter - cpuBefore) * 1000) / count,
      prefilled: 0,
      problems,
    };
    log(`issuance: ${run.label}: ${run.perSecond.toFixed(0)} certificates/s, p50 ${run.p50.toFixed(1)} ms, p99 ${run.p99.toFixed(1)} ms, CPU ${run.cpuMsPerCertificate?.toFixed(2) ?? '?'} ms/certificate${problems.length ? `; PROBLEMS: ${problems.join('; ')}` : ''}`);
    return run;
  } catch (err) {
    client.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}

async function inProcessRun(count: number, warmup: number, prefill: number, maxSeconds?: number): Promise<IssuanceRun> {
  log(`issuance: in-process ra.issue, ${count} certificates${maxSeconds ? ` (at most ${maxSeconds} s)` : ''}, ${CLIENTS} in flight${prefill ? `, store prefilled with ${prefill} live certificates` : ''}`);
  const r = await runNodeJson<IssuanceChildResult>('bench/issuance-inprocess.ts', [
    '--count', String(count), '--concurrency', String(CLIENTS), '--warmup', String(warmup), '--prefill', String(prefill),
    ...(maxSeconds ? ['--max-seconds', String(maxSeconds)] : []),
  ], { timeoutMs: 300_000 });
  const problems: string[] = [];
  if (r.issued !== r.count) problems.push(`${r.count - r.issued} of ${r.count} issuances failed: ${JSON.stringify(r.failures)}`);
  if (r.distinctSerials !== r.issued) problems.push(`${r.issued - r.distinctSerials} duplicate serials`);
  const run: IssuanceRun = {
    label: prefill ? `in-process, ${prefill.toLocaleString('en-US')} live certificates already stored` : 'in-process (ra.issue, no HTTP)',
    mode: 'in-process',
    workers: null,
    count: r.count,
    concurrency: r.concurrency,
    seconds: r.seconds,
    perSecond: r.perSecond,
    p50: r.p50,
    p99: r.p99,
    max: r.max,
    outcomes: { issued: r.issued, ...r.failures },
    distinctSerials: r.distinctSerials,
    subjectsPerSecond: r.subjectsPerSecond,
    cpuMsPerCertificate: r.cpuMsPerCertificate,
    prefilled: r.prefilled,
    problems,
  };
  log(`issuance: ${run.label}: ${run.perSecond.toFixed(0)} certificates/s, p50 ${run.p50.toFixed(1)} ms, p99 ${run.p99.toFixed(1)} ms, CPU ${run.cpuMsPerCertificate?.toFixed(2) ?? "?"} ms/certificate${problems.length ? `; PROBLEMS: ${problems.join('; ')}` : ''}`);
  return run;
}

/**
 * --profile: where an API issuance spends its server CPU. Subjects are created by an unprofiled
 * server; then the same data folder is served by one process under `node --cpu-prof`, which only
 * issues (after a warm-up) and stops, so the profile holds issuance and little else.
 */
export async function profileApiIssuance(count: number, csrs: string[]): Promise<string> {
  const dataDir = freshDataDir('issue-profile');
  const profileDir = mkdtempSync(join(tmpdir(), 'tierca-bench-api-profile-'));
  try {
    let server = await startTierca({ workers: 1, dataDir });
    let client = new KeepAliveClient(server.url, { authorization: `Bearer ${server.token('officer')}` }, CLIENTS);
    const subjects = await createSubjectsViaApi(client, 'profile', count);
    client.close();
    await server.stop();
    server = await startTierca({ workers: 1, dataDir, port: server.port, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] });
    client = new KeepAliveClient(server.url, { authorization: `Bearer ${server.token('officer')}` }, CLIENTS);
    const started = performance.now();
    await mapConcurrent(subjects, CLIENTS, async (subjectId, i) => {
      const res = await client.json('POST', '/api/v1/certificates', { subjectId, csr: csrs[i % csrs.length] });
      if (res.status !== 201) throw new Error(`profiled issuance answered ${res.status}: ${res.body.toString('utf8').slice(0, 200)}`);
    });
    const rate = count / ((performance.now() - started) / 1000);
    client.close();
    await server.stop();
    // One profile per thread: the main thread (the largest) and the signing threads.
    const files = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'));
    if (files.length === 0) return 'no CPU profile was written';
    const summaries = files.map((f) => summariseProfile(join(profileDir, f))).sort((a, b) => b.totalMs - a.totalMs);
    return summaries
      .map((summary, i) => `tierca API server, 1 process, ${i === 0 ? 'main thread' : `thread ${i + 1} (a signing thread)`}, ${count} issuances (${rate.toFixed(0)}/s under the profiler; start-up included):\n${formatProfile(summary, 30)}`)
      .join('\n\n');
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(profileDir, { recursive: true, force: true });
  }
}
