/** The `domains` table (administrative networks: the city, each county) over knex. */
import type { DomainRecord, DomainRepository } from './storage.ts';
import { insertUnique, type DbContext, type Row } from './rows.ts';

export class KnexDomainRepository implements DomainRepository {
  constructor(private readonly ctx: DbContext) {}

  async insert(domain: DomainRecord): Promise<void> {
    await insertUnique(this.ctx, 'domains', domainToRow(domain), 'slug', () => `domain ${domain.slug}`);
  }

  async get(slug: string): Promise<DomainRecord | undefined> {
    const row = await this.ctx.db('domains').where({ slug }).first();
    return row ? rowToDomain(row) : undefined;
  }

  /** Every domain, by slug. */
  async list(): Promise<DomainRecord[]> {
    const rows = await this.ctx.db('domains').orderBy('slug');
    return rows.map(rowToDomain);
  }
}

function domainToRow(d: DomainRecord): Row {
  return { slug: d.slug, name: d.name, locality: d.locality, dns_suffix: d.dnsSuffix, email_suffix: d.emailSuffix, parent: d.parent };
}

function rowToDomain(r: Row): DomainRecord {
  return {
    slug: r.slug as string,
    name: r.name as string,
    locality: r.locality as string,
    dnsSuffix: r.dns_suffix as string,
    emailSuffix: r.email_suffix as string,
    parent: (r.parent as string | null) ?? null,
  };
}
