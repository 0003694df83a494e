/** The `principals` table (sysadmins, officers, auditors, devices) over knex. */
import type { PrincipalRecord, PrincipalRepository, Role } from './storage.ts';
import { fromJson, insertUnique, iso, toBool, toDate, toJson, type DbContext, type Row } from './rows.ts';

/** The hot-path statement (rows.ts explains why it is raw SQL). */
const GET_SQL = 'SELECT * FROM "principals" WHERE "id" = ? LIMIT 1';

export class KnexPrincipalRepository implements PrincipalRepository {
  constructor(private readonly ctx: DbContext) {}

  async insert(principal: PrincipalRecord): Promise<void> {
    await insertUnique(this.ctx, 'principals', principalToRow(principal), 'id', () => `principal ${principal.id}`);
  }

  async get(id: string): Promise<PrincipalRecord | undefined> {
    const row = await this.ctx.sql.first(GET_SQL, [id]);
    return row ? rowToPrincipal(row) : undefined;
  }

  /** Every principal, oldest first. */
  async list(): Promise<PrincipalRecord[]> {
    const rows = await this.ctx.db('principals').orderBy([{ column: 'created_at' }, { column: 'id' }]);
    return rows.map(rowToPrincipal);
  }

  async setDisabled(id: string, disabled: boolean): Promise<void> {
    await this.ctx.db('principals').where({ id }).update({ disabled });
  }
}

function principalToRow(p: PrincipalRecord): Row {
  return { id: p.id, name: p.name, role: p.role, domains: toJson(p.domains), disabled: p.disabled, created_at: iso(p.createdAt),
    created_by: p.createdBy ?? null, created_by_request: p.createdByRequest ?? null };
}

/** A `principals` row as a record (also used by the token repository's join). */
export function rowToPrincipal(r: Row): PrincipalRecord {
  return {
    id: r.id as string,
    name: r.name as string,
    role: r.role as Role,
    domains: fromJson<string[]>(r.domains),
    disabled: toBool(r.disabled),
    createdAt: toDate(r.created_at),
    // Present only when recorded (migration 0005): a ceremony principal reads back as it was written.
    ...(r.created_by ? { createdBy: r.created_by as string } : {}),
    ...(r.created_by_request ? { createdByRequest: r.created_by_request as string } : {}),
  };
}
