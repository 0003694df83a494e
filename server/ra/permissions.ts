/**
 * Roles and what each may do (DESIGN.md "Roles"). A principal holds exactly one role; officers are
 * further scoped to domains. One table, checked at one place (`Authorizer`).
 */
import type { Role } from '../storage/storage.ts';

export const PERMISSIONS = [
  'ca:read',
  'ca:revoke',
  'crl:generate',
  'principal:manage',
  'subject:read',
  'subject:write',
  'certificate:read',
  'certificate:issue',
  'certificate:revoke',
  'request:read',
  'request:approve',
  'audit:read',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

export const ROLE_PERMISSIONS: Readonly<Record<Role, readonly Permission[]>> = {
  sysadmin: ['ca:read', 'ca:revoke', 'crl:generate', 'principal:manage', 'subject:read', 'certificate:read', 'request:read'],
  officer: ['ca:read', 'subject:read', 'subject:write', 'certificate:read', 'certificate:issue', 'certificate:revoke', 'request:read', 'request:approve'],
  auditor: ['ca:read', 'subject:read', 'certificate:read', 'request:read', 'audit:read'],
  device: [],
};

/** Permissions that are limited to the officer's domains. */
export const DOMAIN_SCOPED: ReadonlySet<Permission> = new Set([
  'subject:write', 'certificate:issue', 'certificate:revoke', 'request:approve',
]);

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
