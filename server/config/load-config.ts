/**
 * Loads, validates and freezes tierca's configuration. A bad config fails here, at boot, with a
 * message naming the key path of each problem.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { configSchema, type ConfigData } from './config.schema.ts';
import { DEFAULT_TIERS, type TierPolicy } from './tier-policy.ts';
import { TiercaError } from '../errors.ts';
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
  readonly root: ConfigData['root'];
  readonly domainCa: ConfigData['domainCa'];
  readonly tierCa: ConfigData['tierCa'];
  readonly tiers: ReadonlyMap<string, TierPolicy>;
  readonly domains: readonly DomainConfig[];
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
    const override = cfg.tiers[id] ?? {};
    if (!base) {
      const missing = ['name', 'oid', 'keyAlgorithms', 'caAlgorithm', 'maxValidityDays', 'keyGeneration', 'approvals',
        'encryptionCertificate', 'statusValidityHours', 'archiveDays', 'responderValidityDays'].filter((k) => !(k in override));
      if (missing.length) {
        throw new TiercaError('invalid-config', `invalid configuration: tiers.${id}: a new tier needs ${missing.join(', ')}`);
      }
    }
    tiers.set(id, deepFreeze({ ...(base as TierPolicy), ...(override as Partial<TierPolicy>), id }));
  }
  const oids = new Set<string>();
  for (const t of tiers.values()) {
    if (oids.has(t.oid)) throw new TiercaError('invalid-config', `invalid configuration: tiers.${t.id}.oid: ${t.oid} is used by two tiers`);
    oids.add(t.oid);
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
    root: cfg.root,
    domainCa: cfg.domainCa,
    tierCa: cfg.tierCa,
    tiers,
    domains,
  });
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
  return buildConfig(data);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    if (value instanceof Map) for (const v of value.values()) deepFreeze(v);
    else for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}
