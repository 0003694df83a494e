/**
 * `npm run bench -- --only sm2`: SM2 (GB/T 32918, standard signer identity, on @noble/curves)
 * beside P-256 (OpenSSL through Node) in the same run and process: signatures and verifications per
 * second, certificates/s through the whole in-process issuance path (ra.issue, 32 in flight, holder
 * CSRs — whose proof of possession costs one verification each), and pre-signing OCSP answers (1 and
 * 16 in flight). Each algorithm gets its own one-domain hierarchy, every CA of it in that algorithm,
 * on a fresh SQLite file.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import type { KeyAlgorithm } from '../pki/algorithms.ts';
import { buildCsr } from '../pki/csr.ts';
import { generateKeyPair, publicKeyInfoOf } from '../pki/key-pair.ts';
import { SoftwareKeyStore } from '../pki/keystore/software-keystore.ts';
import { encodeName } from '../pki/name.ts';
import { toPem } from '../pki/der.ts';
import { verifySignature } from '../pki/certificate-reader.ts';
import { softwareSigner } from '../pki/software-signer.ts';
import { signatureAlgorithmIdentifier } from '../pki/algorithms.ts';
import { presignOcspResponse } from '../server/ca/ocsp-presigner.ts';
import { systemClock } from '../server/clock.ts';
import { BENCH_TIER, deviceSubject } from './lib/demo-data.ts';
import { freshDataDir } from './lib/tierca-process.ts';
import { openBenchStack, yuhuConfig } from './lib/bench-stack.ts';
import { fmt, log, mapConcurrent } from './lib/util.ts';

type Alg = Extract<KeyAlgorithm, 'SM2' | 'P-256'>;
const ALGS: Alg[] = ['P-256', 'SM2'];

export interface Sm2Result {
  quick: boolean;
  primitives: { algorithm: Alg; op: 'sign' | 'verify'; count: number; perSecond: number }[];
  issuance: { algorithm: Alg; count: number; perSecond: number; issued: number; distinctSerials: number }[];
  ocsp: { algorithm: Alg; answers: number; inFlight: number; perSecond: number }[];
  problems: string[];
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

/** Holder CSRs of `algorithm` (signed with the standard identity for SM2), made before the clock starts. */
async function csrsOf(algorithm: Alg, count: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const { privateKey } = await generateKeyPair(algorithm);
    out.push(toPem(await buildCsr({ subject: encodeName([{ type: 'CN', value: 'bench' }]), signer: softwareSigner({ privateKey, algorithm }) }), 'CERTIFICATE REQUEST'));
  }
  return out;
}

