/** The `ocsp_responders` table (delegated OCSP responder certificates, RFC 6960 §4.2.2.2) over knex. */
import type { ResponderRecord, ResponderRepository } from './storage.ts';
import { insertUnique, iso, toBuffer, toDate, type DbContext, type Row } from './rows.ts';

export class KnexResponderRepository implements ResponderRepository {
  constructor(private readonly ctx: DbContext) {}

  async insert(responder: ResponderRecord): Promise<void> {
    const row = {
      id: responder.id,
      ca_id: responder.caId,
      key_id: responder.keyId,
      certificate: responder.certificate,
      not_before: iso(responder.notBefore),
      not_after: iso(responder.notAfter),
      created_at: iso(responder.createdAt),
    };
    await insertUnique(this.ctx, 'ocsp_responders', row, 'id', () => `OCSP responder ${responder.id}`);
  }

  /** The responder of `caId` valid at `now` (notBefore ≤ now < notAfter) with the latest notBefore. */
  async current(caId: string, now: Date): Promise<ResponderRecord | undefined> {
    const at = iso(now);
    const row = await this.ctx
      .db('ocsp_responders')
      .where({ ca_id: caId })
      .where('not_before', '<=', at)
      .where('not_after', '>', at)
      .orderBy([{ column: 'not_before', order: 'desc' }, { column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }])
      .first();
    return row ? rowToResponder(row) : undefined;
  }
}

function rowToResponder(r: Row): ResponderRecord {
  return {
    id: r.id as string,
    caId: r.ca_id as string,
    keyId: r.key_id as string,
    certificate: toBuffer(r.certificate),
    notBefore: toDate(r.not_before),
    notAfter: toDate(r.not_after),
    createdAt: toDate(r.created_at),
  };
}
