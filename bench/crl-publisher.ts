/**
 * Child process of the CRL benchmark: the CrlPublisher end to end — paged storage read, build, sign,
 * store — on SQLite or PostgreSQL. Filling the database and publishing run in separate processes, so
 * that the publishing process's peak RSS (getrusage maxrss) is the publication's and not the fill's.
 *
 *   node --import tsx bench/crl-publisher.ts fill <sqlite|postgres> <where> <rows>
 *   node --expose-gc --import tsx bench/crl-publisher.ts publish <sqlite|postgres> <where> <rows>
 *   node --import tsx bench/crl-publisher.ts drop <sqlite|postgres> <where>
 *
 * `where`: a data folder (SQLite, `<where>/tierca.db`) or a schema of the PostgreSQL database at
 * TIERCA_BENCH_PG_URL (bench/crl.ts sets it).
 *
 * fill: the key ceremony of the example topology, one real certificate issued by the Yuhu t1 CA
 * through the RA (its DER is every row's body, so that rows weigh what real ones do), then `rows`
 * revoked certificates of that CA written with multi-row INSERTs through knex — 1,000 rows a
 * statement, 50 statements a transaction, so that PostgreSQL sees a thousand round trips and not a
 * million (30 s on SQLite, 56 s on PostgreSQL here for a million rows of ~1 KB). Serials are random
 * 16-octet hex as tierca issues them; revocations 7 s apart; reasons mixed, one in 100 on hold, an
 * invalidityDate on one in ten. On PostgreSQL it then runs ANALYZE, as autovacuum would on a live
 * server (it is off on this machine's test server): the paged read's plan depends on statistics
 * (certificate.repository.knex.ts, revokedEntryPages). Prints {"insertMs": …}.
 *
 * publish: opens the services as `tierca serve` does, times `crls.publishFull(ca)` and reads the peak
 * RSS right after; then times the paged read alone (`certificates.revokedEntryPages`) and parses the
 * stored CRL back (count, strictly ascending serials). Prints one JSON line (CrlPublisherResult).
 *
 * drop: removes the folder or the schema. Prints {}.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { storeOptions } from '../server/open-database.ts';
import { ceremony } from '../server/init-ceremony.ts';
import { createKnex, knexOf, openStore } from '../server/storage/knex-store.ts';
import type { Services } from '../server/services.ts';
import { iso } from '../server/storage/rows.ts';
import { parseCrl } from '../pki/crl-reader.ts';
import { DEFAULT_PAGE_SIZE } from '../server/ca/crl-publisher.ts';
import type { Store } from '../server/storage/storage.ts';
import { BENCH_DOMAIN, BENCH_TIER, deviceSubject, prepareCsrs } from './lib/demo-data.ts';
import { openServicesOn } from './lib/demo-services.ts';
import { DAY_MS, HOUR_MS } from '../pki/time-constants.ts';

export type BenchEngine = 'sqlite' | 'postgres';

export interface CrlFillResult {
  insertMs: number;
}

export interface CrlPublisherResult {
  engine: BenchEngine;
  rows: number;
  /** Filling the database (from the fill process). */
  insertMs: number;
  publishMs: number;
  /** The paged read alone, every page of the same rows, nothing built. */
  readMs: number;
  entries: number;
  parsedEntries: number;
  crlBytes: number;
  rssBeforeMiB: number;
  peakRssMiB: number;
}

