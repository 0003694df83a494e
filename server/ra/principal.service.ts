/**
 * Principals — the people and machines that use the admin API: listing, creating one with its first
 * token, disabling, and issuing a principal's client certificate for mutual TLS.
 */
import { randomBytes } from 'node:crypto';
import type { CertificateRecord, PrincipalRecord, Repositories, RequestRecord, Role, Store } from '../storage/storage.ts';
import type { TiercaConfig } from '../config/load-config.ts';
import type { Clock } from '../clock.ts';
import { appendAudit } from '../audit/audit-log.ts';
import { TiercaError } from '../errors.ts';
import type { CertificateIssuer } from '../ca/certificate-issuer.ts';
import { hashToken, type Authorizer } from './authorizer.ts';
import { actorOf, runAudited } from './audited.ts';
import type { AuditAction } from './audit-actions.ts';
import type { RequestContext } from './permissions.ts';
import type { IssuancePreparer } from './issuance-preparer.ts';
import { completeRequest, type DualControl, type RequestKindHandler } from './dual-control.ts';
import { HOUR_MS } from '../../pki/time-constants.ts';

/** Default validity of a principal's client certificate (capped by the tier's user maximum). */
const PRINCIPAL_CERTIFICATE_DAYS = 365;
/** How long a request for a new sysadmin or officer waits for its second sysadmin. */
const PRINCIPAL_REQUEST_LIFETIME_MS = 24 * HOUR_MS;
/** Roles that can approve something: adding one is itself dual-controlled (decision 0014). */
const APPROVING_ROLES: ReadonlySet<Role> = new Set(['sysadmin', 'officer']);

export interface PrincipalInput {
  name: string;
  role: Role;
  domains?: string[];
}

/** What adding a principal gives: the principal and its token (shown once), or the request that waits for a second sysadmin. */
export type AddPrincipalResult =
  | { kind: 'created'; principal: PrincipalRecord; token: string }
  | { kind: 'pending'; request: RequestRecord };

export interface PrincipalServiceDeps {
  store: Pick<Store, 'principals' | 'domains' | 'audit' | 'transaction'>;
  config: Pick<TiercaConfig, 'tiers' | 'domains'>;
  authorizer: Pick<Authorizer, 'require'>;
  preparer: IssuancePreparer;
  issuer: Pick<CertificateIssuer, 'issue'>;
  requests: Pick<DualControl, 'open'>;
  clock: Clock;
  random?: (n: number) => Buffer;
}

export class PrincipalService {
  constructor(private readonly deps: PrincipalServiceDeps) {}

  async list(ctx: RequestContext): Promise<PrincipalRecord[]> {
    await this.deps.authorizer.require(ctx, 'principal:read', 'principal.list', null);
    return this.deps.store.principals.list();
  }

  /** The `principal.add` request kind: a new sysadmin or officer, approved by a second sysadmin. */
  get requestKind(): RequestKindHandler {
    return {
      permission: 'principal:manage', domainScoped: false, lifetimeMs: PRINCIPAL_REQUEST_LIFETIME_MS,
      execute: async (ctx, request) => {
        const input = await this.checked(request.payload as unknown as PrincipalInput);
        const now = this.deps.clock.now();
        const created = await this.deps.store.transaction(async (tx) => {
          const made = await createPrincipal(tx, { ...input, now, random: this.deps.random, createdBy: request.requestedBy, createdByRequest: request.id });
          // The request keeps who was made, never the token (shown once, in this approval's answer).
          await completeRequest(tx, request, { principal: made.principal.id, role: input.role });
          await appendAudit(tx.audit, now, {
            ...actorOf(ctx), action: 'principal.add', target: `principal:${made.principal.id}`, outcome: 'success',
            detail: { role: input.role, domains: input.domains, name: input.name, request: request.id, requestedBy: request.requestedBy },
          });
          return made;
        });
        const { id, name, role, domains, disabled } = created.principal;
        return { kind: 'done', request: { ...request, status: 'done', result: { principal: id, role } }, result: { principal: { id, name, role, domains, disabled }, token: created.token } };
      },
    };
  }

  /**
   * Adds a principal. An auditor or a device (who can approve nothing) is created at once and its
   * token returned once, stored only hashed; a sysadmin or an officer is a request that a second
   * sysadmin approves (decision 0014), whose approval returns the token once.
   */
  async add(ctx: RequestContext, input: PrincipalInput): Promise<AddPrincipalResult> {
    const { store } = this.deps;
    await this.deps.authorizer.require(ctx, 'principal:manage', 'principal.add', null);
    return this.audited(ctx, 'principal.add', null, async () => {
      const checked = await this.checked(input);
      if (APPROVING_ROLES.has(checked.role)) {
        const request = await this.deps.requests.open(ctx, {
          kind: 'principal.add', target: `principal:new:${checked.role}`, payload: { ...checked },
          auditAction: 'principal.add.request', auditDetail: { role: checked.role, domains: checked.domains, name: checked.name },
        });
        return { kind: 'pending', request };
      }
      const now = this.deps.clock.now();
      return store.transaction(async (tx) => {
        const created = await createPrincipal(tx, { ...checked, now, random: this.deps.random, createdBy: ctx.principal.id });
        await appendAudit(tx.audit, now, {
          ...actorOf(ctx), action: 'principal.add', target: `principal:${created.principal.id}`, outcome: 'success',
          detail: { role: checked.role, domains: checked.domains, name: checked.name },
        });
        return { kind: 'created' as const, ...created };
      });
    });
  }

