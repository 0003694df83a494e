/**
 * ACME orders (RFC 8555 §7.4–7.5): a new order for DNS names inside the account's domain, its
 * authorizations and their http-01 / dns-01 challenges, validation (server/enrol/acme/challenge-
 * validation.ts), finalize with a CSR held to the order and to the tier's rules, and the certificate.
 *
 * Issuance goes through the same preparer and CA as the admin API: the account's domain, organ and
 * tier decide the CA, the profile (`device`), the validity and the DN; the CSR gives only its key.
 * Each certified name set is one device subject of the account (`acme-<account>-<hash>`), so its
 * certificates appear under that subject to officers, and revoking the subject revokes them.
 */
import { createHash } from 'node:crypto';
import type { TierPolicy } from '../../config/tier-policy.ts';
import type { SubjectRecord } from '../../storage/storage.ts';
import { TiercaError } from '../../errors.ts';
import { checkNames } from '../../ra/issuance-policy.ts';
import { checkSubjectStillActive } from '../../ra/issuance.service.ts';
import { parseCsr, requestedNames } from '../../../pki/csr.ts';
import { PkiError } from '../../../pki/pki-error.ts';
import { DAY_MS, HOUR_MS } from '../../../pki/time-constants.ts';
import { AcmeProblem, acmeProblemOf } from './acme-problem.ts';
import { keyAuthorization } from './acme-jws.ts';
import { auditAcme, randomId, type AcmeDeps, type AcmeRequest } from './acme-context.ts';
import type { AccountRecord, AuthorizationRecord, ChallengeRecord, ChallengeType, Identifier, OrderRecord } from './acme-store.ts';
import type { AcmeCertificates } from './acme-certificates.ts';

const ORDER_LIFETIME_MS = 7 * DAY_MS;
const AUTHZ_LIFETIME_MS = 7 * DAY_MS;
const MAX_IDENTIFIERS = 100;

export class AcmeOrders {
  constructor(private readonly deps: AcmeDeps, private readonly certificates: AcmeCertificates) {}

  /** The tier of an account's directory, refused when it asks for two officers (decision 0023: no ACME there). */
  tierOf(account: Pick<AccountRecord, 'tier'>): TierPolicy {
    const tier = this.deps.tiers.get(account.tier);
    if (!tier) throw new AcmeProblem('serverInternal', `tier ${account.tier} is not configured`);
    if (tier.approvals > 1) throw new AcmeProblem('unauthorized', `tier ${tier.id} issues only with a second officer's approval: it is not offered over ACME`);
    return tier;
  }

  async newOrder(req: AcmeRequest, account: AccountRecord, payload: unknown): Promise<OrderRecord> {
    const body = payload as { identifiers?: unknown; notBefore?: unknown; notAfter?: unknown; replaces?: unknown } | null;
    if (!body || typeof body !== 'object') throw new AcmeProblem('malformed', 'the newOrder payload is an object');
    if (body.notBefore !== undefined || body.notAfter !== undefined) {
      throw new AcmeProblem('malformed', 'notBefore and notAfter are not supported: the tier decides the validity');
    }
    this.tierOf(account);
    const identifiers = await this.checkIdentifiers(account, body.identifiers);
    const now = this.deps.clock.now();
    if ((await this.deps.acme.ordersSince(account.id, new Date(now.getTime() - HOUR_MS))) >= this.deps.ordersPerHour) {
      throw new AcmeProblem('rateLimited', `at most ${this.deps.ordersPerHour} new orders an hour per account`, { extra: { retryAfter: 3600 } });
    }
    const replaces = body.replaces === undefined ? null : await this.checkReplaces(account, body.replaces);
    const authzs: AuthorizationRecord[] = [];
    const challenges: ChallengeRecord[] = [];
    const ids: string[] = [];
    for (const { value } of identifiers) {
      const wildcard = value.startsWith('*.');
      const name = wildcard ? value.slice(2) : value;
      const reused = await this.deps.acme.validAuthorization(account.id, name, wildcard, now);
      if (reused) {
        ids.push(reused.id);
        continue;
      }
      const authz: AuthorizationRecord = { id: randomId(this.deps.random), accountId: account.id, identifier: name, wildcard, status: 'pending', expiresAt: new Date(now.getTime() + AUTHZ_LIFETIME_MS) };
      authzs.push(authz);
      ids.push(authz.id);
      const types: ChallengeType[] = wildcard ? ['dns-01'] : ['http-01', 'dns-01'];
      for (const type of types) {
        challenges.push({ id: randomId(this.deps.random), authorizationId: authz.id, type, token: randomId(this.deps.random, 32), status: 'pending', validatedAt: null, error: null });
      }
    }
    const order: OrderRecord = {
      id: randomId(this.deps.random), accountId: account.id, status: authzs.length ? 'pending' : 'ready', identifiers, authorizations: ids,
      expiresAt: new Date(now.getTime() + ORDER_LIFETIME_MS), issuerId: null, serial: null, replaces, error: null, createdAt: now,
    };
    if (!authzs.length && (await this.deps.acme.authorizations(ids)).some((a) => a.status !== 'valid')) order.status = 'pending';
    await this.deps.acme.insertOrder(order, authzs, challenges);
    await auditAcme(this.deps, req, account, 'acme.order.new', `acme-order:${order.id}`, 'success', { identifiers: identifiers.map((i) => i.value), replaces });
    return order;
  }

