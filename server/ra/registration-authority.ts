/**
 * The registration authority: who may ask for what. It authorises every admin action, applies the
 * tier and domain rules to issuance, runs dual control, and hands checked orders to the CA. Every
 * action, allowed or refused, leaves an audit record.
 *
 * Dual control is one mechanism for every action that needs it: the first principal's call opens a
 * request (`requests` table, 202), a different principal holding the action's permission (in the
 * request's domain, for officers) approves it through `approve`, and the action registered for the
 * request's `action` carries it out. Registered here: `issue` (t3 issuance, two officers),
 * `ca.revoke` (two sysadmins), `escrow.recover` (two officers); `ca.rollover` (two sysadmins) is
 * registered by rotation through {@link RegistrationAuthority.registerRequestAction}.
 */
import { createPrivateKey, randomBytes, randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { encodeName, formatName, type DistinguishedName, commonNameFor } from '../../pki/name.ts';
import { generateKeyPair, publicKeyInfoOf } from '../../pki/key-pair.ts';
import { buildPkcs12, generatePassphrase } from '../../pki/pkcs12.ts';
import { isKeyAlgorithm, type KeyAlgorithm } from '../../pki/algorithms.ts';
import { reasonCode } from '../../pki/revocation-reason.ts';
import type { KeyStore } from '../../pki/keystore/keystore.ts';
import type {
  AuditCheckpointRecord, AuditRecord, CertificateFilter, CertificateProfile, CertificateRecord, PrincipalRecord, Repositories,
  RequestRecord, Role, Store, SubjectFilter, SubjectKind, SubjectRecord,
} from '../storage/storage.ts';
import type { TiercaConfig } from '../config/load-config.ts';
import type { TierPolicy } from '../config/tier-policy.ts';
import type { Clock } from '../clock.ts';
import { appendAudit } from '../audit/audit-log.ts';
import { AuditCheckpoints, type AuditAnchor, type AuditVerification } from '../audit/audit-checkpoints.ts';
import { TiercaError, type ErrorCode } from '../errors.ts';
import type { CaDirectory, LoadedCa } from '../ca/ca-directory.ts';
import type { CertificateIssuer, IssuanceOrder } from '../ca/certificate-issuer.ts';
import type { SigningPool } from '../ca/signing-pool.ts';
import type { ParsedCsr } from '../../pki/csr.ts';
import type { RevocationService, StatusAction } from '../ca/revocation-service.ts';
import type { CrlPublisher, PublishedCrl } from '../ca/crl-publisher.ts';
import { Authorizer, hashToken } from './authorizer.ts';
import { runAudited, actorOf } from './audited.ts';
import type { Permission, Principal, RequestContext } from './permissions.ts';
import { checkKeyAlgorithm, checkKeyGeneration, checkNames, checkProfile, validityFor, verifiedCsr } from './issuance-policy.ts';

const HOUR_MS = 3600 * 1000;
/** How long an issuance request waits for its second officer. */
const ISSUE_REQUEST_LIFETIME_MS = 7 * 24 * HOUR_MS;
/** How long a CA revocation or key recovery waits for its second approver: these are urgent, and stale approvals are dangerous. */
const URGENT_REQUEST_LIFETIME_MS = 24 * HOUR_MS;
/** Default validity of a principal's client certificate (capped by the tier's user maximum). */
const PRINCIPAL_CERTIFICATE_DAYS = 365;
/** OU of every principal certificate: it names an operator of tierca, not a subject of the intranet. */
export const PRINCIPAL_OU = 'tierca principal';

export interface SubjectInput {
  kind: SubjectKind;
  domain: string;
  organ: string;
  tier: string;
  name: string;
  dns?: string[];
  ips?: string[];
  emails?: string[];
}

export interface IssueInput {
  subjectId: string;
  /** PEM or DER PKCS#10. */
  csr?: string | Buffer;
  /** Server-made key, delivered as PKCS#12. */
  generate?: { algorithm?: string; passphrase?: string };
  profile?: CertificateProfile;
  days?: number;
}

export type IssueResult =
  | { kind: 'issued'; certificate: CertificateRecord; chain: readonly Buffer[]; pkcs12?: Buffer; passphrase?: string }
  | { kind: 'pending'; request: RequestRecord };

/** What approving a request gives: still pending, an issued certificate, a recovered key, or another action done. */
export type ApprovalResult =
  | IssueResult
  | { kind: 'recovered'; request: RequestRecord; certificate: CertificateRecord; chain: readonly Buffer[]; pkcs12: Buffer; passphrase: string }
  | { kind: 'done'; request: RequestRecord; result: Record<string, unknown> };

/**
 * An action that runs under dual control: who may ask for and approve it, how long a request waits,
 * and how it is carried out once approved.
 */
export interface RequestAction {
  /** The permission the requester and every approver must hold (besides `request:approve` to approve). */
  readonly permission: Permission;
  /** Whether that permission is checked in the request's domain (officers act only inside theirs). */
  readonly domainScoped: boolean;
  /** How long a request waits for its approvals before it expires. */
  readonly lifetimeMs: number;
  /**
   * Carries out `request`, which now has every approval it needs. Runs once; must mark the request
   * `done` (with `result`) in the same transaction as the change and its audit record, after
   * re-reading it there with {@link claimRequest} so that two concurrent approvals cannot both run it.
   */
  execute(ctx: RequestContext, request: RequestRecord): Promise<ApprovalResult>;
}

/** A request to open for a second approver (see {@link RegistrationAuthority.requestApproval}). */
export interface ApprovalRequestInput {
  /** A registered request action: 'issue', 'ca.revoke', 'escrow.recover', 'ca.rollover'. */
  action: string;
  /** What the request acts on, for the audit log: 'ca:yuhu-t2', 'certificate:yuhu-t2/0a1b…'. */
  target: string;
  subjectId?: string | null;
  domain?: string | null;
  tier?: string | null;
  /** What `execute` needs; never a secret (it is stored as plain JSON). */
  payload: Record<string, unknown>;
  /** Approvals needed besides the requester; default 1. */
  approvalsRequired?: number;
  /** The audit action of opening the request; default `<action>.request`. */
  auditAction?: string;
  auditDetail?: Record<string, unknown>;
}

/** Audit log queries (`GET /api/v1/audit`). Without `since` or `afterSeq`, the newest `limit` records. */
export interface AuditQuery {
  since?: Date;
  until?: Date;
  actor?: string;
  action?: string;
  /** Records after this seq, oldest first (paging). */
  afterSeq?: number;
  limit: number;
}

export interface RegistrationAuthorityDeps {
  store: Store;
  config: TiercaConfig;
  cas: CaDirectory;
  issuer: CertificateIssuer;
  /** Where CSR signatures are verified; default: on the calling thread. */
  signing?: SigningPool;
  revocation: RevocationService;
  crls: CrlPublisher;
  keystore: KeyStore;
  clock: Clock;
  random?: (n: number) => Buffer;
}

/** A public key whose CSR was parsed, verified and checked against the tier a moment ago. */
interface VerifiedKey {
  publicKeyInfo: Buffer;
  keyAlgorithm: KeyAlgorithm;
}

interface PendingPayload {
  csr?: string;
  generate?: { algorithm: KeyAlgorithm };
  profile: Exclude<CertificateProfile, 'ocsp'>;
  days?: number;
}

export class RegistrationAuthority {
  readonly authorizer: Authorizer;
  private readonly placeNameCache = new Map<string, { locality: string; organ: string }>();
  /** Signed audit checkpoints; bootstrap starts its timer. */
  readonly checkpoints: AuditCheckpoints;
  private readonly requestActions = new Map<string, RequestAction>();

  constructor(private readonly deps: RegistrationAuthorityDeps) {
    this.authorizer = new Authorizer(deps.store, deps.clock);
    this.checkpoints = new AuditCheckpoints({ store: deps.store, keystore: deps.keystore, clock: deps.clock, random: deps.random });
    this.registerRequestAction('issue', {
      permission: 'certificate:issue', domainScoped: true, lifetimeMs: ISSUE_REQUEST_LIFETIME_MS,
      execute: (ctx, request) => this.executeIssueRequest(ctx, request),
    });
    this.registerRequestAction('ca.revoke', {
      permission: 'ca:revoke', domainScoped: false, lifetimeMs: URGENT_REQUEST_LIFETIME_MS,
      execute: (ctx, request) => this.executeCaRevocation(ctx, request),
    });
    this.registerRequestAction('escrow.recover', {
      permission: 'escrow:recover', domainScoped: true, lifetimeMs: URGENT_REQUEST_LIFETIME_MS,
      execute: (ctx, request) => this.executeKeyRecovery(ctx, request),
    });
    // 'ca.rollover' (two sysadmins) is registered by the rotation authority: registerRequestAction('ca.rollover', …).
  }

  /**
   * Registers the action that carries out requests of kind `name` once approved. Each name once: a
   * second registration is a programming error.
   */
  registerRequestAction(name: string, action: RequestAction): void {
    if (this.requestActions.has(name)) throw new Error(`request action ${name} is already registered`);
    this.requestActions.set(name, action);
  }

  authenticate(token: string): Promise<Principal | null> {
    return this.authorizer.authenticate(token);
  }

  // ---- CAs and topology -------------------------------------------------------------------------

  async listCas(ctx: RequestContext): Promise<LoadedCa[]> {
    await this.authorizer.require(ctx, 'ca:read', 'ca.list', null);
    return this.deps.cas.list();
  }

  async getCa(ctx: RequestContext, id: string): Promise<LoadedCa> {
    await this.authorizer.require(ctx, 'ca:read', 'ca.show', `ca:${id}`);
    const ca = this.deps.cas.get(id);
    if (!ca) throw new TiercaError('not-found', `no CA ${id}`);
    return ca;
  }

  async listDomains(ctx: RequestContext) {
    await this.authorizer.require(ctx, 'ca:read', 'domain.list', null);
    const organs = await this.deps.store.organs.list();
    return (await this.deps.store.domains.list()).map((d) => ({ ...d, organs: organs.filter((o) => o.domain === d.slug) }));
  }

  /**
   * Asks for a CA's revocation (sysadmin). Revoking a CA is final and takes everything under it
   * down, so it runs under dual control: this opens a request that a second sysadmin approves
   * (`approve`), and only then is the CA revoked — every certificate under it answers revoked
   * (cACompromise) at OCSP, and its parent's next CRL lists it.
   */
  async revokeCa(ctx: RequestContext, id: string, reasonName: string): Promise<{ kind: 'pending'; request: RequestRecord }> {
    await this.authorizer.require(ctx, 'ca:revoke', 'ca.revoke', `ca:${id}`);
    this.reason(reasonName); // an unknown reason is refused before a request is opened
    return this.audited(ctx, 'ca.revoke', `ca:${id}`, async () => {
      const ca = this.deps.cas.get(id);
      if (!ca) throw new TiercaError('not-found', `no CA ${id}`);
      if (ca.record.layer === 'root') throw new TiercaError('conflict', 'the root is withdrawn by replacing the trust anchor, not revoked');
      if (ca.record.status === 'revoked') throw new TiercaError('revocation-final', `CA ${id} is already revoked`);
      const now = this.deps.clock.now();
      const open = (await this.deps.store.requests.list({ status: 'pending' }))
        .map((r) => expired(r, now))
        .find((r) => r.status === 'pending' && r.action === 'ca.revoke' && r.payload.caId === id);
      if (open) {
        throw new TiercaError('conflict', `request ${open.id} to revoke CA ${id} is already waiting for a second sysadmin`, { detail: { request: open.id } });
      }
      const request = await this.requestApproval(ctx, {
        action: 'ca.revoke', target: `ca:${id}`, domain: ca.record.domain, tier: ca.record.tier,
        payload: { caId: id, reason: reasonName }, auditDetail: { reason: reasonName },
      });
      return { kind: 'pending', request };
    });
  }

  // ---- principals ------------------------------------------------------------------------------

  async listPrincipals(ctx: RequestContext): Promise<PrincipalRecord[]> {
    await this.authorizer.require(ctx, 'principal:read', 'principal.list', null);
    return this.deps.store.principals.list();
  }

  /** Creates a principal and its first token; the token is returned once and stored only hashed. */
  async addPrincipal(ctx: RequestContext, input: { name: string; role: Role; domains?: string[] }): Promise<{ principal: PrincipalRecord; token: string }> {
    await this.authorizer.require(ctx, 'principal:manage', 'principal.add', null);
    return this.audited(ctx, 'principal.add', null, async () => {
      const domains = [...new Set(input.domains ?? [])];
      for (const d of domains) {
        if (!(await this.deps.store.domains.get(d))) throw new TiercaError('bad-request', `no domain ${d}`);
      }
      if (input.role === 'officer' && domains.length === 0) throw new TiercaError('bad-request', 'an officer needs at least one domain');
      if (input.role !== 'officer' && domains.length > 0) throw new TiercaError('bad-request', `only officers are scoped to domains, not a ${input.role}`);
      const now = this.deps.clock.now();
      return this.deps.store.transaction(async (tx) => {
        const created = await createPrincipal(tx, { ...input, domains, now, random: this.deps.random });
        await appendAudit(tx.audit, now, {
          ...actor(ctx), action: 'principal.add', target: `principal:${created.principal.id}`, outcome: 'success',
          detail: { role: input.role, domains, name: input.name },
        });
        return created;
      });
    });
  }

  /** Disables a principal: its tokens and client certificates stop authenticating at once. */
  async disablePrincipal(ctx: RequestContext, id: string): Promise<PrincipalRecord> {
    await this.authorizer.require(ctx, 'principal:manage', 'principal.disable', `principal:${id}`);
    return this.audited(ctx, 'principal.disable', `principal:${id}`, async () => {
      const principal = await this.deps.store.principals.get(id);
      if (!principal) throw new TiercaError('not-found', `no principal ${id}`);
      if (id === ctx.principal.id) throw new TiercaError('conflict', 'a principal may not disable itself');
      if (principal.disabled) return principal;
      const now = this.deps.clock.now();
      await this.deps.store.transaction(async (tx) => {
        await tx.principals.setDisabled(id, true);
        await appendAudit(tx.audit, now, {
          ...actor(ctx), action: 'principal.disable', target: `principal:${id}`, outcome: 'success', detail: { role: principal.role, name: principal.name },
        });
      });
      return { ...principal, disabled: true };
    });
  }

  /**
   * Issues a principal's client certificate for mutual TLS on the admin API, from the principal's
   * CSR (the key never leaves its holder). Profile user-sign (clientAuth) from the lowest tier's CA of
   * the principal's first domain (the first configured domain — the city — for principals without
   * domains); subject C, ST, L of that domain, O the organisation, OU {@link PRINCIPAL_OU}, CN the
   * principal id. The certificate's subject id is the principal id: that is how a TLS client
   * certificate is mapped back to its principal. It is revoked like any certificate.
   */
  async issuePrincipalCertificate(ctx: RequestContext, id: string, input: { csr: string | Buffer; days?: number }): Promise<{ certificate: CertificateRecord; chain: readonly Buffer[] }> {
    await this.authorizer.require(ctx, 'principal:manage', 'principal.certificate', `principal:${id}`);
    return this.audited(ctx, 'principal.certificate', `principal:${id}`, async () => {
      const { store, config } = this.deps;
      const principal = await store.principals.get(id);
      if (!principal) throw new TiercaError('not-found', `no principal ${id}`);
      if (principal.disabled) throw new TiercaError('conflict', `principal ${id} is disabled`);
      const csr = await this.csrOf(input.csr);
      const tier = [...config.tiers.values()][0];
      const domainSlug = principal.domains[0] ?? config.domains[0]?.slug;
      const ca = domainSlug ? this.deps.cas.issuingCa(domainSlug, tier.id) : undefined;
      if (!ca || ca.record.status !== 'active') throw new TiercaError('ca-unavailable', `the issuing CA of ${domainSlug} ${tier.id} is not active`);
      const keyAlgorithm = checkKeyAlgorithm(tier, csr.keyAlgorithm, csr.keyAlgorithm ?? 'of this type/size');
      const now = this.deps.clock.now();
      const days = input.days ?? Math.min(PRINCIPAL_CERTIFICATE_DAYS, tier.maxValidityDays.user);
      const { notBefore, notAfter } = validityFor({ tier, kind: 'user', days, now, caNotAfter: ca.record.notAfter });
      const domain = await store.domains.get(domainSlug!);
      const dn: DistinguishedName = [
        { type: 'C', value: config.country },
        { type: 'ST', value: config.province },
        { type: 'L', value: domain?.locality ?? domainSlug! },
        { type: 'O', value: config.organisation },
        { type: 'OU', value: PRINCIPAL_OU },
        { type: 'CN', value: commonNameFor('principal', principal.id) },
      ];
      const issued = await this.deps.issuer.issue({
        ca, tier, profile: 'user-sign', subject: encodeName(dn), subjectDn: formatName(dn), subjectId: principal.id,
        domain: domainSlug!, publicKeyInfo: csr.publicKeyInfo, keyAlgorithm, names: { dns: [], ip: [], email: [] },
        notBefore, notAfter, requestId: null,
      }, now, { ...actor(ctx), action: 'principal.certificate', detail: { principal: principal.id, role: principal.role } });
      return { certificate: issued.record, chain: issued.chain };
    });
  }

  // ---- subjects ---------------------------------------------------------------------------------

  async addSubject(ctx: RequestContext, input: SubjectInput): Promise<SubjectRecord> {
    await this.authorizer.require(ctx, 'subject:write', 'subject.add', `domain:${input.domain}`, input.domain);
    return this.audited(ctx, 'subject.add', null, async () => {
      const { store } = this.deps;
      const domain = await store.domains.get(input.domain);
      if (!domain) throw new TiercaError('not-found', `no domain ${input.domain}`);
      if (!(await store.organs.get(input.domain, input.organ))) throw new TiercaError('not-found', `no organ ${input.organ} in ${input.domain}`);
      this.tier(input.tier);
      const names = checkNames(domain, input.kind, { dns: input.dns, ips: input.ips, emails: input.emails });
      const now = this.deps.clock.now();
      const subject: SubjectRecord = {
        id: `sub-${randomUUID()}`,
        kind: input.kind,
        domain: input.domain,
        organ: input.organ,
        tier: input.tier,
        name: input.name,
        dnsNames: names.dns,
        ipAddresses: names.ips,
        emails: names.emails,
        status: 'active',
        createdBy: ctx.principal.id,
        createdAt: now,
      };
      await store.transaction(async (tx) => {
        await tx.subjects.insert(subject);
        await appendAudit(tx.audit, now, {
          ...actor(ctx), action: 'subject.add', target: `subject:${subject.id}`, outcome: 'success',
          detail: { kind: subject.kind, domain: subject.domain, tier: subject.tier, name: subject.name },
        });
      });
      return subject;
    });
  }

  async listSubjects(ctx: RequestContext, filter: SubjectFilter): Promise<SubjectRecord[]> {
    await this.authorizer.require(ctx, 'subject:read', 'subject.list', null);
    return this.deps.store.subjects.list(filter);
  }

  async getSubject(ctx: RequestContext, id: string): Promise<{ subject: SubjectRecord; certificates: CertificateRecord[] }> {
    await this.authorizer.require(ctx, 'subject:read', 'subject.show', `subject:${id}`);
    const subject = await this.deps.store.subjects.get(id);
    if (!subject) throw new TiercaError('not-found', `no subject ${id}`);
    return { subject, certificates: await this.deps.store.certificates.list({ subjectId: id }) };
  }

  /** Revokes every live certificate of a subject (a person leaves, a device is lost) and retires it. */
  async revokeSubject(ctx: RequestContext, id: string, reasonName: string): Promise<string[]> {
    const subject = await this.deps.store.subjects.get(id);
    if (!subject) throw new TiercaError('not-found', `no subject ${id}`);
    await this.authorizer.require(ctx, 'certificate:revoke', 'subject.revoke', `subject:${id}`, subject.domain);
    const reason = this.reason(reasonName);
    return this.audited(ctx, 'subject.revoke', `subject:${id}`, async () => {
      const now = this.deps.clock.now();
      const certs = (await this.deps.store.certificates.list({ subjectId: id })).filter((c) => c.status !== 'revoked');
      const revoked: string[] = [];
      for (const cert of certs) {
        await this.deps.revocation.apply(cert.issuerId, cert.serial, { kind: 'revoke', reason, invalidityDate: null }, now, actor(ctx));
        revoked.push(cert.serial);
      }
      await this.deps.store.transaction(async (tx) => {
        await tx.subjects.setStatus(id, 'revoked');
        await appendAudit(tx.audit, now, { ...actor(ctx), action: 'subject.revoke', target: `subject:${id}`, outcome: 'success', detail: { revoked } });
      });
      return revoked;
    });
  }

  // ---- issuance ---------------------------------------------------------------------------------

  async issue(ctx: RequestContext, input: IssueInput): Promise<IssueResult> {
    const subject = await this.deps.store.subjects.get(input.subjectId);
    if (!subject) throw new TiercaError('not-found', `no subject ${input.subjectId}`);
    await this.authorizer.require(ctx, 'certificate:issue', 'certificate.issue', `subject:${subject.id}`, subject.domain);
    return this.audited(ctx, 'certificate.issue', `subject:${subject.id}`, async () => {
      if (subject.status !== 'active') throw new TiercaError('conflict', `subject ${subject.id} is revoked`);
      const tier = this.tier(subject.tier);
      const profile = checkProfile(subject.kind, input.profile);
      if (!!input.csr === !!input.generate) throw new TiercaError('bad-request', 'send either a CSR or generate, not both or neither');
      checkKeyGeneration(tier, profile, !!input.generate);
      const payload: PendingPayload = { profile, days: input.days };
      let verified: VerifiedKey | undefined;
      if (input.csr) {
        const csr = await this.csrOf(input.csr);
        verified = { publicKeyInfo: csr.publicKeyInfo, keyAlgorithm: checkKeyAlgorithm(tier, csr.keyAlgorithm, csr.keyAlgorithm ?? 'of this type/size') };
        payload.csr = csr.der.toString('base64');
      } else {
        const algorithm = input.generate!.algorithm ?? tier.keyAlgorithms[0];
        if (!isKeyAlgorithm(algorithm)) throw new TiercaError('policy-key-algorithm', `unknown key algorithm ${algorithm}`);
        checkKeyAlgorithm(tier, algorithm, algorithm);
        payload.generate = { algorithm };
      }
      const ca = this.issuingCa(subject);
      const now = this.deps.clock.now();
      validityFor({ tier, kind: subject.kind, days: input.days, now, caNotAfter: ca.record.notAfter });
      await this.checkNoLive(this.deps.store, subject, profile, now);
      if (tier.approvals > 1) return { kind: 'pending', request: await this.createRequest(ctx, subject, tier, payload) };
      return this.execute(ctx, subject, payload, null, input.generate?.passphrase, verified);
    });
  }

  async listRequests(ctx: RequestContext, filter: { status?: RequestRecord['status'] }): Promise<RequestRecord[]> {
    await this.authorizer.require(ctx, 'request:read', 'request.list', null);
    const now = this.deps.clock.now();
    return (await this.deps.store.requests.list(filter)).map((r) => expired(r, now));
  }

  /**
   * Approves a pending request. The approver needs `request:approve` and the request action's own
   * permission (in the request's domain when the action is domain-scoped), and may not be the
   * requester nor approve twice. With enough approvals the action is carried out; a request that
   * cannot be carried out any more is marked failed.
   */
  async approve(ctx: RequestContext, id: string): Promise<ApprovalResult> {
    const { request, action } = await this.decisionRequest(ctx, id, 'request.approve');
    return this.audited(ctx, 'request.approve', `request:${id}`, async () => {
      const now = this.deps.clock.now();
      const current = await this.current(request, now);
      if (current.status !== 'pending') throw new TiercaError('request-not-pending', `request ${id} is ${current.status}`);
      if (current.requestedBy === ctx.principal.id || current.approvals.includes(ctx.principal.id)) {
        throw new TiercaError('policy-self-approval', 'a principal may not approve its own request, nor approve twice');
      }
      const approvals = [...current.approvals, ctx.principal.id];
      if (approvals.length < current.approvalsRequired) {
        await this.deps.store.transaction(async (tx) => {
          await claimRequest(tx, current);
          await tx.requests.update(id, { approvals });
          await appendAudit(tx.audit, now, { ...actor(ctx), action: 'request.approve', target: `request:${id}`, outcome: 'success', detail: { action: current.action, approvals } });
        });
        return { kind: 'pending', request: { ...current, approvals } };
      }
      try {
        return await action.execute(ctx, { ...current, approvals });
      } catch (err) {
        // A request that can no longer be carried out (its subject revoked, its CA gone) is closed, so
        // it does not wait to be approved again; a passing fault (database, bug) leaves it pending.
        if (err instanceof TiercaError && !RETRYABLE.has(err.code)) {
          await this.deps.store.requests.update(id, { status: 'failed', result: { error: err.code } }).catch(() => undefined);
        }
        throw err;
      }
    });
  }

  async reject(ctx: RequestContext, id: string): Promise<RequestRecord> {
    const { request } = await this.decisionRequest(ctx, id, 'request.reject');
    return this.audited(ctx, 'request.reject', `request:${id}`, async () => {
      const now = this.deps.clock.now();
      const current = await this.current(request, now);
      if (current.status !== 'pending') throw new TiercaError('request-not-pending', `request ${id} is ${current.status}`);
      await this.deps.store.transaction(async (tx) => {
        await claimRequest(tx, current);
        await tx.requests.update(id, { status: 'rejected' });
        await appendAudit(tx.audit, now, { ...actor(ctx), action: 'request.reject', target: `request:${id}`, outcome: 'success', detail: { action: current.action } });
      });
      return { ...current, status: 'rejected' };
    });
  }

  /**
   * Opens a request for a second approver and audits it (`auditAction`, default `<action>.request`).
   * The caller has checked that `ctx` may ask for it. The action must be registered.
   */
  async requestApproval(ctx: RequestContext, input: ApprovalRequestInput): Promise<RequestRecord> {
    const action = this.requestActions.get(input.action);
    if (!action) throw new Error(`no request action ${input.action} is registered`);
    const now = this.deps.clock.now();
    const request: RequestRecord = {
      id: `req-${randomUUID()}`,
      action: input.action,
      subjectId: input.subjectId ?? null,
      domain: input.domain ?? null,
      tier: input.tier ?? null,
      payload: input.payload,
      requestedBy: ctx.principal.id,
      approvals: [],
      approvalsRequired: input.approvalsRequired ?? 1,
      status: 'pending',
      result: null,
      createdAt: now,
      expiresAt: new Date(now.getTime() + action.lifetimeMs),
    };
    await this.deps.store.transaction(async (tx) => {
      await tx.requests.insert(request);
      await appendAudit(tx.audit, now, {
        ...actor(ctx), action: input.auditAction ?? `${input.action}.request`, target: input.target, outcome: 'success',
        detail: { ...(input.auditDetail ?? {}), request: request.id },
      });
    });
    return request;
  }

  // ---- escrowed keys ----------------------------------------------------------------------------

  /**
   * Asks for the recovery of an escrowed key (officer, in the certificate's domain). Two officers:
   * this opens the request; a second officer's approval returns the key as a PKCS#12.
   */
  async requestKeyRecovery(ctx: RequestContext, issuerId: string, serial: string, input: { reason?: string } = {}): Promise<{ kind: 'pending'; request: RequestRecord }> {
    const cert = await this.findCertificate(serial, issuerId);
    const target = `certificate:${cert.issuerId}/${cert.serial}`;
    await this.authorizer.require(ctx, 'escrow:recover', 'escrow.recover', target, cert.domain);
    return this.audited(ctx, 'escrow.recover', target, async () => {
      if (!(await this.deps.store.escrow.get(cert.issuerId, cert.serial))) {
        throw new TiercaError('not-found', `no escrowed key for ${cert.issuerId}/${cert.serial}`);
      }
      const request = await this.requestApproval(ctx, {
        action: 'escrow.recover', target, subjectId: cert.subjectId, domain: cert.domain, tier: cert.tier,
        payload: { issuerId: cert.issuerId, serial: cert.serial, reason: input.reason ?? null },
        auditDetail: { reason: input.reason ?? null },
      });
      return { kind: 'pending', request };
    });
  }

  // ---- audit log --------------------------------------------------------------------------------

  /** Audit records: from `since`/`afterSeq` oldest first, else the newest `limit`; in seq order. */
  async auditRecords(ctx: RequestContext, q: AuditQuery): Promise<AuditRecord[]> {
    await this.authorizer.require(ctx, 'audit:read', 'audit.read', null);
    const { audit } = this.deps.store;
    const filter = { until: q.until, actor: q.actor, action: q.action };
    if (q.since !== undefined || q.afterSeq !== undefined) {
      return audit.list({ ...filter, since: q.since, fromSeq: q.afterSeq === undefined ? undefined : q.afterSeq + 1, limit: q.limit });
    }
    // The newest `limit` matching records: look back over a widening window of seqs.
    const last = await audit.last();
    if (!last) return [];
    for (let window = Math.max(q.limit * 4, 1000); ; window *= 4) {
      const fromSeq = Math.max(1, last.seq - window + 1);
      const rows = await audit.list({ ...filter, fromSeq });
      if (rows.length >= q.limit || fromSeq === 1) return rows.slice(-q.limit);
    }
  }

  /**
   * The records of `[from, to)` (both optional) for export, paged from the database as they are
   * read. The export itself is audited.
   */
  async exportAudit(ctx: RequestContext, range: { from?: Date; to?: Date }): Promise<AsyncIterable<AuditRecord>> {
    await this.authorizer.require(ctx, 'audit:read', 'audit.export', null);
    await appendAudit(this.deps.store.audit, this.deps.clock.now(), {
      ...actor(ctx), action: 'audit.export', target: null, outcome: 'success',
      detail: { from: range.from?.toISOString() ?? null, to: range.to?.toISOString() ?? null },
    });
    const { audit } = this.deps.store;
    return {
      async *[Symbol.asyncIterator]() {
        for (let fromSeq = 1; ;) {
          const page = await audit.list({ fromSeq, since: range.from, until: range.to, limit: 1000 });
          yield* page;
          if (page.length < 1000) return;
          fromSeq = page[page.length - 1].seq + 1;
        }
      },
    };
  }

  /** Recomputes the whole chain and every checkpoint (see {@link AuditCheckpoints.verify}); the run is audited. */
  async verifyAudit(ctx: RequestContext, options: { anchor?: AuditAnchor } = {}): Promise<AuditVerification> {
    await this.authorizer.require(ctx, 'audit:read', 'audit.verify', null);
    const result = await this.checkpoints.verify(options);
    await appendAudit(this.deps.store.audit, this.deps.clock.now(), {
      ...actor(ctx), action: 'audit.verify', target: null, outcome: 'success',
      detail: { ok: result.ok, checked: result.checked, checkpoints: result.checkpoints, ...(result.firstBad ? { firstBad: result.firstBad } : {}) },
    });
    return result;
  }

  /** The audit keys and every checkpoint, for checking them outside tierca. */
  async auditCheckpoints(ctx: RequestContext): Promise<{ keys: Awaited<ReturnType<AuditCheckpoints['publicKeys']>>; checkpoints: AuditCheckpointRecord[] }> {
    await this.authorizer.require(ctx, 'audit:read', 'audit.checkpoints', null);
    return { keys: await this.checkpoints.publicKeys(), checkpoints: await this.checkpoints.list() };
  }

  /** Signs a checkpoint now, over the record of this very request (auditor). */
  async auditCheckpoint(ctx: RequestContext): Promise<AuditCheckpointRecord> {
    await this.authorizer.require(ctx, 'audit:checkpoint', 'audit.checkpoint', null);
    return this.audited(ctx, 'audit.checkpoint', null, async () => {
      const record = await appendAudit(this.deps.store.audit, this.deps.clock.now(), {
        ...actor(ctx), action: 'audit.checkpoint', target: null, outcome: 'success',
      });
      return this.checkpoints.checkpoint(record);
    });
  }

  // ---- certificates -----------------------------------------------------------------------------

  async listCertificates(ctx: RequestContext, filter: CertificateFilter): Promise<CertificateRecord[]> {
    await this.authorizer.require(ctx, 'certificate:read', 'certificate.list', null);
    return this.deps.store.certificates.list(filter);
  }

  async getCertificate(ctx: RequestContext, serial: string, issuerId?: string): Promise<{ certificate: CertificateRecord; chain: readonly Buffer[] }> {
    await this.authorizer.require(ctx, 'certificate:read', 'certificate.show', `certificate:${serial}`);
    const certificate = await this.findCertificate(serial, issuerId);
    return { certificate, chain: this.deps.cas.get(certificate.issuerId)?.chain ?? [] };
  }

  async changeStatus(ctx: RequestContext, serial: string, issuerId: string | undefined, action: StatusAction): Promise<CertificateRecord> {
    const name = action.kind === 'revoke' ? 'certificate.revoke' : `certificate.${action.kind}`;
    const cert = await this.findCertificate(serial, issuerId);
    await this.authorizer.require(ctx, 'certificate:revoke', name, `certificate:${cert.issuerId}/${serial}`, cert.domain);
    return this.audited(ctx, name, `certificate:${cert.issuerId}/${serial}`, async () => {
      const result = await this.deps.revocation.apply(cert.issuerId, cert.serial, action, this.deps.clock.now(), actor(ctx));
      return result.record;
    });
  }

  /** Parses an RFC 5280 reason name into its code (400 for unknown names). */
  reason(name: string): number {
    try {
      return reasonCode(name);
    } catch {
      throw new TiercaError('bad-request', `unknown revocation reason ${name}`);
    }
  }

  // ---- CRLs -------------------------------------------------------------------------------------

  async generateCrls(ctx: RequestContext, caId?: string): Promise<PublishedCrl[]> {
    await this.authorizer.require(ctx, 'crl:generate', 'crl.generate', caId ? `ca:${caId}` : null);
    const targets = caId ? [this.deps.cas.get(caId)] : this.deps.cas.list();
    if (targets.some((t) => !t)) throw new TiercaError('not-found', `no CA ${caId}`);
    return this.audited(ctx, 'crl.generate', caId ? `ca:${caId}` : null, async () => {
      const out: PublishedCrl[] = [];
      for (const ca of targets) out.push(...(await this.deps.crls.publish(ca!.record.id)));
      await appendAudit(this.deps.store.audit, this.deps.clock.now(), {
        ...actor(ctx), action: 'crl.generate', target: caId ? `ca:${caId}` : null, outcome: 'success',
        detail: { published: out.map((c) => `${c.caId}#${c.number}`) },
      });
      return out;
    });
  }

  // ---- internals --------------------------------------------------------------------------------

  private tier(id: string): TierPolicy {
    const tier = this.deps.config.tiers.get(id);
    if (!tier) throw new TiercaError('bad-request', `no tier ${id}`);
    return tier;
  }

  private issuingCa(subject: SubjectRecord): LoadedCa {
    const ca = this.deps.cas.issuingCa(subject.domain, subject.tier);
    if (!ca || ca.record.status !== 'active') {
      throw new TiercaError('ca-unavailable', `the issuing CA of ${subject.domain} ${subject.tier} is not active`);
    }
    return ca;
  }

  /** The parsed CSR once its proof of possession verified (on a signing thread when there is one). */
  private csrOf(input: string | Buffer): Promise<ParsedCsr> {
    const { signing } = this.deps;
    return verifiedCsr(input, signing ? (csr) => signing.verifyCsr(csr) : undefined);
  }


  private async findCertificate(serial: string, issuerId?: string): Promise<CertificateRecord> {
    const normalised = serial.toLowerCase().replace(/^(00)+(?=.)/, '');
    if (!/^[0-9a-f]{1,64}$/.test(normalised)) throw new TiercaError('bad-request', `${serial} is not a hex serial`);
    const found = (await this.deps.store.certificates.findBySerial(normalised)).filter((c) => !issuerId || c.issuerId === issuerId);
    if (found.length === 0) throw new TiercaError('not-found', `no certificate ${normalised}${issuerId ? ` issued by ${issuerId}` : ''}`);
    if (found.length > 1) throw new TiercaError('conflict', `serial ${normalised} exists under several issuers; name one with issuer`);
    return found[0];
  }

  private async checkNoLive(repos: Repositories, subject: SubjectRecord, profile: CertificateProfile, now: Date): Promise<void> {
    const live = await repos.certificates.findLive(subject.id, profile, now);
    if (live.length > 0) {
      throw new TiercaError('already-holds-certificate', `subject ${subject.id} already holds a valid ${profile} certificate (${live[0].serial}); renew it instead`, {
        detail: { serial: live[0].serial },
      });
    }
  }

  private createRequest(ctx: RequestContext, subject: SubjectRecord, tier: TierPolicy, payload: PendingPayload): Promise<RequestRecord> {
    return this.requestApproval(ctx, {
      action: 'issue', target: `subject:${subject.id}`, subjectId: subject.id, domain: subject.domain, tier: tier.id,
      payload: payload as unknown as Record<string, unknown>, approvalsRequired: tier.approvals - 1,
      auditAction: 'certificate.request', auditDetail: { subject: subject.id, tier: tier.id, profile: payload.profile },
    });
  }

  /**
   * The request a decision (approve, reject) is about, and its action, once `ctx` is allowed to decide
   * it: `request:approve`, then the action's permission in the request's domain. Denials are audited.
   */
  private async decisionRequest(ctx: RequestContext, id: string, auditAction: string): Promise<{ request: RequestRecord; action: RequestAction }> {
    const request = await this.deps.store.requests.get(id);
    if (!request) throw new TiercaError('not-found', `no request ${id}`);
    const target = `request:${id}`;
    await this.authorizer.require(ctx, 'request:approve', auditAction, target);
    const action = this.requestActions.get(request.action);
    if (!action) {
      await this.audited(ctx, auditAction, target, async () => {
        throw new TiercaError('conflict', `this server cannot carry out ${request.action} requests`);
      });
    }
    await this.authorizer.require(ctx, action!.permission, auditAction, target, action!.domainScoped ? request.domain : null);
    return { request, action: action! };
  }

  /** The request as of `now`; a pending request past its expiry is marked expired in the database too. */
  private async current(request: RequestRecord, now: Date): Promise<RequestRecord> {
    const current = expired(request, now);
    if (current.status === 'expired' && request.status === 'pending') await this.deps.store.requests.update(request.id, { status: 'expired' });
    return current;
  }

  /** `issue`: the approved t3 issuance is issued now. */
  private async executeIssueRequest(ctx: RequestContext, request: RequestRecord): Promise<ApprovalResult> {
    const subject = request.subjectId ? await this.deps.store.subjects.get(request.subjectId) : undefined;
    if (!subject || subject.status !== 'active') throw new TiercaError('conflict', 'the request subject is gone or revoked');
    return this.execute(ctx, subject, request.payload as unknown as PendingPayload, request, undefined);
  }

  /** `ca.revoke`: the CA is revoked, the request closed and both audited in one transaction; the parent's CRL is republished. */
  private async executeCaRevocation(ctx: RequestContext, request: RequestRecord): Promise<ApprovalResult> {
    const { caId, reason: reasonName } = request.payload as { caId: string; reason: string };
    const reason = this.reason(reasonName);
    const ca = this.deps.cas.get(caId);
    if (!ca) throw new TiercaError('not-found', `no CA ${caId}`);
    if (ca.record.status === 'revoked') throw new TiercaError('revocation-final', `CA ${caId} is already revoked`);
    const now = this.deps.clock.now();
    const result = { caId, status: 'revoked', reason: reasonName, revokedAt: now.toISOString() };
    await this.deps.store.transaction(async (tx) => {
      await claimRequest(tx, request);
      await tx.cas.updateStatus(caId, 'revoked', now, reason);
      await tx.requests.update(request.id, { approvals: request.approvals, status: 'done', result });
      await appendAudit(tx.audit, now, {
        ...actor(ctx), action: 'ca.revoke', target: `ca:${caId}`, outcome: 'success',
        detail: { reason: reasonName, request: request.id, requestedBy: request.requestedBy, approvedBy: request.approvals },
      });
    });
    this.deps.cas.add({ ...ca, record: { ...ca.record, status: 'revoked', revokedAt: now, revocationReason: reason } });
    if (ca.record.parentId) await this.deps.crls.publish(ca.record.parentId);
    return { kind: 'done', request: { ...request, status: 'done', result }, result };
  }

  /**
   * `escrow.recover`: the escrowed key is unsealed (bound to `escrow:<issuer>/<serial>`) and handed
   * out once, in a PKCS#12 under a passphrase made here; the server keeps neither.
   */
  private async executeKeyRecovery(ctx: RequestContext, request: RequestRecord): Promise<ApprovalResult> {
    const { store, keystore } = this.deps;
    const { issuerId, serial } = request.payload as { issuerId: string; serial: string };
    const cert = await store.certificates.get(issuerId, serial);
    const sealed = await store.escrow.get(issuerId, serial);
    if (!cert || !sealed) throw new TiercaError('not-found', `no escrowed key for ${issuerId}/${serial}`);
    const pkcs8 = keystore.unseal(sealed, `escrow:${issuerId}/${serial}`);
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
    } finally {
      pkcs8.fill(0);
    }
    const subject = cert.subjectId ? await store.subjects.get(cert.subjectId) : undefined;
    const chain = this.deps.cas.get(issuerId)?.chain ?? [];
    const passphrase = generatePassphrase(this.deps.random);
    // friendlyName is a BMPString: a name outside the Basic Multilingual Plane is left out rather than refused.
    const friendlyName = subject && !/[\ud800-\udfff]/.test(subject.name) ? subject.name : undefined;
    const pkcs12 = await buildPkcs12({ privateKey, certificate: cert.der, chain: [...chain], passphrase, friendlyName });
    const now = this.deps.clock.now();
    const result = { issuerId, serial };
    await store.transaction(async (tx) => {
      await claimRequest(tx, request);
      await tx.requests.update(request.id, { approvals: request.approvals, status: 'done', result });
      await appendAudit(tx.audit, now, {
        ...actor(ctx), action: 'escrow.recover', target: `certificate:${issuerId}/${serial}`, outcome: 'success',
        detail: { request: request.id, requestedBy: request.requestedBy, approvedBy: request.approvals, subject: cert.subjectId },
      });
    });
    return { kind: 'recovered', request: { ...request, status: 'done', result }, certificate: cert, chain, pkcs12, passphrase };
  }

  /**
   * The locality and organ names that go into a subject DN. Domains and organs are written once by
   * the ceremony and never change, so they are read once per instance.
   */
  private async placeNames(domainSlug: string, organSlug: string): Promise<{ locality: string; organ: string }> {
    const key = `${domainSlug}/${organSlug}`;
    const cached = this.placeNameCache.get(key);
    if (cached) return cached;
    const domain = await this.deps.store.domains.get(domainSlug);
    const organ = await this.deps.store.organs.get(domainSlug, organSlug);
    const names = { locality: domain?.locality ?? domainSlug, organ: organ?.name ?? organSlug };
    if (domain && organ) this.placeNameCache.set(key, names);
    return names;
  }

  /** Issues a checked payload now: builds the order, signs, stores, escrows, delivers. */
  private async execute(
    ctx: RequestContext, subject: SubjectRecord, payload: PendingPayload, request: RequestRecord | null,
    passphrase: string | undefined, verified?: VerifiedKey,
  ): Promise<IssueResult> {
    const { keystore } = this.deps;
    const tier = this.tier(subject.tier);
    const ca = this.issuingCa(subject);
    const now = this.deps.clock.now();
    const { notBefore, notAfter } = validityFor({ tier, kind: subject.kind, days: payload.days, now, caNotAfter: ca.record.notAfter });
    let publicKeyInfo: Buffer;
    let keyAlgorithm: KeyAlgorithm;
    let privateKey: KeyObject | undefined;
    if (verified) {
      // Checked moments ago in issue(): proof of possession is not verified twice on the hot path.
      ({ publicKeyInfo, keyAlgorithm } = verified);
    } else if (payload.csr) {
      const csr = await this.csrOf(Buffer.from(payload.csr, 'base64'));
      keyAlgorithm = checkKeyAlgorithm(tier, csr.keyAlgorithm, csr.keyAlgorithm ?? 'of this type/size');
      publicKeyInfo = csr.publicKeyInfo;
    } else {
      keyAlgorithm = payload.generate!.algorithm;
      privateKey = (await generateKeyPair(keyAlgorithm)).privateKey;
      publicKeyInfo = publicKeyInfoOf(privateKey);
    }
    const names = await this.placeNames(subject.domain, subject.organ);
    const dn: DistinguishedName = [
      { type: 'C', value: this.deps.config.country },
      { type: 'ST', value: this.deps.config.province },
      { type: 'L', value: names.locality },
      { type: 'O', value: names.organ },
      { type: 'CN', value: commonNameFor(subject.kind, subject.name) },
    ];
    const order: IssuanceOrder = {
      ca, tier, profile: payload.profile, subject: encodeName(dn), subjectDn: formatName(dn), subjectId: subject.id,
      domain: subject.domain, publicKeyInfo, keyAlgorithm,
      names: { dns: subject.dnsNames, ip: subject.ipAddresses, email: subject.emails },
      notBefore, notAfter, requestId: request?.id ?? null,
    };
    const issued = await this.deps.issuer.issue(order, now, { ...actor(ctx), action: 'certificate.issue', detail: request ? { request: request.id } : {} }, async (tx, record) => {
      // Re-checked inside the transaction: two concurrent issuances for one subject cannot both land.
      const live = await tx.certificates.findLive(subject.id, payload.profile, now);
      if (live.some((c) => c.serial !== record.serial || c.issuerId !== record.issuerId)) {
        throw new TiercaError('already-holds-certificate', `subject ${subject.id} already holds a valid ${payload.profile} certificate`);
      }
      if (privateKey && payload.profile === 'user-enc') {
        const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
        await tx.escrow.insert(record.issuerId, record.serial, keystore.seal(pkcs8, `escrow:${record.issuerId}/${record.serial}`), now);
      }
      if (request) {
        await claimRequest(tx, request);
        await tx.requests.update(request.id, {
          approvals: request.approvals, status: 'done', result: { issuerId: record.issuerId, serial: record.serial },
        });
      }
    });
    if (!privateKey) return { kind: 'issued', certificate: issued.record, chain: issued.chain };
    const pass = passphrase ?? generatePassphrase(this.deps.random);
    const pkcs12 = await buildPkcs12({
      privateKey, certificate: issued.record.der, chain: [...issued.chain], passphrase: pass, friendlyName: subject.name,
    });
    return { kind: 'issued', certificate: issued.record, chain: issued.chain, pkcs12, passphrase: passphrase ? undefined : pass };
  }

  /** Runs `fn`; a refusal or failure is audited (outside any rolled-back transaction) and re-thrown. */
  private audited<T>(ctx: RequestContext, action: string, target: string | null, fn: () => Promise<T>): Promise<T> {
    return runAudited({ audit: this.deps.store.audit, clock: this.deps.clock }, ctx, action, target, fn);
  }

}