function benchPgUrl(): string {
  const url = process.env.TIERCA_BENCH_PG_URL;
  if (!url) throw new Error('TIERCA_BENCH_PG_URL is not set');
  return url;
}
/** Not a secret: the benchmark's hierarchy lives only as long as the run. */
const PASSPHRASE = 'tierca-bench-crl-passphrase';
/** Cheap scrypt, as the tests use: key sealing is not what is measured. */
const KDF = { N: 1024, r: 8, p: 1 };
const ROWS_PER_STATEMENT = 1000;
const COLUMNS = [
  'issuer_id', 'serial', 'subject_id', 'profile', 'tier', 'domain', 'subject_dn', 'not_before', 'not_after', 'status', 'revoked_at',
  'revocation_reason', 'invalidity_date', 'fingerprint', 'der', 'key_algorithm', 'request_id', 'created_at',
];
/**
 * `INSERT … VALUES (…), (…), …` as raw SQL: knex's builder writes a multi-row insert for SQLite as
 * `SELECT … UNION ALL SELECT …`, which SQLite caps at 500 terms.
 */
const insertSql = (rows: number): string =>
  `INSERT INTO "certificates" (${COLUMNS.map((c) => `"${c}"`).join(', ')}) VALUES ${Array(rows).fill(`(${COLUMNS.map(() => '?').join(', ')})`).join(', ')}`;
const STATEMENTS_PER_TRANSACTION = 50;
const MiB = 1024 * 1024;

function optionsOf(engine: BenchEngine, where: string) {
  return engine === 'sqlite' ? { dataDir: where } : { dataDir: tmpdir(), databaseUrl: benchPgUrl(), searchPath: where };
}

async function openBenchServices(engine: BenchEngine, where: string): Promise<{ services: Services; store: Store; close(): Promise<void> }> {
  const store = await openStore(storeOptions(optionsOf(engine, where)));
  return { ...(await openServicesOn(store, PASSPHRASE)), store };
}

async function fill(engine: BenchEngine, where: string, rows: number): Promise<CrlFillResult> {
  if (engine === 'sqlite') mkdirSync(where, { recursive: true, mode: 0o700 });
  const setup = await openStore(storeOptions(optionsOf(engine, where)));
  let officerToken: string;
  try {
    ({ tokens: { officer: officerToken } } = await ceremony(setup, { ...optionsOf(engine, where), passphrase: PASSPHRASE, kdf: KDF }, 'officer:officer'));
  } finally {
    await setup.close();
  }
  const bench = await openBenchServices(engine, where);
  try {
    const { ra, cas } = bench.services;
    const ca = cas.issuingCa(BENCH_DOMAIN, BENCH_TIER);
    if (!ca) throw new Error('no Yuhu t1 CA');
    const principal = await ra.authorizer.authenticate(officerToken);
    if (!principal) throw new Error('the officer token does not authenticate');
    const ctx = () => ({ principal, source: 'bench', requestId: randomBytes(8).toString('hex') });
    const subject = await ra.subjects.add(ctx(), deviceSubject('crl', 0));
    const [csr] = await prepareCsrs(1);
    const sample = await ra.issuance.issue(ctx(), { subjectId: subject.id, csr });
    if (sample.kind !== 'issued') throw new Error('sample issuance did not issue');
    const t = sample.certificate;

    const knex = knexOf(bench.store);
    const now = Date.now();
    const t0 = performance.now();
    let done = 0;
    while (done < rows) {
      await knex.transaction(async (trx) => {
        for (let s = 0; s < STATEMENTS_PER_TRANSACTION && done < rows; s++) {
          const batch = [];
          for (const end = Math.min(rows, done + ROWS_PER_STATEMENT); done < end; done++) {
            const revokedAt = new Date(now - (rows - done) * 7000);
            const hold = done % 100 === 50;
            // In the order of COLUMNS.
            batch.push([
              t.issuerId,
              randomBytes(16).toString('hex'),
              null,
              t.profile,
              t.tier,
              t.domain,
              t.subjectDn,
              iso(t.notBefore),
              iso(t.notAfter),
              hold ? 'hold' : 'revoked',
              iso(revokedAt),
              hold ? 6 : [0, 1, 4, 3, 5][done % 5],
              done % 10 === 0 ? iso(new Date(revokedAt.getTime() - HOUR_MS)) : null,
              randomBytes(32).toString('hex'),
              t.der,
              t.keyAlgorithm,
              null,
              iso(revokedAt),
            ]);
          }
          await trx.raw(insertSql(batch.length), batch.flat());
        }
      });
    }
    const insertMs = performance.now() - t0;
    if (engine === 'postgres') await knex.raw('analyze "certificates"');
    return { insertMs };
  } finally {
    await bench.close();
  }
}

