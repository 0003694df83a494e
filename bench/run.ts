/**
 * `npm run bench`: issuance, OCSP and CRL benchmarks; prints a summary table and writes the figures
 * into docs/benchmarks.md (only between its `<!-- bench:… -->` markers).
 *
 *   npm run bench                         everything, ~12 minutes
 *   npm run bench -- --quick              short runs (under 2 minutes); docs untouched unless --write
 *   npm run bench -- --only ocsp          one benchmark (issuance, ocsp, crl, hsm, sm2, acme; may be repeated or comma-separated)
 *   npm run bench -- --only issuance --profile
 *                                         also a CPU profile and per-statement SQL times of in-process issuance
 *                                         (with ocsp: a CPU profile of tierca serving each method)
 *   npm run bench -- --no-write           do not touch docs/benchmarks.md
 *
 * Benchmarks, not tests: aims that are not met are reported, not failed. The run exits non-zero only
 * when a correctness check fails (an issuance answer that is not 201, a duplicate serial, a wrong
 * OCSP answer, a CRL that does not parse back).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { profileApiIssuance, runIssuanceBenchmarks } from './issuance.ts';
import { prepareCsrs } from './lib/demo-data.ts';
import { runOcspBenchmarks } from './ocsp.ts';
import { runCrlBenchmarks } from './crl.ts';
import { runHsmBenchmarks } from './hsm.ts';
import { runSm2Benchmarks } from './sm2.ts';
import { acmeMarkdown, runAcmeBenchmark } from './acme.ts';
import { loadNow, machineInfo } from './lib/machine.ts';
import { wrkVersion } from './lib/wrk.ts';
import { formatProfile, summariseProfile } from './lib/cpu-profile.ts';
import { killOwnedChildren, log, ROOT, runCommand, runNodeJson } from './lib/util.ts';
import {
  crlMarkdown, formatSummary, issuanceMarkdown, machineMarkdown, ocspMarkdown, summaryRows, updateDoc, type Results,
} from './report.ts';
import type { IssuanceChildResult } from './issuance-inprocess.ts';

const BENCHMARKS = ['issuance', 'ocsp', 'crl', 'hsm', 'sm2', 'acme'] as const;
type Benchmark = (typeof BENCHMARKS)[number];
const DOC = join(ROOT, 'docs/benchmarks.md');

const { values } = parseArgs({
  options: {
    only: { type: 'string', multiple: true },
    quick: { type: 'boolean', default: false },
    write: { type: 'boolean' },
    'no-write': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  process.stdout.write(`usage: npm run bench -- [--only issuance|ocsp|crl|hsm|sm2|acme] [--quick] [--profile] [--write|--no-write]\n`);
  process.exit(0);
}

const selected = new Set<Benchmark>();
for (const item of (values.only ?? []).flatMap((v) => v.split(','))) {
  if (!BENCHMARKS.includes(item as Benchmark)) {
    process.stderr.write(`bench: --only takes ${BENCHMARKS.join(', ')}, not ${item}\n`);
    process.exit(2);
  }
  selected.add(item as Benchmark);
}
if (selected.size === 0) for (const b of BENCHMARKS) selected.add(b);
const quick = values.quick;
const write = values['no-write'] ? false : (values.write ?? !quick);

// Children are in process groups of their own: end them if we are interrupted.
process.on('exit', killOwnedChildren);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killOwnedChildren();
    process.exit(130);
  });
}

const settings = quick
  ? {
    issuance: { count: 300, warmup: 32, workers: [1, 2], prefill: 0, prefillCount: 0, prefillMaxSeconds: 0 },
    ocsp: { certificates: 1000, revoked: 100, load: { threads: 2, connections: 64, seconds: 3 }, warmupSeconds: 1, workers: [1, 2], rounds: 1 },
    crl: { sizes: [10_000, 100_000], generator: false, publisherRows: 10_000, publisherEngines: ['sqlite', 'postgres'] as const },
  }
  : {
    issuance: { count: 2000, warmup: 64, workers: [1, 2], prefill: 100_000, prefillCount: 1000, prefillMaxSeconds: 20 },
    ocsp: { certificates: 1000, revoked: 100, load: { threads: 2, connections: 64, seconds: 10 }, warmupSeconds: 2, workers: [1, 2], rounds: 3 },
    crl: { sizes: [10_000, 100_000, 1_000_000], generator: true, publisherRows: 1_000_000, publisherEngines: ['sqlite', 'postgres'] as const },
  };

const argv = process.argv.slice(2);
const results: Results = {
  machine: await machineInfo(),
  meta: { date: '', command: `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`, quick },
};
results.meta.date = results.machine.date;
log(`bench: ${[...selected].join(', ')}${quick ? ' (quick)' : ''}; ${results.machine.nproc} cores, ${results.machine.cpuModel}, Node ${results.machine.node}; load average ${results.machine.loadAtStart.toFixed(2)}`);
if (results.machine.loadAtStart > 1) log('bench: the machine is busy with other work: expect low, noisy figures');

if (selected.has('issuance')) {
  results.issuance = await runIssuanceBenchmarks(settings.issuance);
  if (values.profile) await profileIssuance(quick ? 500 : 2000);
}
if (selected.has('ocsp')) {
  if (!(await wrkVersion())) {
    log('bench: wrk is missing; running bench/setup.sh');
    const setup = await runCommand('bash', [join(ROOT, 'bench/setup.sh')], { timeoutMs: 300_000 });
    process.stdout.write(setup.stdout + setup.stderr);
  }
  if (await wrkVersion()) {
    results.ocsp = await runOcspBenchmarks({ ...settings.ocsp, profile: values.profile });
  } else {
    log('bench: OCSP benchmark skipped: wrk is not installed. Install it with `sudo bash bench/setup.sh` (or apt-get install wrk).');
  }
}
if (selected.has('crl')) results.crl = await runCrlBenchmarks(settings.crl);
const hsm = selected.has('hsm') ? await runHsmBenchmarks({ quick }) : undefined;
const sm2 = selected.has('sm2') ? await runSm2Benchmarks({ quick }) : undefined;
const acme = selected.has('acme') ? await runAcmeBenchmark({ quick, profileDir: values.profile ? mkdtempSync(join(tmpdir(), 'tierca-bench-acme-')) : undefined }) : undefined;
if (acme?.profileFile) process.stdout.write(`\n${formatProfile(summariseProfile(acme.profileFile), 25)}\n`);

results.meta.loadAtEnd = loadNow();
const rows = summaryRows(results);
process.stdout.write(`\nSummary (${results.meta.date}, ${results.machine.nproc} cores ${results.machine.cpuModel}, Node ${results.machine.node}, ${results.machine.nodeOpenssl})\n\n${formatSummary(rows)}\n\n`);

if (write) {
  // The machine block describes the runs of the blocks that follow it (1–3); a run of only the later
  // benchmarks names its machine in its own block instead.
  const blocks: Record<string, string> = results.issuance || results.ocsp || results.crl ? { machine: machineMarkdown(results.machine, results.meta) } : {};
  if (results.issuance) blocks.issuance = issuanceMarkdown(results.issuance, results.meta);
  if (results.ocsp) blocks.ocsp = ocspMarkdown(results.ocsp, results.meta);
  if (results.crl) blocks.crl = crlMarkdown(results.crl, results.meta);
  if (acme) blocks.acme = acmeMarkdown(acme, results.meta, results.machine);
  updateDoc(DOC, blocks);
  log(`bench: figures written to ${DOC}`);
} else {
  log('bench: docs/benchmarks.md left as it was (quick runs write only with --write)');
}

const failedChecks = [
  ...(results.issuance ?? []).flatMap((r) => r.problems),
  ...(results.ocsp && results.ocsp.verified.wrong > 0 ? [`${results.ocsp.verified.wrong} wrong OCSP answers`] : []),
  ...(results.crl?.problems ?? []),
  ...(hsm?.problems ?? []),
  ...(sm2?.problems ?? []),
  ...(acme?.problems ?? []),
];
if (failedChecks.length) {
  process.stderr.write(`bench: correctness checks failed:\n  ${failedChecks.join('\n  ')}\n`);
  process.exitCode = 1;
}

/** --profile: a CPU profile of the timed window of in-process issuance, and SQL time per statement. */
async function profileIssuance(count: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tierca-bench-profile-'));
  try {
    const file = join(dir, 'issuance.cpuprofile');
    log(`bench: profiling in-process issuance of ${count} certificates`);
    await runNodeJson<IssuanceChildResult>('bench/issuance-inprocess.ts', ['--count', String(count), '--profile', file], { timeoutMs: 300_000 });
    process.stdout.write(`\n${formatProfile(summariseProfile(file), 25)}\n`);
    const sql = await runNodeJson<IssuanceChildResult>('bench/issuance-inprocess.ts', ['--count', String(count), '--sql-stats'], { timeoutMs: 300_000 });
    process.stdout.write(`\nSQLite statements during ${count} issuances (${sql.perSecond.toFixed(0)}/s with timing on):\n`);
    for (const s of (sql.sql ?? []).slice(0, 15)) {
      process.stdout.write(`  ${s.totalMs.toFixed(0).padStart(7)} ms ${String(s.calls).padStart(7)} calls ${((s.totalMs / s.calls) * 1000).toFixed(0).padStart(6)} µs  ${s.sql.slice(0, 110)}\n`);
    }
    process.stdout.write('\n');
    log(`bench: profiling the API server issuing ${count} certificates`);
    process.stdout.write(`\n${await profileApiIssuance(count, await prepareCsrs(count))}\n\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
