/**
 * Dual control, one mechanism for every request kind that needs it: the first principal's call opens
 * a request (`requests` table, 202), a different principal holding the kind's permission (in the
 * request's domain, for officers) approves it, and the handler registered for the kind carries it
 * out — once: a request that is done stays done, however many approvals race (each handler closes
 * the request with {@link completeRequest} in the transaction of its change).
 *
 * The kinds, registered by the composition root (server/services.ts): `issue` (t3 issuance, two
 * officers), `ca.revoke` (two sysadmins), `escrow.recover` (two officers), `ca.rollover` (two sysadmins),
 * `principal.add` (a new sysadmin or officer: two sysadmins), `domain.add` (a new domain and its CAs: two sysadmins).
 *
 * Who may approve (docs/decisions/0014-dual-control-principals.md): neither the requester, nor an
 * earlier approver, nor a principal the requester created, nor one created by a request the requester
 * approved — so a principal minted by one person never counts as that person's second.
 */
import { randomUUID } from 'node:crypto';
import type { Repositories, RequestRecord, Store } from '../storage/storage.ts';
import type { Clock } from '../clock.ts';
import { appendAudit } from '../audit/audit-log.ts';
import { TiercaError, type ErrorCode } from '../errors.ts';
import type { Authorizer } from './authorizer.ts';
import { actorOf, runAudited } from './audited.ts';
import type { AuditAction } from './audit-actions.ts';
import type { Permission, RequestContext } from './permissions.ts';
import type { IssueResult } from './issuance.service.ts';
import type { RecoveredHistory, RecoveredKey } from './escrow.service.ts';

/** The kinds of request that run under dual control (the `action` column of `requests`). */
export const REQUEST_KINDS = ['issue', 'ca.revoke', 'escrow.recover', 'escrow.recover-history', 'ca.rollover', 'principal.add', 'domain.add'] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];

/** What approving a request gives: still pending, an issued certificate, a recovered key, or another kind done. */
export type ApprovalResult =
  | IssueResult
  | RecoveredKey
  | RecoveredHistory
  | { kind: 'done'; request: RequestRecord; result: Record<string, unknown> };

/** How a request kind is asked for, approved and carried out. */
export interface RequestKindHandler {
  /** The permission the requester and every approver must hold (besides `request:approve` to approve). */
  readonly permission: Permission;
  /** Whether that permission is checked in the request's domain (officers act only inside theirs). */
  readonly domainScoped: boolean;
  /** How long a request waits for its approvals before it expires. */
  readonly lifetimeMs: number;
  /**
   * Carries out `request`, which now has every approval it needs. Must close it with
   * {@link completeRequest} in the same transaction as the change and its audit record.
   */
  execute(ctx: RequestContext, request: RequestRecord): Promise<ApprovalResult>;
}

/** A request to open for a second approver (see {@link DualControl.open}). */
export interface OpenRequestInput {
  kind: RequestKind;
  /** What the request acts on, for the audit log: 'ca:yuhu-t2', 'certificate:yuhu-t2/0a1b…'. */
  target: string;
  subjectId?: string | null;
  domain?: string | null;
  tier?: string | null;
  /** What the handler needs; never a secret in plain (it is stored as JSON). May use the request id. */
  payload: Record<string, unknown> | ((requestId: string) => Record<string, unknown>);
  /** Approvals needed besides the requester; default 1. */
  approvalsRequired?: number;
  /** The audit action of opening the request (`<kind>.request`, `certificate.request` for issuance). */
  auditAction: AuditAction;
  auditDetail?: Record<string, unknown>;
}

/** Errors after which an approved request stays pending (it may succeed when approved again). */
const RETRYABLE: ReadonlySet<ErrorCode> = new Set(['internal', 'unavailable', 'request-not-pending', 'wrong-passphrase', 'rate-limited']);

export interface DualControlDeps {
  store: Pick<Store, 'requests' | 'audit' | 'transaction' | 'principals'>;
  authorizer: Pick<Authorizer, 'require'>;
  clock: Clock;
}

export class DualControl {
  private readonly handlers = new Map<RequestKind, RequestKindHandler>();

  constructor(private readonly deps: DualControlDeps) {}

  /** Registers the handler of `kind`. Each kind once: a second registration is a programming error. */
  register(kind: RequestKind, handler: RequestKindHandler): void {
    if (this.handlers.has(kind)) throw new Error(`request kind ${kind} is already registered`);
    this.handlers.set(kind, handler);
  }

