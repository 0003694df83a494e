// Dual control over an in-memory store (no database): opening, approving, rejecting and expiring
// requests, who may approve (decision 0014), a request carried out once, and what a failing
// handler leaves behind. The integration suites (dual-control-principals, approval-race, roles)
// cover the same engine on SQLite and PostgreSQL through the API.
import { beforeEach, describe, expect, it } from 'vitest';
import { DualControl, completeRequest, type RequestKindHandler } from '../../server/ra/dual-control.ts';
import { Authorizer } from '../../server/ra/authorizer.ts';
import { appendAudit, verifyAuditChain } from '../../server/audit/audit-log.ts';
import { FixedClock } from '../../server/clock.ts';
import { TiercaError, type ErrorCode } from '../../server/errors.ts';
import type { RequestContext } from '../../server/ra/permissions.ts';
import type { PrincipalRecord, RequestRecord, Role, Store } from '../../server/storage/storage.ts';
import { memoryRequestsStore, type MemoryRequestsStore } from '../helpers/memory-requests-store.ts';

const T0 = new Date('2026-05-04T08:00:00Z');
const LIFETIME_MS = 24 * 3600 * 1000;

const principal = (id: string, role: Role, extra: Partial<PrincipalRecord> = {}): PrincipalRecord => ({
  id, name: id, role, domains: role === 'officer' ? ['yuhu'] : [], disabled: false, createdAt: T0, createdBy: null, createdByRequest: null, ...extra,
});

const PRINCIPALS: PrincipalRecord[] = [
  principal('s1', 'sysadmin'), principal('s2', 'sysadmin'), principal('s3', 'sysadmin'),
  // Made by s1 alone (no second approval): it stands for s1.
  principal('s4', 'sysadmin', { createdBy: 's1' }),
  // Made by s1's request req-minted, which s2 approved.
  principal('s5', 'sysadmin', { createdBy: 's1', createdByRequest: 'req-minted' }),
  principal('o1', 'officer'), principal('o2', 'officer'), principal('o3', 'officer', { domains: ['shaoshan'] }),
  principal('a1', 'auditor'),
];

let store: MemoryRequestsStore;
let clock: FixedClock;
let dual: DualControl;
/** Each handler's carried-out requests, counted inside the transaction that closed them. */
let carriedOut: Record<string, string[]>;
/** What the next execution of a kind throws, once. */
let failNext: Partial<Record<string, ErrorCode>>;

const ctx = (id: string): RequestContext => {
  const p = PRINCIPALS.find((x) => x.id === id)!;
  return { principal: { id: p.id, name: p.name, role: p.role, domains: p.domains }, source: '127.0.0.1', requestId: `r-${id}` };
};

function handler(kind: string, permission: RequestKindHandler['permission'], domainScoped: boolean): RequestKindHandler {
  return {
    permission, domainScoped, lifetimeMs: LIFETIME_MS,
    execute: async (c, request) => {
      const code = failNext[kind];
      if (code) {
        delete failNext[kind];
        throw new TiercaError(code, `the ${kind} handler failed with ${code}`);
      }
      return store.transaction(async () => {
        const done = await completeRequest(store, request, { by: c.principal.id });
        await appendAudit(store.audit, clock.now(), {
          principalId: c.principal.id, role: c.principal.role, source: c.source, requestId: c.requestId,
          action: 'ca.revoke', target: `request:${request.id}`, outcome: 'success', detail: {},
        });
        (carriedOut[kind] ??= []).push(request.id);
        return { kind: 'done' as const, request: done, result: done.result! };
      });
    },
  };
}

const openRevoke = (by = 's1', approvalsRequired = 1) =>
  dual.open(ctx(by), { kind: 'ca.revoke', target: 'ca:yuhu', payload: (id) => ({ ca: 'yuhu', echo: id }), approvalsRequired, auditAction: 'ca.revoke.request' });

const openIssue = (by = 'o1') =>
  dual.open(ctx(by), { kind: 'issue', target: 'subject:s-1', subjectId: 's-1', domain: 'yuhu', tier: 't3', payload: {}, auditAction: 'certificate.request' });

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return err instanceof TiercaError ? err.code : `not a TiercaError: ${String(err)}`;
  }
  return 'no error';
}

const requestRow = (id: string): RequestRecord => store.rows.requests().find((r) => r.id === id)!;

