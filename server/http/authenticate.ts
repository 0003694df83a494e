/**
 * Authentication and route authorization for `/api/v1`.
 *
 * `authenticate`: every request behind it has a principal — from a bearer token, or, on an HTTPS
 * listener, from a client certificate tierca issued to a principal — or gets 401. Credentials that
 * are presented and refused are counted per source by the {@link LoginLimiter} (login-limiter.ts):
 * past its limit the source gets 429 for a minute, whatever it presents. A failed login is audited
 * with its reason, and the first refusal of a limited source once. A request with no credentials at
 * all is neither counted (anonymous noise from a shared NAT address must not lock out the valid
 * tokens behind it) nor audited (each would be a write anyone can cause): it is counted in the
 * `tierca_http_login_refusals_total{reason="no-credentials"}` metric (docs/decisions/0016-login-limiter.md).
 *
 * `authorizeRoutes`: every admin route has a permission in {@link ROUTE_PERMISSIONS}, checked against
 * the principal's role before the body is parsed; a route that exists but is not in the table is
 * refused to everyone (deny by default), so no endpoint is open by accident.
 * test/integration/route-walk.test.ts walks the real router and holds both.
 */
import { randomBytes } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { ErrorRequestHandler, Request, RequestHandler, Response, Router } from 'express';
import type { RegistrationAuthority } from '../ra/registration-authority.ts';
import type { AuthOutcome, LoginFailure } from '../ra/authorizer.ts';
import type { Permission, Principal, RequestContext } from '../ra/permissions.ts';
import type { AuditAction } from '../ra/audit-actions.ts';
import { TiercaError, type ErrorCode } from '../errors.ts';
import { isAudited } from '../audit/audit-log.ts';
import type { Clock } from '../clock.ts';
import type { Metrics } from './metrics.ts';
import { LoginLimiter } from './login-limiter.ts';

export { FAILURE_WINDOW_MS, MAX_FAILURES } from './login-limiter.ts';

export interface AuthenticateOptions {
  /** The injected clock: windows and penalties run on it. */
  clock: Clock;
  /** Where refusals are counted by reason; absent, they are not. */
  metrics?: Pick<Metrics, 'loginRefusals'>;
  /** Default: a {@link LoginLimiter} of the default size on `clock`. */
  limiter?: LoginLimiter;
}

export function authenticate(ra: RegistrationAuthority, opts: AuthenticateOptions): RequestHandler {
  const login = loginGate(ra, opts);
  return async (req, res, next) => {
    try {
      const source = req.socket.remoteAddress ?? 'unknown';
      const requestId = requestIdOf(req);
      res.setHeader('x-request-id', requestId);
      const target = `${req.method} ${req.baseUrl}${req.path}`.slice(0, 300);
      const principal = await login({ req, source, requestId, target });
      res.locals.ctx = { principal, source, requestId } satisfies RequestContext;
      next();
    } catch (err) {
      next(err);
    }
  };
}

/** One login attempt: the request (its Authorization header or TLS client certificate), or a `token` handed over otherwise (the console's sign-in form). */
export interface LoginAttempt {
  req: Request;
  source: string;
  requestId: string;
  /** What was asked for, as the audit record of a refusal names it. */
  target: string;
  /** A token pasted into a form: authenticated exactly like a bearer token, instead of the request's own credentials. */
  token?: string;
}

/** What a successful login gives. */
export type LoginGate = (attempt: LoginAttempt) => Promise<Principal>;

/**
 * The one login path of tierca: the API's bearer tokens and client certificates and the console's
 * sign-in all pass here, so they share the limiter, the refusal metrics, the audit of failures and the
 * messages. Throws `unauthenticated` or `rate-limited`; resolves to the principal.
 */
