/**
 * Loads, validates and freezes tierca's configuration. A bad config fails here, at boot, with a
 * message naming the key path of each problem.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { configSchema, type ConfigData } from './config.schema.ts';
import { DEFAULT_TIERS, encryptionCertificateByKind, encryptionKeyAlgorithms, tierPolicyOid, type TierPolicy } from './tier-policy.ts';
import { TiercaError } from '../errors.ts';
import { SM2_MAX_VALIDITY_DAYS } from '../../pki/profiles.ts';
import { DOCUMENTATION_ARC, isUnderArc, oidProblem } from '../../pki/oid.ts';
import { parseCidr, rangesOverlap, type IpRange } from '../../pki/ip-range.ts';

/** The shipped example topology (Xiangtan city and its five county-level areas); the demo uses it. */
export const EXAMPLE_CONFIG = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'config', 'xiangtan.example.yaml');

export interface DomainConfig {
  readonly slug: string;
  readonly name: string;
  readonly dnsSuffix: string;
  readonly emailSuffix: string;
  /** CIDR blocks, canonical text (`10.20.0.0/16`): the only addresses IP SANs may take; empty = none. */
  readonly ipRanges: readonly string[];
  readonly organs: readonly { slug: string; name: string }[];
}

/** The validated, immutable configuration. */
export interface TiercaConfig {
  readonly publicUrl: string;
  readonly country: string;
  readonly province: string;
  readonly organisation: string;
  /** The deployment's OID arc, when the configuration names one (a stored configuration holds each tier's OID instead). */
  readonly policyArc?: string;
  readonly root: ConfigData['root'];
  readonly domainCa: ConfigData['domainCa'];
  readonly tierCa: ConfigData['tierCa'];
  /** Where `tierca init` makes the CA keys; absent: software (the stored custody record rules afterwards). */
  readonly keystore?: ConfigData['keystore'];
  readonly tiers: ReadonlyMap<string, TierPolicy>;
  readonly domains: readonly DomainConfig[];
  /** The ACME server's validation settings; absent: defaults (system resolver, port 80, the domains' ranges). */
  readonly acme?: ConfigData['acme'];
  /** The KMC's settings; absent: the wrap cipher follows the root's algorithm. */
  readonly kmc?: ConfigData['kmc'];
}

/** Validates parsed config data (from YAML or JSON). Throws TiercaError('invalid-config') naming each bad field. */
export function buildConfig(data: unknown): TiercaConfig {
  const result = configSchema.safeParse(data);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
    throw new TiercaError('invalid-config', `invalid configuration: ${problems.join('; ')}`, {
      detail: { problems },
    });
  }
  const cfg = result.data;
  const tiers = new Map<string, TierPolicy>();
  const tierIds = new Set([...Object.keys(DEFAULT_TIERS), ...Object.keys(cfg.tiers)]);
  for (const id of tierIds) {
    const base = DEFAULT_TIERS[id];
    const { policyOid, oid: legacyOid, encryptionCertificate, ...rest } = cfg.tiers[id] ?? {};
    const override = encryptionCertificate === undefined ? rest : { ...rest, encryptionCertificate: encryptionCertificateByKind(encryptionCertificate) };
    if (!base) {
      const missing = ['name', 'keyAlgorithms', 'caAlgorithm', 'maxValidityDays', 'keyGeneration', 'approvals',
        'encryptionCertificate', 'statusValidityHours', 'archiveDays', 'responderValidityDays'].filter((k) => !(k in override));
      if (missing.length) {
        throw new TiercaError('invalid-config', `invalid configuration: tiers.${id}: a new tier needs ${missing.join(', ')}`);
      }
    }
    const oid = tierOid(id, { policyOid, legacyOid, arc: cfg.policyArc });
    tiers.set(id, deepFreeze({ ...(base as TierPolicy), ...(override as Partial<TierPolicy>), id, oid }));
  }
  checkSm2Validity(cfg, tiers);
  for (const t of tiers.values()) {
    if (t.encryptionCertificate.device !== 'none' && encryptionKeyAlgorithms(t, 'device').length === 0) {
      throw new TiercaError('invalid-config', `invalid configuration: tiers.${t.id}.encryptionCertificate.device: a device's encryption key is EC or SM2, and tier ${t.id} admits only RSA keys (decision 0027)`);
    }
  }
  const oids = new Map<string, string>();
  for (const t of tiers.values()) {
    const other = oids.get(t.oid);
    if (other) throw new TiercaError('invalid-config', `invalid configuration: tiers.${t.id}.policyOid: ${t.oid} is also the policy of tier ${other}`);
    oids.set(t.oid, t.id);
  }
  const slugs = new Set<string>();
  const domainsSoFar: { slug: string; ranges: IpRange[] }[] = [];
  const suffixes = new Set<string>();
  const domains = cfg.domains.map((d, i) => {
    if (slugs.has(d.slug)) throw new TiercaError('invalid-config', `invalid configuration: domains.${i}.slug: ${d.slug} appears twice`);
    if (suffixes.has(d.dnsSuffix)) throw new TiercaError('invalid-config', `invalid configuration: domains.${i}.dnsSuffix: ${d.dnsSuffix} appears twice`);
    slugs.add(d.slug);
    suffixes.add(d.dnsSuffix);
    for (const organ of Object.keys(d.organNames ?? {})) {
      if (!cfg.organs.some((o) => o.slug === organ)) {
        throw new TiercaError('invalid-config', `invalid configuration: domains.${i}.organNames.${organ}: no such organ`);
      }
    }
    return {
      slug: d.slug,
      name: d.name,
      dnsSuffix: d.dnsSuffix,
      emailSuffix: d.emailSuffix,
      ipRanges: ipRangesOf(d.ipRanges, i, d.slug, domainsSoFar),
      organs: cfg.organs.map((o) => ({ slug: o.slug, name: d.organNames?.[o.slug] ?? o.name.replaceAll('{domain}', d.name) })),
    };
  });
  return deepFreeze({
    publicUrl: cfg.publicUrl,
    country: cfg.country,
    province: cfg.province,
    organisation: cfg.organisation,
    ...(cfg.policyArc ? { policyArc: cfg.policyArc } : {}),
    root: cfg.root,
    domainCa: cfg.domainCa,
    tierCa: cfg.tierCa,
    ...(cfg.keystore ? { keystore: cfg.keystore } : {}),
    ...(cfg.acme ? { acme: cfg.acme } : {}),
    ...(cfg.kmc ? { kmc: cfg.kmc } : {}),
    tiers,
    domains,
  });
}

