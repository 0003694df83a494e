/**
 * `npm run bench -- --only acme`: full ACME orders per second against a `tierca serve` child on
 * SQLite. The accounts exist (EAB, one per client); each of 32 concurrent clients then loops: new
 * order → fetch the authorization → answer http-01 (a local HTTP server serves the key
 * authorization; names resolve through a BIND 9 the benchmark starts) → poll until valid →
 * finalize with a fresh P-256 CSR → poll the order → download the chain. The clients (jose, the
 * in-process test client) run in this process, the service in its own.
 */
import { createServer, type Server } from 'node:http';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { buildCsr } from '../pki/csr.ts';
import { encodeName } from '../pki/name.ts';
import { softwareSigner } from '../pki/software-signer.ts';
import { readCertificate } from '../pki/certificate-reader.ts';
import { decodePemOrDer } from '../pki/pem.ts';
import { freshDatabase, initHierarchyFor, startServe, type ProcessDatabase, type ServeProcess } from '../test/helpers/processes.ts';
import { startBind9, type Bind9 } from '../test/helpers/bind9.ts';
import { keyAuthorizationOf, TestAcmeClient } from '../test/helpers/acme-client.ts';
import { freePort, fmt, log, percentile, sleep } from './lib/util.ts';

const ZONE = 'yuhu.xiangtan.intranet';

export interface AcmeBenchResult {
  quick: boolean;
  clients: number;
  orders: number;
  seconds: number;
  perSecond: number;
  /** Milliseconds per order (new order to certificate downloaded), median and 95th percentile. */
  latencyMs: { p50: number; p95: number };
  /** ACME requests (POSTs, polls included) per order, averaged. */
  requestsPerOrder: number;
  /** Mean milliseconds per order spent in each step (client's view, 32 in flight). */
  stepMs: Record<string, number>;
  /** With a profile folder: the server's CPU profile of the whole run (warm-up included). */
  profileFile?: string;
  problems: string[];
}

interface Harness {
  db: ProcessDatabase;
  dns: Bind9;
  web: Server;
  served: Map<string, string>;
  server: ServeProcess;
  officerToken: string;
}

async function openHarness(profileDir?: string): Promise<Harness> {
  const dns = await startBind9(ZONE, { '*': '127.0.0.1' });
  const served = new Map<string, string>();
  const http01Port = await freePort();
  const web = createServer((req, res) => {
    const answer = served.get(req.url?.split('/').pop() ?? '');
    res.writeHead(answer ? 200 : 404).end(answer ?? 'no');
  });
  await new Promise<void>((r) => web.listen(http01Port, '127.0.0.1', r));
  const db = await freshDatabase('sqlite');
  const port = await freePort();
  const tokens = await initHierarchyFor(db, {
    publicUrl: `http://127.0.0.1:${port}`,
    configData: (d) => ({ ...d, acme: { resolvers: [dns.server], http01Port, validationRanges: ['127.0.0.1/32'], ordersPerHour: 1_000_000 } }),
  });
  const server = await startServe({ env: db.env, port, readyTimeoutMs: 60_000, nodeArgs: profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [] });
  return { db, dns, web, served, server, officerToken: tokens.officer };
}

async function closeHarness(h: Harness): Promise<void> {
  await h.server.stop();
  await h.dns.stop();
  h.web.close();
  await h.db.cleanup();
}

