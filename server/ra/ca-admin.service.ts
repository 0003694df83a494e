/**
 * CA administration: the CAs and domains as admins and relying parties see them, CA revocation
 * under dual control (the `ca.revoke` request kind, two sysadmins), and CRLs — publishing them now
 * and reading the newest one (admin and public routes alike).
 */
import type { CrlRecord, DomainRecord, OrganRecord, RequestRecord, Store } from '../storage/storage.ts';
import type { Clock } from '../clock.ts';
import { appendAudit } from '../audit/audit-log.ts';
import { TiercaError } from '../errors.ts';
import type { CaDirectory, LoadedCa } from '../ca/ca-directory.ts';
import type { CrlPublisher, PublishedCrl } from '../ca/crl-publisher.ts';
import type { Authorizer } from './authorizer.ts';
import { actorOf, runAudited } from './audited.ts';
import type { AuditAction } from './audit-actions.ts';
import type { RequestContext } from './permissions.ts';
import { completeRequest, type DualControl, type RequestKindHandler } from './dual-control.ts';
import { reasonOrRefuse } from './certificate-status.service.ts';
import { DAY_MS } from '../../pki/time-constants.ts';
import { askRootRevocation, offlineIssuerOf, refreshRootWaits } from '../ca/offline-root-requests.ts';

/** How long a CA revocation waits for its second sysadmin: it is urgent, and stale approvals are dangerous. */
export const CA_REVOCATION_REQUEST_LIFETIME_MS = DAY_MS;

export interface CaAdminServiceDeps {
  store: Pick<Store, 'domains' | 'organs' | 'crls' | 'audit' | 'transaction' | 'offlineRoot'>;
  cas: CaDirectory;
  crls: Pick<CrlPublisher, 'publish'>;
  authorizer: Pick<Authorizer, 'require'>;
  requests: Pick<DualControl, 'open' | 'waiting'>;
  clock: Clock;
}

export class CaAdminService {
  constructor(private readonly deps: CaAdminServiceDeps) {}

  /** The `ca.revoke` request kind. */
  get requestKind(): RequestKindHandler {
    return {
      permission: 'ca:revoke', domainScoped: false, lifetimeMs: CA_REVOCATION_REQUEST_LIFETIME_MS,
      execute: (ctx, request) => this.executeRevocation(ctx, request),
    };
  }

  /** Every CA (public: the `/ca` index). */
  publicList(): LoadedCa[] {
    return this.deps.cas.list();
  }

  /** A CA by id (public: `/ca/{id}.crt`), or undefined. */
  publicGet(id: string): LoadedCa | undefined {
    return this.deps.cas.get(id);
  }

  async list(ctx: RequestContext): Promise<LoadedCa[]> {
    await this.deps.authorizer.require(ctx, 'ca:read', 'ca.list', null);
    return this.deps.cas.list();
  }

  async get(ctx: RequestContext, id: string): Promise<LoadedCa> {
    await this.deps.authorizer.require(ctx, 'ca:read', 'ca.show', `ca:${id}`);
    const ca = this.deps.cas.get(id);
    if (!ca) throw new TiercaError('not-found', `no CA ${id}`);
    return ca;
  }

  async domains(ctx: RequestContext): Promise<(DomainRecord & { organs: OrganRecord[] })[]> {
    await this.deps.authorizer.require(ctx, 'ca:read', 'domain.list', null);
    const organs = await this.deps.store.organs.list();
    return (await this.deps.store.domains.list()).map((d) => ({ ...d, organs: organs.filter((o) => o.domain === d.slug) }));
  }

  /**
   * Asks for a CA's revocation (sysadmin). Revoking a CA is final and takes everything under it
   * down, so it runs under dual control: this opens a request that a second sysadmin approves, and
   * only then is the CA revoked — every certificate under it answers revoked at OCSP and `/status`,
   * nothing more is issued under it, and its parent's next CRL lists it. A domain CA under an
   * offline root is revoked by the root: approval asks the root for it ({@link askRoot}).
   */
  async revoke(ctx: RequestContext, id: string, reasonName: string): Promise<{ kind: 'pending'; request: RequestRecord }> {
    await this.deps.authorizer.require(ctx, 'ca:revoke', 'ca.revoke', `ca:${id}`);
    reasonOrRefuse(reasonName); // an unknown reason is refused before a request is opened
    return this.audited(ctx, 'ca.revoke', `ca:${id}`, async () => {
      const ca = this.deps.cas.get(id);
      if (!ca) throw new TiercaError('not-found', `no CA ${id}`);
      if (ca.record.layer === 'root') throw new TiercaError('conflict', 'the root is withdrawn by replacing the trust anchor, not revoked');
      if (ca.record.status === 'revoked') throw new TiercaError('revocation-final', `CA ${id} is already revoked`);
      if (this.deps.cas.revocationAwaitedFor(id) === id) {
        throw new TiercaError('conflict', `the revocation of CA ${id} was decided already and awaits the offline root (tierca root request)`, { detail: { ca: id } });
      }
      const open = await this.deps.requests.waiting('ca.revoke', (p) => p.caId === id);
      if (open) {
        throw new TiercaError('conflict', `request ${open.id} to revoke CA ${id} is already waiting for a second sysadmin`, { detail: { request: open.id } });
      }
      const request = await this.deps.requests.open(ctx, {
        kind: 'ca.revoke', target: `ca:${id}`, domain: ca.record.domain, tier: ca.record.tier,
        payload: { caId: id, reason: reasonName }, auditAction: 'ca.revoke.request', auditDetail: { reason: reasonName },
      });
      return { kind: 'pending', request };
    });
  }

