/**
 * A fresh SoftHSM2 token per test file: its own configuration and token directory in a temporary
 * folder, `SOFTHSM2_CONF` pointing at it (set in this process, so the module loaded here and the
 * `softhsm2-util` / `pkcs11-tool` children see the same token), initialised with
 * `softhsm2-util --init-token --free`. Vitest runs each file in a process of its own (pool 'forks'),
 * and SoftHSM2 reads SOFTHSM2_CONF at C_Initialize: call {@link freshSoftHsm} before opening a
 * keystore, once per file.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Pkcs11KeyStore, type Pkcs11KeyStoreParams } from '../../pki/keystore/pkcs11-keystore.ts';
import { storeOptions } from '../../server/open-database.ts';
import { openStore } from '../../server/storage/knex-store.ts';
import { buildConfig } from '../../server/config/load-config.ts';
import { runHierarchyCeremony } from '../../server/ca/hierarchy-ceremony.ts';
import { generateAuditKey } from '../../server/audit/audit-checkpoints.ts';
import { createPrincipal } from '../../server/ra/principal.service.ts';
import { openServices } from '../../server/services.ts';
import { createHttpServer } from '../../server/http/app.ts';
import type { Clock } from '../../server/clock.ts';
import { testStoreOptions } from './database.ts';
import { freePort } from './net.ts';
import type { RoleName, TestTierca } from './tierca.ts';

/** Debian's SoftHSM2 module (package softhsm2). */
export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface SoftHsm {
  dir: string;
  tokenDir: string;
  modulePath: string;
  tokenLabel: string;
  pin: string;
  soPin: string;
  /** Runs `pkcs11-tool --module <module> args…` on the token. */
  pkcs11Tool(args: string[]): Promise<ToolResult>;
  /** Runs `softhsm2-util args…`. */
  softhsmUtil(args: string[]): Promise<ToolResult>;
  cleanup(): void;
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(command: string, args: string[], timeoutMs = 60_000): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8', env: process.env }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(err);
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Whether SoftHSM2 and pkcs11-tool are installed (`apt-get install -y softhsm2 opensc`). */
export const softHsmInstalled = (): boolean => existsSync(SOFTHSM_MODULE) && existsSync('/usr/bin/softhsm2-util') && existsSync('/usr/bin/pkcs11-tool');

/** Makes a new token directory, points SOFTHSM2_CONF at it and initialises one token. */
export async function freshSoftHsm(opts: { tokenLabel?: string; pin?: string; soPin?: string } = {}): Promise<SoftHsm> {
  const { tokenLabel = 'tierca', pin = '4711-user-pin', soPin = '0815-so-pin' } = opts;
  const dir = mkdtempSync(join(tmpdir(), 'tierca-softhsm-'));
  const tokenDir = join(dir, 'tokens');
  mkdirSync(tokenDir, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env.SOFTHSM2_CONF = conf;
  const softhsmUtil = (args: string[]) => run('softhsm2-util', args);
  const init = await softhsmUtil(['--init-token', '--free', '--label', tokenLabel, '--pin', pin, '--so-pin', soPin]);
  if (init.code !== 0) throw new Error(`softhsm2-util --init-token failed: ${init.stderr}${init.stdout}`);
  return {
    dir,
    tokenDir,
    modulePath: SOFTHSM_MODULE,
    tokenLabel,
    pin,
    soPin,
    softhsmUtil,
    pkcs11Tool: (args) => run('pkcs11-tool', ['--module', SOFTHSM_MODULE, ...args]),
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One object as `pkcs11-tool --list-objects` prints it: its header line and attribute lines. */
export interface ListedObject {
  kind: string;
  label: string;
  id: string;
  usage: string;
  access: string;
  text: string;
}

/** Parses `pkcs11-tool --list-objects` output (OpenSC 0.23) into objects. */
export function parseListedObjects(stdout: string): ListedObject[] {
  const blocks = stdout.split(/\n(?=\S)/).filter((b) => /Object;/.test(b));
  return blocks.map((text) => {
    const field = (name: string) => new RegExp(`^\\s*${name}:\\s*(.*)$`, 'm').exec(text)?.[1].trim() ?? '';
    return { kind: /^(.*?) Object;/.exec(text.trim())?.[1] ?? '', label: field('label'), id: field('ID'), usage: field('Usage'), access: field('Access'), text };
  });
}

// ---------------------------------------------------------------------------------------------
// A whole tierca service on the PKCS#11 keystore, in this process: the key ceremony with every CA
// key (and the audit key, the OCSP responder keys) made in the token, then the services and the
// HTTP server as `tierca serve` builds them (server/bootstrap.ts does this for the software
// keystore; the CLI/config wiring of PKCS#11 is not there yet).

/** What {@link startPkcs11Tierca} starts: a {@link TestTierca} plus its keystore and token. */
export interface Pkcs11Tierca extends TestTierca {
  keystore: Pkcs11KeyStore;
  hsm: SoftHsm;
  /** Log lines the service wrote (pino, level debug). */
  logs: string[];
}

/**
 * Starts tierca on `hsm`'s token and a fresh test database (engine from TIERCA_TEST_DB), with a
 * principal per role of {@link RoleName}. `hooks` go to the keystore (fault tests).
 */
export async function startPkcs11Tierca(hsm: SoftHsm, opts: { clock: Clock; configData: Record<string, unknown>; hooks?: Pkcs11KeyStoreParams['hooks'] }): Promise<Pkcs11Tierca> {
  const db = await testStoreOptions();
  const dataDir = mkdtempSync(join(tmpdir(), 'tierca-data-'));
  const port = await freePort();
  const config = buildConfig({ ...opts.configData, publicUrl: `http://127.0.0.1:${port}` });
  const logs: string[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(line) });
  const store = await openStore(storeOptions({ dataDir, databaseUrl: db.databaseUrl, searchPath: db.searchPath, sqliteFile: db.sqliteFile }));
  const keystore = await Pkcs11KeyStore.open({ modulePath: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin, hooks: opts.hooks });
  const tokens: Record<string, string> = {};
  const now = opts.clock.now();
  await runHierarchyCeremony({ config, store, keystore, now });
  const auditKey = await generateAuditKey({ keystore, now });
  await store.transaction(async (tx) => {
    await tx.keys.insert(auditKey);
    for (const [name, role] of [['admin', 'sysadmin'], ['admin2', 'sysadmin'], ['officer', 'officer'], ['officer2', 'officer'], ['auditor', 'auditor']] as const) {
      const domains = role === 'officer' ? config.domains.map((d) => d.slug) : [];
      tokens[name] = (await createPrincipal(tx, { name, role, domains, now })).token;
    }
  });
  const services = await openServices({ store, keystore, config, clock: opts.clock, log });
  await services.scheduler.start();
  await services.ocsp.startPolling(200);
  const server = createHttpServer({ ra: services.ra, ocsp: services.ocsp, clock: opts.clock, publicUrl: config.publicUrl, log, rotation: services.rotation, health: async () => void (await store.meta.get('schema')) });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const close = async () => {
    services.ocsp.stopPolling();
    await services.scheduler.stop();
    await services.ra.checkpoints.stop();
    await services.rotation.runs.stop();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await services.signing.close();
    await store.close();
  };
  return {
    url, port, tokens: tokens as Record<RoleName, string>, store, dataDir, db, keystore, hsm, logs,
    service: { url, port, services, close },
    async close() {
      await close();
      await keystore.close();
      await db.cleanup();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