/**
 * A tier's policy OID: its explicit `policyOid` (or the stored configuration's `oid`), else derived
 * from `policyArc`; each checked like every configured OID (pki/oid.ts), the message naming the field.
 */
function tierOid(id: string, p: { policyOid?: string; legacyOid?: string; arc?: string }): string {
  const refuse = (field: string, why: string) => new TiercaError('invalid-config', `invalid configuration: tiers.${id}.${field}: ${why}`);
  if (p.policyOid !== undefined && p.legacyOid !== undefined) throw refuse('oid', 'give policyOid or its old name oid, not both');
  const explicit = p.policyOid ?? p.legacyOid;
  const field = p.legacyOid !== undefined ? 'oid' : 'policyOid';
  const derived = p.arc ? tierPolicyOid(p.arc, id) : null;
  const oid = explicit ?? derived;
  if (!oid) {
    throw refuse(field, p.arc
      ? `tier ${id} is not named t<n>, so no OID derives from policyArc: give tiers.${id}.policyOid`
      : 'no policyArc to derive it from: set policyArc (your deployment\'s registered OID arc) or tiers.' + id + '.policyOid');
  }
  // Explicit OIDs were checked by the schema; a derived one can still grow an arc past 2^28.
  const problem = oidProblem(oid);
  if (problem) throw refuse(field, problem);
  // anyPolicy in a tier CA would satisfy every tier (RFC 5280 §4.2.1.4, §6.1.3 (d)).
  if (oid === ANY_POLICY) throw refuse(field, `${oid} is anyPolicy (RFC 5280 §4.2.1.4), not a tier policy`);
  return oid;
}

const ANY_POLICY = '2.5.29.32.0';

/**
 * The tier policy OIDs of `config` under RFC 5612's documentation arc (empty for a deployment with
 * its own arc): `tierca init` warns loudly about each, as the demo does.
 */
export function documentationArcOids(config: TiercaConfig): string[] {
  return [...config.tiers.values()].map((t) => t.oid).filter((o) => isUnderArc(o, DOCUMENTATION_ARC));
}

/**
 * Validates the configuration a database stores (bootstrap.ts writes it at the ceremony). A stored
 * configuration that no longer passes — one made by an earlier tierca with `2.25.<UUID>` tier
 * OIDs, whose 128-bit arc Go, Rust and Python's `cryptography` cannot read — is refused with what to
 * do: for the demo, remove its data folder; otherwise run a new ceremony. It is never quietly kept:
 * the certificates issued under it would fail at relying parties.
 */
