/** The `tokens` table (SHA-256 hashes of API tokens; never a token) over knex. */
import type { TokenRecord, TokenRepository } from './storage.ts';
import { insertUnique, iso, toDate, type DbContext, type Row } from './rows.ts';

export class KnexTokenRepository implements TokenRepository {
  constructor(private readonly ctx: DbContext) {}

  /** Inserts; a duplicate id or token hash throws UniqueViolationError. */
  async insert(token: TokenRecord): Promise<void> {
    const row = { id: token.id, principal_id: token.principalId, token_hash: token.tokenHash, created_at: iso(token.createdAt) };
    await insertUnique(this.ctx, 'tokens', row, 'id', () => `token ${token.id} (or its hash)`);
  }

  async findByHash(tokenHash: string): Promise<TokenRecord | undefined> {
    const row = await this.ctx.db('tokens').where({ token_hash: tokenHash }).first();
    return row ? rowToToken(row) : undefined;
  }
}

function rowToToken(r: Row): TokenRecord {
  return { id: r.id as string, principalId: r.principal_id as string, tokenHash: r.token_hash as string, createdAt: toDate(r.created_at) };
}
