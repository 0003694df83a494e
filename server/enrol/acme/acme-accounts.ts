/**
 * ACME accounts (RFC 8555 §7.3): creation, always with an external account binding (§7.3.4) to a key
 * an officer made for one domain, organ and tier; reading, updating the contact, deactivating; the
 * account key rollover (§7.3.5); and finding the account a `kid` names for every other request.
 */
import { flattenedVerify, type FlattenedJWSInput, type JWK } from 'jose';
import { timingSafeEqual } from 'node:crypto';
import { AcmeProblem } from './acme-problem.ts';
import { parseJws, publicOnly, thumbprintOf, verifyWith, type JwsHeader } from './acme-jws.ts';
import { auditAcme, randomId, type AcmeDeps, type AcmeRequest, type AcmeUrls } from './acme-context.ts';
import type { AccountRecord } from './acme-store.ts';

/** The account-binding key's own aad when sealed by the keystore. */
export const eabAad = (id: string): string => `acme-eab:${id}`;

export class AcmeAccounts {
  constructor(private readonly deps: AcmeDeps, private readonly urls: AcmeUrls) {}

  /** The account `header.kid` names at this tier, valid; otherwise accountDoesNotExist or unauthorized. */
  async byKid(req: AcmeRequest, header: JwsHeader): Promise<AccountRecord> {
    const id = header.kid ? this.urls.accountIdOf(req.tier, header.kid) : undefined;
    const account = id ? await this.deps.acme.account(id) : undefined;
    if (!account || account.tier !== req.tier) throw new AcmeProblem('accountDoesNotExist', 'no such account at this directory');
    if (account.status !== 'valid') throw new AcmeProblem('unauthorized', `the account is ${account.status}`);
    return account;
  }

  /**
   * newAccount: with `onlyReturnExisting`, the account of this key or accountDoesNotExist; otherwise
   * the existing account of this key (200) or a new one bound by `externalAccountBinding` (201).
   */
  async create(req: AcmeRequest, jwk: JWK, payload: unknown, url: string): Promise<{ account: AccountRecord; created: boolean }> {
    const body = (payload ?? {}) as { contact?: unknown; termsOfServiceAgreed?: unknown; onlyReturnExisting?: unknown; externalAccountBinding?: unknown };
    if (typeof body !== 'object' || Array.isArray(body)) throw new AcmeProblem('malformed', 'the newAccount payload is an object');
    const key = publicOnly(jwk);
    const thumbprint = await thumbprintOf(key);
    const existing = await this.deps.acme.accountByThumbprint(thumbprint);
    if (existing) {
      if (existing.tier !== req.tier) throw new AcmeProblem('unauthorized', 'this key belongs to an account of another directory');
      if (existing.status !== 'valid') throw new AcmeProblem('unauthorized', `the account is ${existing.status}`);
      return { account: existing, created: false };
    }
    if (body.onlyReturnExisting === true) throw new AcmeProblem('accountDoesNotExist', 'no account has this key');
    const contact = checkContact(body.contact);
    if (!body.externalAccountBinding) {
      throw new AcmeProblem('externalAccountRequired', 'tierca binds every account to a key an officer gives out: use --eab-kid and --eab-hmac-key');
    }
    const binding = await this.checkBinding(body.externalAccountBinding, key, url, req.tier);
    const now = this.deps.clock.now();
    const account: AccountRecord = {
      id: randomId(this.deps.random, 12), thumbprint, jwk: key as Record<string, unknown>, status: 'valid', contact, accountKeyId: binding.id,
      domain: binding.domain, organ: binding.organ, tier: binding.tier, maxCertificates: binding.maxCertificates, issued: 0, boundBy: binding.createdBy,
      createdAt: now,
    };
    if (!(await this.deps.acme.createAccount(account))) {
      await auditAcme(this.deps, req, null, 'acme.account.new', `acme-account-key:${binding.id}`, 'denied', { error: 'binding key already used' });
      throw new AcmeProblem('unauthorized', 'this external account binding key has been used already');
    }
    await auditAcme(this.deps, req, account, 'acme.account.new', `acme-account:${account.id}`, 'success', {
      accountKey: binding.id, domain: account.domain, organ: account.organ, tier: account.tier, thumbprint,
    });
    return { account, created: true };
  }

