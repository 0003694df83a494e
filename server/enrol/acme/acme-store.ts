/**
 * The ACME server's storage (migration 0008), over knex: binding keys, accounts, orders,
 * authorizations, challenges and nonces. Status changes that must not happen twice (an order
 * finalized, a nonce used, a binding key taken) are compare-and-set updates whose row count says who
 * won, so two instances on one database never both succeed.
 */
import type { Knex } from 'knex';

export type AcmeAccountStatus = 'valid' | 'deactivated' | 'revoked';
export type AcmeOrderStatus = 'pending' | 'ready' | 'processing' | 'valid' | 'invalid';
export type AcmeAuthzStatus = 'pending' | 'valid' | 'invalid' | 'deactivated' | 'expired' | 'revoked';
export type AcmeChallengeStatus = 'pending' | 'processing' | 'valid' | 'invalid';
export type ChallengeType = 'http-01' | 'dns-01';

export interface AcmeScope {
  domain: string;
  organ: string;
  tier: string;
}

export interface AccountKeyRecord extends AcmeScope {
  id: string;
  /** The HMAC key, sealed by the keystore under aad `acme-eab:<id>`. */
  sealedHmac: Buffer;
  maxCertificates: number | null;
  expiresAt: Date;
  createdBy: string;
  createdAt: Date;
  /** The account it bound, once used. */
  accountId: string | null;
}

export interface AccountRecord extends AcmeScope {
  id: string;
  thumbprint: string;
  jwk: Record<string, unknown>;
  status: AcmeAccountStatus;
  contact: string[];
  accountKeyId: string;
  maxCertificates: number | null;
  issued: number;
  /** The officer who made the binding key. */
  boundBy: string;
  createdAt: Date;
}

export interface Identifier {
  type: 'dns';
  value: string;
}

export interface OrderRecord {
  id: string;
  accountId: string;
  status: AcmeOrderStatus;
  identifiers: Identifier[];
  authorizations: string[];
  expiresAt: Date;
  issuerId: string | null;
  serial: string | null;
  /** RFC 9773 `replaces`: the ARI certID of the certificate this order renews. */
  replaces: string | null;
  error: Record<string, unknown> | null;
  createdAt: Date;
}

export interface AuthorizationRecord {
  id: string;
  accountId: string;
  /** The name validated (without `*.` for a wildcard). */
  identifier: string;
  wildcard: boolean;
  status: AcmeAuthzStatus;
  expiresAt: Date;
}

export interface ChallengeRecord {
  id: string;
  authorizationId: string;
  type: ChallengeType;
  token: string;
  status: AcmeChallengeStatus;
  validatedAt: Date | null;
  error: Record<string, unknown> | null;
}

const iso = (d: Date): string => d.toISOString();
const date = (v: unknown): Date => new Date(v as string);
const json = <T>(v: unknown): T => JSON.parse(v as string) as T;
const maybeJson = <T>(v: unknown): T | null => (v == null ? null : json<T>(v));

function accountOf(r: Record<string, unknown>): AccountRecord {
  return {
    id: r.id as string, thumbprint: r.thumbprint as string, jwk: json(r.jwk), status: r.status as AcmeAccountStatus, contact: json(r.contact),
    accountKeyId: r.account_key_id as string, domain: r.domain as string, organ: r.organ as string, tier: r.tier as string,
    maxCertificates: (r.max_certificates as number | null) ?? null, issued: Number(r.issued), boundBy: r.bound_by as string, createdAt: date(r.created_at),
  };
}

function orderOf(r: Record<string, unknown>): OrderRecord {
  return {
    id: r.id as string, accountId: r.account_id as string, status: r.status as AcmeOrderStatus, identifiers: json(r.identifiers),
    authorizations: json(r.authorizations), expiresAt: date(r.expires_at), issuerId: (r.issuer_id as string | null) ?? null,
    serial: (r.serial as string | null) ?? null, replaces: (r.replaces as string | null) ?? null, error: maybeJson(r.error), createdAt: date(r.created_at),
  };
}

