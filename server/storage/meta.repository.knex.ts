/** The `meta` table: small key/value settings (schema facts, instance markers) over knex. */
import type { MetaRepository } from './storage.ts';
import type { DbContext } from './rows.ts';

export class KnexMetaRepository implements MetaRepository {
  constructor(private readonly ctx: DbContext) {}

  async get(key: string): Promise<string | undefined> {
    const row = await this.ctx.db('meta').where({ key }).first('value');
    return row ? (row.value as string) : undefined;
  }

  /** Sets or replaces a value (one upsert statement). */
  async set(key: string, value: string): Promise<void> {
    await this.ctx.db('meta').insert({ key, value }).onConflict('key').merge(['value']);
  }
}
