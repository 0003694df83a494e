/**
 * The ACME routes (RFC 8555 §7.1), one directory per tier under `/acme/<tier>/`: every POST is a JWS
 * (`application/jose+json`), every answer carries a fresh `Replay-Nonce` and a `Link` to the
 * directory, and every error is an `urn:ietf:params:acme:error:` problem document. The work is in
 * server/enrol/acme.
 */
import { randomUUID } from 'node:crypto';
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { AcmeServer, SignedRequest } from '../../enrol/acme/acme-server.ts';
import { AcmeProblem, acmeProblemOf } from '../../enrol/acme/acme-problem.ts';
import type { AcmeRequest, AcmeUrls } from '../../enrol/acme/acme-context.ts';
import type { AccountRecord, AuthorizationRecord, ChallengeRecord, OrderRecord } from '../../enrol/acme/acme-store.ts';

const MAX_JWS = '64kb';

export function acmeRoutes(acme: AcmeServer, log: Logger): Router {
  const r = Router({ mergeParams: true });
  const urls = acme.urls;
  const jose = express.json({ limit: MAX_JWS, type: () => true });

  r.use('/acme/:tier', (req, res, next) => {
    const tier = req.params.tier;
    if (!acme.offers(tier)) return next(new AcmeProblem('malformed', `no ACME directory for tier ${tier}`, { status: 404 }));
    res.locals.acme = { tier, source: req.socket.remoteAddress ?? null, requestId: randomUUID() } satisfies AcmeRequest;
    res.setHeader('link', `<${urls.directory(tier)}>;rel="index"`);
    res.setHeader('cache-control', 'no-store');
    next();
  });

  r.get('/acme/:tier/directory', (req, res) => {
    res.json(acme.directory(req.params.tier));
  });
  r.head('/acme/:tier/new-nonce', async (_req, res) => {
    res.setHeader('replay-nonce', await acme.nonce());
    res.status(200).end();
  });
  r.get('/acme/:tier/new-nonce', async (_req, res) => {
    res.setHeader('replay-nonce', await acme.nonce());
    res.status(204).end();
  });
  r.get('/acme/:tier/renewal-info/:certId', async (req, res) => {
    const { window, retryAfter } = await acme.certificates.renewalInfo(req.params.tier, req.params.certId);
    res.setHeader('retry-after', String(retryAfter));
    res.json({ suggestedWindow: { start: window.start.toISOString(), end: window.end.toISOString() }, ...(window.reason ? { explanation: window.reason } : {}) });
  });

  /** A POST route: the JWS checked (see AcmeServer.verify), then `handle`. */
  const post = (path: string, key: 'kid' | 'jwk' | 'either', handle: (req: Request, res: Response, ctx: AcmeRequest, signed: SignedRequest) => Promise<void>) => {
    r.post(path, (req, res, next) => {
      if (!req.is('application/jose+json')) return next(new AcmeProblem('malformed', 'send application/jose+json', { status: 415 }));
      next();
    }, jose, async (req, res) => {
      const ctx = res.locals.acme as AcmeRequest;
      const signed = await acme.verify(ctx, req.body, `${acme.deps.publicUrl}${req.originalUrl}`, key);
      res.setHeader('replay-nonce', signed.nextNonce);
      await handle(req, res, ctx, signed);
    });
  };

  post('/acme/:tier/new-account', 'jwk', async (req, res, ctx, signed) => {
    const { account, created } = await acme.accounts.create(ctx, signed.jwk!, signed.json, `${acme.deps.publicUrl}${req.originalUrl}`);
    res.status(created ? 201 : 200).location(urls.account(ctx.tier, account.id)).json(accountView(urls, account));
  });
  post('/acme/:tier/acct/:id', 'kid', async (req, res, ctx, signed) => {
    if (signed.account!.id !== req.params.id) throw new AcmeProblem('unauthorized', 'a request to an account URL is signed by that account');
    res.json(accountView(urls, await acme.accounts.update(ctx, signed.account!, signed.json)));
  });
  post('/acme/:tier/acct/:id/orders', 'kid', async (req, res, ctx, signed) => {
    if (signed.account!.id !== req.params.id) throw new AcmeProblem('unauthorized', 'only the account lists its orders');
    const orders = await acme.deps.acme.orders({ accountId: signed.account!.id, limit: 1000 });
    res.json({ orders: orders.filter((o) => o.status !== 'invalid').map((o) => urls.order(ctx.tier, o.id)) });
  });
  post('/acme/:tier/key-change', 'kid', async (req, res, ctx, signed) => {
    res.json(accountView(urls, await acme.accounts.changeKey(ctx, signed.account!, signed.json, `${acme.deps.publicUrl}${req.originalUrl}`)));
  });
  post('/acme/:tier/new-order', 'kid', async (_req, res, ctx, signed) => {
    const order = await acme.orders.newOrder(ctx, signed.account!, signed.json);
    res.status(201).location(urls.order(ctx.tier, order.id)).json(orderView(urls, ctx.tier, order));
  });
  post('/acme/:tier/order/:id', 'kid', async (req, res, ctx, signed) => {
    res.json(orderView(urls, ctx.tier, await acme.orders.order(signed.account!, String(req.params.id))));
  });
  post('/acme/:tier/order/:id/finalize', 'kid', async (req, res, ctx, signed) => {
    const order = await acme.orders.finalize(ctx, signed.account!, String(req.params.id), signed.json);
    res.location(urls.order(ctx.tier, order.id)).json(orderView(urls, ctx.tier, order));
  });
  post('/acme/:tier/authz/:id', 'kid', async (req, res, ctx, signed) => {
    const { authz, challenges } = await acme.orders.updateAuthorization(signed.account!, String(req.params.id), signed.json);
    res.json(authzView(urls, ctx.tier, authz, challenges));
  });
  post('/acme/:tier/chall/:id', 'kid', async (req, res, ctx, signed) => {
    const { challenge, authz } = signed.json === null
      ? await readChallenge(acme, signed.account!, String(req.params.id))
      : await acme.orders.respond(ctx, signed.account!, String(req.params.id));
    res.setHeader('link', [`<${urls.directory(ctx.tier)}>;rel="index"`, `<${urls.authz(ctx.tier, authz.id)}>;rel="up"`]);
    res.json(challengeView(urls, ctx.tier, challenge));
  });
  post('/acme/:tier/cert/:id', 'kid', async (req, res, _ctx, signed) => {
    const pem = await acme.certificates.download(signed.account!, String(req.params.id));
    res.type('application/pem-certificate-chain').send(pem);
  });
  post('/acme/:tier/revoke-cert', 'either', async (_req, res, ctx, signed) => {
    await acme.certificates.revoke(ctx, signed.account ? { account: signed.account } : { jwk: signed.jwk! }, signed.json);
    res.status(200).end();
  });

  r.use('/acme', (_req, _res, next) => next(new AcmeProblem('malformed', 'no such ACME resource', { status: 404 })));
  r.use('/acme', async (thrown: unknown, req: Request, res: Response, _next: NextFunction) => {
    const type = (thrown as { type?: string }).type;
    const problem = type === 'entity.too.large' ? new AcmeProblem('malformed', `the JWS is larger than ${MAX_JWS}`, { status: 413 })
      : type === 'entity.parse.failed' ? new AcmeProblem('malformed', 'the body is not JSON') : acmeProblemOf(thrown);
    if (problem.type === 'serverInternal' && !(thrown instanceof AcmeProblem)) log.error({ err: thrown, path: req.path }, 'ACME request failed');
    const headers: Record<string, string> = { 'content-type': 'application/problem+json' };
    try {
      if (!res.getHeader('replay-nonce') && res.locals.acme) headers['replay-nonce'] = await acme.nonce();
    } catch {
      // the database is down: no nonce to give
    }
    if (problem.type === 'rateLimited') headers['retry-after'] = String(problem.extra.retryAfter ?? 60);
    res.status(problem.status).set(headers).send(Buffer.from(JSON.stringify(problem.document())));
  });
  return r;
}

