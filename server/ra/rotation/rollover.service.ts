/**
 * CA key rollover under dual control (two sysadmins; the `ca.rollover` request kind): asking for
 * one, carrying it out once approved (server/ca/ca-rollover.ts signs), and the link certificates
 * relying parties fetch to bridge old and new keys.
 */
import type { CaLinkRecord, RequestRecord, Store } from '../../storage/storage.ts';
import type { Clock } from '../../clock.ts';
import { TiercaError } from '../../errors.ts';
import { lineageOf, type CaDirectory, type LoadedCa } from '../../ca/ca-directory.ts';
import type { CaRollover, RolloverOutcome } from '../../ca/ca-rollover.ts';
import type { Authorizer } from '../authorizer.ts';
import { actorOf, runAudited } from '../audited.ts';
import type { RequestContext } from '../permissions.ts';
import { completeRequest, type ApprovalResult, type DualControl, type RequestKindHandler } from '../dual-control.ts';
import { DAY_MS } from '../../../pki/time-constants.ts';
import { offlineIssuerOf, type requestRootRollover, type RootRolloverRequested } from '../../ca/offline-root-requests.ts';

/** How long a CA rollover request waits for its second sysadmin. */
export const ROLLOVER_REQUEST_LIFETIME_MS = DAY_MS;

export interface RolloverRequestResult {
  kind: 'pending';
  request: RequestRecord;
}

export interface RolloverServiceDeps {
  store: Pick<Store, 'audit'>;
  cas: Pick<CaDirectory, 'get' | 'current' | 'refuseOfflineRollover'>;
  authorizer: Pick<Authorizer, 'require'>;
  requests: Pick<DualControl, 'open' | 'waiting'>;
  rollovers: Pick<CaRollover, 'replay' | 'rollover' | 'links'>;
  /** A domain CA's rollover under an offline root: the new key made here, its certificate asked of the root (server/ca/offline-root-requests.ts). */
  rootRollover: (p: Parameters<typeof requestRootRollover>[1]) => Promise<RootRolloverRequested>;
  clock: Clock;
}

export class RolloverService {
  constructor(private readonly deps: RolloverServiceDeps) {}

  /** The `ca.rollover` request kind. */
  get requestKind(): RequestKindHandler {
    return {
      permission: 'ca:rollover', domainScoped: false, lifetimeMs: ROLLOVER_REQUEST_LIFETIME_MS,
      execute: (ctx, request) => this.executeRequest(ctx, request),
    };
  }

  /**
   * Asks for a CA key rollover (sysadmin). It runs under dual control: this opens a `ca.rollover`
   * request that a second sysadmin approves (`POST /requests/{id}/approve`), which carries it out
   * through {@link executeRollover}. The root is rolled over only as a ceremony (`ceremony: true`).
   */
  async requestRollover(ctx: RequestContext, caName: string, input: { ceremony?: boolean } = {}): Promise<RolloverRequestResult> {
    const target = `ca:${caName}`;
    await this.deps.authorizer.require(ctx, 'ca:rollover', 'ca.rollover', target);
    return runAudited({ audit: this.deps.store.audit, clock: this.deps.clock }, ctx, 'ca.rollover', target, async () => {
      const ca = this.rolloverTarget(caName, input.ceremony);
      const lineage = lineageOf(ca.record);
      const open = await this.deps.requests.waiting('ca.rollover', (payload) => payload.ca === lineage);
      if (open) {
        throw new TiercaError('conflict', `request ${open.id} to roll CA ${lineage} over is already waiting for a second sysadmin`, { detail: { request: open.id } });
      }
      const request = await this.deps.requests.open(ctx, {
        kind: 'ca.rollover', target: `ca:${lineage}`, domain: ca.record.domain, tier: ca.record.tier,
        payload: { ca: lineage, ceremony: !!input.ceremony, current: ca.record.id },
        auditAction: 'ca.rollover.request', auditDetail: { current: ca.record.id, layer: ca.record.layer, ceremony: !!input.ceremony },
      });
      return { kind: 'pending', request };
    });
  }

