/**
 * The ACME server of one tierca instance: nonces, the checks every signed request goes through (JWS,
 * url, nonce, the key or account it is signed by), and the parts by concern (accounts, orders,
 * certificates). The HTTP routes are server/http/routes/acme.routes.ts.
 */
import type { JWK } from 'jose';
import { AcmeProblem } from './acme-problem.ts';
import { parseJws, verifyWith, type JwsHeader } from './acme-jws.ts';
import { AcmeUrls, randomId, type AcmeDeps, type AcmeRequest } from './acme-context.ts';
import { AcmeAccounts } from './acme-accounts.ts';
import { AcmeOrders } from './acme-orders.ts';
import { AcmeCertificates } from './acme-certificates.ts';
import type { AccountRecord } from './acme-store.ts';

/** How long an unused nonce stays good. */
const NONCE_LIFETIME_MS = 30 * 60_000;

export interface SignedRequest {
  header: JwsHeader;
  json: unknown;
  /** The account (a `kid` request), or the JWK it was signed with (a `jwk` request). */
  account?: AccountRecord;
  jwk?: JWK;
  /** The fresh nonce stored in place of the one this request used: its answer's `Replay-Nonce`. */
  nextNonce: string;
}

export class AcmeServer {
  readonly urls: AcmeUrls;
  readonly accounts: AcmeAccounts;
  readonly orders: AcmeOrders;
  readonly certificates: AcmeCertificates;
  private noncesSinceSweep = 0;

  constructor(readonly deps: AcmeDeps) {
    this.urls = new AcmeUrls(deps.publicUrl);
    this.certificates = new AcmeCertificates(deps);
    this.accounts = new AcmeAccounts(deps, this.urls);
    this.orders = new AcmeOrders(deps, this.certificates);
  }

  /** Whether `tier` has a directory: it exists and issues with one officer (decision 0023). */
  offers(tier: string): boolean {
    const policy = this.deps.tiers.get(tier);
    return !!policy && policy.approvals === 1;
  }

  directory(tier: string): Record<string, unknown> {
    const base = this.urls.base(tier);
    return {
      newNonce: `${base}/new-nonce`, newAccount: `${base}/new-account`, newOrder: `${base}/new-order`, revokeCert: `${base}/revoke-cert`,
      keyChange: `${base}/key-change`, renewalInfo: `${base}/renewal-info`,
      meta: { externalAccountRequired: true, website: this.deps.publicUrl, profiles: { [tier]: `tier ${tier} device certificates` } },
    };
  }

  /** A fresh nonce, stored so that any instance can accept it once. */
  async nonce(): Promise<string> {
    const now = this.deps.clock.now();
    const nonce = randomId(this.deps.random, 16);
    await this.deps.acme.insertNonce(nonce, new Date(now.getTime() + NONCE_LIFETIME_MS));
    await this.sweepNonces(now);
    return nonce;
  }

  /** Every thousandth nonce stored, the expired ones are dropped. */
  private async sweepNonces(now: Date): Promise<void> {
    if (++this.noncesSinceSweep >= 1000) {
      this.noncesSinceSweep = 0;
      await this.deps.acme.dropExpiredNonces(now);
    }
  }

  /**
   * Checks a signed request to `url`: JWS form and algorithm, the url header, the nonce (used up
   * here), then the signature — by the JWK in the header where `key` allows it (newAccount,
   * revokeCert), else by the account `kid` names.
   */
  async verify(req: AcmeRequest, body: unknown, url: string, key: 'kid' | 'jwk' | 'either'): Promise<SignedRequest> {
    const { jws, header } = parseJws(body);
    if (header.url !== url) throw new AcmeProblem('unauthorized', `the JWS url ${header.url} is not the URL requested (${url})`);
    const now = this.deps.clock.now();
    const nextNonce = randomId(this.deps.random, 16);
    if (!(await this.deps.acme.exchangeNonce(header.nonce, nextNonce, new Date(now.getTime() + NONCE_LIFETIME_MS), now))) {
      throw new AcmeProblem('badNonce', 'the nonce is unknown, used or expired: take the fresh one of this answer');
    }
    await this.sweepNonces(now);
    if (header.jwk) {
      if (key === 'kid') throw new AcmeProblem('malformed', 'this request is signed by an account: use kid, not jwk');
      const verified = await verifyWith(jws, header, header.jwk);
      return { header, json: verified.json, jwk: header.jwk, nextNonce };
    }
    if (key === 'jwk') throw new AcmeProblem('malformed', 'newAccount is signed with the account key itself: use jwk, not kid');
    const account = await this.accounts.byKid(req, header);
    const verified = await verifyWith(jws, header, account.jwk as JWK);
    return { header, json: verified.json, account, nextNonce };
  }
}
