/**
 * The key-management centre's own storage (tables `kmc_master_keys`, `kmc_keys`, migration 0007),
 * over knex: the KMC holds a knex of its own and shares no repository with the CA, so it could move
 * to a process and a database of its own.
 */
import type { Knex } from 'knex';

export type MasterKeyStatus = 'active' | 'retiring' | 'retired';

export interface MasterKeyRecord {
  id: string;
  /** The 32-octet master key, sealed by the keystore under aad `kmc-master:<id>`. */
  sealed: Buffer;
  status: MasterKeyStatus;
  createdAt: Date;
}

export interface EscrowedKeyRecord {
  id: string;
  subjectId: string;
  algorithm: string;
  publicKeyInfo: Buffer;
  /** The key's PKCS#8, wrapped (RFC 5649) under master key `masterKeyId`. */
  wrapped: Buffer;
  masterKeyId: string;
  /** The certificate the CA issued for it, once it has. */
  issuerId: string | null;
  serial: string | null;
  createdAt: Date;
}

const toDate = (v: unknown): Date => new Date(v as string);

function keyOf(r: Record<string, unknown>): EscrowedKeyRecord {
  return {
    id: r.id as string, subjectId: r.subject_id as string, algorithm: r.algorithm as string, publicKeyInfo: r.public_key_info as Buffer,
    wrapped: r.wrapped as Buffer, masterKeyId: r.master_key_id as string, issuerId: (r.issuer_id as string | null) ?? null,
    serial: (r.serial as string | null) ?? null, createdAt: toDate(r.created_at),
  };
}

export class KmcStore {
  constructor(private readonly db: Knex) {}

  async masterKeys(): Promise<MasterKeyRecord[]> {
    const rows = await this.db('kmc_master_keys').orderBy('created_at').orderBy('id');
    return rows.map((r) => ({ id: r.id, sealed: r.sealed as Buffer, status: r.status as MasterKeyStatus, createdAt: toDate(r.created_at) }));
  }

  async insertMasterKey(m: MasterKeyRecord): Promise<void> {
    await this.db('kmc_master_keys').insert({ id: m.id, sealed: m.sealed, status: m.status, created_at: m.createdAt.toISOString() });
  }

  async setMasterKeyStatus(id: string, status: MasterKeyStatus): Promise<void> {
    await this.db('kmc_master_keys').where({ id }).update({ status });
  }

  async insertKey(k: EscrowedKeyRecord): Promise<void> {
    await this.db('kmc_keys').insert({
      id: k.id, subject_id: k.subjectId, algorithm: k.algorithm, public_key_info: k.publicKeyInfo, wrapped: k.wrapped,
      master_key_id: k.masterKeyId, issuer_id: k.issuerId, serial: k.serial, created_at: k.createdAt.toISOString(),
    });
  }

  async key(id: string): Promise<EscrowedKeyRecord | undefined> {
    const row = await this.db('kmc_keys').where({ id }).first();
    return row ? keyOf(row) : undefined;
  }

  async keyOfCertificate(issuerId: string, serial: string): Promise<EscrowedKeyRecord | undefined> {
    const row = await this.db('kmc_keys').where({ issuer_id: issuerId, serial }).first();
    return row ? keyOf(row) : undefined;
  }

  /** A subject's escrowed keys, oldest first. */
  async keysOf(subjectId: string): Promise<EscrowedKeyRecord[]> {
    return (await this.db('kmc_keys').where({ subject_id: subjectId }).orderBy('created_at').orderBy('id')).map(keyOf);
  }

  /** Binds key `id` to the certificate the CA issued for it; false when it was already bound. */
  async bind(id: string, issuerId: string, serial: string): Promise<boolean> {
    return (await this.db('kmc_keys').where({ id }).whereNull('serial').update({ issuer_id: issuerId, serial })) === 1;
  }

  /** Moves a key's binding from a certificate to its successor (a renewal that kept the key). */
  async rebind(id: string, from: { issuerId: string; serial: string }, to: { issuerId: string; serial: string }): Promise<boolean> {
    return (await this.db('kmc_keys').where({ id, issuer_id: from.issuerId, serial: from.serial }).update({ issuer_id: to.issuerId, serial: to.serial })) === 1;
  }

  /** How many keys are escrowed. */
  async countKeys(): Promise<number> {
    const row = await this.db('kmc_keys').count<{ n: number | string }[]>({ n: '*' }).first();
    return Number(row?.n ?? 0);
  }

  /** Up to `limit` keys still wrapped under master key `masterKeyId`. */
  async keysUnder(masterKeyId: string, limit: number): Promise<EscrowedKeyRecord[]> {
    return (await this.db('kmc_keys').where({ master_key_id: masterKeyId }).orderBy('id').limit(limit)).map(keyOf);
  }

  /** Replaces a key's wrapping only if it is still under `from` (a concurrent re-wrap did nothing twice). */
  async rewrap(id: string, from: string, to: string, wrapped: Buffer): Promise<boolean> {
    return (await this.db('kmc_keys').where({ id, master_key_id: from }).update({ master_key_id: to, wrapped })) === 1;
  }

  async transaction<T>(fn: (store: KmcStore) => Promise<T>): Promise<T> {
    return this.db.transaction((trx) => fn(new KmcStore(trx)));
  }
}
