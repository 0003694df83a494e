/**
 * Real `tierca` processes for integration tests: a fresh database a child process can reach (a new
 * PostgreSQL DATABASE per call, or a new SQLite data folder), the key ceremony run into it, `tierca
 * serve` children started with an environment and waited for on `/healthz`, killed with SIGKILL or
 * stopped with SIGTERM, `tierca <command>` runs with stdin and stdout as bytes, and a TCP proxy in
 * front of PostgreSQL that a test can cut to take the database away from a server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { storeOptions, type DatabaseOptions } from '../../server/open-database.ts';
import { ceremony } from '../../server/init-ceremony.ts';
import { buildConfig } from '../../server/config/load-config.ts';
import { createKnex, openStore } from '../../server/storage/knex-store.ts';
import type { Store } from '../../server/storage/storage.ts';
import type { Clock } from '../../server/clock.ts';
import { exampleConfigData } from './config.ts';
import { testEngine, testPgUrl, type TestEngine } from './database.ts';
import { freePort, TEST_KDF, TEST_PASSPHRASE } from './tierca.ts';

/** The repository root (children run from it, as `npm start` and `bin/tierca.js` expect). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TIERCA_BIN = join(ROOT, 'bin', 'tierca.js');

// ---------------------------------------------------------------------------------------------
// Databases that another process can open

/** A fresh, empty database and how to hand it to a child process or to the store. */
export interface ProcessDatabase {
  engine: TestEngine;
  /** The data folder (SQLite file `tierca.db` inside it; demo tokens; always set). */
  dataDir: string;
  /** PostgreSQL only: the URL of the fresh database. */
  databaseUrl?: string;
  /** What `tierca` children need: TIERCA_DATA and, on PostgreSQL, DATABASE_URL. */
  env: Record<string, string>;
  /** The same as {@link DatabaseOptions} for in-process code (bootstrap, openStore). */
  options: DatabaseOptions;
  /** Opens a migrated store on it (close it yourself). */
  openStore(): Promise<Store>;
  /** Drops the database (terminating leftover sessions of killed servers) or removes the folder. */
  cleanup(): Promise<void>;
}

