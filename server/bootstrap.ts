/**
 * Starting tierca: `initHierarchy` runs the key ceremony for a config (`tierca init`), `startService`
 * opens the database, unlocks the keystore and listens (`tierca serve`, `npm start`). On an empty
 * embedded database with no passphrase given, `startService` builds the DEMO hierarchy from the
 * shipped example topology, with a demo passphrase and demo tokens, and says so loudly.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { openStore, type StoreOptions } from './storage/knex-store.ts';
import type { DurableSync } from './storage/wal-sync.ts';
import type { Store, Role } from './storage/storage.ts';
import { buildConfig, loadConfigFile, loadStoredConfig, EXAMPLE_CONFIG, type TiercaConfig } from './config/load-config.ts';
import { systemClock, type Clock } from './clock.ts';
import { runHierarchyCeremony, runOfflineRootCeremony, formatHierarchyTree, offlineRootRecord } from './ca/hierarchy-ceremony.ts';
import { OFFLINE_ROOT_META, newOfflineRootMeta, writeRequestBundle } from './ca/offline-root-import.ts';
import { createPrincipal } from './ra/principal.service.ts';
import { appendAudit } from './audit/audit-log.ts';
import { openServices, type Services } from './services.ts';
import { openListeners, type ServiceTls } from './listeners.ts';
import { generateAuditKey } from './audit/audit-checkpoints.ts';
import { TiercaError } from './errors.ts';
import type { KeyStore } from '../pki/keystore/keystore.ts';
import {
  TOKEN_META, keystoreFaultError, newKeystore, openInstalledKeystore, openPkcs11Custody, pkcs11CustodyRecord, readCustody, unlockSoftware, type KeystoreSettings,
} from './keystore-custody.ts';

/** The demo's passphrase. It is public: the demo hierarchy must never be trusted. */
export const DEMO_PASSPHRASE = 'tierca-demo-passphrase-NOT-SECRET';
const MIN_PASSPHRASE = 12;

export interface DatabaseOptions {
  dataDir: string;
  /** postgres://… selects PostgreSQL; otherwise SQLite at `<dataDir>/tierca.db`. */
  databaseUrl?: string;
  /** PostgreSQL schema (tests use one per run). */
  searchPath?: string;
  /** SQLite file other than `<dataDir>/tierca.db`. */
  sqliteFile?: string;
  /** SQLite only: what commits wait for (tests; default the WAL's fdatasync, StoreOptions.durableSync). */
  durableSync?: DurableSync;
}

export function storeOptions({ dataDir, databaseUrl, searchPath, sqliteFile, durableSync }: DatabaseOptions): StoreOptions {
  if (databaseUrl) return { databaseUrl, searchPath };
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  return { sqliteFile: sqliteFile ?? join(dataDir, 'tierca.db'), ...(durableSync ? { durableSync } : {}) };
}

/** Opens the store; an embedded database file is readable by its owner only (it holds sealed keys). */
export async function openDatabase(opts: DatabaseOptions): Promise<Store> {
  const options = storeOptions(opts);
  const store = await openStore(options);
  if (options.sqliteFile && options.sqliteFile !== ':memory:') {
    for (const suffix of ['', '-wal', '-shm']) {
      try {
        chmodSync(`${options.sqliteFile}${suffix}`, 0o600);
      } catch {
        // -wal/-shm appear only once written.
      }
    }
  }
  return store;
}

export interface InitOptions extends DatabaseOptions {
  configPath?: string;
  /** Config data instead of a file (the demo overrides publicUrl). */
  config?: TiercaConfig;
  /** The new software keystore's passphrase (software custody only). */
  passphrase?: string;
  /** Where the CA keys are made; default the config's `keystore`, else software. */
  keystore?: KeystoreSettings;
  /** The token's user PIN (PKCS#11 custody only); never stored. */
  pin?: string;
  clock?: Clock;
  /** Low scrypt cost for tests only. */
  kdf?: { N: number; r: number; p: number };
  /**
   * Sysadmins made at the ceremony (default 1). Two let the first dual-controlled acts — adding an
   * officer or a sysadmin, revoking a CA — be approved by a second person present at the ceremony.
   */
  sysadmins?: number;
  /**
   * The DER certificate of a root kept on an offline machine (`tierca root init`): the ceremony then
   * makes no root key, and the domain CAs wait for the root's signature; the request bundle for it
   * is returned (docs/offline-root.md).
   */
  offlineRoot?: Buffer;
}

/** Runs the key ceremony into an empty database; returns the tree and the sysadmins' tokens (shown once). */
export async function initHierarchy(opts: InitOptions): Promise<{ tree: string; adminToken: string; sysadminTokens: string[]; requestBundle?: Buffer }> {
  // Validate everything that can be validated before anything is written.
  const config = opts.config ?? loadConfigFile(opts.configPath ?? EXAMPLE_CONFIG);
  checkCredentials(opts, config);
  const count = opts.sysadmins ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > 9) throw new TiercaError('bad-request', '--sysadmins: a whole number from 1 to 9');
  // A root certificate that is not a self-signed root is refused before a database is made.
  if (opts.offlineRoot) offlineRootRecord(opts.offlineRoot, config.root.name, new Date(0));
  const store = await openDatabase(opts);
  try {
    const names = Array.from({ length: count }, (_, i) => `sysadmin:${count === 1 ? 'first sysadmin' : `sysadmin ${i + 1}`}`);
    const result = await ceremony(store, { ...opts, config }, ...names);
    const sysadminTokens = names.map((n) => result.tokens[n.slice('sysadmin:'.length)]);
    return { tree: result.tree, adminToken: sysadminTokens[0], sysadminTokens, ...(result.requestBundle ? { requestBundle: result.requestBundle } : {}) };
  } finally {
    await store.close();
  }
}

