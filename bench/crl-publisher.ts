/**
 * Child process of the CRL benchmark: the CrlPublisher end to end (storage read + build + store) on
 * SQLite. Opens the demo services on a fresh data folder, inserts N revoked certificates of the Yuhu
 * t1 CA straight through the store's repositories (one real issued certificate's DER as every row's
 * body, so rows weigh what real ones do), then times `crls.publishFull(ca)` and, separately, the
 * storage read alone (`certificates.listRevoked`). For comparison it also times a narrow read of only
 * the columns a CRL entry needs (what a dedicated repository method could do; see docs/benchmarks.md).
 * Prints one JSON line (CrlPublisherResult).
 *
 *   node --expose-gc --import tsx bench/crl-publisher.ts <rows>
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { freshDataDir } from './lib/tierca-process.ts';
import { openDemoServices } from './lib/demo-services.ts';
import { BENCH_DOMAIN, BENCH_TIER, deviceSubject, prepareCsrs } from './lib/demo-data.ts';
import { parseCrl } from '../pki/crl.ts';
import type { CertificateRecord } from '../server/storage/storage.ts';
import { knexOf } from '../server/storage/knex-store.ts';

export interface CrlPublisherResult {
  rows: number;
  insertMs: number;
  publishMs: number;
  listRevokedMs: number;
  /** The same rows, only serial, status, revoked_at, revocation_reason and invalidity_date. */
  narrowReadMs: number;
  entries: number;
  crlBytes: number;
  rssBeforeMiB: number;
  peakRssMiB: number;
}

const rows = Number(process.argv[2]);
if (!Number.isInteger(rows) || rows <= 0) throw new Error('usage: crl-publisher.ts <rows>');
const MiB = 1024 * 1024;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

const dataDir = freshDataDir('crlpub');
let demo: Awaited<ReturnType<typeof openDemoServices>>;
try {
  demo = await openDemoServices(dataDir);
} catch (err) {
  rmSync(dataDir, { recursive: true, force: true });
  throw err;
}
try {
  const { ra, store, cas, crls } = demo.services;
  const ca = cas.issuingCa(BENCH_DOMAIN, BENCH_TIER);
  if (!ca) throw new Error('no Yuhu t1 CA');
  // One real certificate, for a realistic row body.
  const ctx = await demo.context('officer');
  const subject = await ra.addSubject(ctx(), deviceSubject('crl', 0));
  const [csr] = await prepareCsrs(1);
  const sample = await ra.issue(ctx(), { subjectId: subject.id, csr });
  if (sample.kind !== 'issued') throw new Error('sample issuance did not issue');
  const template = sample.certificate;

  const now = Date.now();
  const t0 = performance.now();
  for (let done = 0; done < rows; ) {
    await store.transaction(async (tx) => {
      for (const end = Math.min(rows, done + 10_000); done < end; done++) {
        const revokedAt = new Date(now - (rows - done) * 7000);
        const record: CertificateRecord = {
          ...template,
          serial: randomBytes(16).toString('hex'),
          subjectId: null,
          status: 'revoked',
          revokedAt,
          revocationReason: [0, 1, 4, 3, 5][done % 5],
          invalidityDate: done % 10 === 0 ? new Date(revokedAt.getTime() - 3_600_000) : null,
          fingerprint: randomBytes(32).toString('hex'),
          requestId: null,
        };
        await tx.certificates.insert(record);
      }
    });
  }
  const insertMs = performance.now() - t0;

  gc();
  const rssBefore = process.memoryUsage().rss;
  const t1 = performance.now();
  const published = await crls.publishFull(ca);
  const publishMs = performance.now() - t1;
  const peakRss = process.resourceUsage().maxRSS * 1024;

  gc();
  const t2 = performance.now();
  const listed = await store.certificates.listRevokedEntries(ca.record.id, new Date(now - 365 * 86_400_000));
  const listRevokedMs = performance.now() - t2;

  gc();
  const t3 = performance.now();
  const narrow = await knexOf(store)('certificates')
    .select('serial', 'status', 'revoked_at', 'revocation_reason', 'invalidity_date')
    .where({ issuer_id: ca.record.id })
    .whereIn('status', ['revoked', 'hold'])
    .where('not_after', '>', new Date(now - 365 * 86_400_000).toISOString())
    .orderBy('serial');
  const narrowReadMs = performance.now() - t3;
  if (narrow.length !== rows) throw new Error(`narrow read found ${narrow.length} rows`);

  const stored = await store.crls.latest(ca.record.id, false);
  const parsed = parseCrl(stored!.der);
  if (parsed.entries.length !== rows + 0 || published.entries !== rows || listed.length !== rows) {
    throw new Error(`expected ${rows} entries; published ${published.entries}, parsed ${parsed.entries.length}, listed ${listed.length}`);
  }
  const result: CrlPublisherResult = {
    rows,
    insertMs,
    publishMs,
    listRevokedMs,
    narrowReadMs,
    entries: published.entries,
    crlBytes: stored!.der.length,
    rssBeforeMiB: rssBefore / MiB,
    peakRssMiB: peakRss / MiB,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await demo.close();
  rmSync(dataDir, { recursive: true, force: true });
}