async function readChallenge(acme: AcmeServer, account: AccountRecord, id: string): Promise<{ challenge: ChallengeRecord; authz: AuthorizationRecord }> {
  const challenge = await acme.deps.acme.challenge(id);
  const authz = challenge ? await acme.deps.acme.authorization(challenge.authorizationId) : undefined;
  if (!challenge || !authz || authz.accountId !== account.id) throw new AcmeProblem('malformed', 'no such challenge', { status: 404 });
  return { challenge, authz };
}

function accountView(urls: AcmeUrls, a: AccountRecord): Record<string, unknown> {
  return { status: a.status, contact: a.contact, orders: `${urls.account(a.tier, a.id)}/orders`, termsOfServiceAgreed: true };
}

function orderView(urls: AcmeUrls, tier: string, o: OrderRecord): Record<string, unknown> {
  return {
    status: o.status, expires: o.expiresAt.toISOString(), identifiers: o.identifiers,
    authorizations: o.authorizations.map((id) => urls.authz(tier, id)), finalize: urls.finalize(tier, o.id),
    ...(o.status === 'valid' ? { certificate: urls.certificate(tier, o.id) } : {}),
    ...(o.error ? { error: o.error } : {}),
    ...(o.replaces ? { replaces: o.replaces } : {}),
  };
}

function authzView(urls: AcmeUrls, tier: string, a: AuthorizationRecord, challenges: ChallengeRecord[]): Record<string, unknown> {
  return {
    identifier: { type: 'dns', value: a.identifier }, status: a.status, expires: a.expiresAt.toISOString(),
    challenges: challenges.map((c) => challengeView(urls, tier, c)), ...(a.wildcard ? { wildcard: true } : {}),
  };
}

function challengeView(urls: AcmeUrls, tier: string, c: ChallengeRecord): Record<string, unknown> {
  return {
    type: c.type, url: urls.challenge(tier, c.id), status: c.status, token: c.token,
    ...(c.validatedAt ? { validated: c.validatedAt.toISOString() } : {}), ...(c.error ? { error: c.error } : {}),
  };
}
