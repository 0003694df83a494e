/**
 * The console's pages and the permission each needs: the menu shows a page only to a role that holds
 * its permission, and the router guards the page with the same entry (console-context.ts `guard`).
 * The permissions are the API's own (server/ra/permissions.ts); nothing here grants anything.
 */
import type { Permission } from '../../ra/permissions.ts';
import type { MessageKey } from './i18n.ts';

export interface MenuEntry {
  href: string;
  label: MessageKey;
  permissions: readonly Permission[];
}

export const MENU: readonly MenuEntry[] = [
  { href: '/console/dashboard', label: 'nav.dashboard', permissions: ['certificate:issue'] },
  { href: '/console/certificates', label: 'nav.certificates', permissions: ['certificate:read'] },
  { href: '/console/issue', label: 'nav.issue', permissions: ['certificate:issue'] },
  { href: '/console/subjects', label: 'nav.subjects', permissions: ['subject:write'] },
  { href: '/console/requests', label: 'nav.requests', permissions: ['request:approve'] },
  { href: '/console/crls', label: 'nav.crls', permissions: ['ca:read'] },
  { href: '/console/principals', label: 'nav.principals', permissions: ['principal:manage'] },
  { href: '/console/rotation', label: 'nav.rotation', permissions: ['rotation:run'] },
  { href: '/console/keystore', label: 'nav.keystore', permissions: ['keystore:read'] },
  { href: '/console/audit', label: 'nav.audit', permissions: ['audit:read'] },
];

/** The permissions of the page at `href` (the guard of its routes). */
export function pagePermissions(href: string): readonly Permission[] {
  const entry = MENU.find((m) => m.href === href);
  if (!entry) throw new Error(`no console page ${href}`);
  return entry.permissions;
}
