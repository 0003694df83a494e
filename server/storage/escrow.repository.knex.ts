/** The `escrowed_keys` table (sealed private keys of user encryption certificates) over knex. */
import type { EscrowRepository } from './storage.ts';
import { insertUnique, iso, toBuffer, type DbContext } from './rows.ts';

export class KnexEscrowRepository implements EscrowRepository {
  constructor(private readonly ctx: DbContext) {}

  async insert(issuerId: string, serial: string, sealed: Buffer, createdAt: Date): Promise<void> {
    const row = { issuer_id: issuerId, serial, sealed, created_at: iso(createdAt) };
    await insertUnique(this.ctx, 'escrowed_keys', row, 'serial', () => `escrowed key of ${issuerId}/${serial}`);
  }

  /** The sealed key, never unsealed here. */
  async get(issuerId: string, serial: string): Promise<Buffer | undefined> {
    const row = await this.ctx.db('escrowed_keys').where({ issuer_id: issuerId, serial }).first('sealed');
    return row ? toBuffer(row.sealed) : undefined;
  }
}