async function publish(engine: BenchEngine, where: string, rows: number, insertMs: number): Promise<CrlPublisherResult> {
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
  const bench = await openBenchServices(engine, where);
  try {
    const { store, cas, crls } = bench.services;
    const ca = cas.issuingCa(BENCH_DOMAIN, BENCH_TIER);
    if (!ca) throw new Error('no Yuhu t1 CA');

    gc();
    const rssBefore = process.memoryUsage().rss;
    const t1 = performance.now();
    const published = await crls.publishFull(ca);
    const publishMs = performance.now() - t1;
    const peakRss = process.resourceUsage().maxRSS * 1024;

    // The read alone, as the publisher makes it: in a transaction, pages of the default size, the
    // example tiers' archive window (365 days; every row here is far from it).
    gc();
    const t2 = performance.now();
    let read = 0;
    await store.transaction(async (tx) => {
      const after = new Date(Date.now() - 365 * DAY_MS);
      for await (const page of tx.certificates.revokedEntryPages(ca.record.id, after, DEFAULT_PAGE_SIZE)) read += page.length;
    });
    const readMs = performance.now() - t2;

    const stored = await store.crls.latest(ca.record.id, false);
    const parsed = parseCrl(stored!.der);
    for (let i = 1; i < parsed.entries.length; i++) {
      const [a, b] = [parsed.entries[i - 1].serial, parsed.entries[i].serial];
      if (a.length > b.length || (a.length === b.length && a >= b)) throw new Error(`CRL entries out of order at ${i}: ${a} then ${b}`);
    }
    if (published.entries !== rows || read !== rows) throw new Error(`expected ${rows} entries; published ${published.entries}, read ${read}`);
    return {
      engine,
      rows,
      insertMs,
      publishMs,
      readMs,
      entries: published.entries,
      parsedEntries: parsed.entries.length,
      crlBytes: stored!.der.length,
      rssBeforeMiB: rssBefore / MiB,
      peakRssMiB: peakRss / MiB,
    };
  } finally {
    await bench.close();
  }
}

async function drop(engine: BenchEngine, where: string): Promise<void> {
  if (engine === 'postgres') {
    const knex = createKnex({ databaseUrl: benchPgUrl() });
    try {
      await knex.raw('drop schema if exists ?? cascade', [where]);
    } finally {
      await knex.destroy();
    }
  } else {
    rmSync(where, { recursive: true, force: true });
  }
}

const [command, engine, where, count, insertMs] = process.argv.slice(2);
if (!['fill', 'publish', 'drop'].includes(command) || (engine !== 'sqlite' && engine !== 'postgres') || !where) {
  throw new Error('usage: crl-publisher.ts fill|publish|drop sqlite|postgres <where> [rows] [insertMs]');
}
const rows = Number(count);
if (command !== 'drop' && (!Number.isInteger(rows) || rows <= 0)) throw new Error('rows must be a positive integer');
try {
  if (command === 'fill') process.stdout.write(`${JSON.stringify(await fill(engine, where, rows))}\n`);
  else if (command === 'publish') process.stdout.write(`${JSON.stringify(await publish(engine, where, rows, Number(insertMs ?? 0)))}\n`);
  else {
    await drop(engine, where);
    process.stdout.write('{}\n');
  }
} catch (err) {
  // Driver errors quote the statement, here a thousand rows of DER: keep the message short.
  process.stderr.write(`crl-publisher ${command} ${engine}: ${String((err as Error).message ?? err).slice(0, 600)}\n`);
  process.exit(1);
}
