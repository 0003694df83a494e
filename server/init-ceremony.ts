/**
 * The key ceremony of a new installation (`tierca init`, and the demo's): checks the credentials,
 * makes the keystore, the hierarchy (or, under an offline root, the request bundle for it), the audit
 * key and the first principals, and stores the configuration every instance will run.
 */
import { openDatabase, type DatabaseOptions } from './open-database.ts';
import type { Store, Role } from './storage/storage.ts';
import { loadConfigFile, EXAMPLE_CONFIG, type TiercaConfig } from './config/load-config.ts';
import { systemClock, type Clock } from './clock.ts';
import { runHierarchyCeremony, runOfflineRootCeremony, formatHierarchyTree, offlineRootRecord } from './ca/hierarchy-ceremony.ts';
import { OFFLINE_ROOT_META, newOfflineRootMeta, writeRequestBundle } from './ca/offline-root-import.ts';
import { createPrincipal } from './ra/principal.service.ts';
import { appendAudit } from './audit/audit-log.ts';
import { generateAuditKey } from './audit/audit-checkpoints.ts';
import { TiercaError } from './errors.ts';
import type { KeyStore } from '../pki/keystore/keystore.ts';
import { TOKEN_META, newKeystore, type KeystoreSettings } from './keystore-custody.ts';

const MIN_PASSPHRASE = 12;

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
export function configData(config: TiercaConfig) {
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