async function account(h: Harness): Promise<TestAcmeClient> {
  const res = await fetch(`${h.server.url}/api/v1/acme/account-keys`, {
    method: 'POST', headers: { authorization: `Bearer ${h.officerToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ domain: 'yuhu', organ: 'government', tier: 't2' }),
  });
  if (res.status !== 201) throw new Error(`binding key: ${res.status} ${await res.text()}`);
  const client = await new TestAcmeClient(`${h.server.url}/acme/t2/directory`).init();
  const reg = await client.register((await res.json()) as { keyId: string; hmacKey: string });
  if (reg.status !== 201) throw new Error(`register: ${reg.status} ${JSON.stringify(reg.body)}`);
  return client;
}

/** A CSR for `name` (CN only: the order's one identifier), made before the clock starts. */
async function csrFor(name: string): Promise<string> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const der = await buildCsr({ subject: encodeName([{ type: 'CN', value: name }]), signer: softwareSigner({ privateKey, algorithm: 'P-256' }) });
  return der.toString('base64url');
}


/** Request counts and the time spent per step, over all orders of the timed window. */
interface Tally {
  requests: number;
  stepMs: Record<string, number>;
}

async function step<T>(tally: Tally, name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    tally.stepMs[name] = (tally.stepMs[name] ?? 0) + performance.now() - t0;
  }
}

/** Polls `url` (POST-as-GET) until `done`, 20 ms apart; counts each request. */
async function pollUntil(client: TestAcmeClient, url: string, done: (b: any) => boolean, tally: Tally): Promise<any> {
  for (let i = 0; i < 400; i++) {
    tally.requests++;
    const res = await client.post(url, null);
    if (done(res.body)) return res.body;
    if (res.body?.status === 'invalid') throw new Error(`${url} became invalid: ${JSON.stringify(res.body)}`);
    await sleep(20);
  }
  throw new Error(`${url} did not settle`);
}

/** One full order for `name`; returns the PEM chain. */
async function fullOrder(h: Harness, client: TestAcmeClient, name: string, csr: string, tally: Tally): Promise<string> {
  tally.requests += 5;
  const order = await step(tally, 'new order', () => client.post(client.directory.newOrder, { identifiers: [{ type: 'dns', value: name }] }));
  if (order.status !== 201) throw new Error(`newOrder: ${order.status} ${JSON.stringify(order.body)}`);
  const orderUrl = order.headers.get('location')!;
  const authz = await step(tally, 'authorization', () => client.post(order.body.authorizations[0], null));
  const challenge = authz.body.challenges.find((c: { type: string }) => c.type === 'http-01');
  h.served.set(challenge.token, await keyAuthorizationOf(challenge.token, client.jwk));
  await step(tally, 'challenge + validation', async () => {
    await client.post(challenge.url, {});
    await pollUntil(client, order.body.authorizations[0], (b) => b.status === 'valid', tally);
  });
  h.served.delete(challenge.token);
  const done = await step(tally, 'finalize (issuance)', async () => {
    const finalized = await client.post(order.body.finalize, { csr });
    if (finalized.status !== 200) throw new Error(`finalize: ${finalized.status} ${JSON.stringify(finalized.body)}`);
    return finalized.body.status === 'valid' ? finalized.body : pollUntil(client, orderUrl, (b) => b.status === 'valid', tally);
  });
  const chain = await step(tally, 'download', () => client.post(done.certificate, null));
  if (chain.status !== 200) throw new Error(`download: ${chain.status}`);
  return chain.raw.toString('utf8');
}

export async function runAcmeBenchmark(settings: { quick: boolean; profileDir?: string }): Promise<AcmeBenchResult> {
  const clients = 32;
  const perClient = settings.quick ? 4 : 16;
  log(`bench acme: ${clients} clients × ${perClient} full orders (http-01) against tierca serve on SQLite${settings.quick ? ' (quick)' : ''}`);
  const h = await openHarness(settings.profileDir);
  const result: AcmeBenchResult = { quick: settings.quick, clients, orders: 0, seconds: 0, perSecond: 0, latencyMs: { p50: 0, p95: 0 }, requestsPerOrder: 0, stepMs: {}, problems: [] };
  try {
    const accounts = await Promise.all(Array.from({ length: clients }, () => account(h)));
    // Warm-up: one order per client, not timed (JIT, prepared statements, the first OCSP answers).
    const warm = await Promise.all(accounts.map((_, i) => csrFor(`warm-${i}.${ZONE}`)));
    const warmTally: Tally = { requests: 0, stepMs: {} };
    await Promise.all(accounts.map((c, i) => fullOrder(h, c, `warm-${i}.${ZONE}`, warm[i]!, warmTally)));
    const csrs = await Promise.all(accounts.map((_, i) => Promise.all(Array.from({ length: perClient }, (_x, j) => csrFor(`b${i}-${j}.${ZONE}`)))));
    const tally: Tally = { requests: 0, stepMs: {} };
    const latencies: number[] = [];
    const serials = new Set<string>();
    const t0 = performance.now();
    await Promise.all(accounts.map(async (client, i) => {
      for (let j = 0; j < perClient; j++) {
        const started = performance.now();
        try {
          const pem = await fullOrder(h, client, `b${i}-${j}.${ZONE}`, csrs[i]![j]!, tally);
          serials.add(readCertificate(decodePemOrDer(pem, 'CERTIFICATE')).serial);
          latencies.push(performance.now() - started);
        } catch (err) {
          result.problems.push(`client ${i} order ${j}: ${(err as Error).message.slice(0, 300)}`);
        }
      }
    }));
    result.seconds = (performance.now() - t0) / 1000;
    result.orders = latencies.length;
    result.perSecond = result.orders / result.seconds;
    result.latencyMs = { p50: percentile(latencies, 50), p95: percentile(latencies, 95) };
    result.requestsPerOrder = result.orders ? tally.requests / result.orders : 0;
    result.stepMs = Object.fromEntries(Object.entries(tally.stepMs).map(([k, v]) => [k, result.orders ? v / result.orders : 0]));
    if (serials.size !== result.orders) result.problems.push(`${result.orders} orders gave ${serials.size} distinct certificates`);
    log(`bench acme: ${result.orders} orders in ${result.seconds.toFixed(1)} s = ${fmt(result.perSecond, 1)}/s; p50 ${result.latencyMs.p50.toFixed(0)} ms, p95 ${result.latencyMs.p95.toFixed(0)} ms; ${result.requestsPerOrder.toFixed(1)} requests per order; per step ${Object.entries(result.stepMs).map(([k, v]) => `${k} ${v.toFixed(0)} ms`).join(', ')}`);
  } finally {
    await closeHarness(h);
  }
  if (settings.profileDir) {
    const file = readdirSync(settings.profileDir).find((f) => f.endsWith('.cpuprofile'));
    if (file) result.profileFile = join(settings.profileDir, file);
  }
  return result;
}

/** The figures as a markdown block for docs/benchmarks.md. */
export function acmeMarkdown(r: AcmeBenchResult, meta: { date: string; command: string }, machine: { nproc: number; cpuModel: string; node: string; loadAtStart: number }): string {
  return [
    `Measured ${meta.date} with \`${meta.command}\`${r.quick ? ' (quick run)' : ''} on ${machine.nproc} cores (${machine.cpuModel}), Node ${machine.node}, load average ${machine.loadAtStart.toFixed(2)} at the start.`,
    '',
    '| clients | orders | seconds | orders/s | p50 per order | p95 per order | ACME requests per order |',
    '|---|---|---|---|---|---|---|',
    `| ${r.clients} | ${r.orders} | ${r.seconds.toFixed(1)} | **${fmt(r.perSecond, 1)}** | ${r.latencyMs.p50.toFixed(0)} ms | ${r.latencyMs.p95.toFixed(0)} ms | ${r.requestsPerOrder.toFixed(1)} |`,
    '',
    `Mean time per order by step (the client's view, ${r.clients} in flight): ${Object.entries(r.stepMs).map(([k, v]) => `${k} ${v.toFixed(0)} ms`).join(' · ')}.`,
    ...(r.problems.length ? ['', `Problems: ${r.problems.slice(0, 5).join('; ')}`] : []),
  ].join('\n');
}
