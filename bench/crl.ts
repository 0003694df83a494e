/**
 * Benchmark 3: CRL generation time and peak memory. `buildCrl` (pki/crl.ts) with a P-256 software
 * signer for each size in a child process of its own (bench/crl-build.ts), and the CrlPublisher end to
 * end — rows streamed from storage into the CRL — over SQLite and PostgreSQL (bench/crl-publisher.ts:
 * one child fills the database, a fresh one publishes, so that its peak RSS is the publication's).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKnex } from '../server/storage/knex-store.ts';
import { log, runNodeJson } from './lib/util.ts';
import type { CrlBuildResult } from './crl-build.ts';
import type { BenchEngine, CrlFillResult, CrlPublisherResult } from './crl-publisher.ts';

export interface CrlOptions {
  sizes: number[];
  /** Also build the largest size from a generator (the builder's own footprint). */
  generator: boolean;
  /** Revoked rows of one CA for the publisher; 0 skips it. */
  publisherRows: number;
  /** Engines the publisher runs on; PostgreSQL is skipped, and said so, when its server does not answer. */
  publisherEngines: readonly BenchEngine[];
}

export interface CrlResults {
  builds: CrlBuildResult[];
  publishers: CrlPublisherResult[];
  /** Engines not run, with the reason. */
  skipped: string[];
  problems: string[];
}

/** The PostgreSQL database of the publisher run (a fresh schema in it, dropped afterwards). */
const PG_URL = process.env.TIERCA_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export async function runCrlBenchmarks(opts: CrlOptions): Promise<CrlResults> {
  const builds: CrlBuildResult[] = [];
  const problems: string[] = [];
  const runs: [number, 'array' | 'generator'][] = opts.sizes.map((n) => [n, 'array']);
  if (opts.generator && opts.sizes.length) runs.push([Math.max(...opts.sizes), 'generator']);
  for (const [n, mode] of runs) {
    log(`crl: buildCrl, ${n.toLocaleString('en-US')} entries (${mode})`);
    const r = await runNodeJson<CrlBuildResult>('bench/crl-build.ts', [String(n), mode], { nodeArgs: ['--expose-gc'], timeoutMs: 180_000 });
    if (r.parsedEntries !== n) problems.push(`CRL of ${n} entries parsed back with ${r.parsedEntries}`);
    builds.push(r);
    log(`crl:   ${r.buildMs.toFixed(0)} ms, ${(r.derBytes / 1024 / 1024).toFixed(1)} MiB DER, peak RSS ${r.peakRssMiB.toFixed(0)} MiB`);
  }
  const publishers: CrlPublisherResult[] = [];
  const skipped: string[] = [];
  if (opts.publisherRows > 0) {
    for (const engine of opts.publisherEngines) {
      if (engine === 'postgres' && !(await postgresAnswers())) {
        skipped.push(`PostgreSQL: no server answers at ${PG_URL} (set TIERCA_BENCH_PG_URL)`);
        log(`crl: CrlPublisher on PostgreSQL skipped: no server answers at ${PG_URL}`);
        continue;
      }
      try {
        const r = await runPublisher(engine, opts.publisherRows);
        if (r.parsedEntries !== opts.publisherRows) problems.push(`published CRL of ${opts.publisherRows} rows (${engine}) parsed back with ${r.parsedEntries}`);
        publishers.push(r);
      } catch (err) {
        // A wrong count or order fails inside the child: a correctness check, not a skip.
        problems.push(`CrlPublisher on ${engine}: ${(err as Error).message.split('\n').slice(0, 3).join(' ')}`);
      }
    }
  }
  return { builds, publishers, skipped, problems };
}

async function runPublisher(engine: BenchEngine, rows: number): Promise<CrlPublisherResult> {
  const where = engine === 'sqlite' ? mkdtempSync(join(tmpdir(), 'tierca-bench-crlpub-')) : `bench_crl_${randomBytes(6).toString('hex')}`;
  const env = { ...process.env, TIERCA_BENCH_PG_URL: PG_URL };
  const name = engine === 'sqlite' ? 'SQLite' : 'PostgreSQL';
  try {
    log(`crl: CrlPublisher on ${name}: inserting ${rows.toLocaleString('en-US')} revoked rows of one CA`);
    const fill = await runNodeJson<CrlFillResult>('bench/crl-publisher.ts', ['fill', engine, where, String(rows)], { env, timeoutMs: 900_000 });
    log(`crl:   inserted in ${(fill.insertMs / 1000).toFixed(1)} s; publishing a full CRL in a fresh process`);
    const r = await runNodeJson<CrlPublisherResult>('bench/crl-publisher.ts', ['publish', engine, where, String(rows), String(fill.insertMs)], {
      nodeArgs: ['--expose-gc'],
      env,
      timeoutMs: 600_000,
    });
    log(`crl:   publishFull ${r.publishMs.toFixed(0)} ms (paged read alone ${r.readMs.toFixed(0)} ms), peak RSS ${r.peakRssMiB.toFixed(0)} MiB`);
    return r;
  } finally {
    await runNodeJson('bench/crl-publisher.ts', ['drop', engine, where], { env, timeoutMs: 120_000 }).catch((err) => {
      log(`crl: could not remove ${where}: ${(err as Error).message.split('\n')[0]}`);
    });
  }
}

async function postgresAnswers(): Promise<boolean> {
  const knex = createKnex({ databaseUrl: PG_URL });
  try {
    await Promise.race([knex.raw('select 1'), new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 5000).unref())]);
    return true;
  } catch {
    return false;
  } finally {
    await knex.destroy().catch(() => undefined);
  }
}