  /** Opens a request and audits it. The caller has checked that `ctx` may ask for it. */
  async open(ctx: RequestContext, input: OpenRequestInput): Promise<RequestRecord> {
    const handler = this.handlers.get(input.kind);
    if (!handler) throw new Error(`no handler is registered for request kind ${input.kind}`);
    const now = this.deps.clock.now();
    const id = `req-${randomUUID()}`;
    const request: RequestRecord = {
      id, action: input.kind, subjectId: input.subjectId ?? null, domain: input.domain ?? null, tier: input.tier ?? null,
      payload: typeof input.payload === 'function' ? input.payload(id) : input.payload,
      requestedBy: ctx.principal.id, approvals: [], approvalsRequired: input.approvalsRequired ?? 1, status: 'pending', result: null,
      createdAt: now, expiresAt: new Date(now.getTime() + handler.lifetimeMs),
    };
    await this.deps.store.transaction(async (tx) => {
      await tx.requests.insert(request);
      await appendAudit(tx.audit, now, {
        ...actorOf(ctx), action: input.auditAction, target: input.target, outcome: 'success',
        detail: { ...(input.auditDetail ?? {}), request: request.id },
      });
    });
    return request;
  }

  /** The pending, unexpired request of `kind` that `matches`, if one is waiting (to refuse a second one). */
  async waiting(kind: RequestKind, matches: (payload: Record<string, unknown>) => boolean): Promise<RequestRecord | undefined> {
    const now = this.deps.clock.now();
    return (await this.deps.store.requests.list({ status: 'pending' }))
      .find((r) => r.action === kind && expiredAt(r, now).status === 'pending' && matches(r.payload));
  }

  async list(ctx: RequestContext, filter: { status?: RequestRecord['status'] }): Promise<RequestRecord[]> {
    await this.deps.authorizer.require(ctx, 'request:read', 'request.list', null);
    const now = this.deps.clock.now();
    return (await this.deps.store.requests.list(filter)).map((r) => expiredAt(r, now));
  }

  /**
   * Approves a pending request. The approver needs `request:approve` and the kind's own permission
   * (in the request's domain when the kind is domain-scoped), and may be neither the requester nor
   * an earlier approver. With enough approvals the request is carried out; one that can no longer be
   * carried out (its subject revoked, its CA gone) is closed as failed — unless a racing approval
   * has carried it out meanwhile: a done request stays done.
   */
  async approve(ctx: RequestContext, id: string): Promise<ApprovalResult> {
    const { request, handler } = await this.decisionRequest(ctx, id, 'request.approve');
    return this.audited(ctx, 'request.approve', `request:${id}`, async () => {
      const now = this.deps.clock.now();
      const current = await this.current(request, now);
      if (current.status !== 'pending') throw new TiercaError('request-not-pending', `request ${id} is ${current.status}`, { detail: { request: id, status: current.status } });
      if (current.requestedBy === ctx.principal.id || current.approvals.includes(ctx.principal.id)) {
        throw new TiercaError('policy-self-approval', 'a principal may not approve its own request, nor approve twice', { detail: { request: id } });
      }
      await this.checkIndependent(ctx.principal.id, [current.requestedBy, ...current.approvals]);
      const approvals = [...current.approvals, ctx.principal.id];
      if (approvals.length < current.approvalsRequired) {
        await this.deps.store.transaction(async (tx) => {
          await claimRequest(tx, current);
          await tx.requests.update(id, { approvals });
          await appendAudit(tx.audit, now, { ...actorOf(ctx), action: 'request.approve', target: `request:${id}`, outcome: 'success', detail: { action: current.action, approvals } });
        });
        return { kind: 'pending', request: { ...current, approvals } };
      }
      try {
        return await handler.execute(ctx, { ...current, approvals });
      } catch (err) {
        if (err instanceof TiercaError && !RETRYABLE.has(err.code)) await this.closeIfPending(id, { status: 'failed', result: { error: err.code } });
        throw err;
      }
    });
  }

  async reject(ctx: RequestContext, id: string): Promise<RequestRecord> {
    const { request } = await this.decisionRequest(ctx, id, 'request.reject');
    return this.audited(ctx, 'request.reject', `request:${id}`, async () => {
      const now = this.deps.clock.now();
      const current = await this.current(request, now);
      if (current.status !== 'pending') throw new TiercaError('request-not-pending', `request ${id} is ${current.status}`, { detail: { request: id, status: current.status } });
      await this.deps.store.transaction(async (tx) => {
        await claimRequest(tx, current);
        await tx.requests.update(id, { status: 'rejected' });
        await appendAudit(tx.audit, now, { ...actorOf(ctx), action: 'request.reject', target: `request:${id}`, outcome: 'success', detail: { action: current.action } });
      });
      return { ...current, status: 'rejected' };
    });
  }

