/**
 * `npm run bench -- --only hsm`: CA keys in a PKCS#11 token (SoftHSM2) against the software keystore,
 * in the same run and the same child process: signatures/s per algorithm (1 and 16 in flight, and
 * the event loop's worst stall while the token signs), certificates/s through the whole in-process
 * issuance path (ra.issue, 32 in flight), and pre-signing 10,000 OCSP answers (one at a time as the
 * status scheduler does, and 16 in flight). Each keystore gets its own fresh hierarchy (one domain,
 * Yuhu) on a fresh SQLite file; the token is a fresh SoftHSM2 token in a temporary folder.
 *
 * The parent (bench/run.ts) runs this file as a child (SOFTHSM2_CONF must be set before the module
 * is loaded, and the token must not outlive the run): `node --import tsx bench/hsm.ts --child [--quick]`.
 */
import 'reflect-metadata';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { rmSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { KeyAlgorithm } from '../pki/algorithms.ts';
import type { KeyStore } from '../pki/keystore/keystore.ts';
import { Pkcs11KeyStore } from '../pki/keystore/pkcs11-keystore.ts';
import { SoftwareKeyStore } from '../pki/keystore/software-keystore.ts';
import { softwareSigner } from '../pki/software-signer.ts';
import type { Signer } from '../pki/signer.ts';
import { presignOcspResponse } from '../server/ca/ocsp-presigner.ts';
import { systemClock } from '../server/clock.ts';
import { freshSoftHsm } from '../test/helpers/softhsm.ts';
import { BENCH_TIER, deviceSubject, prepareCsrs } from './lib/demo-data.ts';
import { freshDataDir } from './lib/tierca-process.ts';
import { openBenchStack } from './lib/bench-stack.ts';
import { fmt, log, mapConcurrent, runNodeJson } from './lib/util.ts';

type Custody = 'software' | 'pkcs11';

export interface HsmResult {
  quick: boolean;
  signatures: { algorithm: string; custody: Custody; inFlight: number; count: number; perSecond: number; /** The event loop's longest stall during the run (perf_hooks.monitorEventLoopDelay, 1 ms resolution). */
    maxLoopStallMs: number }[];
  issuance: { custody: Custody; count: number; perSecond: number; issued: number; distinctSerials: number; failures: Record<string, number> }[];
  ocsp: { custody: Custody; answers: number; inFlight: number; perSecond: number }[];
  problems: string[];
}

const ALGORITHMS: { algorithm: KeyAlgorithm; count: number }[] = [
  { algorithm: 'P-256', count: 3000 },
  { algorithm: 'P-384', count: 1000 },
  { algorithm: 'RSA-2048', count: 600 },
  { algorithm: 'RSA-3072', count: 200 },
];

/** Runs the HSM benchmark in a child process and prints its table; returns the figures. */
export async function runHsmBenchmarks(settings: { quick: boolean }): Promise<HsmResult> {
  log(`bench hsm: SoftHSM2 against the software keystore${settings.quick ? ' (quick)' : ''}`);
  const result = await runNodeJson<HsmResult>('bench/hsm.ts', ['--child', ...(settings.quick ? ['--quick'] : [])], { timeoutMs: 1_800_000 });
  process.stdout.write(`\n${formatHsm(result)}\n`);
  return result;
}

/** The figures as a plain-text table, software and token side by side. */
export function formatHsm(r: HsmResult): string {
  const lines = ['HSM (SoftHSM2 2.6 through pkcs11js) against the software keystore, same process:'];
  const pair = <T extends { custody: Custody }>(rows: T[], key: (x: T) => string) => {
    const keys = [...new Set(rows.map(key))];
    return keys.map((k) => [rows.find((x) => key(x) === k && x.custody === 'software'), rows.find((x) => key(x) === k && x.custody === 'pkcs11')] as const);
  };
  for (const [sw, hw] of pair(r.signatures, (x) => `${x.algorithm} ×${x.inFlight}`)) {
    if (!sw || !hw) continue;
    lines.push(`  sign ${`${sw.algorithm}, ${sw.inFlight} in flight`.padEnd(24)} software ${fmt(sw.perSecond).padStart(7)}/s   token ${fmt(hw.perSecond).padStart(7)}/s   ×${(sw.perSecond / hw.perSecond).toFixed(1)}   worst event-loop stall ${sw.maxLoopStallMs!.toFixed(1)} / ${hw.maxLoopStallMs!.toFixed(1)} ms`);
  }
  for (const [sw, hw] of pair(r.issuance, () => 'issue')) {
    if (sw && hw) lines.push(`  certificates (ra.issue, P-256 CA, 32 in flight, ${hw.count}) software ${fmt(sw.perSecond)}/s   token ${fmt(hw.perSecond)}/s   ×${(sw.perSecond / hw.perSecond).toFixed(2)}`);
  }
  for (const [sw, hw] of pair(r.ocsp, (x) => String(x.inFlight))) {
    if (sw && hw) lines.push(`  OCSP pre-signing ${hw.answers} answers, ${hw.inFlight} in flight: software ${fmt(sw.perSecond)}/s (${(sw.answers / sw.perSecond).toFixed(1)} s)   token ${fmt(hw.perSecond)}/s (${(hw.answers / hw.perSecond).toFixed(1)} s)`);
  }
  if (r.problems.length) lines.push(`  problems: ${r.problems.join('; ')}`);
  return lines.join('\n');
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, seconds: (performance.now() - t0) / 1000 };
}

