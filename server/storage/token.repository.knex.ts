/** The `tokens` table (SHA-256 hashes of API tokens; never a token) over knex. */
import type { PrincipalRecord, TokenRecord, TokenRepository } from './storage.ts';
import { insertUnique, iso, toDate, type DbContext, type Row } from './rows.ts';
import { rowToPrincipal } from './principal.repository.knex.ts';

// The hot-path statements (rows.ts explains why they are raw SQL).
const FIND_BY_HASH_SQL = 'SELECT * FROM "tokens" WHERE "token_hash" = ? LIMIT 1';
/** The principal's columns under their own names (for rowToPrincipal), the token's prefixed. */
const FIND_WITH_PRINCIPAL_SQL = `SELECT "t"."id" AS "token_id", "t"."principal_id" AS "token_principal_id",
  "t"."token_hash" AS "token_token_hash", "t"."created_at" AS "token_created_at",
  "p"."id", "p"."name", "p"."role", "p"."domains", "p"."disabled", "p"."created_at"
FROM "tokens" AS "t" JOIN "principals" AS "p" ON "p"."id" = "t"."principal_id"
WHERE "t"."token_hash" = ? LIMIT 1`;

export class KnexTokenRepository implements TokenRepository {
  constructor(private readonly ctx: DbContext) {}

  /** Inserts; a duplicate id or token hash throws UniqueViolationError. */
  async insert(token: TokenRecord): Promise<void> {
    const row = { id: token.id, principal_id: token.principalId, token_hash: token.tokenHash, created_at: iso(token.createdAt) };
    await insertUnique(this.ctx, 'tokens', row, 'id', () => `token ${token.id} (or its hash)`);
  }

  async findByHash(tokenHash: string): Promise<TokenRecord | undefined> {
    const row = await this.ctx.sql.first(FIND_BY_HASH_SQL, [tokenHash]);
    return row ? rowToToken(row) : undefined;
  }

  async findWithPrincipal(tokenHash: string): Promise<{ token: TokenRecord; principal: PrincipalRecord } | undefined> {
    const row = await this.ctx.sql.first(FIND_WITH_PRINCIPAL_SQL, [tokenHash]);
    if (!row) return undefined;
    const token: TokenRecord = {
      id: row.token_id as string,
      principalId: row.token_principal_id as string,
      tokenHash: row.token_token_hash as string,
      createdAt: toDate(row.token_created_at),
    };
    return { token, principal: rowToPrincipal(row) };
  }
}

function rowToToken(r: Row): TokenRecord {
  return { id: r.id as string, principalId: r.principal_id as string, tokenHash: r.token_hash as string, createdAt: toDate(r.created_at) };
}