beforeEach(async () => {
  store = memoryRequestsStore(PRINCIPALS);
  await store.requests.insert({
    id: 'req-minted', action: 'principal.add', subjectId: null, domain: null, tier: null, payload: {}, requestedBy: 's1', approvals: ['s2'],
    approvalsRequired: 1, status: 'done', result: { principal: 's5' }, createdAt: T0, expiresAt: new Date(T0.getTime() + LIFETIME_MS),
  });
  clock = new FixedClock(T0);
  dual = new DualControl({ store, authorizer: new Authorizer({ audit: store.audit } as unknown as Store, clock), clock });
  carriedOut = {};
  failNext = {};
  dual.register('ca.revoke', handler('ca.revoke', 'ca:revoke', false));
  dual.register('issue', handler('issue', 'certificate:issue', true));
});

describe('opening a request', () => {
  it('stores it pending with its expiry and the payload made with its id, and audits it', async () => {
    const request = await openRevoke();
    const row = requestRow(request.id);
    expect(row).toMatchObject({ action: 'ca.revoke', status: 'pending', requestedBy: 's1', approvals: [], approvalsRequired: 1, payload: { ca: 'yuhu', echo: request.id } });
    expect(row.expiresAt.getTime()).toBe(T0.getTime() + LIFETIME_MS);
    const audit = store.rows.audit();
    expect(audit.at(-1)).toMatchObject({ action: 'ca.revoke.request', principalId: 's1', outcome: 'success', detail: { request: request.id } });
    expect(verifyAuditChain(audit).ok).toBe(true);
  });

  it('refuses a kind without a handler and a second registration of a kind', async () => {
    await expect(dual.open(ctx('s1'), { kind: 'escrow.recover', target: 'x', payload: {}, auditAction: 'escrow.recover.request' })).rejects.toThrow(/no handler/);
    expect(() => dual.register('issue', handler('issue', 'certificate:issue', true))).toThrow(/already registered/);
  });
});

