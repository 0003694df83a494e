/**
 * The rotation tables over knex (migrations/0003_rotation.ts): `renewals` (which certificate replaced
 * which, and its supersession), `ca_links` (RFC 4210 link certificates) and `rotation_requests`
 * (idempotency of renewals and rollovers by request id).
 */
import type {
  CaLinkRecord, CaLinkRepository, CertificateRecord, RenewableFilter, RenewalRecord, RenewalRepository, RotationRequestRecord,
  RotationRequestRepository,
} from './storage.ts';
import { rowToCertificate } from './certificate.repository.knex.ts';
import { fromJson, insertUnique, iso, isoOrNull, toBuffer, toDate, toDateOrNull, toJson, type DbContext, type Row } from './rows.ts';

export class KnexRenewalRepository implements RenewalRepository {
  constructor(private readonly ctx: DbContext) {}

  /** Inserts; the old certificate is the primary key, so a second renewal of it throws UniqueViolationError. */
  async insert(r: RenewalRecord): Promise<void> {
    await insertUnique(this.ctx, 'renewals', renewalToRow(r), 'old_serial', () => `a renewal of certificate ${r.oldIssuerId}/${r.oldSerial}`);
  }

  async getByOld(issuerId: string, serial: string): Promise<RenewalRecord | undefined> {
    const row = await this.ctx.db('renewals').where({ old_issuer_id: issuerId, old_serial: serial }).first();
    return row ? rowToRenewal(row) : undefined;
  }

  async getByNew(issuerId: string, serial: string): Promise<RenewalRecord | undefined> {
    const row = await this.ctx.db('renewals').where({ new_issuer_id: issuerId, new_serial: serial }).first();
    return row ? rowToRenewal(row) : undefined;
  }

  async listPendingSupersession(before: Date, limit: number): Promise<RenewalRecord[]> {
    const rows = await this.ctx
      .db('renewals')
      .whereNull('superseded_at')
      .where('supersede_at', '<=', iso(before))
      .orderBy([{ column: 'supersede_at' }, { column: 'old_issuer_id' }, { column: 'old_serial' }])
      .limit(limit);
    return rows.map(rowToRenewal);
  }

  /** One conditional UPDATE (PostgreSQL re-checks the WHERE after a concurrent writer commits). */
  async markSuperseded(oldIssuerId: string, oldSerial: string, at: Date): Promise<boolean> {
    const changed = await this.ctx
      .db('renewals')
      .where({ old_issuer_id: oldIssuerId, old_serial: oldSerial })
      .whereNull('superseded_at')
      .update({ superseded_at: iso(at) });
    return Number(changed) === 1;
  }

  async listRenewable(f: RenewableFilter): Promise<CertificateRecord[]> {
    const q = this.ctx
      .db('certificates as c')
      .leftJoin('renewals as r', function join() {
        this.on('r.old_issuer_id', '=', 'c.issuer_id').andOn('r.old_serial', '=', 'c.serial');
      })
      .whereNull('r.old_serial')
      .where('c.status', 'good')
      .whereNot('c.profile', 'ocsp')
      .where('c.not_after', '>', iso(f.notAfterAfter))
      .where('c.not_after', '<=', iso(f.notAfterBefore))
      .select('c.*')
      .orderBy([{ column: 'c.not_after' }, { column: 'c.issuer_id' }, { column: 'c.serial' }])
      .limit(f.limit);
    if (f.domain !== undefined) q.where('c.domain', f.domain);
    if (f.tier !== undefined) q.where('c.tier', f.tier);
    if (f.offset !== undefined) q.offset(f.offset);
    return (await q).map(rowToCertificate);
  }

  async lastExpiryOf(issuerId: string): Promise<Date | null> {
    const row = await this.ctx.db('certificates').where({ issuer_id: issuerId }).max({ last: 'not_after' }).first();
    return toDateOrNull(row?.last ?? null);
  }
}

export class KnexCaLinkRepository implements CaLinkRepository {
  constructor(private readonly ctx: DbContext) {}

  async insert(link: CaLinkRecord): Promise<void> {
    const row = {
      id: link.id,
      lineage: link.lineage,
      old_ca_id: link.oldCaId,
      new_ca_id: link.newCaId,
      kind: link.kind,
      certificate: link.certificate,
      not_before: iso(link.notBefore),
      not_after: iso(link.notAfter),
      created_at: iso(link.createdAt),
    };
    await insertUnique(this.ctx, 'ca_links', row, 'id', () => `link certificate ${link.id}`);
  }

  async list(lineage?: string): Promise<CaLinkRecord[]> {
    const q = this.ctx.db('ca_links').orderBy([{ column: 'created_at' }, { column: 'id' }]);
    if (lineage !== undefined) q.where({ lineage });
    return (await q).map((r: Row) => ({
      id: r.id as string,
      lineage: r.lineage as string,
      oldCaId: r.old_ca_id as string,
      newCaId: r.new_ca_id as string,
      kind: r.kind as CaLinkRecord['kind'],
      certificate: toBuffer(r.certificate),
      notBefore: toDate(r.not_before),
      notAfter: toDate(r.not_after),
      createdAt: toDate(r.created_at),
    }));
  }
}

export class KnexRotationRequestRepository implements RotationRequestRepository {
  constructor(private readonly ctx: DbContext) {}

  async insert(request: RotationRequestRecord): Promise<void> {
    const row = {
      id: request.id,
      kind: request.kind,
      target: request.target,
      principal_id: request.principalId,
      result: toJson(request.result),
      created_at: iso(request.createdAt),
    };
    await insertUnique(this.ctx, 'rotation_requests', row, 'id', () => `rotation request ${request.id}`);
  }

  async get(id: string): Promise<RotationRequestRecord | undefined> {
    const r = await this.ctx.db('rotation_requests').where({ id }).first();
    if (!r) return undefined;
    return {
      id: r.id as string,
      kind: r.kind as RotationRequestRecord['kind'],
      target: r.target as string,
      principalId: (r.principal_id as string | null) ?? null,
      result: fromJson<Record<string, unknown>>(r.result),
      createdAt: toDate(r.created_at),
    };
  }
}

function renewalToRow(r: RenewalRecord): Row {
  return {
    old_issuer_id: r.oldIssuerId,
    old_serial: r.oldSerial,
    new_issuer_id: r.newIssuerId,
    new_serial: r.newSerial,
    request_id: r.requestId,
    mode: r.mode,
    requested_by: r.requestedBy,
    supersede_at: iso(r.supersedeAt),
    superseded_at: isoOrNull(r.supersededAt),
    created_at: iso(r.createdAt),
  };
}

function rowToRenewal(r: Row): RenewalRecord {
  return {
    oldIssuerId: r.old_issuer_id as string,
    oldSerial: r.old_serial as string,
    newIssuerId: r.new_issuer_id as string,
    newSerial: r.new_serial as string,
    requestId: r.request_id as string,
    mode: r.mode as RenewalRecord['mode'],
    requestedBy: (r.requested_by as string | null) ?? null,
    supersedeAt: toDate(r.supersede_at),
    supersededAt: toDateOrNull(r.superseded_at),
    createdAt: toDate(r.created_at),
  };
}