  /** `input` with its domains checked: officers need at least one, other roles none. */
  private async checked(input: PrincipalInput): Promise<PrincipalInput & { domains: string[] }> {
    const domains = [...new Set(input.domains ?? [])];
    for (const d of domains) {
      if (!(await this.deps.store.domains.get(d))) throw new TiercaError('bad-request', `no domain ${d}`, { detail: { domain: d } });
    }
    if (input.role === 'officer' && domains.length === 0) throw new TiercaError('bad-request', 'an officer needs at least one domain');
    if (input.role !== 'officer' && domains.length > 0) throw new TiercaError('bad-request', `only officers are scoped to domains, not a ${input.role}`);
    return { name: input.name, role: input.role, domains };
  }

  /** Disables a principal: its tokens and client certificates stop authenticating at once. */
  async disable(ctx: RequestContext, id: string): Promise<PrincipalRecord> {
    const { store } = this.deps;
    await this.deps.authorizer.require(ctx, 'principal:manage', 'principal.disable', `principal:${id}`);
    return this.audited(ctx, 'principal.disable', `principal:${id}`, async () => {
      const principal = await store.principals.get(id);
      if (!principal) throw new TiercaError('not-found', `no principal ${id}`, { detail: { principal: id } });
      if (id === ctx.principal.id) throw new TiercaError('conflict', 'a principal may not disable itself');
      if (principal.disabled) return principal;
      const now = this.deps.clock.now();
      await store.transaction(async (tx) => {
        await tx.principals.setDisabled(id, true);
        await appendAudit(tx.audit, now, {
          ...actorOf(ctx), action: 'principal.disable', target: `principal:${id}`, outcome: 'success', detail: { role: principal.role, name: principal.name },
        });
      });
      return { ...principal, disabled: true };
    });
  }

  /**
   * Issues a principal's client certificate for mutual TLS on the admin API, from the principal's
   * CSR (the key never leaves its holder). Profile user-sign (clientAuth) from the lowest tier's CA of
   * the principal's first domain (the first configured domain — the city — for principals without
   * domains); subject C, ST, L of that domain, O the organisation, OU `tierca principal`, CN the
   * principal id. The certificate's subject id is the principal id: that is how a TLS client
   * certificate is mapped back to its principal. It is revoked like any certificate.
   */
  async issueCertificate(ctx: RequestContext, id: string, input: { csr: string | Buffer; days?: number }): Promise<{ certificate: CertificateRecord; chain: readonly Buffer[] }> {
    const { store, config, preparer } = this.deps;
    await this.deps.authorizer.require(ctx, 'principal:manage', 'principal.certificate', `principal:${id}`);
    return this.audited(ctx, 'principal.certificate', `principal:${id}`, async () => {
      const principal = await store.principals.get(id);
      if (!principal) throw new TiercaError('not-found', `no principal ${id}`, { detail: { principal: id } });
      if (principal.disabled) throw new TiercaError('conflict', `principal ${id} is disabled`, { detail: { principal: id, status: 'disabled' } });
      const tier = [...config.tiers.values()][0];
      const domain = principal.domains[0] ?? config.domains[0]?.slug;
      if (!domain) throw new TiercaError('ca-unavailable', 'no domain is configured to issue principal certificates from');
      const key = await preparer.checkKey(tier, 'user-sign', { csr: input.csr });
      const now = this.deps.clock.now();
      const { order } = await preparer.prepare({
        tier, domain, profile: 'user-sign', holderKind: 'user', days: input.days ?? Math.min(PRINCIPAL_CERTIFICATE_DAYS, tier.maxValidityDays.user),
        name: { kind: 'principal', principalId: principal.id, domain }, subjectId: principal.id, names: { dns: [], ip: [], email: [] },
        key, requestId: null, now,
      });
      const issued = await this.deps.issuer.issue(order, now, {
        ...actorOf(ctx), action: 'principal.certificate', detail: { principal: principal.id, role: principal.role },
      });
      return { certificate: issued.record, chain: issued.chain };
    });
  }

  private audited<T>(ctx: RequestContext, action: AuditAction, target: string | null, fn: () => Promise<T>): Promise<T> {
    return runAudited({ audit: this.deps.store.audit, clock: this.deps.clock }, ctx, action, target, fn);
  }
}

/** Makes a principal and a token for it inside `tx`. Tokens: 32 random bytes, base64url; stored hashed. */
export async function createPrincipal(
  tx: Pick<Repositories, 'principals' | 'tokens'>,
  p: { name: string; role: Role; domains?: string[]; now: Date; random?: (n: number) => Buffer; createdBy?: string | null; createdByRequest?: string | null },
): Promise<{ principal: PrincipalRecord; token: string }> {
  const random = p.random ?? randomBytes;
  const principal: PrincipalRecord = {
    id: `prn-${random(8).toString('hex')}`, name: p.name, role: p.role, domains: p.domains ?? [], disabled: false, createdAt: p.now,
    createdBy: p.createdBy ?? null, createdByRequest: p.createdByRequest ?? null,
  };
  const token = `tca_${random(32).toString('base64url')}`;
  await tx.principals.insert(principal);
  await tx.tokens.insert({ id: `tok-${random(8).toString('hex')}`, principalId: principal.id, tokenHash: hashToken(token), createdAt: p.now });
  return { principal, token };
}