  /** Identifiers: DNS names (wildcards allowed) inside the account's domain, each once, lower-cased. */
  private async checkIdentifiers(account: AccountRecord, raw: unknown): Promise<Identifier[]> {
    if (!Array.isArray(raw) || raw.length === 0) throw new AcmeProblem('malformed', 'identifiers is a non-empty list');
    if (raw.length > MAX_IDENTIFIERS) throw new AcmeProblem('rejectedIdentifier', `at most ${MAX_IDENTIFIERS} identifiers per order`);
    const names: string[] = [];
    for (const id of raw as { type?: unknown; value?: unknown }[]) {
      if (!id || typeof id !== 'object' || typeof id.value !== 'string') throw new AcmeProblem('malformed', 'an identifier is {type, value}');
      if (id.type !== 'dns') throw new AcmeProblem('unsupportedIdentifier', `identifier type ${String(id.type)} is not supported (dns only)`);
      names.push(id.value.toLowerCase());
    }
    if (new Set(names).size !== names.length) throw new AcmeProblem('malformed', 'an identifier appears twice');
    const domain = await this.deps.store.domains.get(account.domain);
    if (!domain) throw new AcmeProblem('serverInternal', `domain ${account.domain} is gone`);
    // One subproblem per refused identifier (RFC 8555 §6.7.1), so a client can tell which name to drop.
    const subproblems: Record<string, unknown>[] = [];
    for (const value of names) {
      try {
        checkNames(domain, 'device', { dns: [value] }, [], { wildcards: true });
      } catch (err) {
        if (!(err instanceof TiercaError)) throw err;
        subproblems.push({ type: 'urn:ietf:params:acme:error:rejectedIdentifier', detail: err.message, identifier: { type: 'dns', value } });
      }
    }
    if (subproblems.length > 0) {
      const detail = subproblems.length === 1 ? String(subproblems[0]!.detail) : `${subproblems.length} identifiers are refused`;
      throw new AcmeProblem('rejectedIdentifier', detail, { extra: { subproblems } });
    }
    return names.map((value) => ({ type: 'dns', value }));
  }

  /** `replaces` (RFC 9773 §5): a certificate of this account not yet replaced by another order. */
  private async checkReplaces(account: AccountRecord, raw: unknown): Promise<string> {
    if (typeof raw !== 'string') throw new AcmeProblem('malformed', 'replaces is a certificate identifier');
    const found = await this.certificates.byCertId(raw, account.tier);
    const order = found ? await this.deps.acme.orderOfCertificate(found.issuerId, found.serial) : undefined;
    if (!order || order.accountId !== account.id) throw new AcmeProblem('malformed', 'replaces names no certificate of this account');
    if (await this.deps.acme.replaced(raw)) throw new AcmeProblem('alreadyReplaced', 'another order already replaces this certificate', { status: 409 });
    return raw;
  }

  async order(account: AccountRecord, id: string): Promise<OrderRecord> {
    const order = await this.deps.acme.order(id);
    if (!order || order.accountId !== account.id) throw new AcmeProblem('malformed', 'no such order', { status: 404 });
    if (order.status !== 'valid' && order.status !== 'invalid' && order.expiresAt.getTime() <= this.deps.clock.now().getTime()) {
      await this.deps.acme.moveOrder(order.id, order.status, 'invalid', { error: { type: 'urn:ietf:params:acme:error:malformed', detail: 'the order expired' } });
      return { ...order, status: 'invalid' };
    }
    return order;
  }