  /** Checks the EAB JWS (HS256 over the account key, RFC 8555 §7.3.4) against its key; returns the key record. */
  private async checkBinding(eab: unknown, accountKey: JWK, url: string, tier: string) {
    const jws = eab as FlattenedJWSInput;
    if (typeof jws !== 'object' || typeof jws.protected !== 'string' || typeof jws.payload !== 'string' || typeof jws.signature !== 'string') {
      throw new AcmeProblem('malformed', 'externalAccountBinding is a flattened JWS');
    }
    let header: { alg?: string; kid?: string; url?: string; nonce?: unknown };
    try {
      header = JSON.parse(Buffer.from(jws.protected, 'base64url').toString('utf8'));
    } catch {
      throw new AcmeProblem('malformed', 'the externalAccountBinding header is not base64url JSON');
    }
    if (!['HS256', 'HS384', 'HS512'].includes(header.alg ?? '')) throw new AcmeProblem('badSignatureAlgorithm', 'externalAccountBinding is signed with HS256, HS384 or HS512');
    if (header.nonce !== undefined) throw new AcmeProblem('malformed', 'externalAccountBinding carries no nonce');
    if (header.url !== url) throw new AcmeProblem('unauthorized', 'the externalAccountBinding url is not the newAccount URL');
    const record = typeof header.kid === 'string' ? await this.deps.acme.accountKey(header.kid) : undefined;
    if (!record || record.tier !== tier) throw new AcmeProblem('unauthorized', 'unknown external account binding key id');
    if (record.expiresAt.getTime() <= this.deps.clock.now().getTime()) throw new AcmeProblem('unauthorized', 'the external account binding key has expired');
    if (record.accountId) throw new AcmeProblem('unauthorized', 'this external account binding key has been used already');
    const hmac = this.deps.keystore.unseal(record.sealedHmac, eabAad(record.id));
    let payload: Uint8Array;
    try {
      ({ payload } = await flattenedVerify(jws, hmac, { algorithms: [header.alg!] }));
    } catch {
      throw new AcmeProblem('unauthorized', 'the externalAccountBinding signature does not verify with the binding key');
    } finally {
      hmac.fill(0);
    }
    let bound: JWK;
    try {
      bound = JSON.parse(Buffer.from(payload).toString('utf8'));
    } catch {
      throw new AcmeProblem('malformed', 'the externalAccountBinding payload is not a JWK');
    }
    const [a, b] = [await thumbprintOf(bound), await thumbprintOf(accountKey)];
    if (!timingSafeEqual(Buffer.from(a), Buffer.from(b))) throw new AcmeProblem('unauthorized', 'the externalAccountBinding binds another account key');
    return record;
  }

  /** POST to the account URL: POST-as-GET reads it; `contact` updates, `status: deactivated` deactivates (final). */
  async update(req: AcmeRequest, account: AccountRecord, payload: unknown): Promise<AccountRecord> {
    if (payload === null) return account;
    const body = payload as { contact?: unknown; status?: unknown };
    if (typeof body !== 'object' || Array.isArray(body)) throw new AcmeProblem('malformed', 'the account payload is an object');
    if (body.status !== undefined && body.status !== 'deactivated') throw new AcmeProblem('malformed', 'a client may only set status to deactivated');
    const change: { contact?: string[]; status?: 'deactivated' } = {};
    if (body.contact !== undefined) change.contact = checkContact(body.contact);
    if (body.status === 'deactivated') change.status = 'deactivated';
    await this.deps.acme.updateAccount(account.id, change);
    await auditAcme(this.deps, req, account, 'acme.account.update', `acme-account:${account.id}`, 'success', change);
    return { ...account, ...change };
  }

  /** keyChange (RFC 8555 §7.3.5): the inner JWS, signed by the new key, names the account and its old key. */
  async changeKey(req: AcmeRequest, account: AccountRecord, payload: unknown, url: string): Promise<AccountRecord> {
    const { jws, header } = parseJws(payload, { inner: true });
    if (!header.jwk) throw new AcmeProblem('malformed', 'the inner JWS of keyChange carries the new key as jwk');
    if (header.url !== url) throw new AcmeProblem('malformed', 'the inner JWS url is not the keyChange URL');
    const inner = await verifyWith(jws, header, header.jwk);
    const body = inner.json as { account?: unknown; oldKey?: JWK } | null;
    if (!body || body.account !== this.urls.account(req.tier, account.id)) throw new AcmeProblem('malformed', 'the inner payload names another account');
    if (!body.oldKey || (await thumbprintOf(body.oldKey)) !== account.thumbprint) throw new AcmeProblem('malformed', 'oldKey is not the account key');
    const newKey = publicOnly(header.jwk);
    const thumbprint = await thumbprintOf(newKey);
    const holder = await this.deps.acme.accountByThumbprint(thumbprint);
    if (holder) throw new AcmeProblem('malformed', 'the new key is the key of an account already', { status: 409, extra: { account: this.urls.account(holder.tier, holder.id) } });
    if (!(await this.deps.acme.changeKey(account.id, account.thumbprint, newKey as Record<string, unknown>, thumbprint))) {
      throw new AcmeProblem('malformed', 'the account key changed meanwhile', { status: 409 });
    }
    await auditAcme(this.deps, req, account, 'acme.account.key-change', `acme-account:${account.id}`, 'success', { from: account.thumbprint, to: thumbprint });
    return { ...account, jwk: newKey as Record<string, unknown>, thumbprint };
  }
}

/** `contact`: at most 4 mailto: URLs (RFC 8555 §7.3; tierca stores them, sends nothing). */
function checkContact(contact: unknown): string[] {
  if (contact === undefined) return [];
  if (!Array.isArray(contact) || contact.length > 4 || !contact.every((c) => typeof c === 'string')) {
    throw new AcmeProblem('invalidContact', 'contact is a list of at most 4 URLs');
  }
  for (const c of contact as string[]) {
    if (!/^mailto:[^@\s,]+@[a-z0-9.-]+$/i.test(c) || c.length > 254) throw new AcmeProblem(c.startsWith('mailto:') ? 'invalidContact' : 'unsupportedContact', `contact ${c} is not a mailto: address`);
  }
  return contact as string[];
}