describe('approving', () => {
  it('carries the request out once, with a second principal', async () => {
    const request = await openRevoke();
    const result = await dual.approve(ctx('s2'), request.id);
    expect(result).toMatchObject({ kind: 'done', result: { by: 's2' } });
    expect(carriedOut['ca.revoke']).toEqual([request.id]);
    expect(requestRow(request.id)).toMatchObject({ status: 'done', approvals: ['s2'] });
    // Done stays done: a third sysadmin's approval changes nothing.
    expect(await codeOf(dual.approve(ctx('s3'), request.id))).toBe('request-not-pending');
    expect(carriedOut['ca.revoke']).toEqual([request.id]);
  });

  it('refuses the requester, audits the denial and changes no request', async () => {
    const request = await openRevoke();
    const before = store.rows.requests();
    expect(await codeOf(dual.approve(ctx('s1'), request.id))).toBe('policy-self-approval');
    expect(store.rows.requests()).toEqual(before);
    expect(store.rows.audit().at(-1)).toMatchObject({ action: 'request.approve', principalId: 's1', outcome: 'denied', detail: { error: 'policy-self-approval' } });
    expect(carriedOut['ca.revoke']).toBeUndefined();
  });

  it('counts each approver once when a request needs two approvals', async () => {
    const request = await openRevoke('s1', 2);
    const first = await dual.approve(ctx('s2'), request.id);
    expect(first).toMatchObject({ kind: 'pending', request: { approvals: ['s2'] } });
    expect(requestRow(request.id)).toMatchObject({ status: 'pending', approvals: ['s2'] });
    expect(await codeOf(dual.approve(ctx('s2'), request.id))).toBe('policy-self-approval');
    expect(carriedOut['ca.revoke']).toBeUndefined();
    await dual.approve(ctx('s3'), request.id);
    expect(requestRow(request.id)).toMatchObject({ status: 'done', approvals: ['s2', 's3'] });
    expect(carriedOut['ca.revoke']).toEqual([request.id]);
  });

  it('does not count a principal made by the requester alone, but lets it approve for another requester', async () => {
    const ofS1 = await openRevoke('s1');
    expect(await codeOf(dual.approve(ctx('s4'), ofS1.id))).toBe('policy-self-approval');
    expect(requestRow(ofS1.id).status).toBe('pending');
    const ofS2 = await openRevoke('s2');
    await dual.approve(ctx('s4'), ofS2.id);
    expect(requestRow(ofS2.id).status).toBe('done');
  });

  it('does not count a principal made by a request the requester approved', async () => {
    const ofS2 = await openRevoke('s2');
    expect(await codeOf(dual.approve(ctx('s5'), ofS2.id))).toBe('policy-self-approval');
    const ofS1 = await openRevoke('s1');
    expect(await codeOf(dual.approve(ctx('s5'), ofS1.id))).toBe('policy-self-approval');
    const ofS3 = await openRevoke('s3');
    await dual.approve(ctx('s5'), ofS3.id);
    expect(carriedOut['ca.revoke']).toEqual([ofS3.id]);
  });

  it('refuses an earlier approver\'s stand-in as the second approval', async () => {
    const request = await openRevoke('s2', 2);
    await dual.approve(ctx('s1'), request.id);
    // s4 stands for s1, who approved already.
    expect(await codeOf(dual.approve(ctx('s4'), request.id))).toBe('policy-self-approval');
    expect(requestRow(request.id)).toMatchObject({ status: 'pending', approvals: ['s1'] });
  });

  it('holds officers to the request domain, and other roles to their permissions', async () => {
    const request = await openIssue('o1');
    const before = store.rows.requests();
    expect(await codeOf(dual.approve(ctx('o3'), request.id))).toBe('forbidden');
    expect(await codeOf(dual.approve(ctx('a1'), request.id))).toBe('forbidden');
    expect(await codeOf(dual.approve(ctx('s2'), request.id))).toBe('forbidden');
    expect(store.rows.requests()).toEqual(before);
    await dual.approve(ctx('o2'), request.id);
    expect(carriedOut.issue).toEqual([request.id]);
  });

  it('answers not-found for an unknown request', async () => {
    expect(await codeOf(dual.approve(ctx('s2'), 'req-none'))).toBe('not-found');
  });

  it('carries a request out once when two approvals race', async () => {
    const request = await openRevoke();
    const outcomes = await Promise.allSettled([dual.approve(ctx('s2'), request.id), dual.approve(ctx('s3'), request.id)]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect((refused.reason as TiercaError).code).toBe('request-not-pending');
    expect(carriedOut['ca.revoke']).toEqual([request.id]);
    expect(requestRow(request.id).status).toBe('done');
  });
});

describe('a handler that fails', () => {
  it('closes the request as failed when the failure is final', async () => {
    const request = await openRevoke();
    failNext['ca.revoke'] = 'conflict';
    expect(await codeOf(dual.approve(ctx('s2'), request.id))).toBe('conflict');
    expect(requestRow(request.id)).toMatchObject({ status: 'failed', result: { error: 'conflict' } });
    expect(await codeOf(dual.approve(ctx('s3'), request.id))).toBe('request-not-pending');
    expect(carriedOut['ca.revoke']).toBeUndefined();
  });

  it('leaves the request pending after a failure worth retrying, so a later approval carries it out', async () => {
    const request = await openRevoke();
    failNext['ca.revoke'] = 'unavailable';
    expect(await codeOf(dual.approve(ctx('s2'), request.id))).toBe('unavailable');
    expect(requestRow(request.id)).toMatchObject({ status: 'pending', approvals: [] });
    await dual.approve(ctx('s2'), request.id);
    expect(carriedOut['ca.revoke']).toEqual([request.id]);
  });
});

describe('rejecting and expiring', () => {
  it('a rejected request cannot be approved, nor rejected again', async () => {
    const request = await openRevoke();
    expect(await dual.reject(ctx('s2'), request.id)).toMatchObject({ status: 'rejected' });
    expect(requestRow(request.id).status).toBe('rejected');
    expect(await codeOf(dual.approve(ctx('s3'), request.id))).toBe('request-not-pending');
    expect(await codeOf(dual.reject(ctx('s3'), request.id))).toBe('request-not-pending');
    expect(carriedOut['ca.revoke']).toBeUndefined();
  });

  it('a request past its lifetime expires: it reads expired, is stored expired, and carries nothing out', async () => {
    const request = await openRevoke();
    clock.advance(LIFETIME_MS - 1);
    expect((await dual.list(ctx('s2'), { status: 'pending' })).map((r) => r.id)).toContain(request.id);
    clock.advance(1);
    expect((await dual.list(ctx('s2'), {})).find((r) => r.id === request.id)?.status).toBe('expired');
    expect(await codeOf(dual.approve(ctx('s2'), request.id))).toBe('request-not-pending');
    expect(requestRow(request.id).status).toBe('expired');
    expect(carriedOut['ca.revoke']).toBeUndefined();
    expect(await dual.waiting('ca.revoke', () => true)).toBeUndefined();
  });

  it('finds the pending request a second one would duplicate', async () => {
    const request = await openRevoke();
    expect((await dual.waiting('ca.revoke', (p) => p.ca === 'yuhu'))?.id).toBe(request.id);
    expect(await dual.waiting('ca.revoke', (p) => p.ca === 'shaoshan')).toBeUndefined();
  });
});
