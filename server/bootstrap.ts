/**
 * Starting tierca: `startService` opens the database, unlocks the keystore and listens (`tierca
 * serve`, `npm start`); `addToken` adds a PKCS#11 token to an installation. On an empty
 * embedded database with no passphrase given, `startService` builds the DEMO hierarchy from the
 * shipped example topology, with a demo passphrase and demo tokens, and says so loudly.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { openDatabase, type DatabaseOptions } from './open-database.ts';
import { ceremony, configData } from './init-ceremony.ts';
import type { Store } from './storage/storage.ts';
import { buildConfig, loadConfigFile, loadStoredConfig, EXAMPLE_CONFIG } from './config/load-config.ts';
import { systemClock, type Clock } from './clock.ts';
import { appendAudit } from './audit/audit-log.ts';
import { openServices, type Services } from './services.ts';
import { openListeners, type ServiceTls } from './listeners.ts';
import { TiercaError } from './errors.ts';
import type { KeyStore } from '../pki/keystore/keystore.ts';
import {
  TOKEN_META, keystoreFaultError, openInstalledKeystore, openPkcs11Custody, pkcs11CustodyRecord, readCustody, unlockSoftware,
} from './keystore-custody.ts';

/** The demo's passphrase. It is public: the demo hierarchy must never be trusted. */
export const DEMO_PASSPHRASE = 'tierca-demo-passphrase-NOT-SECRET';

export interface ServeOptions extends DatabaseOptions {
  host?: string;
  port?: number;
  passphrase?: string;
  /** The token's user PIN, for an installation whose CA keys are in a PKCS#11 token. */
  pin?: string;
  clock?: Clock;
  log?: Logger;
  /** Poll interval of revocation events (other instances' changes). Default 500 ms. */
  pollMs?: number;
  kdf?: { N: number; r: number; p: number };
  /**
   * Listen on HTTPS with this key and certificate chain (server/tls-credentials.ts reads them from
   * files). Client certificates are verified against `ca`, by default every CA certificate of the
   * hierarchy that is not revoked (roots as anchors; intermediates so that a client may send its
   * leaf alone), so principals log in to the admin API with the certificate tierca issued them.
   */
  tls?: ServiceTls;
  /**
   * With `tls` only: a second, plain-HTTP listener on this port serving OCSP, CRLs, CA certificates
   * and status and nothing else (server/http/public-listener.ts; docs/decisions/0012-tls-listeners.md).
   */
  httpPort?: number;
  /** How often periodic audit checkpoints are looked for; default 2 s. */
  auditCheckpointMs?: number;
  /** How often the rotation timer revokes superseded certificates, retires old CA keys and learns new CA generations; default 10 s. */
  rotationMs?: number;
}

export interface RunningService {
  /** The main listener: https://… with `tls`, else http://… (everything is served there). */
  url: string;
  port: number;
  /** The plain-HTTP listener of the public routes, when `httpPort` was given with `tls`. */
  httpUrl?: string;
  httpPort?: number;
  services: Services;
  close(): Promise<void>;
}

/** Opens, unlocks and listens. Builds the demo hierarchy on an empty embedded database when no passphrase is given. */
export async function startService(opts: ServeOptions): Promise<RunningService> {
  const log = opts.log ?? pino({ name: 'tierca' });
  const clock = opts.clock ?? systemClock;
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 8080;
  const store = await openDatabase(opts);
  let opened: Services | undefined;
  let keystore: KeyStore | undefined;
  try {
    await ensureHierarchy(store, opts, host, port, clock);
    const demo = (await store.meta.get('demo')) === 'true';
    if (demo) warnDemo(opts.dataDir);
    const config = loadStoredConfig((await store.meta.get('config'))!, { demo, dataDir: opts.dataDir });
    if (opts.tls && opts.httpPort !== undefined && !config.acme?.url) {
      log.warn({ publicUrl: config.publicUrl }, 'ACME is served on the HTTPS listener only, but its URLs would name publicUrl (the plain-HTTP port): set acme.url to the HTTPS base (docs/decisions/0023-acme.md)');
    }
    const token = await store.meta.get(TOKEN_META);
    keystore = await openInstalledKeystore(
      readCustody((await store.meta.get('keystore'))!), token ? readCustody(token) : undefined, demo ? (opts.passphrase ?? DEMO_PASSPHRASE) : opts.passphrase, opts.pin,
    );
    const services = await openServices({ store, keystore, config, clock, log }).catch((err: unknown) => {
      throw keystoreFaultError(err);
    });
    opened = services;
    await services.scheduler.start();
    await services.ocsp.startPolling(opts.pollMs ?? 500);
    const listeners = await openListeners({
      deps: {
        ra: services.ra, ocsp: services.ocsp, clock, publicUrl: config.publicUrl, log, rotation: services.rotation, acme: services.acme, est: services.est,
        health: async () => void (await store.meta.get('schema')),
      },
      cas: services.cas,
      host, port, tls: opts.tls, httpPort: opts.httpPort, log,
    });
    const { url } = listeners;
    log.info({ url, httpUrl: listeners.httpUrl, cas: services.cas.list().length, engine: store.engine }, 'tierca is serving');
    services.ra.checkpoints.start(opts.auditCheckpointMs);
    services.rotation.runs.start(opts.rotationMs);
    return {
      url,
      port: listeners.port,
      httpUrl: listeners.httpUrl,
      httpPort: listeners.httpPort,
      services,
      async close() {
        services.ocsp.stopPolling();
        await services.scheduler.stop();
        await services.ra.checkpoints.stop();
        await services.rotation.runs.stop();
        await listeners.close();
        await services.signing.close();
        await store.close();
        await keystore?.close?.();
      },
    };
  } catch (err) {
    // A listener that cannot open (a port taken) must not leave timers and signing threads behind.
    if (opened) {
      opened.ocsp.stopPolling();
      await opened.scheduler.stop();
      await opened.signing.close();
    }
    await store.close();
    await keystore?.close?.();
    throw err;
  }
}

