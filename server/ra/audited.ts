/**
 * How the RA services record what they refuse: a failed or refused action leaves one audit record,
 * written outside the (rolled back) transaction, and the error is marked so that the HTTP layer's
 * recorder of failed writes does not record it twice.
 */
import type { AuditRepository } from '../storage/storage.ts';
import type { Clock } from '../clock.ts';
import { appendAudit, isAudited, markAudited } from '../audit/audit-log.ts';
import { TiercaError, type ErrorCode } from '../errors.ts';
import type { RequestContext } from './permissions.ts';
import type { AuditAction } from './audit-actions.ts';

/** Refusals recorded as `denied` rather than `failure`: the caller was not allowed. */
const DENIALS: ReadonlySet<ErrorCode> = new Set(['forbidden', 'policy-self-approval']);

/** The audit fields that say who acted, from the request context. */
export function actorOf(ctx: RequestContext) {
  return { principalId: ctx.principal.id, role: ctx.principal.role, source: ctx.source, requestId: ctx.requestId };
}

/** Runs `fn`; a refusal or failure is audited once and re-thrown. */
export async function runAudited<T>(
  deps: { audit: AuditRepository; clock: Clock },
  ctx: RequestContext,
  action: AuditAction,
  target: string | null,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    // A denial inside `fn` (a nested permission check) is recorded already.
    if (isAudited(err)) throw err;
    const code = err instanceof TiercaError ? err.code : 'internal';
    await appendAudit(deps.audit, deps.clock.now(), {
      ...actorOf(ctx), action, target, outcome: DENIALS.has(code) ? 'denied' : 'failure', detail: { error: code },
    }).then(() => markAudited(err)).catch(() => undefined);
    throw err;
  }
}