export function loginGate(ra: RegistrationAuthority, opts: AuthenticateOptions): LoginGate {
  const limiter = opts.limiter ?? new LoginLimiter({ now: () => opts.clock.now().getTime() });
  const refused = (reason: string) => opts.metrics?.loginRefusals.inc({ reason });
  return async ({ req, source, requestId, target, token }) => {
    if (token === undefined ? !presentsCredentials(req) : token === '') {
      refused('no-credentials');
      throw new TiercaError('unauthenticated', MESSAGES['no-credentials']!);
    }
    const verdict = limiter.check(source);
    if (verdict.limited) {
      refused('rate-limited');
      if (verdict.firstRefusal) await ra.authorizer.auditLoginFailure({ source, requestId, target, reason: 'rate-limited' });
      throw new TiercaError('rate-limited', 'too many failed logins from this address; wait a minute');
    }
    const outcome = token === undefined ? await credentialsOf(ra, req) : await ra.authorizer.authenticateToken(token);
    if (!outcome.ok) {
      limiter.recordFailure(source);
      refused(outcome.reason);
      await ra.authorizer.auditLoginFailure({ source, requestId, target, reason: outcome.reason, principalId: outcome.principalId });
      // The reason is in the audit log only: the caller learns nothing about which tokens exist.
      throw new TiercaError('unauthenticated', MESSAGES[outcome.reason] ?? 'the credentials are not valid');
    }
    return outcome.principal;
  };
}

/** The caller's X-Request-Id when it is a sane one, else one made here. */
export function requestIdOf(req: Request): string {
  const header = req.headers['x-request-id'];
  return typeof header === 'string' && /^[\w.-]{1,64}$/.test(header) ? header : nextRequestId();
}

/**
 * Request ids made here: a random prefix per process and a counter. They correlate a request's log
 * lines and audit records; they are no secret, and unlike a UUID per request they cost nothing.
 */
const REQUEST_ID_PREFIX = randomBytes(6).toString('hex');
let requestCounter = 0;
const nextRequestId = (): string => `${REQUEST_ID_PREFIX}-${(++requestCounter).toString(36)}`;

const MESSAGES: Partial<Record<LoginFailure, string>> = {
  'no-credentials': 'a bearer token is required',
  'malformed-token': 'the token is not valid',
  'unknown-token': 'the token is not valid',
  'principal-disabled': 'the credentials are not valid',
};

/** Whether the request carries an Authorization header or a TLS client certificate. */
function presentsCredentials(req: Request): boolean {
  if (req.headers.authorization !== undefined) return true;
  const socket = req.socket as TLSSocket;
  return !!socket.encrypted && !!socket.getPeerCertificate()?.raw;
}

/** The bearer token when one is sent; else the verified TLS client certificate; else nothing. */
async function credentialsOf(ra: RegistrationAuthority, req: Request): Promise<AuthOutcome> {
  const header = req.headers.authorization;
  if (header !== undefined) {
    const match = /^Bearer ([^\s]+)$/i.exec(header);
    return match ? ra.authorizer.authenticateToken(match[1]) : { ok: false, reason: 'malformed-token' };
  }
  const socket = req.socket as TLSSocket;
  if (socket.encrypted) {
    const peer = socket.getPeerCertificate();
    if (peer && peer.raw) {
      // The listener asks for a certificate but lets the handshake finish without one (bearer tokens
      // work over HTTPS too), so the chain verdict is read here.
      if (!socket.authorized) return { ok: false, reason: 'certificate-unverified' };
      return ra.authorizer.authenticateCertificate(peer.raw);
    }
  }
  return { ok: false, reason: 'no-credentials' };
}

export const ctxOf = (res: Response): RequestContext => res.locals.ctx as RequestContext;


// ---- route authorization -----------------------------------------------------------------------

/** Who may call a route: any one of `allow`; `action` names it in the audit record of a denial. */
export interface RouteRule {
  readonly allow: readonly Permission[];
  readonly action: AuditAction;
}

/**
 * Every admin route (`METHOD /path` under /api/v1, as registered) and the permission it needs. The
 * registration authority checks again with the domain of what is acted on. Add a line here with
 * every new route: a route missing here is refused to everyone.
 */