export function loadStoredConfig(json: string, where: { demo: boolean; dataDir?: string }): TiercaConfig {
  try {
    return buildConfig(JSON.parse(json));
  } catch (err) {
    if (!(err instanceof TiercaError) || err.code !== 'invalid-config') throw err;
    const todo = where.demo
      ? `this is a demo database: stop tierca, remove its data folder (rm -r ${where.dataDir ?? './data'}) and run \`npm start\` again to re-create the demo`
      : 'certificates already issued under it cannot be changed in place: run a new key ceremony (`tierca init --config <file>` with policyArc set to your registered OID arc) into a new database, and re-issue';
    throw new TiercaError('invalid-config', `the configuration stored in this database, written by an earlier tierca, is refused: ${err.message.replace(/^invalid configuration: /, '')}. ${todo}`, {
      detail: err.options.detail,
      cause: err,
    });
  }
}

/**
 * A domain's ranges in canonical text, each refused when it appears twice or overlaps a range of
 * the same or an earlier domain: two domains sharing addresses would let one domain's CA vouch for
 * the other's hosts.
 */
function ipRangesOf(texts: readonly string[], i: number, slug: string, earlier: { slug: string; ranges: IpRange[] }[]): string[] {
  const ranges: IpRange[] = [];
  for (const [j, text] of texts.entries()) {
    const range = parseCidr(text);
    const clash = [...earlier, { slug: 'this domain', ranges }].flatMap((d) => d.ranges.map((r) => ({ slug: d.slug, r })))
      .find(({ r }) => rangesOverlap(r, range));
    if (clash) throw new TiercaError('invalid-config', `invalid configuration: domains.${i}.ipRanges.${j}: ${range.cidr} overlaps ${clash.r.cidr} of ${clash.slug}`);
    ranges.push(range);
  }
  earlier.push({ slug, ranges });
  return ranges.map((r) => r.cidr);
}

/** Reads a YAML or JSON config file and validates it. */
export function loadConfigFile(path: string): TiercaConfig {
  return buildConfig(readConfigData(path, []));
}

/**
 * The data of a configuration file. A file may start from another with `extends: <file>` (a path
 * relative to it): its top-level keys replace the base's — how the SM2 and mixed examples reuse the
 * example topology and change only the algorithms.
 */
function readConfigData(path: string, seen: readonly string[]): Record<string, unknown> {
  if (seen.includes(resolve(path)) || seen.length > 4) {
    throw new TiercaError('invalid-config', `configuration file ${path}: extends loops or nests deeper than 4 files`);
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TiercaError('invalid-config', `cannot read configuration file ${path}`, { cause: err });
  }
  let data: unknown;
  try {
    data = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new TiercaError('invalid-config', `configuration file ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new TiercaError('invalid-config', `configuration file ${path} is not a mapping`);
  const { extends: base, ...own } = data as Record<string, unknown>;
  if (base === undefined) return own;
  if (typeof base !== 'string') throw new TiercaError('invalid-config', `configuration file ${path}: extends must name a file`);
  return { ...readConfigData(resolve(dirname(path), base), [...seen, resolve(path)]), ...own };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    if (value instanceof Map) for (const v of value.values()) deepFreeze(v);
    else for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

/**
 * GM/T 0015-2012: an SM2 certificate is valid for ten years at most — SM2 CAs (root, domain CAs,
 * the issuing CAs of a tier whose CA algorithm is SM2) and the end-entity lifetimes of a tier that
 * admits SM2 keys. Refused in the configuration, before any ceremony.
 */
function checkSm2Validity(cfg: ConfigData, tiers: ReadonlyMap<string, TierPolicy>): void {
  const refuse = (field: string, what: string) => {
    throw new TiercaError('invalid-config', `invalid configuration: ${field}: ${what} (an SM2 certificate is valid for ten years at most, GM/T 0015)`);
  };
  if (cfg.root.algorithm === 'SM2' && cfg.root.validityYears > 10) refuse('root.validityYears', `${cfg.root.validityYears} years`);
  if (cfg.domainCa.algorithm === 'SM2' && cfg.domainCa.validityYears > 10) refuse('domainCa.validityYears', `${cfg.domainCa.validityYears} years`);
  for (const t of tiers.values()) {
    if (t.caAlgorithm === 'SM2' && cfg.tierCa.validityYears > 10) refuse('tierCa.validityYears', `${cfg.tierCa.validityYears} years for tier ${t.id}'s SM2 CAs`);
    if (!t.keyAlgorithms.includes('SM2')) continue;
    for (const [kind, days] of Object.entries(t.maxValidityDays)) {
      if (days > SM2_MAX_VALIDITY_DAYS) refuse(`tiers.${t.id}.maxValidityDays.${kind}`, `${days} days`);
    }
  }
}
