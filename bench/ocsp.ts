/**
 * Benchmark 2: OCSP answers per second.
 *
 * A demo tierca with 1,000 device certificates issued through the API and 100 of them revoked;
 * requests as RFC 5019 clients send them (one SHA-1 CertID, no nonce) for every one of the 1,000
 * serials; wrk -t2 -c64 with bench/wrk/rotate.lua rotating over the pre-made bodies, for POST /ocsp
 * and GET /ocsp/{base64}, against tierca in 1 and 2 processes. In the same run, on the same requests
 * mix: `openssl ocsp -multi 2` over a parallel openssl CA with the same serials and statuses (in a
 * private network namespace, see lib/openssl-peer.ts), and a bare node:http server returning a fixed
 * 500-byte body in 1 and 2 processes as the ceiling. All servers are up at once and the runs go in
 * rounds over every server and method; each figure is the median of its rounds (this VM drifts by
 * ±25 % from one run to the next, PERFORMANCE-NOTES.md).
 *
 * Before the load, every one of the 1,000 answers is read back and checked: a successful response
 * naming the right status (revoked for the 100, good for the rest), over POST and over GET.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseOcspResponse } from '../pki/ocsp-response.ts';
import { KeepAliveClient } from './lib/http-client.ts';
import { createSubjectsViaApi, prepareCsrs } from './lib/demo-data.ts';
import { freshDataDir, startTierca, type TiercaProcess } from './lib/tierca-process.ts';
import { ocspGetPath, ocspRequestsFor, writeRequestFiles } from './lib/ocsp-requests.ts';
import { buildOpensslPeer, namespacesAvailable, runOpensslPeer } from './lib/openssl-peer.ts';
import { runWrk, type WrkLoad, type WrkResult } from './lib/wrk.ts';
import { formatProfile, summariseProfile } from './lib/cpu-profile.ts';
import { processGroupCpuSeconds } from './lib/proc-cpu.ts';
import { freePort, log, mapConcurrent, ROOT, sleep, spawnOwned, stopChild } from './lib/util.ts';

export interface OcspOptions {
  certificates: number;
  revoked: number;
  load: WrkLoad;
  warmupSeconds: number;
  workers: number[];
  /** Rounds over every server and method; each figure is the median round. */
  rounds: number;
  /** Afterwards, CPU-profile tierca (1 process) under each method and print where the time goes. */
  profile?: boolean;
}

export interface OcspMeasurement {
  target: 'tierca' | 'node:http' | 'openssl ocsp';
  processes: number;
  method: 'POST' | 'GET';
  /** The median run (by answers/s) of the rounds. */
  wrk: WrkResult;
  /** Every round, in order. */
  runs: WrkResult[];
  /** Server CPU time (user + system, every process of the server) per answer, µs: median of the rounds. */
  cpuUsPerAnswer: number | null;
}

export interface OcspResults {
  load: WrkLoad;
  certificates: number;
  revoked: number;
  /** Answers read back before the load: checked, and how many were wrong. */
  verified: { checked: number; wrong: number; notes: string[]; answerBytes: number };
  peerChecks?: { good: string; revoked: string };
  peerSkipped?: string;
  measurements: OcspMeasurement[];
}