export const ROUTE_PERMISSIONS: Readonly<Record<string, RouteRule>> = {
  'GET /whoami': { allow: ['self:read'], action: 'whoami' },
  'GET /cas': { allow: ['ca:read'], action: 'ca.list' },
  'GET /cas/:id': { allow: ['ca:read'], action: 'ca.show' },
  'POST /cas/:id/revoke': { allow: ['ca:revoke'], action: 'ca.revoke' },
  'GET /domains': { allow: ['ca:read'], action: 'domain.list' },
  'POST /domains': { allow: ['domain:add'], action: 'domain.add' },
  'GET /keystore': { allow: ['keystore:read'], action: 'keystore.status' },
  'GET /principals': { allow: ['principal:read'], action: 'principal.list' },
  'POST /principals': { allow: ['principal:manage'], action: 'principal.add' },
  'POST /principals/:id/disable': { allow: ['principal:manage'], action: 'principal.disable' },
  'POST /principals/:id/certificate': { allow: ['principal:manage'], action: 'principal.certificate' },
  'POST /subjects': { allow: ['subject:write'], action: 'subject.add' },
  'GET /subjects': { allow: ['subject:read'], action: 'subject.list' },
  'GET /subjects/:id': { allow: ['subject:read'], action: 'subject.show' },
  'POST /subjects/:id/revoke': { allow: ['certificate:revoke'], action: 'subject.revoke' },
  'POST /certificates': { allow: ['certificate:issue'], action: 'certificate.issue' },
  'GET /certificates': { allow: ['certificate:read'], action: 'certificate.list' },
  'GET /certificates/:serial': { allow: ['certificate:read'], action: 'certificate.show' },
  'POST /certificates/:serial/revoke': { allow: ['certificate:revoke'], action: 'certificate.revoke' },
  'POST /certificates/:serial/hold': { allow: ['certificate:revoke'], action: 'certificate.hold' },
  'POST /certificates/:serial/release': { allow: ['certificate:revoke'], action: 'certificate.release' },
  'GET /requests': { allow: ['request:read'], action: 'request.list' },
  'POST /requests/:id/approve': { allow: ['request:approve'], action: 'request.approve' },
  'POST /requests/:id/reject': { allow: ['request:approve'], action: 'request.reject' },
  'POST /crls': { allow: ['crl:generate'], action: 'crl.generate' },
  'GET /crls/:ca': { allow: ['ca:read'], action: 'crl.show' },
  'POST /escrow/:issuer/:serial/recover': { allow: ['escrow:recover'], action: 'escrow.recover' },
  'GET /subjects/:id/keys': { allow: ['escrow:recover'], action: 'escrow.history' },
  'POST /subjects/:id/keys/recover': { allow: ['escrow:recover'], action: 'escrow.recover-history' },
  'POST /kmc/rotate-master': { allow: ['kmc:manage'], action: 'kmc.rotate-master' },
  'POST /acme/account-keys': { allow: ['acme:manage'], action: 'acme.account-key.add' },
  'GET /acme/accounts': { allow: ['acme:manage'], action: 'acme.accounts' },
  'GET /acme/orders': { allow: ['acme:manage'], action: 'acme.orders' },
  'POST /acme/accounts/:id/deactivate': { allow: ['acme:manage'], action: 'acme.account.deactivate' },
  'POST /est/codes': { allow: ['est:manage'], action: 'est.code.add' },
  'GET /est/codes': { allow: ['est:manage'], action: 'est.codes' },
  'GET /audit': { allow: ['audit:read'], action: 'audit.read' },
  'GET /audit/export': { allow: ['audit:read'], action: 'audit.export' },
  'GET /audit/verify': { allow: ['audit:read'], action: 'audit.verify' },
  'GET /audit/checkpoints': { allow: ['audit:read'], action: 'audit.checkpoints' },
  'POST /audit/checkpoints': { allow: ['audit:checkpoint'], action: 'audit.checkpoint' },
  // Rotation (server/http/routes/rotation.routes.ts); a device's signed renewal is served before /api/v1.
  'GET /rotation/due': { allow: ['rotation:read'], action: 'rotation.due' },
  'POST /rotation/run': { allow: ['rotation:run'], action: 'rotation.run' },
  'POST /certificates/:serial/renew': { allow: ['certificate:renew'], action: 'certificate.renew' },
  'POST /cas/:id/rollover': { allow: ['ca:rollover'], action: 'ca.rollover' },
  'GET /cas/:id/links': { allow: ['ca:read'], action: 'ca.links' },
};

