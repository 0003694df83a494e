/**
 * The HTTP application: express for the public and admin routes, with the OCSP route in front on
 * bare node:http. `createApp(deps)` builds it and never listens; `createHttpServer` wraps it.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import express, { type Express, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { OcspSource } from '../ca/ocsp-source.ts';
import type { RegistrationAuthority } from '../ra/registration-authority.ts';
import type { RotationServices } from '../ra/rotation/rotation-services.ts';
import type { Clock } from '../clock.ts';
import { TiercaError } from '../errors.ts';
import { auditFailedWrites, authenticate, authorizeRoutes, loginGate } from './authenticate.ts';
import { LoginLimiter } from './login-limiter.ts';
import { consoleRouter } from './console/console.router.ts';
import { SessionStore, type SessionTimeouts } from './console/session-store.ts';
import { problemHandler } from './problem.ts';
import { securityHeaders } from './security-headers.ts';
import { publicRoutes } from './routes/public.routes.ts';
import { caRoutes } from './routes/ca.routes.ts';
import { subjectRoutes } from './routes/subject.routes.ts';
import { certificateRoutes } from './routes/certificate.routes.ts';
import { crlRoutes } from './routes/crl.routes.ts';
import { principalRoutes } from './routes/principal.routes.ts';
import { auditRoutes } from './routes/audit.routes.ts';
import { keystoreRoutes } from './routes/keystore.routes.ts';
import { kmcRoutes } from './routes/kmc.routes.ts';
import { acmeAdminRoutes } from './routes/acme-admin.routes.ts';
import { acmeRoutes } from './routes/acme.routes.ts';
import type { AcmeServer } from '../enrol/acme/acme-server.ts';
import type { EstServer } from '../enrol/est/est-server.ts';
import { estRoutes } from './routes/est.routes.ts';
import { estAdminRoutes } from './routes/est-admin.routes.ts';
import { rotationPublicRoutes, rotationRoutes } from './routes/rotation.routes.ts';
import { ocspHandler } from './ocsp-handler.ts';
import { createMetrics, registerOfflineRootGauges, type Metrics } from './metrics.ts';

export const MAX_BODY = '64kb';

/** What the HTTP layer is handed: the services it calls, never the store (domain work stays in the services). */
export interface AppDeps {
  ra: RegistrationAuthority;
  ocsp: OcspSource;
  clock: Clock;
  publicUrl: string;
  log: Logger;
  /** Resolves when the database answers, rejects otherwise (`/healthz`). */
  health: () => Promise<void>;
  metrics?: Metrics;
  /** Renewal, rotation and CA rollover routes (server/http/routes/rotation.routes.ts); absent, they are not served. */
  rotation?: RotationServices;
  /** The ACME server (`/acme/<tier>/…`); absent, it is not served. */
  acme?: AcmeServer;
  /** The EST server (`/.well-known/est/<label>/…`); absent, it is not served. */
  est?: EstServer;
  /**
   * The web console under `/console/` (server/http/console, docs/console.md): served unless `false`;
   * `timeouts` overrides the session timeouts (default 15 minutes idle, 8 hours absolute).
   */
  console?: false | { timeouts?: SessionTimeouts };
}

