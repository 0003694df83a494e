/**
 * Authentication (bearer token → principal) and authorization (role × permission × domain). A denial
 * is audited and thrown as `forbidden`, naming the missing permission.
 */
import { createHash } from 'node:crypto';
import type { Store } from '../storage/storage.ts';
import type { Clock } from '../clock.ts';
import { appendAudit } from '../audit/audit-log.ts';
import { TiercaError } from '../errors.ts';
import { DOMAIN_SCOPED, ROLE_PERMISSIONS, type Permission, type Principal, type RequestContext } from './permissions.ts';

/** SHA-256 of a token, hex: the only form a token is stored in. */
export const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

export class Authorizer {
  constructor(private readonly store: Store, private readonly clock: Clock) {}

  /** The principal a bearer token belongs to, or null (unknown token or disabled principal). */
  async authenticate(token: string): Promise<Principal | null> {
    if (!/^[A-Za-z0-9_-]{16,128}$/.test(token)) return null;
    // The lookup is by the token's hash, so timing reveals nothing about stored tokens.
    const stored = await this.store.tokens.findByHash(hashToken(token));
    if (!stored) return null;
    const principal = await this.store.principals.get(stored.principalId);
    if (!principal || principal.disabled) return null;
    return { id: principal.id, name: principal.name, role: principal.role, domains: principal.domains };
  }

  /** Throws `forbidden` (and audits the denial) unless the principal may do `permission` in `domain`. */
  async require(ctx: RequestContext, permission: Permission, action: string, target: string | null, domain?: string | null): Promise<void> {
    const { principal } = ctx;
    const allowed = ROLE_PERMISSIONS[principal.role].includes(permission);
    const inScope = !DOMAIN_SCOPED.has(permission) || domain == null || principal.domains.includes(domain);
    if (allowed && inScope) return;
    const why = allowed ? `${permission} in domain ${domain}` : permission;
    await this.auditDenial(ctx, action, target, { missing: why });
    throw new TiercaError('forbidden', `role ${principal.role} lacks permission ${why}`, { detail: { permission, domain } });
  }

  async auditDenial(ctx: RequestContext, action: string, target: string | null, detail: Record<string, unknown>): Promise<void> {
    await appendAudit(this.store.audit, this.clock.now(), {
      principalId: ctx.principal.id,
      role: ctx.principal.role,
      source: ctx.source,
      action,
      target,
      outcome: 'denied',
      requestId: ctx.requestId,
      detail,
    });
  }
}