/** Errors after which an approved request stays pending (it may succeed when approved again). */
const RETRYABLE: ReadonlySet<ErrorCode> = new Set(['internal', 'unavailable', 'request-not-pending', 'wrong-passphrase', 'rate-limited']);

/**
 * Re-reads `request` inside `tx` and throws `request-not-pending` unless it is still pending: of two
 * approvals racing to carry a request out, the second finds it done. (SQLite transactions are
 * serialised; on PostgreSQL the window is the READ COMMITTED snapshot of each statement.)
 */
export async function claimRequest(tx: Repositories, request: RequestRecord): Promise<void> {
  if (await tx.requests.lockPending(request.id)) return;
  const fresh = await tx.requests.get(request.id);
  throw new TiercaError('request-not-pending', `request ${request.id} is ${fresh?.status ?? 'gone'}`);
}

const actor = actorOf;

function expired(r: RequestRecord, now: Date): RequestRecord {
  return r.status === 'pending' && r.expiresAt.getTime() <= now.getTime() ? { ...r, status: 'expired' } : r;
}

/** Makes a principal and a token for it inside `tx`. Tokens: 32 random bytes, base64url; stored hashed. */
export async function createPrincipal(
  tx: Repositories,
  p: { name: string; role: Role; domains?: string[]; now: Date; random?: (n: number) => Buffer },
): Promise<{ principal: PrincipalRecord; token: string }> {
  const random = p.random ?? randomBytes;
  const principal: PrincipalRecord = {
    id: `prn-${random(8).toString('hex')}`,
    name: p.name,
    role: p.role,
    domains: p.domains ?? [],
    disabled: false,
    createdAt: p.now,
  };
  const token = `tca_${random(32).toString('base64url')}`;
  await tx.principals.insert(principal);
  await tx.tokens.insert({ id: `tok-${random(8).toString('hex')}`, principalId: principal.id, tokenHash: hashToken(token), createdAt: p.now });
  return { principal, token };
}
