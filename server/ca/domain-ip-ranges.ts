/**
 * The IP ranges of each domain (config `domains[].ipRanges`): what its devices' IP SANs must lie in,
 * what ACME validation may reach, and the iPAddress subtrees of its domain CA. A domain added online
 * after this process started (`tierca ca add-domain`, decision 0032) is not in the configuration it
 * started with, but is in the stored configuration, which holds every domain: its ranges are read
 * from there on first use. Domains never change once made, so what was read is kept.
 */
import { parseCidr, type IpRange } from '../../pki/ip-range.ts';
import type { TiercaConfig } from '../config/load-config.ts';
import type { MetaRepository } from '../storage/storage.ts';

/** A domain's IP ranges (CIDR text) as the stored configuration has them; none for a domain it does not name. */
export async function storedIpRanges(meta: Pick<MetaRepository, 'get'>, slug: string): Promise<string[] | undefined> {
  const stored = JSON.parse((await meta.get('config')) ?? '{}') as { domains?: { slug: string; ipRanges?: string[] }[] };
  const domain = stored.domains?.find((d) => d.slug === slug);
  return domain ? [...(domain.ipRanges ?? [])] : undefined;
}

export class DomainIpRanges {
  private readonly ranges: Map<string, readonly IpRange[]>;

  constructor(config: Pick<TiercaConfig, 'domains'>, private readonly meta: Pick<MetaRepository, 'get'>) {
    this.ranges = new Map(config.domains.map((d) => [d.slug, d.ipRanges.map(parseCidr)]));
  }

  /** The parsed ranges of `domain`; none for a domain that does not exist (yet). */
  async of(domain: string): Promise<readonly IpRange[]> {
    const known = this.ranges.get(domain);
    if (known) return known;
    const stored = await storedIpRanges(this.meta, domain);
    if (!stored) return [];
    const parsed = stored.map(parseCidr);
    this.ranges.set(domain, parsed);
    return parsed;
  }
}