  /** `ca.revoke`, approved: the CA is revoked, the request closed and both audited in one transaction; the parent's CRL is republished. */
  private async executeRevocation(ctx: RequestContext, request: RequestRecord): Promise<{ kind: 'done'; request: RequestRecord; result: Record<string, unknown> }> {
    const { caId, reason: reasonName } = request.payload as { caId: string; reason: string };
    const reason = reasonOrRefuse(reasonName);
    const ca = this.deps.cas.get(caId);
    if (!ca) throw new TiercaError('not-found', `no CA ${caId}`);
    if (ca.record.status === 'revoked') throw new TiercaError('revocation-final', `CA ${caId} is already revoked`);
    const now = this.deps.clock.now();
    if (offlineIssuerOf(this.deps.cas, ca)) return this.askRoot(ctx, request, ca, reasonName, reason, now);
    const result = { caId, status: 'revoked', reason: reasonName, revokedAt: now.toISOString() };
    const done = await this.deps.store.transaction(async (tx) => {
      const closed = await completeRequest(tx, request, result);
      await tx.cas.updateStatus(caId, 'revoked', now, reason);
      await appendAudit(tx.audit, now, {
        ...actorOf(ctx), action: 'ca.revoke', target: `ca:${caId}`, outcome: 'success',
        detail: { reason: reasonName, request: request.id, requestedBy: request.requestedBy, approvedBy: request.approvals },
      });
      return closed;
    });
    this.deps.cas.add({ ...ca, record: { ...ca.record, status: 'revoked', revokedAt: now, revocationReason: reason } });
    if (ca.record.parentId) await this.deps.crls.publish(ca.record.parentId);
    return { kind: 'done', request: done, result };
  }

  /**
   * `ca.revoke` of a domain CA under an offline root, approved (docs/decisions/0032): the root is
   * asked for the revocation (the next `tierca root request` carries it) and the CA issues nothing
   * from now on; its status — OCSP, CRLs, `/status` — turns revoked when the root's answer is imported.
   */
  private async askRoot(ctx: RequestContext, request: RequestRecord, ca: LoadedCa, reasonName: string, reason: number, now: Date): Promise<{ kind: 'done'; request: RequestRecord; result: Record<string, unknown> }> {
    const caId = ca.record.id;
    const result = { caId, status: 'revocation-awaiting-root', reason: reasonName, requestedAt: now.toISOString() };
    const done = await this.deps.store.transaction(async (tx) => {
      await askRootRevocation(tx, { ca, reason, now });
      const closed = await completeRequest(tx, request, result);
      await appendAudit(tx.audit, now, {
        ...actorOf(ctx), action: 'ca.revoke', target: `ca:${caId}`, outcome: 'success',
        detail: { reason: reasonName, awaitingRoot: true, serial: ca.record.serial, request: request.id, requestedBy: request.requestedBy, approvedBy: request.approvals },
      });
      return closed;
    });
    await refreshRootWaits(this.deps.store, this.deps.cas);
    return { kind: 'done', request: done, result };
  }

  /** Publishes CRLs now: of one CA, or of every CA. */
  async generateCrls(ctx: RequestContext, caId?: string): Promise<PublishedCrl[]> {
    const target = caId ? `ca:${caId}` : null;
    await this.deps.authorizer.require(ctx, 'crl:generate', 'crl.generate', target);
    const targets = caId ? [this.deps.cas.get(caId)] : this.deps.cas.list();
    if (targets.some((t) => !t)) throw new TiercaError('not-found', `no CA ${caId}`);
    return this.audited(ctx, 'crl.generate', target, async () => {
      const out: PublishedCrl[] = [];
      for (const ca of targets) out.push(...(await this.deps.crls.publish(ca!.record.id)));
      await appendAudit(this.deps.store.audit, this.deps.clock.now(), {
        ...actorOf(ctx), action: 'crl.generate', target, outcome: 'success', detail: { published: out.map((c) => `${c.caId}#${c.number}`) },
      });
      return out;
    });
  }

  /** The newest CRL (or delta CRL) of a CA, for an admin (`GET /api/v1/crls/{ca}`). */
  async latestCrl(ctx: RequestContext, caId: string, delta: boolean): Promise<CrlRecord> {
    await this.deps.authorizer.require(ctx, 'ca:read', 'crl.show', `ca:${caId}`);
    if (!this.deps.cas.get(caId)) throw new TiercaError('not-found', `no CA ${caId}`);
    return this.publishedCrl(caId, delta);
  }

  /** The newest CRL (or delta CRL) of a CA, as published (public: `/crl/{ca}.crl`). */
  async publishedCrl(caId: string, delta: boolean): Promise<CrlRecord> {
    const crl = await this.deps.store.crls.latest(caId, delta);
    if (!crl) throw new TiercaError('not-found', `no CRL published yet for ${caId}`);
    return crl;
  }

  private audited<T>(ctx: RequestContext, action: AuditAction, target: string | null, fn: () => Promise<T>): Promise<T> {
    return runAudited({ audit: this.deps.store.audit, clock: this.deps.clock }, ctx, action, target, fn);
  }
}