  /**
   * Refuses an approver that is not independent of the requester and the earlier approvers
   * (`policy-self-approval`): created by one of them, created by a request one of them approved, or
   * standing for the same person — a principal made directly, with no second approval (before
   * migration 0005 every one was), stands for its maker, up the chain. Two minted principals are
   * still one person.
   */
  private async checkIndependent(approverId: string, others: readonly string[]): Promise<void> {
    const approver = await this.deps.store.principals.get(approverId);
    if (!approver) return;
    const person = await this.personOf(approverId);
    for (const other of others) {
      const role = other === others[0] ? 'the requester' : 'an earlier approver';
      if (approver.createdBy === other) {
        throw new TiercaError('policy-self-approval', `principal ${approverId} was created by ${role} ${other}: its approval does not count`);
      }
      if (approver.createdByRequest) {
        const origin = await this.deps.store.requests.get(approver.createdByRequest);
        if (origin?.approvals.includes(other)) {
          throw new TiercaError('policy-self-approval', `principal ${approverId} was created by request ${origin.id}, which ${role} ${other} approved: its approval does not count`);
        }
      }
      if ((await this.personOf(other)) === person) {
        throw new TiercaError('policy-self-approval', `principal ${approverId} and ${role} ${other} were both made by ${person} alone: its approval does not count`);
      }
    }
  }

  /** The principal a principal stands for: itself, or — made directly by another, with no second approval — its maker's. */
  private async personOf(id: string): Promise<string> {
    let current = id;
    for (let depth = 0; depth < 32; depth++) {
      const p = await this.deps.store.principals.get(current);
      if (!p?.createdBy || p.createdByRequest) return current;
      current = p.createdBy;
    }
    return current;
  }

  /**
   * The request a decision is about, and its handler, once `ctx` may decide it: `request:approve`,
   * then the kind's permission in the request's domain. Denials are audited.
   */
  private async decisionRequest(ctx: RequestContext, id: string, auditAction: AuditAction): Promise<{ request: RequestRecord; handler: RequestKindHandler }> {
    const request = await this.deps.store.requests.get(id);
    if (!request) throw new TiercaError('not-found', `no request ${id}`, { detail: { request: id } });
    const target = `request:${id}`;
    await this.deps.authorizer.require(ctx, 'request:approve', auditAction, target);
    const handler = this.handlers.get(request.action as RequestKind);
    if (!handler) {
      return this.audited(ctx, auditAction, target, async () => {
        throw new TiercaError('conflict', `this server cannot carry out ${request.action} requests`);
      });
    }
    await this.deps.authorizer.require(ctx, handler.permission, auditAction, target, handler.domainScoped ? request.domain : null);
    return { request, handler };
  }

  /** The request as of `now`; a pending request past its expiry is marked expired in the database too. */
  private async current(request: RequestRecord, now: Date): Promise<RequestRecord> {
    const current = expiredAt(request, now);
    if (current.status === 'expired' && request.status === 'pending') await this.closeIfPending(request.id, { status: 'expired' });
    return current;
  }

  /** Closes request `id` with `change` only if it is still pending (never overwrites a done request). */
  private async closeIfPending(id: string, change: Pick<RequestRecord, 'status'> & Partial<Pick<RequestRecord, 'result'>>): Promise<void> {
    await this.deps.store.transaction(async (tx) => {
      if (await tx.requests.lockPending(id)) await tx.requests.update(id, change);
    }).catch(() => undefined);
  }

  private audited<T>(ctx: RequestContext, action: AuditAction, target: string | null, fn: () => Promise<T>): Promise<T> {
    return runAudited({ audit: this.deps.store.audit, clock: this.deps.clock }, ctx, action, target, fn);
  }
}

/**
 * Re-reads `request` inside `tx` and throws `request-not-pending` unless it is still pending: of two
 * approvals racing to carry a request out, the second finds it done. The row stays locked to the
 * end of `tx` (SQLite transactions are serialised; on PostgreSQL the no-op UPDATE takes the row lock).
 */
export async function claimRequest(tx: Pick<Repositories, 'requests'>, request: Pick<RequestRecord, 'id'>): Promise<void> {
  if (await tx.requests.lockPending(request.id)) return;
  const fresh = await tx.requests.get(request.id);
  throw new TiercaError('request-not-pending', `request ${request.id} is ${fresh?.status ?? 'gone'}`);
}

/** Inside `tx`: claims `request` ({@link claimRequest}) and marks it done with `result` and its approvals. */
export async function completeRequest(tx: Pick<Repositories, 'requests'>, request: RequestRecord, result: Record<string, unknown>): Promise<RequestRecord> {
  await claimRequest(tx, request);
  await tx.requests.update(request.id, { approvals: request.approvals, status: 'done', result });
  return { ...request, status: 'done', result };
}

/** `r` as of `now`: a pending request past its expiry reads as expired. */
export function expiredAt(r: RequestRecord, now: Date): RequestRecord {
  return r.status === 'pending' && r.expiresAt.getTime() <= now.getTime() ? { ...r, status: 'expired' } : r;
}