export function createApp(deps: AppDeps): Express {
  const metrics = deps.metrics ?? createMetrics();
  const offlineRoot = deps.ra.cas.publicList().find((ca) => ca.offline);
  if (offlineRoot) registerOfflineRootGauges(metrics, () => deps.ra.cas.publicGet(offlineRoot.record.id)?.offlineWatch?.current);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.use(securityHeaders());
  app.use(refuseNulInUrl);
  app.use((req, res, next) => {
    res.on('finish', () => {
      const group = req.path.startsWith('/api/v1/') ? req.path.split('/')[3] ?? 'api' : req.path.split('/')[1] || 'root';
      metrics.httpRequests.inc({ route: group.slice(0, 32), status: String(res.statusCode) });
    });
    next();
  });
  if (deps.rotation) app.use(rotationPublicRoutes(deps.rotation, MAX_BODY));
  if (deps.acme) app.use(acmeRoutes(deps.acme, deps.log));
  if (deps.est) app.use(estRoutes(deps.est));
  // One limiter of failed logins for the API and the console: a source guessing tokens is counted
  // the same through either.
  const limiter = new LoginLimiter({ now: () => deps.clock.now().getTime() });
  const api = express.Router();
  api.use(authenticate(deps.ra, { clock: deps.clock, metrics, limiter }));
  api.use(authorizeRoutes(deps.ra, api));
  api.use(express.json({ limit: MAX_BODY, type: ['application/json', 'application/*+json'] }));
  api.use((req, _res, next) => {
    if (req.method === 'POST' && req.headers['content-length'] !== '0' && req.headers['content-type'] && !req.is(['application/json', 'application/*+json'])) {
      return next(new TiercaError('unsupported-media-type', 'send application/json'));
    }
    next();
  });
  // Certificates early: issuance is the busiest admin route, and express tries routers in order.
  // Rotation must come before them: its /certificates/:serial/renew would otherwise meet the
  // certificate router's answer to an unknown certificate action.
  if (deps.rotation) api.use(rotationRoutes(deps.rotation));
  api.use(certificateRoutes(deps.ra, deps.clock));
  api.use(caRoutes(deps.ra, deps.publicUrl));
  api.use(subjectRoutes(deps.ra));
  api.use(crlRoutes(deps.ra));
  api.use(principalRoutes(deps.ra));
  api.use(auditRoutes(deps.ra));
  api.use(keystoreRoutes(deps.ra));
  api.use(kmcRoutes(deps.ra));
  api.use(acmeAdminRoutes(deps.ra));
  api.use(estAdminRoutes(deps.ra));
  api.use((_req, _res, next) => next(new TiercaError('not-found', 'no such API route')));
  api.use(auditFailedWrites(deps.ra));
  app.use('/api/v1', api);
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.use(publicRoutes(deps));
  if (deps.console !== false) {
    app.use('/console', consoleRouter({
      ra: deps.ra, rotation: deps.rotation, clock: deps.clock, publicUrl: deps.publicUrl, log: deps.log,
      login: loginGate(deps.ra, { clock: deps.clock, metrics, limiter }),
      sessions: new SessionStore(deps.clock, deps.console?.timeouts),
    }));
  }
  app.use((_req, _res, next) => next(new TiercaError('not-found', 'no such route')));
  app.use(problemHandler(deps.log));
  return app;
}

/**
 * A NUL in the URL (`%00`, in a path segment or a query value) is refused before any route: no name,
 * id or filter of tierca holds one, and PostgreSQL's text cannot (a query would fail as an internal
 * error where SQLite answers "not found"), so both engines give the same 400.
 */
const refuseNulInUrl: RequestHandler = (req, _res, next) => {
  if (/%00/.test(req.originalUrl) || req.originalUrl.includes('\u0000')) return next(new TiercaError('bad-request', 'the URL holds a NUL character (%00)'));
  next();
};

/** PEM key material of an HTTPS listener; `ca` verifies client certificates (the tierca root). */
export interface TlsListenOptions {
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer | (string | Buffer)[];
}

/** The handler of every request: `/ocsp` on the fast path, everything else to the express app. */
export function createRequestListener(deps: AppDeps): RequestListener {
  const app = createApp(deps);
  const ocsp = ocspHandler(deps.ocsp, deps.clock);
  return (req, res) => {
    if (!ocsp(req, res)) app(req, res);
  };
}

/**
 * An http.Server (an https one with `tls`) that answers `/ocsp` on the fast path and everything else
 * with the express app. Over HTTPS a client certificate is asked for but not required, so bearer
 * tokens work too; authenticate.ts reads whether it verified. `handler` (default
 * {@link createRequestListener}) lets two listeners share one app (server/http/public-listener.ts).
 */
export function createHttpServer(deps: AppDeps, tls?: TlsListenOptions, handler: RequestListener = createRequestListener(deps)): Server {
  const server: Server = tls
    ? createHttpsServer({ keepAliveTimeout: 65_000, ...tls, requestCert: true, rejectUnauthorized: false }, handler)
    : createServer({ keepAliveTimeout: 65_000 }, handler);
  server.headersTimeout = 20_000;
  server.requestTimeout = 30_000;
  return server;
}
