/**
 * Every action name written into the audit log, as one typed list: the route permission table
 * (server/http/authenticate.ts), the authorizer's denials and every service's records use these
 * names and no others. The strings are what auditors query (`tierca audit list --action …`): never
 * rename one; add new ones at the end of their group.
 */
export const AUDIT_ACTIONS = [
  // identity and routes
  'whoami', 'auth.login', 'route.undeclared', 'route.unknown',
  // CAs and topology
  'ca.list', 'ca.show', 'ca.links', 'domain.list', 'domain.add', 'domain.add.request', 'ca.revoke', 'ca.revoke.request', 'ca.rollover', 'ca.rollover.request', 'ca.retire',
  'hierarchy.create',
  // CRLs
  'crl.generate', 'crl.show',
  // principals
  'principal.list', 'principal.add', 'principal.disable', 'principal.certificate', 'principal.add.request',
  // subjects
  'subject.add', 'subject.list', 'subject.show', 'subject.revoke',
  // certificates
  'certificate.issue', 'certificate.request', 'certificate.list', 'certificate.show', 'certificate.revoke', 'certificate.hold',
  'certificate.release', 'certificate.renew',
  // dual control
  'request.list', 'request.approve', 'request.reject',
  // escrow
  'escrow.recover', 'escrow.recover.request', 'escrow.recover-history', 'escrow.recover-history.request', 'keystore.status', 'keystore.add-token', 'escrow.history', 'kmc.rotate-master',
  // audit log
  'audit.read', 'audit.export', 'audit.verify', 'audit.checkpoints', 'audit.checkpoint',
  // rotation
  'rotation.due', 'rotation.run',
  // ACME (server/enrol/acme): officers bind and deactivate; accounts act under their own id
  'acme.account-key.add', 'acme.accounts', 'acme.orders', 'acme.account.deactivate',
  'acme.account.new', 'acme.account.update', 'acme.account.key-change', 'acme.order.new', 'acme.challenge', 'acme.finalize', 'acme.revoke',
  // EST (server/enrol/est): officers make codes; devices enrol with them
  'est.code.add', 'est.codes', 'est.enrol', 'est.serverkeygen',
  // web console (server/http/console): its sessions, and a page refused to a role
  'console.sign-in', 'console.sign-out', 'console.page',
] as const;

/** One name of {@link AUDIT_ACTIONS}. */
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

const KNOWN: ReadonlySet<string> = new Set(AUDIT_ACTIONS);

/** Whether `name` is an audit action (for names that arrive as text, e.g. a query filter). */
export const isAuditAction = (name: string): name is AuditAction => KNOWN.has(name);