/** A route of a router: its method, its path as registered (mount paths joined) and its table key. */
export interface ListedRoute {
  method: string;
  path: string;
  key: string;
}

interface RouterLayer {
  route?: { path: unknown; methods: Record<string, boolean> };
  handle?: { stack?: RouterLayer[] };
  rawPath?: unknown;
}

/** Every route of an express 5 router (nested routers included), in the order the router tries them. */
export function listRoutes(router: Router, prefix = ''): ListedRoute[] {
  const out: ListedRoute[] = [];
  for (const layer of (router as unknown as { stack: RouterLayer[] }).stack) {
    if (layer.route) {
      const path = `${prefix}${String(layer.route.path)}`;
      for (const [method, on] of Object.entries(layer.route.methods)) {
        if (on && method !== '_all') out.push({ method: method.toUpperCase(), path, key: `${method.toUpperCase()} ${path}` });
      }
    } else if (layer.handle?.stack) {
      const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
      out.push(...listRoutes(layer.handle as unknown as Router, `${prefix}${mount}`));
    }
  }
  return out;
}

/** A route path with `:param` segments as a regexp matched the way express 5 matches by default. */
function routeRegExp(path: string): RegExp | undefined {
  // Wildcards and optional groups are not used under /api/v1; such a route is not matched here (the
  // route walk test fails for it, since it cannot be in the table).
  if (/[*{}()?+]/.test(path)) return undefined;
  const source = path.split('/').map((seg) => (seg.startsWith(':') ? '[^/]+' : seg.replace(/[.^$|[\]\\]/g, '\\$&'))).join('/');
  return new RegExp(`^${source}/?$`, 'i');
}

/**
 * Checks the route's permission (see {@link ROUTE_PERMISSIONS}) against the principal's role before
 * any route runs. Mounted after {@link authenticate} on `router`, whose routes it reads on first use.
 */
export function authorizeRoutes(ra: RegistrationAuthority, router: Router): RequestHandler {
  let routes: { method: string; key: string; regexp: RegExp | undefined }[] | undefined;
  return async (req, res, next) => {
    try {
      routes ??= listRoutes(router).map((r) => ({ ...r, regexp: routeRegExp(r.path) }));
      const method = req.method === 'HEAD' ? 'GET' : req.method;
      const route = routes.find((r) => r.method === method && r.regexp?.test(req.path));
      if (!route) return next(); // no such route: the router answers 404
      const rule = ROUTE_PERMISSIONS[route.key];
      res.locals.routeAction = rule?.action;
      await ra.authorizer.requireAny(ctxOf(res), rule?.allow ?? [], rule?.action ?? 'route.undeclared', `${req.method} ${req.baseUrl}${req.path}`.slice(0, 300));
      next();
    } catch (err) {
      next(err);
    }
  };
}

// ---- failed writes -------------------------------------------------------------------------------

/** Refusals of a body that was never understood as an action: not recorded (nothing was attempted). */
const BODY_REFUSALS: ReadonlySet<ErrorCode> = new Set(['payload-too-large', 'unsupported-media-type']);

/**
 * Records every write (any method but GET/HEAD) by an authenticated principal that failed and is not
 * recorded yet — a lookup that found nothing, a body that failed validation, an unknown route — so
 * that every state-changing request leaves a record, whichever layer refused it. Denials and the
 * failures the registration authority audits itself are marked and not recorded twice; a body that
 * could not be read at all (too large, not JSON) is not an attempted action. Mounted after the routes.
 */
export function auditFailedWrites(ra: RegistrationAuthority): ErrorRequestHandler {
  return (err, req, res, next) => {
    const ctx = res.locals.ctx as RequestContext | undefined;
    const code: ErrorCode = err instanceof TiercaError ? err.code : 'internal';
    const unread = (err as { type?: unknown })?.type !== undefined || BODY_REFUSALS.has(code);
    if (!ctx || req.method === 'GET' || req.method === 'HEAD' || isAudited(err) || unread) return next(err);
    ra.authorizer
      .auditFailure(ctx, (res.locals.routeAction as AuditAction | undefined) ?? 'route.unknown', `${req.method} ${req.baseUrl}${req.path}`.slice(0, 300), code)
      .then(() => next(err), () => next(err));
  };
}
