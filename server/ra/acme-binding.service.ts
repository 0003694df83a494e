/**
 * Officers' side of ACME (issue 17): an external-account-binding key for one domain, organ and tier
 * (RFC 8555 §7.3.4), shown once and kept only sealed; the ACME accounts and orders of the officer's
 * domains; deactivating an account. Each action is audited under the officer.
 */
import type { Store } from '../storage/storage.ts';
import type { TierPolicy } from '../config/tier-policy.ts';
import type { Clock } from '../clock.ts';
import type { KeyStore } from '../../pki/keystore/keystore.ts';
import { appendAudit } from '../audit/audit-log.ts';
import { TiercaError } from '../errors.ts';
import type { Authorizer } from './authorizer.ts';
import { actorOf, runAudited } from './audited.ts';
import type { RequestContext } from './permissions.ts';
import type { AccountRecord, AcmeStore, OrderRecord } from '../enrol/acme/acme-store.ts';
import { eabAad } from '../enrol/acme/acme-accounts.ts';
import { DAY_MS } from '../../pki/time-constants.ts';

/** How long a binding key may be used to register an account, unless the officer says otherwise. */
export const DEFAULT_BINDING_LIFETIME_MS = 7 * DAY_MS;

export interface AccountKeyInput {
  domain: string;
  organ: string;
  tier: string;
  maxCertificates?: number;
  /** How long the key may be used to register, in ms (default 7 days). */
  lifetimeMs?: number;
}

export interface IssuedAccountKey {
  keyId: string;
  /** The HMAC key, base64url: shown once, never again. */
  hmacKey: string;
  directory: string;
  domain: string;
  organ: string;
  tier: string;
  maxCertificates: number | null;
  expiresAt: Date;
}

export interface AcmeBindingServiceDeps {
  acme: AcmeStore;
  store: Pick<Store, 'domains' | 'organs' | 'audit'>;
  tiers: ReadonlyMap<string, TierPolicy>;
  keystore: Pick<KeyStore, 'seal'>;
  authorizer: Pick<Authorizer, 'require'>;
  publicUrl: string;
  clock: Clock;
  random: (n: number) => Buffer;
}

export class AcmeBindingService {
  constructor(private readonly deps: AcmeBindingServiceDeps) {}

  async addAccountKey(ctx: RequestContext, input: AccountKeyInput): Promise<IssuedAccountKey> {
    const { store, acme } = this.deps;
    await this.deps.authorizer.require(ctx, 'acme:manage', 'acme.account-key.add', `domain:${input.domain}`, input.domain);
    return runAudited({ audit: store.audit, clock: this.deps.clock }, ctx, 'acme.account-key.add', `domain:${input.domain}`, async () => {
      if (!(await store.domains.get(input.domain))) throw new TiercaError('not-found', `no domain ${input.domain}`);
      if (!(await store.organs.get(input.domain, input.organ))) throw new TiercaError('not-found', `no organ ${input.organ} in ${input.domain}`);
      const tier = this.deps.tiers.get(input.tier);
      if (!tier) throw new TiercaError('bad-request', `no tier ${input.tier}`);
      if (tier.approvals > 1) {
        throw new TiercaError('policy-profile', `tier ${tier.id} issues only with a second officer's approval, which ACME cannot wait for: it has no ACME directory`);
      }
      if (!tier.keyGeneration.includes('holder')) throw new TiercaError('policy-profile', `tier ${tier.id} does not take holder keys, which ACME sends`);
      const now = this.deps.clock.now();
      const id = `eab-${this.deps.random(9).toString('base64url')}`;
      const hmac = this.deps.random(32);
      const expiresAt = new Date(now.getTime() + (input.lifetimeMs ?? DEFAULT_BINDING_LIFETIME_MS));
      try {
        await acme.insertAccountKey({
          id, sealedHmac: this.deps.keystore.seal(hmac, eabAad(id)), domain: input.domain, organ: input.organ, tier: tier.id,
          maxCertificates: input.maxCertificates ?? null, expiresAt, createdBy: ctx.principal.id, createdAt: now, accountId: null,
        });
        await appendAudit(store.audit, now, {
          ...actorOf(ctx), action: 'acme.account-key.add', target: `acme-account-key:${id}`, outcome: 'success',
          detail: { domain: input.domain, organ: input.organ, tier: tier.id, maxCertificates: input.maxCertificates ?? null, expiresAt: expiresAt.toISOString() },
        });
        return {
          keyId: id, hmacKey: hmac.toString('base64url'), directory: `${this.deps.publicUrl}/acme/${tier.id}/directory`, domain: input.domain,
          organ: input.organ, tier: tier.id, maxCertificates: input.maxCertificates ?? null, expiresAt,
        };
      } finally {
        hmac.fill(0);
      }
    });
  }

  /** The ACME accounts of the officer's domains. */
  async accounts(ctx: RequestContext, domain?: string): Promise<AccountRecord[]> {
    await this.deps.authorizer.require(ctx, 'acme:manage', 'acme.accounts', domain ? `domain:${domain}` : null, domain ?? null);
    const accounts = await this.deps.acme.accounts(domain ? { domain } : {});
    return ctx.principal.role === 'officer' ? accounts.filter((a) => ctx.principal.domains.includes(a.domain)) : accounts;
  }

  /** The newest orders of the officer's accounts, or of one account. */
  async orders(ctx: RequestContext, filter: { account?: string; limit?: number } = {}): Promise<(OrderRecord & { domain: string })[]> {
    const accounts = await this.accounts(ctx);
    const byId = new Map(accounts.map((a) => [a.id, a]));
    if (filter.account && !byId.has(filter.account)) throw new TiercaError('not-found', `no ACME account ${filter.account} in your domains`);
    const orders = await this.deps.acme.orders({ accountIds: filter.account ? [filter.account] : [...byId.keys()], limit: filter.limit ?? 100 });
    return orders.map((o) => ({ ...o, domain: byId.get(o.accountId)!.domain }));
  }

  /** Deactivates an account: its key is refused from now on; its certificates stay as they are. */
  async deactivate(ctx: RequestContext, id: string): Promise<AccountRecord> {
    const { store, acme } = this.deps;
    const account = await acme.account(id);
    if (!account) throw new TiercaError('not-found', `no ACME account ${id}`);
    await this.deps.authorizer.require(ctx, 'acme:manage', 'acme.account.deactivate', `acme-account:${id}`, account.domain);
    return runAudited({ audit: store.audit, clock: this.deps.clock }, ctx, 'acme.account.deactivate', `acme-account:${id}`, async () => {
      if (account.status !== 'valid') throw new TiercaError('conflict', `ACME account ${id} is ${account.status} already`);
      await acme.updateAccount(id, { status: 'deactivated' });
      await appendAudit(store.audit, this.deps.clock.now(), {
        ...actorOf(ctx), action: 'acme.account.deactivate', target: `acme-account:${id}`, outcome: 'success', detail: { domain: account.domain, boundBy: account.boundBy },
      });
      return { ...account, status: 'deactivated' };
    });
  }
}
