/** The `cas` table (root, domain and tier CAs with their certificates) over knex. */
import type { CaLayer, CaRecord, CaRepository, CaStatus } from './storage.ts';
import { insertUnique, iso, isoOrNull, toBuffer, toDate, toDateOrNull, toNumberOrNull, type DbContext, type Row } from './rows.ts';

export class KnexCaRepository implements CaRepository {
  constructor(private readonly ctx: DbContext) {}

  /** Inserts; a duplicate id or key hash throws UniqueViolationError. */
  async insert(ca: CaRecord): Promise<void> {
    await insertUnique(this.ctx, 'cas', caToRow(ca), 'id', () => `CA ${ca.id} (or its key hash ${ca.keyHashSha1})`);
  }

  async get(id: string): Promise<CaRecord | undefined> {
    const row = await this.ctx.db('cas').where({ id }).first();
    return row ? rowToCa(row) : undefined;
  }

  async findByKeyHash(keyHashSha1: string): Promise<CaRecord | undefined> {
    const row = await this.ctx.db('cas').where({ key_hash_sha1: keyHashSha1 }).first();
    return row ? rowToCa(row) : undefined;
  }

  /** Every CA, oldest first (a parent is made before its children). */
  async list(): Promise<CaRecord[]> {
    const rows = await this.ctx.db('cas').orderBy([{ column: 'created_at' }, { column: 'id' }]);
    return rows.map(rowToCa);
  }

  async updateStatus(id: string, status: CaStatus, revokedAt: Date | null, reason: number | null): Promise<void> {
    await this.ctx.db('cas').where({ id }).update({ status, revoked_at: isoOrNull(revokedAt), revocation_reason: reason });
  }

  /** One conditional UPDATE: only a generation without a successor gets one (a second rollover loses). */
  async setSuccessor(id: string, successorId: string): Promise<boolean> {
    const changed = await this.ctx.db('cas').where({ id }).whereNull('successor_id').update({ successor_id: successorId });
    return Number(changed) === 1;
  }

  async retire(id: string, at: Date): Promise<void> {
    await this.ctx.db('cas').where({ id }).update({ status: 'retired', retired_at: iso(at) });
  }

  async recertify(id: string, c: Pick<CaRecord, 'certificate' | 'serial' | 'notBefore' | 'notAfter' | 'fingerprint' | 'parentId'>): Promise<void> {
    await this.ctx.db('cas').where({ id }).update({
      certificate: c.certificate, serial: c.serial, not_before: iso(c.notBefore), not_after: iso(c.notAfter), fingerprint: c.fingerprint, parent_id: c.parentId,
    });
  }
}

function caToRow(c: CaRecord): Row {
  return {
    id: c.id,
    layer: c.layer,
    domain: c.domain,
    tier: c.tier,
    parent_id: c.parentId,
    name: c.name,
    key_id: c.keyId,
    certificate: c.certificate,
    serial: c.serial,
    not_before: iso(c.notBefore),
    not_after: iso(c.notAfter),
    fingerprint: c.fingerprint,
    key_hash_sha1: c.keyHashSha1,
    name_hash_sha1: c.nameHashSha1,
    status: c.status,
    revoked_at: isoOrNull(c.revokedAt),
    revocation_reason: c.revocationReason,
    created_at: iso(c.createdAt),
    lineage: c.lineage ?? c.id,
    generation: c.generation ?? 1,
    successor_id: c.successorId ?? null,
    retired_at: isoOrNull(c.retiredAt ?? null),
  };
}

function rowToCa(r: Row): CaRecord {
  return {
    id: r.id as string,
    layer: r.layer as CaLayer,
    domain: (r.domain as string | null) ?? null,
    tier: (r.tier as string | null) ?? null,
    parentId: (r.parent_id as string | null) ?? null,
    name: r.name as string,
    keyId: r.key_id as string,
    certificate: toBuffer(r.certificate),
    serial: r.serial as string,
    notBefore: toDate(r.not_before),
    notAfter: toDate(r.not_after),
    fingerprint: r.fingerprint as string,
    keyHashSha1: r.key_hash_sha1 as string,
    nameHashSha1: r.name_hash_sha1 as string,
    status: r.status as CaStatus,
    revokedAt: toDateOrNull(r.revoked_at),
    revocationReason: toNumberOrNull(r.revocation_reason),
    createdAt: toDate(r.created_at),
    // The generation fields are left out when they hold their defaults (see CaRecord), so a CA that
    // was never rolled over reads back exactly as it was written.
    ...generationFields(r),
  };
}

function generationFields(r: Row): Pick<CaRecord, 'lineage' | 'generation' | 'successorId' | 'retiredAt'> {
  const out: Pick<CaRecord, 'lineage' | 'generation' | 'successorId' | 'retiredAt'> = {};
  const lineage = (r.lineage as string | null) ?? (r.id as string);
  const generation = toNumberOrNull(r.generation) ?? 1;
  if (lineage !== r.id) out.lineage = lineage;
  if (generation !== 1) out.generation = generation;
  if (r.successor_id != null) out.successorId = r.successor_id as string;
  if (r.retired_at != null) out.retiredAt = toDateOrNull(r.retired_at);
  return out;
}