/**
 * The ceremony on an open store, with principals made for `roles` ('role' or 'role:name'; officers get
 * every domain). Returns the tree and each principal's token by name.
 */
export async function ceremony(store: Store, opts: InitOptions, ...roles: string[]): Promise<{ tree: string; tokens: Record<string, string>; requestBundle?: Buffer }> {
  const config = opts.config ?? loadConfigFile(opts.configPath ?? EXAMPLE_CONFIG);
  const settings = checkCredentials(opts, config);
  if (await store.meta.get('keystore')) throw new TiercaError('already-exists', 'this database already holds a CA hierarchy');
  const clock = opts.clock ?? systemClock;
  const { keystore, header, token } = await newKeystore(settings, opts);
  try {
    return await ceremonyWith(store, keystore, { header, token }, config, clock, roles, opts.offlineRoot);
  } finally {
    await keystore.close?.();
  }
}

async function ceremonyWith(
  store: Store, keystore: KeyStore, custody: { header: string; token?: string }, config: TiercaConfig, clock: Clock, roles: string[],
  offlineRoot?: Buffer,
): Promise<{ tree: string; tokens: Record<string, string>; requestBundle?: Buffer }> {
  const offline = offlineRoot
    ? await runOfflineRootCeremony({ config, store, keystore, now: clock.now(), rootCertificate: offlineRoot, requestSequence: 1 })
    : undefined;
  const cas = offline ? offline.cas : await runHierarchyCeremony({ config, store, keystore, now: clock.now() });
  // The key that signs audit checkpoints, sealed like the CA keys (server/audit/audit-checkpoints.ts).
  // Under an offline root it also signs the request bundles (docs/decisions/0026-offline-root.md).
  const auditKey = await generateAuditKey({ keystore, now: clock.now() });
  const tokens: Record<string, string> = {};
  let requestBundle: Buffer | undefined;
  await store.transaction(async (tx) => {
    await tx.keys.insert(auditKey);
    if (offline) {
      const fingerprint = offline.cas[0].fingerprint;
      await tx.meta.set(OFFLINE_ROOT_META, JSON.stringify(newOfflineRootMeta(fingerprint)));
      requestBundle = await writeRequestBundle(tx, { fingerprint, sequence: 1, requests: offline.requests, signer: keystore.signer(auditKey.id), now: clock.now() });
    }
    await tx.meta.set('keystore', custody.header);
    if (custody.token) await tx.meta.set(TOKEN_META, custody.token);
    await tx.meta.set('config', JSON.stringify(configData(config)));
    const now = clock.now();
    for (const spec of roles) {
      const [role, name] = spec.split(':') as [Role, string | undefined];
      const domains = role === 'officer' ? config.domains.map((d) => d.slug) : [];
      const { principal, token } = await createPrincipal(tx, { name: name ?? `first ${role}`, role, domains, now });
      tokens[name ?? role] = token;
      await appendAudit(tx.audit, now, {
        principalId: null, role: null, source: 'ceremony', action: 'principal.add', target: `principal:${principal.id}`,
        outcome: 'success', requestId: null, detail: { role, domains },
      });
    }
    await appendAudit(tx.audit, now, {
      principalId: null, role: null, source: 'ceremony', action: 'hierarchy.create', target: null, outcome: 'success',
      requestId: null, detail: { cas: cas.map((c) => c.id), ...(offline ? { awaitingRoot: offline.pending.map((p) => p.record.id) } : {}) },
    });
  });
  const algorithms = new Map((await store.keys.list()).map((k) => [k.id, k.algorithm]));
  const tree = formatHierarchyTree([...cas, ...(offline?.pending.map((p) => p.record) ?? [])], algorithms, new Set(offline?.pending.map((p) => p.record.id)));
  return { tree, tokens, ...(requestBundle ? { requestBundle } : {}) };
}

/** The custody of a new installation, once what it needs is there: a long enough passphrase (software) or a PIN (PKCS#11). */
function checkCredentials(opts: InitOptions, config: TiercaConfig): KeystoreSettings {
  const settings = opts.keystore ?? config.keystore ?? { custody: 'software' };
  if (settings.custody === 'pkcs11') {
    if (!opts.pin) throw new TiercaError('bad-request', 'the token PIN is needed: set TIERCA_PKCS11_PIN or use --pin-file');
    // keystore.inSoftware: those layers' keys are sealed under a passphrase, as in a software installation.
    if (!settings.inSoftware?.length) return settings;
  }
  if (opts.passphrase === undefined || opts.passphrase.length < MIN_PASSPHRASE) {
    throw new TiercaError('bad-request', `the keystore passphrase must be at least ${MIN_PASSPHRASE} characters`);
  }
  return settings;
}

/** The config as stored in the database (so every instance runs the same policy). */
function configData(config: TiercaConfig) {
  return {
    publicUrl: config.publicUrl,
    country: config.country,
    province: config.province,
    organisation: config.organisation,
    root: config.root,
    domainCa: config.domainCa,
    tierCa: config.tierCa,
    ...(config.acme ? { acme: config.acme } : {}),
    ...(config.kmc ? { kmc: config.kmc } : {}),
    tiers: Object.fromEntries([...config.tiers.entries()].map(([id, t]) => {
      const { id: _id, ...rest } = t;
      return [id, rest];
    })),
    organs: config.domains[0]?.organs.map((o) => ({ slug: o.slug, name: o.name })) ?? [],
    domains: config.domains.map((d) => ({
      slug: d.slug, name: d.name, dnsSuffix: d.dnsSuffix, emailSuffix: d.emailSuffix, ipRanges: [...d.ipRanges],
      organNames: Object.fromEntries(d.organs.map((o) => [o.slug, o.name])),
    })),
  };
}

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

