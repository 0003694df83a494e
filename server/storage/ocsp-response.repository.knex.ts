/** The `ocsp_responses` table (pre-signed OCSP answers, RFC 5019 §2.2) over knex. */
import type { OcspResponseRecord, OcspResponseRepository } from './storage.ts';
import { iso, toBuffer, toDate, type DbContext, type Row } from './rows.ts';

/** The hot-path statement (rows.ts explains why it is raw SQL). */
const UPSERT_SQL = `INSERT INTO "ocsp_responses" ("issuer_id", "serial", "der", "this_update", "next_update") VALUES (?, ?, ?, ?, ?)
ON CONFLICT ("issuer_id", "serial") DO UPDATE SET "der" = excluded."der", "this_update" = excluded."this_update", "next_update" = excluded."next_update"`;

export class KnexOcspResponseRepository implements OcspResponseRepository {
  constructor(private readonly ctx: DbContext) {}

  /** Inserts or replaces the answer of one certificate: a single INSERT … ON CONFLICT DO UPDATE. */
  async upsert(response: OcspResponseRecord): Promise<void> {
    await this.ctx.sql.run(UPSERT_SQL, [response.issuerId, response.serial, response.der, iso(response.thisUpdate), iso(response.nextUpdate)]);
  }

  async get(issuerId: string, serial: string): Promise<OcspResponseRecord | undefined> {
    const row = await this.ctx.db('ocsp_responses').where({ issuer_id: issuerId, serial }).first();
    return row ? rowToResponse(row) : undefined;
  }

  async listStale(before: Date, limit: number): Promise<OcspResponseRecord[]> {
    const rows = await this.ctx
      .db('ocsp_responses')
      .where('next_update', '<', iso(before))
      .orderBy([{ column: 'next_update' }, { column: 'issuer_id' }, { column: 'serial' }])
      .limit(limit);
    return rows.map(rowToResponse);
  }

  async deleteByIssuer(issuerId: string): Promise<number> {
    return Number(await this.ctx.db('ocsp_responses').where({ issuer_id: issuerId }).delete());
  }
}

function rowToResponse(r: Row): OcspResponseRecord {
  return {
    issuerId: r.issuer_id as string,
    serial: r.serial as string,
    der: toBuffer(r.der),
    thisUpdate: toDate(r.this_update),
    nextUpdate: toDate(r.next_update),
  };
}