function authzOf(r: Record<string, unknown>): AuthorizationRecord {
  return {
    id: r.id as string, accountId: r.account_id as string, identifier: r.identifier as string, wildcard: !!r.wildcard,
    status: r.status as AcmeAuthzStatus, expiresAt: date(r.expires_at),
  };
}

function challengeOf(r: Record<string, unknown>): ChallengeRecord {
  return {
    id: r.id as string, authorizationId: r.authorization_id as string, type: r.type as ChallengeType, token: r.token as string,
    status: r.status as AcmeChallengeStatus, validatedAt: r.validated_at ? date(r.validated_at) : null, error: maybeJson(r.error),
  };
}

export class AcmeStore {
  constructor(private readonly db: Knex) {}

  // --- binding keys ---
  async insertAccountKey(k: AccountKeyRecord): Promise<void> {
    await this.db('acme_account_keys').insert({
      id: k.id, sealed_hmac: k.sealedHmac, domain: k.domain, organ: k.organ, tier: k.tier, max_certificates: k.maxCertificates,
      expires_at: iso(k.expiresAt), created_by: k.createdBy, created_at: iso(k.createdAt), account_id: k.accountId,
    });
  }

  async accountKey(id: string): Promise<AccountKeyRecord | undefined> {
    const r = await this.db('acme_account_keys').where({ id }).first();
    if (!r) return undefined;
    return {
      id: r.id, sealedHmac: r.sealed_hmac as Buffer, domain: r.domain, organ: r.organ, tier: r.tier, maxCertificates: r.max_certificates ?? null,
      expiresAt: date(r.expires_at), createdBy: r.created_by, createdAt: date(r.created_at), accountId: r.account_id ?? null,
    };
  }

  // --- accounts ---
  /** Creates the account and takes its binding key in one transaction; false when the key was taken meanwhile. */
  async createAccount(a: AccountRecord): Promise<boolean> {
    return this.db.transaction(async (trx) => {
      const taken = await trx('acme_account_keys').where({ id: a.accountKeyId }).whereNull('account_id').update({ account_id: a.id });
      if (taken !== 1) return false;
      await trx('acme_accounts').insert({
        id: a.id, thumbprint: a.thumbprint, jwk: JSON.stringify(a.jwk), status: a.status, contact: JSON.stringify(a.contact),
        account_key_id: a.accountKeyId, domain: a.domain, organ: a.organ, tier: a.tier, max_certificates: a.maxCertificates,
        issued: a.issued, bound_by: a.boundBy, created_at: iso(a.createdAt),
      });
      return true;
    });
  }

  async account(id: string): Promise<AccountRecord | undefined> {
    const r = await this.db('acme_accounts').where({ id }).first();
    return r ? accountOf(r) : undefined;
  }

  async accountByThumbprint(thumbprint: string): Promise<AccountRecord | undefined> {
    const r = await this.db('acme_accounts').where({ thumbprint }).first();
    return r ? accountOf(r) : undefined;
  }

  async accounts(filter: { domain?: string; domains?: readonly string[] } = {}): Promise<AccountRecord[]> {
    let q = this.db('acme_accounts').orderBy('created_at').orderBy('id');
    if (filter.domain) q = q.where({ domain: filter.domain });
    if (filter.domains) q = q.whereIn('domain', [...filter.domains]);
    return (await q).map(accountOf);
  }

  async updateAccount(id: string, change: { status?: AcmeAccountStatus; contact?: string[] }): Promise<void> {
    const row: Record<string, unknown> = {};
    if (change.status) row.status = change.status;
    if (change.contact) row.contact = JSON.stringify(change.contact);
    if (Object.keys(row).length) await this.db('acme_accounts').where({ id }).update(row);
  }

