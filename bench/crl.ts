/**
 * Benchmark 3: CRL generation time and peak memory. `buildCrl` (pki/crl.ts) with a P-256 software
 * signer for each size in a child process of its own (bench/crl-build.ts), and the CrlPublisher end to
 * end over SQLite (bench/crl-publisher.ts).
 */
import { log, runNodeJson } from './lib/util.ts';
import type { CrlBuildResult } from './crl-build.ts';
import type { CrlPublisherResult } from './crl-publisher.ts';

export interface CrlOptions {
  sizes: number[];
  /** Also build the largest size from a generator (the builder's own footprint). */
  generator: boolean;
  publisherRows: number;
}

export interface CrlResults {
  builds: CrlBuildResult[];
  publisher?: CrlPublisherResult;
  problems: string[];
}

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
  let publisher: CrlPublisherResult | undefined;
  if (opts.publisherRows > 0) {
    log(`crl: CrlPublisher.publishFull over SQLite with ${opts.publisherRows.toLocaleString('en-US')} revoked rows`);
    publisher = await runNodeJson<CrlPublisherResult>('bench/crl-publisher.ts', [String(opts.publisherRows)], { nodeArgs: ['--expose-gc'], timeoutMs: 300_000 });
    log(`crl:   ${publisher.publishMs.toFixed(0)} ms (storage read alone ${publisher.listRevokedMs.toFixed(0)} ms), peak RSS ${publisher.peakRssMiB.toFixed(0)} MiB`);
  }
  return { builds, publisher, problems };
}
