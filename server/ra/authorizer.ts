/**
 * Authentication (a bearer token, or a client certificate tierca issued to a principal → the
 * principal) and authorization (role × permission × domain). Every refusal is audited: a denial is
 * thrown as `forbidden`, naming the missing permission; a failed login is recorded with its reason.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { PrincipalRecord, Store } from '../storage/storage.ts';
import type { Clock } from '../clock.ts';
import { readCertificate } from '../../pki/certificate-reader.ts';
import { appendAudit, markAudited } from '../audit/audit-log.ts';
import { TiercaError } from '../errors.ts';
import { DOMAIN_SCOPED, roleHas, type Permission, type Principal, type RequestContext } from './permissions.ts';
import type { AuditAction } from './audit-actions.ts';

/** SHA-256 of a token, hex: the only form a token is stored in. */
export const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{16,128}$/;

/** Why a login failed (recorded in the audit log, never shown to the caller). */
export type LoginFailure =
  | 'no-credentials'
  | 'malformed-token'
  | 'unknown-token'
  | 'principal-disabled'
  | 'certificate-unverified'
  | 'certificate-unknown'
  | 'certificate-revoked'
  | 'certificate-expired'
  | 'ca-not-active'
  | 'rate-limited';

export type AuthOutcome =
  | { ok: true; principal: Principal; via: 'token' | 'certificate' }
  | { ok: false; reason: LoginFailure; principalId?: string };

export class Authorizer {
  constructor(private readonly store: Store, private readonly clock: Clock) {}

  /** The principal a bearer token belongs to, or null (unknown token or disabled principal). */
  async authenticate(token: string): Promise<Principal | null> {
    const outcome = await this.authenticateToken(token);
    return outcome.ok ? outcome.principal : null;
  }

  /** Looks a bearer token up by its hash; says why when it does not authenticate. */
  async authenticateToken(token: string): Promise<AuthOutcome> {
    if (!TOKEN_SHAPE.test(token)) return { ok: false, reason: 'malformed-token' };
    const hash = hashToken(token);
    // The lookup is by the token's hash, so its timing says nothing about stored tokens; the stored
    // hash is still compared in constant time, so no code path compares secrets byte by byte. The
    // principal comes with the token (one statement per authenticated request).
    const found = await this.store.tokens.findWithPrincipal(hash);
    if (!found || !timingSafeEqual(Buffer.from(found.token.tokenHash, 'hex'), Buffer.from(hash, 'hex'))) {
      return { ok: false, reason: 'unknown-token' };
    }
    return outcomeOf(found.principal, 'token');
  }

  /**
   * The principal a client certificate belongs to. TLS has already checked the chain and that the
   * peer holds the key; this checks that tierca issued exactly these bytes to a principal (the
   * certificate's subject id is the principal's id), that it is good (not revoked or on hold) and
   * within its validity, and that its issuer and every CA above it are active.
   */
  async authenticateCertificate(der: Buffer): Promise<AuthOutcome> {
    let serial: string;
    try {
      serial = readCertificate(der).serial;
    } catch {
      return { ok: false, reason: 'certificate-unknown' };
    }
    const cert = (await this.store.certificates.findBySerial(serial)).find((c) => c.der.equals(der));
    if (!cert || !cert.subjectId || cert.profile !== 'user-sign') return { ok: false, reason: 'certificate-unknown' };
    const principal = await this.store.principals.get(cert.subjectId);
    if (!principal) return { ok: false, reason: 'certificate-unknown' };
    if (cert.status !== 'good') return { ok: false, reason: 'certificate-revoked', principalId: principal.id };
    const now = this.clock.now().getTime();
    if (now < cert.notBefore.getTime() || now >= cert.notAfter.getTime()) return { ok: false, reason: 'certificate-expired', principalId: principal.id };
    for (let id: string | null = cert.issuerId, depth = 0; id && depth < 8; depth++) {
      const ca = await this.store.cas.get(id);
      if (!ca || ca.status !== 'active') return { ok: false, reason: 'ca-not-active', principalId: principal.id };
      id = ca.parentId;
    }
    return this.principalOutcome(principal.id, 'certificate');
  }

