/**
 * Adding a domain to a running installation (sysadmin, dual control: the `domain.add` request kind,
 * two sysadmins, like every CA change). The request carries the domain as a configuration file names
 * it and is checked when opened; the approval makes the domain's CAs (server/ca/domain-ceremony.ts) —
 * under an offline root they then wait for the root's certificate.
 */
import type { RequestRecord, Store } from '../storage/storage.ts';
import type { Clock } from '../clock.ts';
import { TiercaError } from '../errors.ts';
import { checkNewDomain, type addDomain, type DomainAdded, type NewDomain } from '../ca/domain-ceremony.ts';
import type { Authorizer } from './authorizer.ts';
import { actorOf, runAudited } from './audited.ts';
import type { RequestContext } from './permissions.ts';
import { completeRequest, type ApprovalResult, type DualControl, type RequestKindHandler } from './dual-control.ts';
import { DAY_MS } from '../../pki/time-constants.ts';

/** How long a request to add a domain waits for its second sysadmin. */
export const DOMAIN_REQUEST_LIFETIME_MS = DAY_MS;

export interface DomainAdminServiceDeps {
  store: Pick<Store, 'audit' | 'meta'>;
  authorizer: Pick<Authorizer, 'require'>;
  requests: Pick<DualControl, 'open' | 'waiting'>;
  /** Makes the domain's CAs (server/ca/domain-ceremony.ts addDomain over this instance's keystore). */
  addDomain: (p: Parameters<typeof addDomain>[1]) => Promise<DomainAdded>;
  clock: Clock;
}

export class DomainAdminService {
  constructor(private readonly deps: DomainAdminServiceDeps) {}

  /** The `domain.add` request kind. */
  get requestKind(): RequestKindHandler {
    return {
      permission: 'domain:add', domainScoped: false, lifetimeMs: DOMAIN_REQUEST_LIFETIME_MS,
      execute: (ctx, request) => this.execute(ctx, request),
    };
  }

  /**
   * Asks for a new domain (sysadmin). Checked now against the stored configuration — a bad or
   * clashing domain is refused before any request opens — and carried out when a second sysadmin
   * approves.
   */
  async request(ctx: RequestContext, domain: NewDomain): Promise<{ kind: 'pending'; request: RequestRecord }> {
    const target = `domain:${domain.slug}`;
    await this.deps.authorizer.require(ctx, 'domain:add', 'domain.add', target);
    return runAudited({ audit: this.deps.store.audit, clock: this.deps.clock }, ctx, 'domain.add', target, async () => {
      const checked = checkNewDomain((await this.deps.store.meta.get('config'))!, domain).config;
      const open = await this.deps.requests.waiting('domain.add', (p) => p.slug === domain.slug);
      if (open) throw new TiercaError('conflict', `request ${open.id} to add domain ${domain.slug} is already waiting for a second sysadmin`, { detail: { request: open.id } });
      const request = await this.deps.requests.open(ctx, {
        kind: 'domain.add', target, domain: null, tier: null, payload: { ...domain },
        auditAction: 'domain.add.request', auditDetail: { name: checked.name, dnsSuffix: checked.dnsSuffix, ipRanges: checked.ipRanges },
      });
      return { kind: 'pending', request };
    });
  }

  private async execute(ctx: RequestContext, request: RequestRecord): Promise<ApprovalResult> {
    const added = await this.deps.addDomain({
      domain: request.payload as unknown as NewDomain, now: this.deps.clock.now(), actor: actorOf(ctx),
      auditDetail: { request: request.id, requestedBy: request.requestedBy, approvedBy: request.approvals },
      inTransaction: async (tx, result) => {
        await completeRequest(tx, request, result);
      },
    });
    const result = { ...added };
    return { kind: 'done', request: { ...request, status: 'done', result }, result };
  }
}