  /** Replaces the account key (RFC 8555 §7.3.5) unless the old one changed meanwhile; false then. */
  async changeKey(id: string, oldThumbprint: string, jwk: Record<string, unknown>, thumbprint: string): Promise<boolean> {
    const n = await this.db('acme_accounts').where({ id, thumbprint: oldThumbprint, status: 'valid' }).update({ jwk: JSON.stringify(jwk), thumbprint });
    return n === 1;
  }

  /** Counts one more certificate against the account's limit; false when the limit is reached. */
  async takeCertificate(id: string): Promise<boolean> {
    const n = await this.db('acme_accounts').where({ id })
      .where((q) => q.whereNull('max_certificates').orWhere('issued', '<', this.db.ref('max_certificates')))
      .increment('issued', 1);
    return n === 1;
  }

  async returnCertificate(id: string): Promise<void> {
    await this.db('acme_accounts').where({ id }).where('issued', '>', 0).decrement('issued', 1);
  }

  // --- orders, authorizations, challenges ---
  async insertOrder(o: OrderRecord, authzs: AuthorizationRecord[], challenges: ChallengeRecord[]): Promise<void> {
    await this.db.transaction(async (trx) => {
      for (const a of authzs) {
        await trx('acme_authorizations').insert({
          id: a.id, account_id: a.accountId, identifier: a.identifier, wildcard: a.wildcard, status: a.status, expires_at: iso(a.expiresAt),
        });
      }
      for (const c of challenges) {
        await trx('acme_challenges').insert({
          id: c.id, authorization_id: c.authorizationId, type: c.type, token: c.token, status: c.status, validated_at: null, error: null,
        });
      }
      await trx('acme_orders').insert({
        id: o.id, account_id: o.accountId, status: o.status, identifiers: JSON.stringify(o.identifiers), authorizations: JSON.stringify(o.authorizations),
        expires_at: iso(o.expiresAt), issuer_id: null, serial: null, replaces: o.replaces, error: null, created_at: iso(o.createdAt),
      });
    });
  }

  async order(id: string): Promise<OrderRecord | undefined> {
    const r = await this.db('acme_orders').where({ id }).first();
    return r ? orderOf(r) : undefined;
  }

  async orders(filter: { accountId?: string; accountIds?: readonly string[]; limit?: number } = {}): Promise<OrderRecord[]> {
    let q = this.db('acme_orders').orderBy('created_at', 'desc').orderBy('id').limit(filter.limit ?? 1000);
    if (filter.accountId) q = q.where({ account_id: filter.accountId });
    if (filter.accountIds) q = q.whereIn('account_id', [...filter.accountIds]);
    return (await q).map(orderOf);
  }

  async ordersSince(accountId: string, since: Date): Promise<number> {
    const [{ n }] = await this.db('acme_orders').where({ account_id: accountId }).where('created_at', '>=', iso(since)).count({ n: '*' });
    return Number(n);
  }

  /** The order that got certificate (issuer, serial), if an ACME order did. */
  async orderOfCertificate(issuerId: string, serial: string): Promise<OrderRecord | undefined> {
    const r = await this.db('acme_orders').where({ issuer_id: issuerId, serial }).first();
    return r ? orderOf(r) : undefined;
  }

  /** Whether an order already names `certId` as the certificate it replaces (RFC 9773 §5). */
  async replaced(certId: string): Promise<boolean> {
    return !!(await this.db('acme_orders').where({ replaces: certId }).whereNot({ status: 'invalid' }).first());
  }

  /** Moves an order from `from` to `to` (with the certificate or error); false when it was not in `from`. */
  async moveOrder(id: string, from: AcmeOrderStatus, to: AcmeOrderStatus, extra: { issuerId?: string; serial?: string; error?: Record<string, unknown> } = {}): Promise<boolean> {
    const row: Record<string, unknown> = { status: to };
    if (extra.issuerId) row.issuer_id = extra.issuerId;
    if (extra.serial) row.serial = extra.serial;
    if (extra.error) row.error = JSON.stringify(extra.error);
    return (await this.db('acme_orders').where({ id, status: from }).update(row)) === 1;
  }