  /**
   * THE SEAM for dual control: carries out a CA rollover now, as `ctx`. An approved `ca.rollover`
   * request calls it with the request (closed in the rollover's own transaction); without an approval
   * it is a single sysadmin's act (for tools and tests that do not need the second approver). The
   * request id makes it idempotent.
   */
  async executeRollover(ctx: RequestContext, p: { caName: string; requestId: string; ceremony?: boolean; approval?: RequestRecord }): Promise<RolloverOutcome> {
    const target = `ca:${p.caName}`;
    await this.deps.authorizer.require(ctx, 'ca:rollover', 'ca.rollover', target);
    const earlier = await this.deps.rollovers.replay(p.requestId, p.caName);
    if (earlier) return earlier;
    this.rolloverTarget(p.caName, p.ceremony);
    const approval = p.approval;
    return this.deps.rollovers.rollover({
      caName: p.caName,
      requestId: p.requestId,
      now: this.deps.clock.now(),
      actor: actorOf(ctx),
      auditDetail: approval ? { request: approval.id, requestedBy: approval.requestedBy, approvedBy: approval.approvals } : {},
      inTransaction: approval
        ? async (tx, result) => {
            await completeRequest(tx, approval, result);
          }
        : undefined,
    });
  }

  /** The link certificates of a CA (public: relying parties fetch them). */
  links(caName: string): Promise<CaLinkRecord[]> {
    return this.deps.rollovers.links(caName);
  }

  /** The link certificates of a CA for an admin (`GET /api/v1/cas/{id}/links`). */
  async listLinks(ctx: RequestContext, caName: string): Promise<CaLinkRecord[]> {
    await this.deps.authorizer.require(ctx, 'ca:read', 'ca.links', `ca:${caName}`);
    if (!this.deps.cas.get(caName) && !this.deps.cas.current(caName)) throw new TiercaError('not-found', `no CA ${caName}`);
    return this.deps.rollovers.links(caName);
  }

  /** `ca.rollover` requests, once approved. */
  private async executeRequest(ctx: RequestContext, request: RequestRecord): Promise<ApprovalResult> {
    const { ca, ceremony } = request.payload as { ca: string; ceremony?: boolean };
    const target = this.rolloverTarget(ca, ceremony);
    if (offlineIssuerOf(this.deps.cas, target)) {
      // Its new certificate is the offline root's to sign: the new key now, the certificate in a bundle.
      const asked = await this.deps.rootRollover({
        caName: ca, now: this.deps.clock.now(), actor: actorOf(ctx),
        auditDetail: { request: request.id, requestedBy: request.requestedBy, approvedBy: request.approvals },
        inTransaction: async (tx, result) => {
          await completeRequest(tx, request, result);
        },
      });
      const result = { ...asked };
      return { kind: 'done', request: { ...request, status: 'done', result }, result };
    }
    const outcome = await this.executeRollover(ctx, { caName: ca, requestId: request.id, ceremony, approval: request });
    const result = { previous: outcome.previous.record.id, current: outcome.current.record.id, links: outcome.links.map((l) => l.id) };
    return { kind: 'done', request: { ...request, status: 'done', result }, result };
  }

  private rolloverTarget(caName: string, ceremony: boolean | undefined): LoadedCa {
    const ca = this.deps.cas.current(caName);
    if (!ca) throw new TiercaError('not-found', `no CA ${caName}`);
    // Under an offline root (docs/offline-root.md) the root's own key is not here: refused before a
    // request is opened. A domain CA under it is rolled over by asking the root (requestKind).
    this.deps.cas.refuseOfflineRollover(ca, false);
    if (ca.record.layer === 'root' && !ceremony) {
      throw new TiercaError('bad-request', 'rolling the root over replaces the trust anchor: it is done as a key ceremony (ceremony: true, tierca ca rollover root --ceremony)');
    }
    if (ca.record.status !== 'active') throw new TiercaError('conflict', `CA ${ca.record.id} is ${ca.record.status}`);
    return ca;
  }
}
