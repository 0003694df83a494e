/**
 * The `crls` table over knex. CRL numbers are bigint columns read exactly as `bigint`: PostgreSQL
 * returns int8 as a string, and SQLite statements here ask better-sqlite3 for safe integers (a JS
 * number would round above 2^53).
 */
import type { Knex } from 'knex';
import { ADVISORY_LOCK_PREFIXES } from './advisory-locks.ts';
import type { CrlRecord, CrlRepository } from './storage.ts';
import { insertUnique, iso, toBigInt, toBigIntOrNull, toBool, toBuffer, toDate, type DbContext, type Row } from './rows.ts';

export class KnexCrlRepository implements CrlRepository {
  constructor(private readonly ctx: DbContext) {}

  /** Inserts; a CRL number already used by the CA throws UniqueViolationError. */
  async insert(crl: CrlRecord): Promise<void> {
    const row = {
      ca_id: crl.caId,
      number: crl.number.toString(),
      delta: crl.delta,
      base_number: crl.baseNumber === null ? null : crl.baseNumber.toString(),
      der: crl.der,
      this_update: iso(crl.thisUpdate),
      next_update: iso(crl.nextUpdate),
    };
    await insertUnique(this.ctx, 'crls', row, 'ca_id', () => `CRL ${crl.number} of ${crl.caId}`);
  }

  async latest(caId: string, delta: boolean): Promise<CrlRecord | undefined> {
    const row = await this.exact(this.ctx.db('crls').where({ ca_id: caId, delta }).orderBy('number', 'desc').first());
    return row ? rowToCrl(row) : undefined;
  }

  async maxNumber(caId: string): Promise<bigint> {
    const row = await this.exact(this.ctx.db('crls').where({ ca_id: caId }).max({ n: 'number' }).first());
    return toBigIntOrNull(row?.n) ?? 0n;
  }

  /**
   * PostgreSQL: `pg_advisory_xact_lock` on a 64-bit key hashed from the schema and the CA id. The
   * one-key form never meets the two-key locks of advisory-locks.ts (separate key spaces).
   */
  async lockCa(caId: string): Promise<void> {
    if (!this.ctx.db.isTransaction) throw new Error('crls.lockCa must run inside a transaction');
    if (this.ctx.engine !== 'postgres') return;
    await this.ctx.db.raw('select pg_advisory_xact_lock(hashtextextended(current_schema() || ? || ?, 0))', [ADVISORY_LOCK_PREFIXES.crl, caId]);
  }

  private exact<Q extends Knex.QueryBuilder>(q: Q): Q {
    return this.ctx.engine === 'sqlite' ? (q.options({ safeIntegers: true }) as Q) : q;
  }
}

function rowToCrl(r: Row): CrlRecord {
  return {
    caId: r.ca_id as string,
    number: toBigInt(r.number),
    delta: toBool(r.delta),
    baseNumber: toBigIntOrNull(r.base_number),
    der: toBuffer(r.der),
    thisUpdate: toDate(r.this_update),
    nextUpdate: toDate(r.next_update),
  };
}
