// No admin endpoint is open by accident: this walks the real express router stack of the app
// (app.router → the /api/v1 router → every nested router), so a route anyone adds later is covered
// without touching this file, and asserts that every /api/v1 route refuses a missing token, a
// disabled principal's token and a role without its permission — each refusal a problem document,
// each login failure and denial in the audit log, nothing else written.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest } from 'node:http';
import pino from 'pino';
import { startTestTierca, call, type TestTierca, addApprovingPrincipal } from '../helpers/tierca.ts';
import { snapshotCounts } from '../helpers/database.ts';
import { createApp } from '../../server/http/app.ts';
import { ROUTE_PERMISSIONS } from '../../server/http/authenticate.ts';
import { ROLE_PERMISSIONS } from '../../server/ra/permissions.ts';
import type { Role } from '../../server/storage/storage.ts';

let t: TestTierca;
const tokens: Partial<Record<Role | 'disabled', string>> = {};
let disabledId: string;

interface Route {
  method: string;
  path: string;
}

/** Routes everyone who holds a token may call (so no role can be the wrong one). */
const OPEN_TO_EVERY_ROLE = ['GET /whoami'];

/** Every route of an express 5 router, nested routers included, read from the router's own stack. */
function walk(router: { stack: any[] }, prefix = ''): Route[] {
  const out: Route[] = [];
  for (const layer of router.stack) {
    if (layer.route) {
      for (const [method, on] of Object.entries(layer.route.methods as Record<string, boolean>)) {
        if (on) out.push({ method: method.toUpperCase(), path: `${prefix}${layer.route.path}` });
      }
    } else if (layer.handle?.stack) {
      const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
      out.push(...walk(layer.handle, `${prefix}${mount}`));
    }
  }
  return out;
}

let routes: Route[];

beforeAll(async () => {
  t = await startTestTierca();
  const services = t.service.services;
  // The app as the service builds it: every service it runs (so optional route groups are there too).
  const app = createApp({ ...services, publicUrl: services.config.publicUrl, log: pino({ level: 'silent' }), health: async () => undefined });
  routes = walk((app as unknown as { router: { stack: any[] } }).router).filter((r) => r.path.startsWith('/api/v1/'));
  tokens.sysadmin = t.tokens.admin;
  tokens.officer = t.tokens.officer;
  tokens.auditor = t.tokens.auditor;
  const device = await call(t, 'admin', 'POST', '/api/v1/principals', { name: 'gateway 7', role: 'device' });
  expect(device.status, JSON.stringify(device.body)).toBe(201);
  tokens.device = device.body.token;
  const gone = await addApprovingPrincipal(t, { name: 'leaver', role: 'officer', domains: ['yuhu'] });
  tokens.disabled = gone.body.token;
  disabledId = gone.body.id;
  expect((await call(t, 'admin', 'POST', `/api/v1/principals/${disabledId}/disable`)).status).toBe(200);
});
afterAll(async () => {
  await t?.close();
});