async function child(quick: boolean): Promise<HsmResult> {
  const scale = quick ? 0.25 : 1;
  const result: HsmResult = { quick, signatures: [], issuance: [], ocsp: [], problems: [] };
  const hsm = await freshSoftHsm();
  const dataDir = freshDataDir('hsm');
  const token = await Pkcs11KeyStore.open({ modulePath: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin });
  const { keystore: software } = await SoftwareKeyStore.initialise({ passphrase: 'bench-hsm-passphrase', kdf: { N: 1024, r: 8, p: 1 } });
  try {
    // Signatures: the same 500-octet message, one key per algorithm in each keystore.
    const message = randomBytes(500);
    for (const { algorithm, count: full } of ALGORITHMS) {
      const count = Math.max(50, Math.round(full * scale));
      await token.generate(`bench-${algorithm}`, algorithm);
      const signers: Record<Custody, Signer> = {
        software: softwareSigner({ privateKey: softwareKey(algorithm), algorithm }),
        pkcs11: token.signer(`bench-${algorithm}`),
      };
      for (const inFlight of [1, 16]) {
        for (const custody of ['software', 'pkcs11'] as const) {
          const signer = signers[custody];
          await mapConcurrent(Array.from({ length: 20 }), inFlight, () => signer.sign(message));
          const loop = monitorEventLoopDelay({ resolution: 1 });
          loop.enable();
          const { seconds } = await timed(() => mapConcurrent(Array.from({ length: count }), inFlight, () => signer.sign(message)));
          loop.disable();
          result.signatures.push({ algorithm, custody, inFlight, count, perSecond: count / seconds, maxLoopStallMs: loop.max / 1e6 });
          log(`bench hsm: ${algorithm} ${custody} ×${inFlight}: ${fmt(count / seconds)}/s`);
        }
      }
    }
    // Whole issuance and OCSP pre-signing, each keystore on its own hierarchy.
    const certificates = Math.round(1000 * scale);
    const answers = Math.round(10_000 * scale);
    const csrs = await prepareCsrs(certificates + 32);
    for (const keystore of [software, token] as KeyStore[]) {
      const custody = keystore.custody;
      const stack = await openBenchStack({ keystore, dataDir, file: `${keystore.custody}.db` });
      try {
        const { ra } = stack.services;
        const subjects = await mapConcurrent(Array.from({ length: certificates + 32 }, (_, i) => i), 32, async (i) => (await ra.subjects.add(stack.ctx(), deviceSubject(custody, i))).id);
        await mapConcurrent(subjects.slice(certificates), 32, (id, i) => ra.issuance.issue(stack.ctx(), { subjectId: id, csr: csrs[certificates + i] }));
        const serials: string[] = [];
        const failures: Record<string, number> = {};
        const { seconds } = await timed(() => mapConcurrent(subjects.slice(0, certificates), 32, async (id, i) => {
          try {
            const issued = await ra.issuance.issue(stack.ctx(), { subjectId: id, csr: csrs[i] });
            if (issued.kind === 'issued') serials.push(issued.certificate.serial);
          } catch (err) {
            const code = (err as { code?: string }).code ?? (err as Error).name;
            failures[code] = (failures[code] ?? 0) + 1;
          }
        }));
        result.issuance.push({ custody, count: certificates, perSecond: certificates / seconds, issued: serials.length, distinctSerials: new Set(serials).size, failures });
        if (serials.length !== certificates) result.problems.push(`${custody}: ${certificates - serials.length} issuances failed ${JSON.stringify(failures)}`);
        log(`bench hsm: issuance ${custody}: ${fmt(certificates / seconds)}/s`);
        const caId = `yuhu-${BENCH_TIER}`;
        const ca = stack.services.cas.get(caId)!;
        const responder = await stack.services.responders.forCa(caId, systemClock.now());
        for (const inFlight of [1, 16]) {
          const now = systemClock.now();
          const { seconds: s } = await timed(() => mapConcurrent(Array.from({ length: answers }), inFlight, () =>
            presignOcspResponse({ ca, responder, serial: randomBytes(16).toString('hex').replace(/^[89a-f]/, '1'), certStatus: { status: 'good' }, now, validityHours: 24 })));
          result.ocsp.push({ custody, answers, inFlight, perSecond: answers / s });
          log(`bench hsm: OCSP pre-signing ${custody} ×${inFlight}: ${fmt(answers / s)}/s`);
        }
      } finally {
        await stack.close();
      }
    }
  } finally {
    await token.close();
    rmSync(dataDir, { recursive: true, force: true });
    hsm.cleanup();
  }
  return result;
}

function softwareKey(algorithm: KeyAlgorithm): KeyObject {
  if (algorithm === 'P-256') return generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  if (algorithm === 'P-384') return generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey;
  return generateKeyPairSync('rsa', { modulusLength: Number(algorithm.slice(4)) }).privateKey;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const { values } = parseArgs({ options: { child: { type: 'boolean', default: false }, quick: { type: 'boolean', default: false } } });
  if (!values.child) {
    process.stderr.write('run it through `npm run bench -- --only hsm`\n');
    process.exit(2);
  }
  const result = await child(values.quick);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