/** A URL for database `name` on the test PostgreSQL server (TIERCA_TEST_PG_URL's host and user). */
export function pgUrlFor(name: string): string {
  const url = new URL(testPgUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * A fresh database on `engine` (default: TIERCA_TEST_DB). PostgreSQL: `CREATE DATABASE
 * tierca_t_<random>` on the test server, so a child process needs only DATABASE_URL (no schema
 * option exists for `tierca serve`); SQLite: a new data folder.
 */
export async function freshDatabase(engine: TestEngine = testEngine()): Promise<ProcessDatabase> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tierca-proc-'));
  if (engine === 'sqlite') {
    const options: DatabaseOptions = { dataDir };
    return {
      engine, dataDir, env: { TIERCA_DATA: dataDir }, options,
      openStore: () => openStore(storeOptions(options)),
      async cleanup() {
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
  const name = `tierca_t_${randomBytes(6).toString('hex')}`;
  const admin = createKnex({ databaseUrl: testPgUrl() });
  try {
    await admin.raw('create database ??', [name]);
  } finally {
    await admin.destroy();
  }
  const databaseUrl = pgUrlFor(name);
  const options: DatabaseOptions = { dataDir, databaseUrl };
  return {
    engine, dataDir, databaseUrl, env: { TIERCA_DATA: dataDir, DATABASE_URL: databaseUrl }, options,
    openStore: () => openStore(storeOptions(options)),
    async cleanup() {
      const knex = createKnex({ databaseUrl: testPgUrl() });
      try {
        // FORCE (PostgreSQL 13+) ends sessions a SIGKILLed server may have left for a moment.
        await knex.raw('drop database if exists ?? with (force)', [name]);
      } finally {
        await knex.destroy();
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Principals the test ceremony makes, by name (see {@link initHierarchyFor}). */
export type ProcessRole = 'admin' | 'officer' | 'auditor';

/**
 * Runs the key ceremony of the example topology into `db` in-process (cheap scrypt; passphrase
 * {@link TEST_PASSPHRASE}) with a sysadmin `admin`, an officer `officer` for every domain and an
 * auditor `auditor`; returns their tokens. `publicUrl` goes into every certificate's AIA and CDP.
 */
export async function initHierarchyFor(
  db: ProcessDatabase,
  params: { publicUrl: string; clock?: Clock; configData?: (data: Record<string, any>) => Record<string, any> },
): Promise<Record<ProcessRole, string>> {
  const store = await db.openStore();
  try {
    const data = { ...exampleConfigData(), publicUrl: params.publicUrl };
    const config = buildConfig(params.configData ? params.configData(data) : data);
    const { tokens } = await ceremony(
      store,
      { ...db.options, config, passphrase: TEST_PASSPHRASE, kdf: TEST_KDF, clock: params.clock },
      'sysadmin:admin', 'officer:officer', 'auditor:auditor',
    );
    return tokens as Record<ProcessRole, string>;
  } finally {
    await store.close();
  }
}

// ---------------------------------------------------------------------------------------------
// `tierca serve` children

/** A running `tierca serve` child. */
export interface ServeProcess {
  url: string;
  port: number;
  pid: number;
  child: ChildProcess;
  /** Everything the child wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves when the child has exited, with its exit code or signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL: the process dies at once, in the middle of whatever it was doing. */
  kill(): Promise<void>;
  /** SIGTERM and wait for a clean exit. */
  stop(): Promise<void>;
}

export interface ServeParams {
  /** Environment on top of this process's: TIERCA_DATA, DATABASE_URL… (TIERCA_PASSPHRASE defaults to the test one). */
  env: Record<string, string>;
  /** Port to listen on; default a free one. */
  port?: number;
  /** `cli`: `node bin/tierca.js serve --port P` (default); `npm`: `node --import tsx server/main.ts` with PORT. */
  entry?: 'cli' | 'npm';
  /** How long to wait for `/healthz`; default 30 s. */
  readyTimeoutMs?: number;
  /** Node options before the script, e.g. `--cpu-prof` (a benchmark's profile). */
  nodeArgs?: string[];
  /** More arguments after `serve --port P` (cli entry only), e.g. `--tls-cert …`. */
  args?: string[];
  /** The port whose plain-HTTP `/healthz` says the child is ready; default `port` (an HTTPS `port` needs its `--http-port`). */
  readyPort?: number;
}

/** Starts `tierca serve` and waits until `/healthz` answers 200; fails with the child's output otherwise. */
export async function startServe(params: ServeParams): Promise<ServeProcess> {
  const port = params.port ?? (await freePort());
  const env = {
    ...process.env,
    // Only what the test gives: an inherited DATABASE_URL would send a SQLite test to PostgreSQL.
    DATABASE_URL: undefined,
    TIERCA_WORKERS: undefined,
    TIERCA_PASSPHRASE: TEST_PASSPHRASE,
    HOST: '127.0.0.1',
    ...params.env,
    PORT: String(port),
    // Vitest's own variables must not leak into a server (e.g. NODE_ENV=test is harmless, VITEST is noise).
    VITEST: undefined,
    VITEST_WORKER_ID: undefined,
    VITEST_POOL_ID: undefined,
  };
  const args = [...(params.nodeArgs ?? []), ...(params.entry === 'npm' ? ['--import', 'tsx', join(ROOT, 'server', 'main.ts')] : [TIERCA_BIN, 'serve', '--port', String(port), ...(params.args ?? [])])];
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => chunks.push(c));
  child.stderr!.on('data', (c: Buffer) => chunks.push(c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const output = () => Buffer.concat(chunks).toString('utf8');
  const url = `http://127.0.0.1:${port}`;
  const proc: ServeProcess = {
    url, port, pid: child.pid!, child, output, exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
  const deadline = Date.now() + (params.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`tierca serve exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output()}`);
    }
    // Only once this child says it listens: the port was free when chosen, but another test's server
    // may have taken it since — then this child exits, and that server must not be taken for it.
    if (/listening on /.test(output())) {
      try {
        const res = await fetch(`http://127.0.0.1:${params.readyPort ?? port}/healthz`, { signal: AbortSignal.timeout(2000) });
        if (res.status === 200) return proc;
      } catch {
        // Not listening yet.
      }
    }
    if (Date.now() > deadline) {
      await proc.kill();
      throw new Error(`tierca serve did not answer /healthz within ${params.readyTimeoutMs ?? 30_000} ms:\n${output()}`);
    }
    await sleep(100);
  }
}

/** The result of one `tierca …` run. */
export interface TiercaRun {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs `node bin/tierca.js …args` with `input` on stdin (nothing when absent); never rejects on a non-zero exit. */
export function runTierca(args: string[], options: { env?: Record<string, string>; input?: Buffer | string; timeoutMs?: number } = {}): Promise<TiercaRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TIERCA_BIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: undefined, TIERCA_PASSPHRASE: undefined, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin!.on('error', () => undefined); // The child may exit before reading all of it.
    child.stdin!.end(options.input ?? '');
  });
}

// ---------------------------------------------------------------------------------------------
// A TCP proxy to cut

/** A TCP proxy on 127.0.0.1 in front of `target`; `cut` takes the target away, `restore` brings it back. */
export interface TcpProxy {
  port: number;
  /** Closes every proxied connection and refuses new ones (ECONNREFUSED), as a database that went down. */
  cut(): Promise<void>;
  /** Listens again on the same port. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a {@link TcpProxy} forwarding to `target` (default the test PostgreSQL server). */
export async function startTcpProxy(target: { host: string; port: number } = pgTarget()): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const track = (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  };
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const srv = createServer((client) => {
        const upstream = connect(target.port, target.host);
        track(client);
        track(upstream);
        client.pipe(upstream);
        upstream.pipe(client);
        client.once('close', () => upstream.destroy());
        upstream.once('close', () => client.destroy());
      });
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => {
        server = srv;
        const address = srv.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  const stop = async () => {
    const srv = server;
    server = undefined;
    for (const s of sockets) s.destroy();
    if (srv) await new Promise<void>((resolve) => srv.close(() => resolve()));
  };
  const port = await listen(0);
  return {
    port,
    cut: stop,
    async restore() {
      if (!server) await listen(port);
    },
    close: stop,
  };
}

function pgTarget(): { host: string; port: number } {
  const url = new URL(testPgUrl());
  return { host: url.hostname, port: Number(url.port || 5432) };
}

/** `url` with its host and port replaced by the proxy's. */
export function viaProxy(databaseUrl: string, proxy: TcpProxy): string {
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  return url.toString();
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Calls `fn` until it returns a truthy value or `timeoutMs` passes; returns the value and the time taken. */
export async function waitFor<T>(fn: () => Promise<T>, timeoutMs: number, intervalMs = 50): Promise<{ value: T; ms: number }> {
  const start = Date.now();
  for (;;) {
    const value = await fn();
    if (value) return { value, ms: Date.now() - start };
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms (last value: ${String(value)})`);
    await sleep(intervalMs);
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP against a child

/** One HTTP answer: status, headers, the body parsed when it is JSON, and the raw bytes. */
export interface HttpAnswer<T = any> {
  status: number;
  headers: Headers;
  body: T;
  raw: Buffer;
}

/** Calls `base + path`, with a bearer `token` and a JSON `body` when given. */
export async function http<T = any>(
  base: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<HttpAnswer<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let payload: string | Buffer | undefined;
  if (options.body !== undefined) {
    if (Buffer.isBuffer(options.body)) payload = options.body;
    else {
      payload = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
  }
  const res = await fetch(`${base}${path}`, {
    method, headers, body: payload as BodyInit | undefined, signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
  });
  const raw = Buffer.from(await res.arrayBuffer());
  const type = res.headers.get('content-type') ?? '';
  const body = type.includes('json') && raw.length ? JSON.parse(raw.toString('utf8')) : raw;
  return { status: res.status, headers: res.headers, body: body as T, raw };
}
