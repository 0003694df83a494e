/** The `organs` table (the six organs of each domain) over knex. */
import type { OrganRecord, OrganRepository } from './storage.ts';
import { insertUnique, type DbContext, type Row } from './rows.ts';

export class KnexOrganRepository implements OrganRepository {
  constructor(private readonly ctx: DbContext) {}

  async insert(organ: OrganRecord): Promise<void> {
    await insertUnique(this.ctx, 'organs', { domain: organ.domain, slug: organ.slug, name: organ.name }, 'slug', () => `organ ${organ.domain}/${organ.slug}`);
  }

  async get(domain: string, slug: string): Promise<OrganRecord | undefined> {
    const row = await this.ctx.db('organs').where({ domain, slug }).first();
    return row ? rowToOrgan(row) : undefined;
  }

  /** The organs of one domain, or of all; by domain then slug. */
  async list(domain?: string): Promise<OrganRecord[]> {
    const q = this.ctx.db('organs').orderBy([{ column: 'domain' }, { column: 'slug' }]);
    if (domain !== undefined) q.where({ domain });
    return (await q).map(rowToOrgan);
  }
}

function rowToOrgan(r: Row): OrganRecord {
  return { domain: r.domain as string, slug: r.slug as string, name: r.name as string };
}