/** One HTTP exchange from a chosen loopback source address (the login rate limit is per source). */
function send(route: Route, opts: { token?: string; source: string; body?: unknown }): Promise<{ status: number; type: string; body: any }> {
  const path = route.path.replace(/:[A-Za-z]+/g, (p) => `no-such-${p.slice(1)}`);
  const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1', port: t.port, method: route.method, path, localAddress: opts.source,
      headers: {
        ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
      },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const type = res.headers['content-type'] ?? '';
        resolve({ status: res.statusCode ?? 0, type, body: type.includes('json') && text ? JSON.parse(text) : text });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const rolesDenied = (key: string): Role[] => {
  const allow = ROUTE_PERMISSIONS[key]?.allow ?? [];
  return (Object.keys(ROLE_PERMISSIONS) as Role[]).filter((role) => !allow.some((p) => ROLE_PERMISSIONS[role].includes(p)));
};

describe('the /api/v1 router', () => {
  it('has the routes this issue adds, and every one of its routes declares a permission (and no declaration is stale)', () => {
    const keys = routes.map((r) => `${r.method} ${r.path.slice('/api/v1'.length)}`);
    expect(keys.length).toBeGreaterThanOrEqual(30);
    for (const key of ['GET /principals', 'POST /principals/:id/disable', 'POST /principals/:id/certificate', 'POST /escrow/:issuer/:serial/recover',
      'GET /audit', 'GET /audit/export', 'GET /audit/verify', 'POST /requests/:id/approve', 'POST /cas/:id/revoke']) {
      expect(keys).toContain(key);
    }
    expect(keys.filter((k) => !(k in ROUTE_PERMISSIONS))).toEqual([]);
    expect(Object.keys(ROUTE_PERMISSIONS).filter((k) => !keys.includes(k))).toEqual([]);
  });

  it('refuses every route without a token and with a disabled principal\'s token (401), and audits the disabled login', async () => {
    let n = 10;
    for (const route of routes) {
      const source = `127.0.0.${n++}`;
      const before = await snapshotCounts(t.store);
      const none = await send(route, { source, body: route.method === 'POST' ? {} : undefined });
      expect([route, none.status, none.type, none.body.type]).toEqual([route, 401, 'application/problem+json', 'urn:tierca:problem:unauthenticated']);
      const disabled = await send(route, { source, token: tokens.disabled, body: route.method === 'POST' ? {} : undefined });
      expect([route, disabled.status, disabled.body.type, disabled.body.detail]).toEqual([route, 401, 'urn:tierca:problem:unauthenticated', 'the credentials are not valid']);
      const after = await snapshotCounts(t.store);
      // Only the disabled principal's attempt is written: a request with no credentials tried nothing.
      expect([route, { ...after, audit_log: 0 }]).toEqual([route, { ...before, audit_log: 0 }]);
      expect([route, after.audit_log - before.audit_log]).toEqual([route, 1]);
      const [record] = await t.store.audit.list({ fromSeq: (await t.store.audit.last())!.seq });
      expect([route, record]).toMatchObject([route, {
        principalId: disabledId, role: null, source, action: 'auth.login', outcome: 'denied',
        target: `${route.method} ${route.path.replace(/:[A-Za-z]+/g, (p) => `no-such-${p.slice(1)}`)}`, detail: { reason: 'principal-disabled' },
      }]);
    }
  });

  it('refuses every route to each role that lacks its permission (403 naming it), before the body is read', async () => {
    let checked = 0;
    for (const route of routes) {
      const key = `${route.method} ${route.path.slice('/api/v1'.length)}`;
      const denied = rolesDenied(key);
      if (OPEN_TO_EVERY_ROLE.includes(key)) {
        expect([key, denied]).toEqual([key, []]);
        continue;
      }
      expect([key, denied.length > 0]).toEqual([key, true]);
      for (const role of denied) {
        const before = await snapshotCounts(t.store);
        // A body that would fail validation: the permission is checked first, so the answer is still 403.
        const res = await send(route, { source: '127.0.0.2', token: tokens[role], body: route.method === 'POST' ? { nonsense: true } : undefined });
        const allow = ROUTE_PERMISSIONS[key].allow.join(' or ');
        expect([key, role, res.status, res.body.type, res.body.detail]).toEqual([key, role, 403, 'urn:tierca:problem:forbidden', `role ${role} lacks permission ${allow}`]);
        const after = await snapshotCounts(t.store);
        expect([key, role, { ...after, audit_log: 0 }]).toEqual([key, role, { ...before, audit_log: 0 }]);
        expect([key, role, after.audit_log - before.audit_log]).toEqual([key, role, 1]);
        const last = (await t.store.audit.last())!;
        expect([key, role, last.outcome, last.role, last.action, last.detail]).toEqual([key, role, 'denied', role, ROUTE_PERMISSIONS[key].action, { missing: allow }]);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(60);
  });

  it('refuses a NUL in a URL (path or query) with 400 before any route, on both engines alike, writing nothing', async () => {
    const before = await snapshotCounts(t.store);
    for (const path of ['/api/v1/subjects?domain=%00', '/api/v1/acme/accounts?domain=%00', '/api/v1/subjects/a%00b', '/api/v1/audit?action=%00', '/ca/yuhu%00.crt']) {
      const res = await send({ method: 'GET', path }, { source: '127.0.0.4', token: tokens.sysadmin });
      expect([path, res.status, res.type, res.body.type]).toEqual([path, 400, 'application/problem+json', 'urn:tierca:problem:bad-request']);
      expect(res.body.detail).toBe('the URL holds a NUL character (%00)');
    }
    // A POST with a NUL in its path changes nothing either.
    const post = await send({ method: 'POST', path: '/api/v1/subjects/x%00/revoke' }, { source: '127.0.0.4', token: tokens.sysadmin, body: { reason: 'superseded' } });
    expect(post.status).toBe(400);
    expect(await snapshotCounts(t.store)).toEqual(before);
  });

  it('lets every role ask who it is', async () => {
    for (const role of ['sysadmin', 'officer', 'auditor', 'device'] as const) {
      const res = await send({ method: 'GET', path: '/api/v1/whoami' }, { source: '127.0.0.3', token: tokens[role] });
      expect([role, res.status, res.body.role]).toEqual([role, 200, role]);
    }
  });
});