  async authorization(account: AccountRecord, id: string): Promise<{ authz: AuthorizationRecord; challenges: ChallengeRecord[] }> {
    const authz = await this.deps.acme.authorization(id);
    if (!authz || authz.accountId !== account.id) throw new AcmeProblem('malformed', 'no such authorization', { status: 404 });
    return { authz, challenges: await this.deps.acme.challenges(id) };
  }

  /** POST to an authorization: `{status: deactivated}` deactivates it (RFC 8555 §7.5.2); else it is read. */
  async updateAuthorization(account: AccountRecord, id: string, payload: unknown): Promise<{ authz: AuthorizationRecord; challenges: ChallengeRecord[] }> {
    const found = await this.authorization(account, id);
    const body = payload as { status?: unknown } | null;
    if (body && typeof body === 'object' && body.status !== undefined) {
      if (body.status !== 'deactivated') throw new AcmeProblem('malformed', 'a client may only set an authorization to deactivated');
      await this.deps.acme.moveAuthorization(id, ['pending', 'valid'], 'deactivated');
      return this.authorization(account, id);
    }
    return found;
  }

  /** POST `{}` to a challenge: it is validated now, in the background; the client polls. */
  async respond(req: AcmeRequest, account: AccountRecord, id: string): Promise<{ challenge: ChallengeRecord; authz: AuthorizationRecord }> {
    const challenge = await this.deps.acme.challenge(id);
    const authz = challenge ? await this.deps.acme.authorization(challenge.authorizationId) : undefined;
    if (!challenge || !authz || authz.accountId !== account.id) throw new AcmeProblem('malformed', 'no such challenge', { status: 404 });
    if (challenge.status !== 'pending' || authz.status !== 'pending') return { challenge, authz };
    if (authz.expiresAt.getTime() <= this.deps.clock.now().getTime()) throw new AcmeProblem('malformed', 'the authorization has expired');
    if (!(await this.deps.acme.moveChallenge(id, 'pending', 'processing'))) return { challenge: (await this.deps.acme.challenge(id))!, authz };
    const task = this.validate(req, account, authz, challenge).catch((err) => this.deps.log?.error({ err }, 'ACME validation failed unexpectedly'));
    this.running.add(task);
    void task.finally(() => this.running.delete(task));
    return { challenge: { ...challenge, status: 'processing' }, authz };
  }

  /** Validations under way (tests and shutdown wait for them). */
  readonly running = new Set<Promise<unknown>>();

  private async validate(req: AcmeRequest, account: AccountRecord, authz: AuthorizationRecord, challenge: ChallengeRecord): Promise<void> {
    const { acme } = this.deps;
    const target = `acme-authz:${authz.id}`;
    try {
      await this.deps.validator.validate({
        type: challenge.type, name: authz.identifier, token: challenge.token,
        keyAuthorization: keyAuthorization(challenge.token, account.thumbprint), ranges: await this.deps.validationRanges(account.domain),
      });
    } catch (err) {
      const problem = acmeProblemOf(err);
      await acme.moveChallenge(challenge.id, 'processing', 'invalid', { error: problem.document() });
      await acme.moveAuthorization(authz.id, ['pending'], 'invalid');
      await acme.readyOrdersOf(authz.id);
      await auditAcme(this.deps, req, account, 'acme.challenge', target, 'failure', { type: challenge.type, name: authz.identifier, error: problem.document().type, detail: problem.message });
      return;
    }
    await acme.moveChallenge(challenge.id, 'processing', 'valid', { validatedAt: this.deps.clock.now() });
    await acme.moveAuthorization(authz.id, ['pending'], 'valid');
    await acme.readyOrdersOf(authz.id);
    await auditAcme(this.deps, req, account, 'acme.challenge', target, 'success', { type: challenge.type, name: authz.identifier });
  }