export async function runSm2Benchmarks(settings: { quick: boolean }): Promise<Sm2Result> {
  const scale = settings.quick ? 0.25 : 1;
  log(`bench sm2: SM2 beside P-256${settings.quick ? ' (quick)' : ''}`);
  const result: Sm2Result = { quick: settings.quick, primitives: [], issuance: [], ocsp: [], problems: [] };
  const message = randomBytes(500);
  for (const algorithm of ALGS) {
    const { privateKey } = await generateKeyPair(algorithm);
    const signer = softwareSigner({ privateKey, algorithm });
    const count = Math.round((algorithm === 'SM2' ? 2000 : 10_000) * scale);
    const signSeconds = await timed(async () => {
      for (let i = 0; i < count; i++) await signer.sign(message);
    });
    result.primitives.push({ algorithm, op: 'sign', count, perSecond: count / signSeconds });
    const signature = await signer.sign(message);
    const spki = publicKeyInfoOf(privateKey);
    const verifications = Math.round((algorithm === 'SM2' ? 500 : 5000) * scale);
    let bad = 0;
    const verifySeconds = await timed(async () => {
      for (let i = 0; i < verifications; i++) {
        if (!verifySignature({ algorithm: signatureAlgorithmIdentifier(algorithm), publicKeyInfo: spki, data: message, signature })) bad++;
      }
    });
    if (bad) result.problems.push(`${algorithm}: ${bad} signatures did not verify`);
    result.primitives.push({ algorithm, op: 'verify', count: verifications, perSecond: verifications / verifySeconds });
    log(`bench sm2: ${algorithm} sign ${fmt(count / signSeconds)}/s, verify ${fmt(verifications / verifySeconds)}/s`);
  }

  const dataDir = freshDataDir('sm2');
  try {
    const certificates = Math.round(1000 * scale);
    const answers = Math.round(5000 * scale);
    for (const algorithm of ALGS) {
      const config = yuhuConfig((data) => {
        data.root = { ...data.root, algorithm, validityYears: 10 };
        data.domainCa = { ...data.domainCa, algorithm, validityYears: 8 };
        data.tiers = { [BENCH_TIER]: { caAlgorithm: algorithm, keyAlgorithms: [algorithm] } };
      });
      const { keystore } = await SoftwareKeyStore.initialise({ passphrase: 'bench-sm2-passphrase', kdf: { N: 1024, r: 8, p: 1 } });
      const stack = await openBenchStack({ keystore, dataDir, file: `${algorithm}.db`, config });
      const { services, ctx } = stack;
      try {
        const { ra } = services;
        const csrs = await csrsOf(algorithm, certificates + 32);
        const subjects = await mapConcurrent(Array.from({ length: certificates + 32 }, (_, i) => i), 32, async (i) => (await ra.subjects.add(ctx(), deviceSubject(algorithm, i))).id);
        await mapConcurrent(subjects.slice(certificates), 32, (id, i) => ra.issuance.issue(ctx(), { subjectId: id, csr: csrs[certificates + i] }));
        const serials: string[] = [];
        const seconds = await timed(() => mapConcurrent(subjects.slice(0, certificates), 32, async (id, i) => {
          const issued = await ra.issuance.issue(ctx(), { subjectId: id, csr: csrs[i] });
          if (issued.kind === 'issued') serials.push(issued.certificate.serial);
        }));
        result.issuance.push({ algorithm, count: certificates, perSecond: certificates / seconds, issued: serials.length, distinctSerials: new Set(serials).size });
        if (new Set(serials).size !== certificates) result.problems.push(`${algorithm}: ${certificates - new Set(serials).size} issuances missing`);
        log(`bench sm2: issuance ${algorithm}: ${fmt(certificates / seconds)}/s`);
        const caId = `yuhu-${BENCH_TIER}`;
        const ca = services.cas.get(caId)!;
        const responder = await services.responders.forCa(caId, systemClock.now());
        for (const inFlight of [1, 16]) {
          const at = systemClock.now();
          const s = await timed(() => mapConcurrent(Array.from({ length: answers }), inFlight, () =>
            presignOcspResponse({ ca, responder, serial: randomBytes(16).toString('hex').replace(/^[089a-f]/, '1'), certStatus: { status: 'good' }, now: at, validityHours: 24 })));
          result.ocsp.push({ algorithm, answers, inFlight, perSecond: answers / s });
          log(`bench sm2: OCSP pre-signing ${algorithm} ×${inFlight}: ${fmt(answers / s)}/s`);
        }
      } finally {
        await stack.close();
      }
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
  process.stdout.write(`\n${formatSm2(result)}\n`);
  return result;
}

/** The figures as a plain-text table, P-256 and SM2 side by side. */
export function formatSm2(r: Sm2Result): string {
  const lines = ['SM2 (standard identity, @noble/curves) beside P-256 (OpenSSL), same process:'];
  const row = (label: string, p256?: { perSecond: number }, sm2?: { perSecond: number }) => {
    if (p256 && sm2) lines.push(`  ${label.padEnd(44)} P-256 ${fmt(p256.perSecond).padStart(8)}/s   SM2 ${fmt(sm2.perSecond).padStart(8)}/s   ×${(p256.perSecond / sm2.perSecond).toFixed(1)}`);
  };
  for (const op of ['sign', 'verify'] as const) row(`${op} (500 octets, 1 at a time)`, r.primitives.find((x) => x.algorithm === 'P-256' && x.op === op), r.primitives.find((x) => x.algorithm === 'SM2' && x.op === op));
  const issuance = (a: Alg) => r.issuance.find((x) => x.algorithm === a);
  row(`certificates (ra.issue, 32 in flight, ${issuance('SM2')?.count ?? 0})`, issuance('P-256'), issuance('SM2'));
  for (const inFlight of [1, 16]) {
    const o = (a: Alg) => r.ocsp.find((x) => x.algorithm === a && x.inFlight === inFlight);
    row(`OCSP pre-signing ${o('SM2')?.answers ?? 0} answers, ${inFlight} in flight`, o('P-256'), o('SM2'));
  }
  if (r.problems.length) lines.push(`  problems: ${r.problems.join('; ')}`);
  return lines.join('\n');
}