  /** Throws `forbidden` (and audits the denial) unless the principal may do `permission` in `domain`. */
  async require(ctx: RequestContext, permission: Permission, action: AuditAction, target: string | null, domain?: string | null): Promise<void> {
    const { principal } = ctx;
    const allowed = roleHas(principal.role, permission);
    const inScope = !DOMAIN_SCOPED.has(permission) || domain == null || principal.domains.includes(domain);
    if (allowed && inScope) return;
    const why = allowed ? `${permission} in domain ${domain}` : permission;
    await this.auditDenial(ctx, action, target, { missing: why });
    throw markAudited(new TiercaError('forbidden', `role ${principal.role} lacks permission ${why}`, { detail: { permission, domain: domain ?? null } }));
  }

  /** Throws `forbidden` (and audits the denial) unless the principal's role holds one of `permissions` (no domain). */
  async requireAny(ctx: RequestContext, permissions: readonly Permission[], action: AuditAction, target: string | null): Promise<void> {
    if (permissions.some((p) => roleHas(ctx.principal.role, p))) return;
    const why = permissions.length ? permissions.join(' or ') : 'for this route (none is declared)';
    await this.auditDenial(ctx, action, target, { missing: why });
    throw markAudited(new TiercaError('forbidden', `role ${ctx.principal.role} lacks permission ${why}`, { detail: { permission: permissions[0] ?? null, domain: null } }));
  }

  async auditDenial(ctx: RequestContext, action: AuditAction, target: string | null, detail: Record<string, unknown>): Promise<void> {
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

  /** Records a request that failed with `code` before anything else recorded it. */
  async auditFailure(ctx: RequestContext, action: AuditAction, target: string | null, code: string): Promise<void> {
    await appendAudit(this.store.audit, this.clock.now(), {
      principalId: ctx.principal.id,
      role: ctx.principal.role,
      source: ctx.source,
      action,
      target,
      outcome: code === 'forbidden' ? 'denied' : 'failure',
      requestId: ctx.requestId,
      detail: { error: code },
    });
  }

  /** Records a failed login: where from, which route, why (never the credential itself). */
  async auditLoginFailure(p: { source: string | null; requestId: string; target: string; reason: LoginFailure; principalId?: string }): Promise<void> {
    await appendAudit(this.store.audit, this.clock.now(), {
      principalId: p.principalId ?? null,
      role: null,
      source: p.source,
      action: 'auth.login',
      target: p.target,
      outcome: 'denied',
      requestId: p.requestId,
      detail: { reason: p.reason },
    });
  }

  /**
   * The principal `principalId` as a login would find it now (disabled or gone: a failure). The
   * console asks this on every request of a session, so that disabling a principal ends its sessions.
   */
  async principalOutcome(principalId: string, via: 'token' | 'certificate'): Promise<AuthOutcome> {
    return outcomeOf(await this.store.principals.get(principalId), via);
  }

  /** Records a successful session event of the web console (sign-in, sign-out) under the principal. */
  async auditSession(ctx: RequestContext, action: 'console.sign-in' | 'console.sign-out', detail: Record<string, unknown>): Promise<void> {
    await appendAudit(this.store.audit, this.clock.now(), {
      principalId: ctx.principal.id, role: ctx.principal.role, source: ctx.source, action, target: null, outcome: 'success', requestId: ctx.requestId, detail,
    });
  }
}

/** The outcome of a login that found `principal` (undefined: it no longer exists). */
function outcomeOf(principal: PrincipalRecord | undefined, via: 'token' | 'certificate'): AuthOutcome {
  if (!principal) return { ok: false, reason: via === 'token' ? 'unknown-token' : 'certificate-unknown' };
  if (principal.disabled) return { ok: false, reason: 'principal-disabled', principalId: principal.id };
  return { ok: true, via, principal: { id: principal.id, name: principal.name, role: principal.role, domains: principal.domains } };
}