  /** finalize: the CSR must ask for exactly the order's names; the certificate is issued now. */
  async finalize(req: AcmeRequest, account: AccountRecord, id: string, payload: unknown): Promise<OrderRecord> {
    const order = await this.order(account, id);
    const tier = this.tierOf(account);
    if (order.status !== 'ready') {
      throw new AcmeProblem('orderNotReady', `the order is ${order.status}${order.status === 'pending' ? ': its authorizations are not all valid yet' : ''}`);
    }
    const body = payload as { csr?: unknown } | null;
    if (!body || typeof body.csr !== 'string' || !/^[A-Za-z0-9_-]+$/.test(body.csr)) throw new AcmeProblem('malformed', 'csr is the base64url DER of a PKCS#10 request');
    const der = Buffer.from(body.csr, 'base64url');
    this.checkCsrNames(der, order);
    const key = await this.deps.preparer.checkKey(tier, 'device', { csr: der }).catch((err) => {
      throw err instanceof TiercaError && err.code !== 'unavailable' ? new AcmeProblem('badCSR', err.message) : err;
    });
    if (!(await this.deps.acme.takeCertificate(account.id))) {
      throw new AcmeProblem('rateLimited', `the account has had its ${account.maxCertificates} certificates; ask an officer for a new binding key`);
    }
    if (!(await this.deps.acme.moveOrder(order.id, 'ready', 'processing'))) {
      await this.deps.acme.returnCertificate(account.id);
      throw new AcmeProblem('orderNotReady', 'the order is being finalized already');
    }
    try {
      const subject = await this.subjectFor(account, order);
      const now = this.deps.clock.now();
      const { order: prepared } = await this.deps.preparer.prepare({
        tier, domain: account.domain, profile: 'device', holderKind: 'device', name: { kind: 'subject', subject }, subjectId: subject.id,
        names: { dns: subject.dnsNames, ip: [], email: [] }, key, requestId: null, now,
      });
      const issued = await this.deps.issuer.issue(prepared, now, {
        principalId: `acme:${account.id}`, role: 'acme', source: req.source, requestId: req.requestId, action: 'certificate.issue',
        detail: { acmeOrder: order.id, boundBy: account.boundBy },
      }, { inTransaction: (tx) => checkSubjectStillActive(tx, subject.id) });
      await this.deps.acme.moveOrder(order.id, 'processing', 'valid', { issuerId: issued.record.issuerId, serial: issued.record.serial });
      return { ...order, status: 'valid', issuerId: issued.record.issuerId, serial: issued.record.serial };
    } catch (err) {
      const problem = acmeProblemOf(err);
      if (problem.type === 'serverInternal') this.deps.log?.error({ err, order: order.id }, 'ACME finalize failed');
      await this.deps.acme.moveOrder(order.id, 'processing', 'invalid', { error: problem.document() });
      await this.deps.acme.returnCertificate(account.id);
      await auditAcme(this.deps, req, account, 'acme.finalize', `acme-order:${order.id}`, 'failure', { error: problem.document().type });
      throw problem;
    }
  }

  /** RFC 8555 §7.4: the CSR names exactly the order's identifiers (SAN dNSNames, and a CN among them); nothing else. */
  private checkCsrNames(der: Buffer, order: OrderRecord): void {
    let names: ReturnType<typeof requestedNames>;
    try {
      names = requestedNames(parseCsr(der));
    } catch (err) {
      if (err instanceof PkiError) throw new AcmeProblem('badCSR', err.message);
      throw err;
    }
    const want = new Set(order.identifiers.map((i) => i.value));
    const asked = new Set([...names.dns, ...names.commonNames]);
    if (names.others) throw new AcmeProblem('badCSR', 'the CSR asks for names other than DNS names');
    if (asked.size !== want.size || [...asked].some((n) => !want.has(n))) {
      throw new AcmeProblem('badCSR', `the CSR asks for ${[...asked].join(', ') || 'no name'}, the order is for ${[...want].join(', ')}`);
    }
  }

  /** The account's device subject for this set of names, made at its first order. */
  private async subjectFor(account: AccountRecord, order: OrderRecord): Promise<SubjectRecord> {
    const dns = order.identifiers.map((i) => i.value).sort();
    const id = `acme-${account.id}-${createHash('sha256').update(dns.join('\n')).digest('hex').slice(0, 16)}`;
    const existing = await this.deps.store.subjects.get(id);
    if (existing) {
      if (existing.status !== 'active') throw new AcmeProblem('unauthorized', `subject ${id} of these names has been revoked by an officer`);
      return existing;
    }
    const name = dns.find((d) => !d.startsWith('*.')) ?? dns[0];
    const subject: SubjectRecord = {
      id, kind: 'device', domain: account.domain, organ: account.organ, tier: account.tier, name, dnsNames: dns, ipAddresses: [], emails: [],
      status: 'active', createdBy: `acme:${account.id}`, createdAt: this.deps.clock.now(),
    };
    try {
      await this.deps.store.transaction((tx) => tx.subjects.insert(subject));
    } catch (err) {
      const raced = await this.deps.store.subjects.get(id);
      if (raced) return raced;
      throw err;
    }
    return subject;
  }
}
