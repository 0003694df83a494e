/**
 * The `revocation_events` table over knex: every status change in order, polled by each instance
 * (`since(lastSeq)`) to drop cached OCSP answers.
 *
 * A poller that has seen seq n never looks below n again, so a row must never become visible after
 * one with a higher seq. SQLite has one writer at a time, so commit order is seq order. On PostgreSQL
 * a serial is handed out at INSERT time and transactions commit in any order, so `append` first takes
 * the advisory transaction lock `revocationEvents` (advisory-locks.ts, held to commit): the next appender draws its seq only after the
 * previous one has committed.
 */
import type { CertificateStatus, RevocationEvent, RevocationEventRepository } from './storage.ts';
import { advisoryXactLock } from './advisory-locks.ts';
import { inTransaction, iso, toDate, toNumber, type DbContext, type Row } from './rows.ts';

export class KnexRevocationEventRepository implements RevocationEventRepository {
  constructor(private readonly ctx: DbContext) {}

  async append(event: Omit<RevocationEvent, 'seq'>): Promise<void> {
    const row = { issuer_id: event.issuerId, serial: event.serial, status: event.status, at: iso(event.at) };
    if (this.ctx.engine === 'sqlite') {
      await this.ctx.db('revocation_events').insert(row);
      return;
    }
    await inTransaction(this.ctx, async (tx) => {
      await advisoryXactLock(tx, 'revocationEvents');
      await tx.db('revocation_events').insert(row);
    });
  }

  /** Events with seq > `seq`, in seq order, at most `limit`. */
  async since(seq: number, limit: number): Promise<RevocationEvent[]> {
    const rows = await this.ctx.db('revocation_events').where('seq', '>', seq).orderBy('seq').limit(limit);
    return rows.map(rowToEvent);
  }

  /** The highest seq, or 0 when there is none. */
  async maxSeq(): Promise<number> {
    const row = await this.ctx.db('revocation_events').max({ n: 'seq' }).first();
    return row?.n === null || row?.n === undefined ? 0 : toNumber(row.n);
  }
}

function rowToEvent(r: Row): RevocationEvent {
  return {
    seq: toNumber(r.seq),
    issuerId: r.issuer_id as string,
    serial: r.serial as string,
    status: r.status as CertificateStatus,
    at: toDate(r.at),
  };
}