  async authorization(id: string): Promise<AuthorizationRecord | undefined> {
    const r = await this.db('acme_authorizations').where({ id }).first();
    return r ? authzOf(r) : undefined;
  }

  async authorizations(ids: readonly string[]): Promise<AuthorizationRecord[]> {
    if (!ids.length) return [];
    return (await this.db('acme_authorizations').whereIn('id', [...ids])).map(authzOf);
  }

  /** A valid, unexpired authorization of the account for this name, to be reused by a new order. */
  async validAuthorization(accountId: string, identifier: string, wildcard: boolean, now: Date): Promise<AuthorizationRecord | undefined> {
    const r = await this.db('acme_authorizations').where({ account_id: accountId, identifier, wildcard, status: 'valid' })
      .where('expires_at', '>', iso(now)).orderBy('expires_at', 'desc').first();
    return r ? authzOf(r) : undefined;
  }

  async moveAuthorization(id: string, from: readonly AcmeAuthzStatus[], to: AcmeAuthzStatus): Promise<boolean> {
    return (await this.db('acme_authorizations').where({ id }).whereIn('status', [...from]).update({ status: to })) === 1;
  }

  async challenges(authorizationId: string): Promise<ChallengeRecord[]> {
    return (await this.db('acme_challenges').where({ authorization_id: authorizationId }).orderBy('type')).map(challengeOf);
  }

  async challenge(id: string): Promise<ChallengeRecord | undefined> {
    const r = await this.db('acme_challenges').where({ id }).first();
    return r ? challengeOf(r) : undefined;
  }

  async moveChallenge(id: string, from: AcmeChallengeStatus, to: AcmeChallengeStatus, extra: { validatedAt?: Date; error?: Record<string, unknown> } = {}): Promise<boolean> {
    const row: Record<string, unknown> = { status: to };
    if (extra.validatedAt) row.validated_at = iso(extra.validatedAt);
    if (extra.error) row.error = JSON.stringify(extra.error);
    return (await this.db('acme_challenges').where({ id, status: from }).update(row)) === 1;
  }

  /** The orders waiting on an authorization whose every authorization is now valid move to ready. */
  async readyOrdersOf(authorizationId: string): Promise<void> {
    const pending = await this.db('acme_orders').where({ status: 'pending' }).where('authorizations', 'like', `%"${authorizationId}"%`);
    for (const row of pending) {
      const order = orderOf(row);
      const authzs = await this.authorizations(order.authorizations);
      if (authzs.length === order.authorizations.length && authzs.every((a) => a.status === 'valid')) await this.moveOrder(order.id, 'pending', 'ready');
      else if (authzs.some((a) => a.status === 'invalid')) await this.moveOrder(order.id, 'pending', 'invalid', { error: { type: 'urn:ietf:params:acme:error:unauthorized', detail: 'an authorization of this order failed' } });
    }
  }

  // --- nonces ---
  async insertNonce(nonce: string, expiresAt: Date): Promise<void> {
    await this.db('acme_nonces').insert({ nonce, expires_at: iso(expiresAt) });
  }

  /**
   * Uses `used` up and stores `fresh` in its place, in one transaction (one commit, not two, on the
   * busiest path of ACME: every signed request). False, and nothing stored, when `used` was not
   * issued, is used already or expired.
   */
  async exchangeNonce(used: string, fresh: string, freshExpiresAt: Date, now: Date): Promise<boolean> {
    return this.db.transaction(async (trx) => {
      const taken = await trx('acme_nonces').where({ nonce: used }).where('expires_at', '>', iso(now)).delete();
      if (taken !== 1) return false;
      await trx('acme_nonces').insert({ nonce: fresh, expires_at: iso(freshExpiresAt) });
      return true;
    });
  }

  async dropExpiredNonces(now: Date): Promise<void> {
    await this.db('acme_nonces').where('expires_at', '<=', iso(now)).delete();
  }
}
