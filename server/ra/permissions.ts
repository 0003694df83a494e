/**
 * Roles and what each may do (DESIGN.md "Roles"). A principal holds exactly one role; officers are
 * further scoped to domains. One table, checked at one place (`Authorizer`): the HTTP layer checks the
 * role against the route's permission before anything is parsed, the registration authority checks it
 * again with the domain of the thing acted on.
 */
import type { Role } from '../storage/storage.ts';

export const PERMISSIONS = [
  /** Who am I (every role, devices included). */
  'self:read',
  'ca:read',
  /** Ask for, and approve, a CA revocation (dual control: two sysadmins). */
  'ca:revoke',
  /** Ask for, and approve, a CA rollover (dual control: two sysadmins; carried out by rotation). */
  'ca:rollover',
  /** Ask for, and approve, a new domain with its CAs (dual control: two sysadmins). */
  'domain:add',
  'crl:generate',
  'principal:read',
  /** Create and disable principals, issue their client certificates. */
  'principal:manage',
  'subject:read',
  'subject:write',
  'certificate:read',
  'certificate:issue',
  'certificate:revoke',
  /** Renew a certificate: officers in their domains; a device only its own, authenticated by it (rotation). */
  'certificate:renew',
  /** See what is due for rotation (`rotate due`). */
  'rotation:read',
  /** Run the scheduled rotation (`rotate run`): renew what the server may, revoke superseded, retire old CA keys. */
  'rotation:run',
  'request:read',
  /** Approve or reject a pending request; each request action then asks for its own permission too. */
  'request:approve',
  /** Ask for, and approve, the recovery of an escrowed key (dual control: two officers). */
  'escrow:recover',
  'audit:read',
  /** Sign an audit checkpoint now. */
  'audit:checkpoint',
  /** Where each CA key is held and whether this instance can sign with it (`tierca keystore status`). */
  'keystore:read',
  /** Re-wrap the key-management centre's escrowed keys under a new master key. */
  'kmc:manage',
  /** Give out ACME account-binding keys for a domain, see and deactivate its ACME accounts (officers). */
  'acme:manage',
  /** Make EST enrolment codes for a domain's devices and see what became of them (officers). */
  'est:manage',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

export const ROLE_PERMISSIONS: Readonly<Record<Role, readonly Permission[]>> = {
  sysadmin: [
    'self:read', 'ca:read', 'ca:revoke', 'ca:rollover', 'domain:add', 'crl:generate', 'principal:read', 'principal:manage',
    'subject:read', 'certificate:read', 'request:read', 'request:approve', 'rotation:read', 'rotation:run', 'keystore:read', 'kmc:manage',
  ],
  officer: [
    'self:read', 'ca:read', 'subject:read', 'subject:write', 'certificate:read', 'certificate:issue', 'certificate:revoke',
    'request:read', 'request:approve', 'escrow:recover', 'certificate:renew', 'rotation:read', 'acme:manage', 'est:manage',
  ],
  auditor: [
    'self:read', 'ca:read', 'principal:read', 'subject:read', 'certificate:read', 'request:read', 'audit:read', 'audit:checkpoint',
    'rotation:read',
  ],
  device: ['self:read', 'certificate:renew'],
};

/** Permissions that are limited to the officer's domains when the thing acted on has a domain. */
export const DOMAIN_SCOPED: ReadonlySet<Permission> = new Set([
  'subject:write', 'certificate:issue', 'certificate:revoke', 'escrow:recover', 'certificate:renew', 'acme:manage', 'est:manage',
]);

/** Whether `role` holds `permission` (ignoring domains). */
export const roleHas = (role: Role, permission: Permission): boolean => ROLE_PERMISSIONS[role].includes(permission);

/** Who is asking, where from, under which request id. */
export interface Principal {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
  readonly domains: readonly string[];
}

export interface RequestContext {
  readonly principal: Principal;
  readonly source: string | null;
  readonly requestId: string;
}
