/** The `keys` table (sealed software keys and PKCS#11 references; never a plaintext key) over knex. */
import type { KeyCustody, KeyPurpose, KeyRecord, KeyRepository } from './storage.ts';
import { insertUnique, iso, toBuffer, toBufferOrNull, toDate, type DbContext, type Row } from './rows.ts';

export class KnexKeyRepository implements KeyRepository {
  constructor(private readonly ctx: DbContext) {}

  async insert(key: KeyRecord): Promise<void> {
    await insertUnique(this.ctx, 'keys', keyToRow(key), 'id', () => `key ${key.id}`);
  }

  async get(id: string): Promise<KeyRecord | undefined> {
    const row = await this.ctx.db('keys').where({ id }).first();
    return row ? rowToKey(row) : undefined;
  }

  /** Every key, or those of one purpose; oldest first. */
  async list(purpose?: KeyPurpose): Promise<KeyRecord[]> {
    const q = this.ctx.db('keys').orderBy([{ column: 'created_at' }, { column: 'id' }]);
    if (purpose !== undefined) q.where({ purpose });
    return (await q).map(rowToKey);
  }
}

function keyToRow(k: KeyRecord): Row {
  return {
    id: k.id,
    algorithm: k.algorithm,
    custody: k.custody,
    sealed: k.sealed,
    pkcs11_label: k.pkcs11Label,
    public_key_info: k.publicKeyInfo,
    purpose: k.purpose,
    created_at: iso(k.createdAt),
  };
}

function rowToKey(r: Row): KeyRecord {
  return {
    id: r.id as string,
    algorithm: r.algorithm as string,
    custody: r.custody as KeyCustody,
    sealed: toBufferOrNull(r.sealed),
    pkcs11Label: (r.pkcs11_label as string | null) ?? null,
    publicKeyInfo: toBuffer(r.public_key_info),
    purpose: r.purpose as KeyPurpose,
    createdAt: toDate(r.created_at),
  };
}