export async function runOcspBenchmarks(opts: OcspOptions): Promise<OcspResults> {
  const dataDir = freshDataDir('ocsp');
  const load = opts.load;
  const measurements: OcspMeasurement[] = [];
  const servers: TiercaProcess[] = [];
  try {
    // ---- the data: certificates issued and revoked through the API ----------------------------
    log(`ocsp: tierca (1 process) on a fresh demo folder; issuing ${opts.certificates} certificates, revoking ${opts.revoked}`);
    const server = await startTierca({ workers: 1, dataDir });
    servers.push(server);
    const admin = new KeepAliveClient(server.url, { authorization: `Bearer ${server.token('officer')}` }, 32);
    const subjects = await createSubjectsViaApi(admin, 'ocsp', opts.certificates);
    const csrs = await prepareCsrs(opts.certificates);
    const issued = await mapConcurrent(subjects, 32, async (subjectId, i) => {
      const res = await admin.json<{ certificate: { serial: string; issuerId: string } }>('POST', '/api/v1/certificates', { subjectId, csr: csrs[i] });
      if (res.status !== 201) throw new Error(`issuance answered ${res.status}: ${res.body.toString('utf8').slice(0, 300)}`);
      return res.json.certificate;
    });
    const issuerIds = new Set(issued.map((c) => c.issuerId));
    if (issuerIds.size !== 1) throw new Error(`expected one issuing CA, got ${[...issuerIds].join(', ')}`);
    const serials = issued.map((c) => c.serial);
    // A spread: every (certificates / revoked)-th certificate is revoked.
    const step = Math.floor(opts.certificates / opts.revoked);
    const revoked = new Set(serials.filter((_, i) => i % step === 0).slice(0, opts.revoked));
    await mapConcurrent([...revoked], 16, async (serial) => {
      const res = await admin.json('POST', `/api/v1/certificates/${serial}/revoke`, { reason: 'keyCompromise' });
      if (res.status !== 200) throw new Error(`revocation answered ${res.status}: ${res.body.toString('utf8').slice(0, 300)}`);
    });
    admin.close();
    const issuerId = [...issuerIds][0];
    const caCert = new KeepAliveClient(server.url);
    const issuerDer = (await caCert.send('GET', `/ca/${issuerId}.crt`)).body;
    const requests = ocspRequestsFor(issuerDer, serials);
    const files = writeRequestFiles(join(dataDir, 'tierca'), requests, '/ocsp/');

    // ---- every answer checked (this also fills the cache before the load) --------------------
    // Revocations reach the answer cache through the event poller (500 ms); give it a moment.
    await sleep(1500);
    const verified = await verifyAnswers(caCert, requests, serials, revoked);
    caCert.close();
    log(`ocsp: ${verified.checked} answers read back over POST and GET, ${verified.wrong} wrong`);

    // ---- every server up at once, so that the rounds can interleave them ------------------------
    // Idle servers cost nothing measurable; interleaving spreads this VM's run-to-run drift over
    // every target instead of loading it onto whichever ran last.
    const targets: Target[] = [];
    for (const workers of opts.workers) {
      let s = servers.find((x) => x.workers === workers);
      if (!s) servers.push((s = await startTierca({ workers, dataDir })));
      const { url, child } = s;
      targets.push({ target: 'tierca', processes: workers, run: (method, l) => wrkWithCpu(child.pid, url, method === 'POST' ? files.post : files.get, l) });
    }
    for (const processes of opts.workers) {
      const { url, pid } = await startBare(processes);
      targets.push({ target: 'node:http', processes, run: (method, l) => wrkWithCpu(pid, url, method === 'POST' ? files.post : files.get, l) });
    }
    let peerChecks: OcspResults['peerChecks'];
    let peerSkipped: string | undefined;
    if (await namespacesAvailable()) {
      const peer = await buildOpensslPeer(dataDir, serials, revoked, new Date(), 2);
      targets.push({
        target: 'openssl ocsp',
        processes: 2,
        run: async (method, l) => {
          const run = await runOpensslPeer(peer, method, l);
          peerChecks ??= run.checks;
          return { wrk: run.wrk, cpuSeconds: run.cpuSeconds };
        },
      });
    } else {
      peerSkipped = 'no network namespaces here (unshare -n failed): run as root';
      log(`ocsp: openssl ocsp peer skipped: ${peerSkipped}`);
    }

    if (opts.warmupSeconds > 0) {
      log(`ocsp: warming up tierca and node:http (${opts.warmupSeconds} s per server and method, discarded)`);
      for (const t of targets.filter((x) => x.target !== 'openssl ocsp')) {
        for (const method of METHODS) await t.run(method, { ...load, seconds: opts.warmupSeconds });
      }
    }
    type Round = { wrk: WrkResult; cpuSeconds: number | null };
    const runs = new Map<Target, Record<'POST' | 'GET', Round[]>>(targets.map((t) => [t, { POST: [], GET: [] }]));
    for (let round = 1; round <= opts.rounds; round++) {
      for (const t of targets) {
        for (const method of METHODS) {
          const r = await t.run(method, load);
          runs.get(t)![method].push(r);
          const cpu = r.cpuSeconds === null ? '' : `, server CPU ${((r.cpuSeconds * 1e6) / r.wrk.requests).toFixed(0)} µs/answer`;
          log(`ocsp: round ${round}/${opts.rounds} ${label(t)}, ${method}: ${describe(r.wrk)}${cpu}`);
        }
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
    for (const t of targets) {
      for (const method of METHODS) {
        const all = runs.get(t)![method];
        const sorted = [...all].sort((a, b) => a.wrk.requestsPerSec - b.wrk.requestsPerSec);
        const cpu = all.filter((r) => r.cpuSeconds !== null).map((r) => (r.cpuSeconds! * 1e6) / r.wrk.requests);
        measurements.push({
          target: t.target, processes: t.processes, method,
          wrk: sorted[Math.floor((sorted.length - 1) / 2)].wrk,
          runs: all.map((r) => r.wrk),
          cpuUsPerAnswer: cpu.length ? median(cpu) : null,
        });
      }
    }
    for (const s of servers.splice(0)) await s.stop();
    if (opts.profile) await profileTierca(dataDir, files, load);
    return { load, certificates: opts.certificates, revoked: revoked.size, verified, peerChecks, peerSkipped, measurements };
  } finally {
    for (const s of servers.splice(0)) await s.stop();
    for (const bare of bareServers.splice(0)) await stopChild(bare);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const METHODS = ['POST', 'GET'] as const;

interface Target {
  target: OcspMeasurement['target'];
  processes: number;
  /** One wrk run; `cpuSeconds` is the server's CPU time during it, when it can be read. */
  run(method: 'POST' | 'GET', load: WrkLoad): Promise<{ wrk: WrkResult; cpuSeconds: number | null }>;
}

/** A run against a server whose processes form the process group `pgid`, with its CPU time read around it. */
async function wrkWithCpu(pgid: number | undefined, url: string, file: string, load: WrkLoad): Promise<{ wrk: WrkResult; cpuSeconds: number | null }> {
  const before = pgid === undefined ? null : processGroupCpuSeconds(pgid);
  const wrk = await runWrk(url, file, load);
  const after = pgid === undefined ? null : processGroupCpuSeconds(pgid);
  return { wrk, cpuSeconds: before === null || after === null ? null : after - before };
}

const label = (t: Target) => `${t.target}, ${t.processes} process${t.processes > 1 ? 'es' : ''}`;

function describe(wrk: WrkResult): string {
  const errors = Object.values(wrk.socketErrors).reduce((a, b) => a + b, 0);
  return `${wrk.requestsPerSec.toFixed(0)} answers/s, p50 ${wrk.p50} ms, p99 ${wrk.p99} ms${wrk.non2xx ? `, ${wrk.non2xx} non-2xx` : ''}${errors ? `, socket errors ${JSON.stringify(wrk.socketErrors)}` : ''}`;
}

/** Starts bench/bare-http.ts in `processes` processes; returns its URL and process group (stopped with the run). */
async function startBare(processes: number): Promise<{ url: string; pid: number | undefined }> {
  const port = await freePort();
  const bare = spawnOwned(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/bare-http.ts'), String(port), String(processes)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  bareServers.push(bare);
  await new Promise<void>((resolve, reject) => {
    let seen = 0;
    bare.stdout!.setEncoding('utf8').on('data', (d: string) => {
      seen += d.split('\n').filter((l) => l.startsWith('listening')).length;
      if (seen >= processes) resolve();
    });
    bare.once('exit', (code) => reject(new Error(`bare-http exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, pid: bare.pid };
}

const bareServers: ChildProcess[] = [];

/** --profile: tierca in one process under `node --cpu-prof`, loaded by wrk with one method at a time. */
async function profileTierca(dataDir: string, files: { post: string; get: string }, load: WrkLoad): Promise<void> {
  for (const method of METHODS) {
    const dir = mkdtempSync(join(tmpdir(), 'tierca-bench-ocsp-profile-'));
    try {
      const s = await startTierca({ workers: 1, dataDir, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
      try {
        const file = method === 'POST' ? files.post : files.get;
        await runWrk(s.url, file, { ...load, seconds: 2 });
        log(`ocsp: profiling tierca, 1 process, ${method}`);
        const wrk = await runWrk(s.url, file, { ...load, seconds: Math.min(load.seconds, 5) });
        log(`ocsp:   under the profiler: ${describe(wrk)}`);
      } finally {
        await s.stop();
      }
      const profile = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
      if (profile) process.stdout.write(`\ntierca OCSP ${method}, 1 process:\n${formatProfile(summariseProfile(join(dir, profile)), 25)}\n\n`);
      else log('ocsp: no CPU profile was written (did tierca exit through process.exit?)');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** Reads every answer once over POST and once over GET and checks responseStatus and certStatus. */
async function verifyAnswers(client: KeepAliveClient, requests: Buffer[], serials: string[], revoked: ReadonlySet<string>): Promise<OcspResults['verified']> {
  const notes: string[] = [];
  let wrong = 0;
  let checked = 0;
  let answerBytes = 0;
  const check = (body: Buffer, serial: string, how: string) => {
    checked++;
    try {
      const parsed = parseOcspResponse(body);
      const single = parsed.responses[0];
      const expected = revoked.has(serial) ? 'revoked' : 'good';
      if (parsed.responseStatus !== 'successful' || !single || single.certStatus.status !== expected || BigInt(`0x${single.certId.serial}`) !== BigInt(`0x${serial}`)) {
        wrong++;
        if (notes.length < 5) notes.push(`${how} ${serial}: ${parsed.responseStatus} ${single?.certStatus.status ?? '-'} (expected ${expected})`);
      }
    } catch (err) {
      wrong++;
      if (notes.length < 5) notes.push(`${how} ${serial}: unreadable answer (${(err as Error).message})`);
    }
  };
  await mapConcurrent(requests, 16, async (der, i) => {
    const post = await client.send('POST', '/ocsp', der, { 'content-type': 'application/ocsp-request' });
    check(post.body, serials[i], 'POST');
    answerBytes = Math.max(answerBytes, post.body.length);
    const get = await client.send('GET', ocspGetPath('/ocsp/', der));
    check(get.body, serials[i], 'GET');
    if (i === 0 && !String(get.headers['cache-control'] ?? '').includes('max-age')) notes.push(`GET answers carry no max-age (cache-control: ${get.headers['cache-control']})`);
  });
  return { checked, wrong, notes, answerBytes };
}
