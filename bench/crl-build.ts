/**
 * Child process of the CRL benchmark: `buildCrl` (pki/crl.ts) for N revoked entries with a P-256
 * software signer, one size per process so that the peak RSS (getrusage maxrss) belongs to that size
 * alone. Prints one JSON line (CrlBuildResult).
 *
 *   node --expose-gc --import tsx bench/crl-build.ts <entries> [array|generator]
 *
 * array: the entries are made first, as the CRL publisher hands them over (one CrlEntry per revoked
 * certificate read from storage), and the build is timed alone. generator: the entries are made while
 * the builder reads them, to show the builder's own footprint.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { buildCrl, type CrlEntry } from '../pki/crl.ts';
import { parseCrl } from '../pki/crl-reader.ts';
import { encodeName } from '../pki/name.ts';
import { softwareSigner } from '../pki/software-signer.ts';
import { DAY_MS, HOUR_MS } from '../pki/time-constants.ts';

export interface CrlBuildResult {
  entries: number;
  mode: 'array' | 'generator';
  /** Making the entries (array mode only). */
  prepareMs: number;
  buildMs: number;
  derBytes: number;
  rssBeforeMiB: number;
  peakRssMiB: number;
  /** Entries read back by parseCrl (outside the timing). */
  parsedEntries: number;
}

const count = Number(process.argv[2]);
const mode = (process.argv[3] ?? 'array') as 'array' | 'generator';
if (!Number.isInteger(count) || count < 0 || !['array', 'generator'].includes(mode)) {
  throw new Error('usage: crl-build.ts <entries> [array|generator]');
}

const MiB = 1024 * 1024;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
/** Reasons as a tier CA's CRL shows them: mostly unspecified, then keyCompromise, superseded, … */
const REASONS = [null, null, 1, 4, 3, 5, null, 1, 9, 4];
const now = Date.UTC(2026, 10, 25, 12, 0, 0);

/** Entry i: a random 16-octet serial (as tierca issues), revoked at a spread of instants. */
function entry(i: number): CrlEntry {
  const revokedAt = new Date(now - (count - i) * 7000); // one revocation every 7 s going back in time
  return {
    serial: randomBytes(16).toString('hex'),
    revokedAt,
    reason: REASONS[i % REASONS.length],
    invalidityDate: i % 10 === 0 ? new Date(revokedAt.getTime() - HOUR_MS) : null,
  };
}

function* entries(): Generator<CrlEntry> {
  for (let i = 0; i < count; i++) yield entry(i);
}

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const signer = softwareSigner({ privateKey, algorithm: 'P-256' });
const issuer = encodeName([{ type: 'C', value: 'CN' }, { type: 'O', value: 'tierca bench' }, { type: 'CN', value: 'bench tier CA' }]);

let prepareMs = 0;
let list: Iterable<CrlEntry>;
if (mode === 'array') {
  const t0 = performance.now();
  const made: CrlEntry[] = new Array(count);
  for (let i = 0; i < count; i++) made[i] = entry(i);
  prepareMs = performance.now() - t0;
  list = made;
} else {
  list = entries();
}
gc();
const rssBefore = process.memoryUsage().rss;
const t0 = performance.now();
const der = await buildCrl({
  issuer,
  authorityKeyId: randomBytes(20),
  thisUpdate: new Date(now),
  nextUpdate: new Date(now + DAY_MS),
  crlNumber: 42n,
  entries: list,
  signer,
});
const buildMs = performance.now() - t0;
const peakRss = process.resourceUsage().maxRSS * 1024;
list = [];
gc();
const parsed = parseCrl(der);
const result: CrlBuildResult = {
  entries: count,
  mode,
  prepareMs,
  buildMs,
  derBytes: der.length,
  rssBeforeMiB: rssBefore / MiB,
  peakRssMiB: peakRss / MiB,
  parsedEntries: parsed.entries.length,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