/**
 * Adds a PKCS#11 token to a software installation (`tierca keystore add-token`): from then on every
 * new key — a CA rollover's next generation, a responder key — is made in the token, while the
 * software keys keep signing until their generations retire. Checks the passphrase and the PIN
 * first; records the token (never the PIN) and audits the act.
 */
export async function addToken(opts: DatabaseOptions & { passphrase?: string; pin: string; module: string; tokenLabel: string; clock?: Clock }): Promise<void> {
  const store = await openDatabase(opts);
  try {
    const stored = await store.meta.get('keystore');
    if (!stored) throw new TiercaError('not-found', 'this database holds no CA hierarchy: run `tierca init --config …` first');
    const custody = readCustody(stored);
    if (custody.custody !== 'software') throw new TiercaError('conflict', `the CA keys are already in the PKCS#11 token "${custody.tokenLabel}"`);
    const existing = await store.meta.get(TOKEN_META);
    if (existing) throw new TiercaError('conflict', `a PKCS#11 token is already added: ${(readCustody(existing) as { tokenLabel: string }).tokenLabel}`);
    await unlockSoftware(custody.header, opts.passphrase);
    const settings = { custody: 'pkcs11' as const, module: opts.module, tokenLabel: opts.tokenLabel };
    const token = await openPkcs11Custody(settings, opts.pin);
    await token.close();
    const now = (opts.clock ?? systemClock).now();
    await store.transaction(async (tx) => {
      await tx.meta.set(TOKEN_META, pkcs11CustodyRecord(settings));
      await appendAudit(tx.audit, now, {
        principalId: null, role: null, source: 'local', action: 'keystore.add-token', target: `token:${opts.tokenLabel}`, outcome: 'success',
        requestId: null, detail: { module: opts.module, tokenLabel: opts.tokenLabel },
      });
    });
  } finally {
    await store.close();
  }
}

/**
 * Makes sure the database holds a hierarchy: creates the demo on an empty embedded database when no
 * passphrase was given; refuses otherwise.
 */
async function ensureHierarchy(store: Store, opts: ServeOptions, host: string, port: number, clock: Clock): Promise<void> {
  if (await store.meta.get('keystore')) return;
  if (opts.passphrase || opts.pin || opts.databaseUrl || opts.sqliteFile) {
    throw new TiercaError('not-found', 'this database holds no CA hierarchy: run `tierca init --config …` first');
  }
  await createDemo(store, opts, host, port, clock);
}

/** Migrates and, where `startService` would, creates the demo — once, before workers start. */
export async function prepareDatabase(opts: ServeOptions): Promise<void> {
  const store = await openDatabase(opts);
  try {
    await ensureHierarchy(store, opts, opts.host ?? '127.0.0.1', opts.port ?? 8080, opts.clock ?? systemClock);
  } finally {
    await store.close();
  }
}

/** The demo: the example topology, a public passphrase, a token per role written beside the database. */
async function createDemo(store: Store, opts: ServeOptions, host: string, port: number, clock: Clock): Promise<void> {
  const base = loadConfigFile(EXAMPLE_CONFIG);
  const publicHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  // Relying parties fetch OCSP and CRLs over plain HTTP: the plain listener's URL when there is one.
  const publicUrl = opts.tls && opts.httpPort === undefined ? `https://${publicHost}:${port}` : `http://${publicHost}:${opts.tls ? opts.httpPort : port}`;
  const config = buildConfig({ ...configData(base), publicUrl });
  const { tokens } = await ceremony(
    store,
    { ...opts, config, passphrase: DEMO_PASSPHRASE, clock },
    'sysadmin:admin', 'sysadmin:admin2', 'officer:officer', 'officer:officer2', 'auditor:auditor',
  );
  await store.meta.set('demo', 'true');
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  for (const [name, token] of Object.entries(tokens)) {
    const file = join(opts.dataDir, `demo-${name}.token`);
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
  }
}

function warnDemo(dataDir: string): void {
  const bar = '!'.repeat(78);
  const lines = [
    bar,
    '!!  DEMO HIERARCHY — NOT FOR PRODUCTION',
    '!!  The CA keys are sealed with the PUBLIC demo passphrase; anyone can unseal them.',
    `!!  Demo tokens (one per role) are in ${join(dataDir, 'demo-*.token')}.`,
    '!!  For a real deployment run `tierca init --config <file>` with your own passphrase.',
    bar,
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
}

