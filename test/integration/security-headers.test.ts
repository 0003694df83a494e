// Defect 8 (issue 13): every route of the real router — public and /api/v1, anonymous and with a
// token — answers with nosniff, a strict CSP, X-Frame-Options, Referrer-Policy; /api/v1 answers are
// no-store; HSTS only over TLS; the OCSP GET answer keeps exactly its RFC 5019 cache headers (plus
// nosniff), CRLs and CA certificates keep theirs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { startTestTierca, call, type TestTierca } from '../helpers/tierca.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { createApp, createHttpServer } from '../../server/http/app.ts';
import { listRoutes } from '../../server/http/authenticate.ts';
import { SECURITY_HEADERS, HSTS } from '../../server/http/security-headers.ts';
import { CONSOLE_CSP } from '../../server/http/console/console.router.ts';
import { certificateToPem } from '../../pki/pem.ts';

let t: TestTierca;
const tmp = new TempDir();
let routes: { method: string; path: string }[];

beforeAll(async () => {
  t = await startTestTierca();
  const s = t.service.services;
  const app = createApp({ ...s, publicUrl: s.config.publicUrl, log: pino({ level: 'silent' }), health: async () => undefined });
  routes = listRoutes((app as unknown as { router: Parameters<typeof listRoutes>[0] }).router);
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

const concrete = (path: string) => path.replace(/:file/, 'yuhu-t1.crt').replace(/:issuer/, 'yuhu-t1').replace(/:[A-Za-z]+/g, (p) => `no-such-${p.slice(1)}`);

/** The headers every answer carries; the console's pages (server/http/console) load their own script and style, so their CSP is the console's. */
function expectSecurityHeaders(what: unknown, headers: Headers, path = '') {
  const expected = path.startsWith('/console') ? { ...SECURITY_HEADERS, 'content-security-policy': CONSOLE_CSP } : SECURITY_HEADERS;
  for (const [name, value] of Object.entries(expected)) expect([what, name, headers.get(name)]).toEqual([what, name, value]);
  expect([what, headers.get('strict-transport-security')]).toEqual([what, null]);
}

describe('every route', () => {
  it('walks the public and the admin routes', () => {
    expect(routes.filter((r) => r.path.startsWith('/api/v1/')).length).toBeGreaterThanOrEqual(30);
    expect(routes.map((r) => `${r.method} ${r.path}`)).toEqual(expect.arrayContaining(['GET /ca', 'GET /crl/:file', 'GET /status/:issuer/:serial', 'GET /healthz', 'GET /metrics',
      'GET /console/signin', 'POST /console/signin', 'GET /console/certificates', 'POST /console/issue', 'GET /console/audit']));
  });

  for (const who of [null, 'auditor', 'admin', 'officer'] as const) {
    it(`sends the security headers to ${who ?? 'an anonymous caller'}, and no-store on /api/v1`, async () => {
      let checked = 0;
      for (const route of routes) {
        const path = concrete(route.path);
        const res = await fetch(`${t.url}${path}`, {
          method: route.method,
          headers: { ...(who ? { authorization: `Bearer ${t.tokens[who]}` } : {}), ...(route.method === 'POST' ? { 'content-type': 'application/json' } : {}) },
          body: route.method === 'POST' ? '{}' : undefined,
        });
        await res.arrayBuffer();
        const what = `${who} ${route.method} ${path} → ${res.status}`;
        expectSecurityHeaders(what, res.headers, path);
        if (path.startsWith('/api/v1/') || path === '/metrics') expect([what, res.headers.get('cache-control')]).toEqual([what, 'no-store']);
        // Console pages (not its static assets) are never cached: they show certificates, audit records, tokens once.
        if (path.startsWith('/console') && !path.startsWith('/console/assets/')) expect([what, res.headers.get('cache-control')]).toEqual([what, 'no-store']);
        checked++;
      }
      // An unknown route's problem too.
      const missing = await call(t, who, 'GET', '/no/such/route');
      expectSecurityHeaders('404', missing.headers);
      expect(checked).toBe(routes.length);
    });
  }

  it('an authenticated read is no-store, and so is a token answer', async () => {
    const cas = await call(t, 'auditor', 'GET', '/api/v1/cas');
    expect([cas.status, cas.headers.get('cache-control')]).toEqual([200, 'no-store']);
    const token = await call(t, 'admin', 'POST', '/api/v1/principals', { name: 'header check', role: 'auditor' });
    expect([token.status, token.headers.get('cache-control')]).toEqual([201, 'no-store']);
  });
});

describe('public artifacts keep their caching', () => {
  it('a CA certificate: public, max-age=3600; the CA index and status JSON: no cache header added', async () => {
    const crt = await call(t, null, 'GET', '/ca/yuhu-t1.crt');
    expect([crt.status, crt.headers.get('cache-control')]).toEqual([200, 'public, max-age=3600']);
    expect((await call(t, null, 'GET', '/ca')).headers.get('cache-control')).toBeNull();
  });

  it('a CRL: public, max-age to its nextUpdate, no-transform, must-revalidate', async () => {
    await call(t, 'officer', 'POST', '/api/v1/crls', { ca: 'yuhu-t1' });
    const crl = await call(t, null, 'GET', '/crl/yuhu-t1.crl');
    expect(crl.status).toBe(200);
    expect(crl.headers.get('cache-control')).toMatch(/^public, max-age=\d+, no-transform, must-revalidate$/);
    expectSecurityHeaders('crl', crl.headers);
  });

  it('OCSP GET: exactly the RFC 5019 headers plus nosniff; POST and 304 get nosniff', async () => {
    const subject = await call(t, 'officer', 'POST', '/api/v1/subjects', { kind: 'device', domain: 'yuhu', organ: 'government', tier: 't1', name: 'ocsp header gw', dns: ['ocsp-gw.yuhu.xiangtan.intranet'] });
    expect(subject.status, JSON.stringify(subject.body)).toBe(201);
    const issued = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: subject.body.id, generate: { algorithm: 'P-256', passphrase: 'header-test-pass' } });
    expect(issued.status, JSON.stringify(issued.body)).toBe(201);
    const issuer = tmp.file('yuhu-t1.pem', certificateToPem((await call(t, null, 'GET', '/ca/yuhu-t1.crt')).raw));
    const cert = tmp.file('leaf.pem', issued.body.pem);
    expect((await openssl(['ocsp', '-issuer', issuer, '-cert', cert, '-no_nonce', '-reqout', tmp.file('req.der')])).code).toBe(0);
    const der = tmp.read('req.der');
    const res = await fetch(`${t.url}/ocsp/${encodeURIComponent(der.toString('base64'))}`);
    expect(res.status).toBe(200);
    const headers = Object.fromEntries(res.headers.entries());
    expect(Object.keys(headers).sort()).toEqual(['cache-control', 'connection', 'content-length', 'content-type', 'date', 'etag', 'expires', 'keep-alive', 'last-modified', 'x-content-type-options']);
    expect(headers['cache-control']).toMatch(/^max-age=\d+, public, no-transform, must-revalidate$/);
    expect(headers['x-content-type-options']).toBe('nosniff');
    const again = await fetch(`${t.url}/ocsp/${encodeURIComponent(der.toString('base64'))}`, { headers: { 'if-none-match': headers.etag } });
    expect([again.status, again.headers.get('etag'), again.headers.get('x-content-type-options')]).toEqual([304, headers.etag, 'nosniff']);
    const post = await fetch(`${t.url}/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: new Uint8Array(der) });
    expect([post.status, post.headers.get('x-content-type-options'), post.headers.get('cache-control')]).toEqual([200, 'nosniff', null]);
    const put = await fetch(`${t.url}/ocsp`, { method: 'PUT' });
    expect([put.status, put.headers.get('x-content-type-options')]).toEqual([405, 'nosniff']);
  });
});

describe('over TLS', () => {
  it('adds Strict-Transport-Security', async () => {
    const key = tmp.file('tls.key');
    const crt = tmp.file('tls.crt');
    expect((await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt, '-subj', '/CN=127.0.0.1', '-days', '1'])).code).toBe(0);
    const s = t.service.services;
    const server = createHttpServer({ ...s, publicUrl: s.config.publicUrl, log: pino({ level: 'silent' }), health: async () => undefined }, { key: tmp.read('tls.key'), cert: tmp.read('tls.crt'), ca: tmp.read('tls.crt') });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      for (const path of ['/api/v1/whoami', '/ca']) {
        const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
          httpsRequest({ host: '127.0.0.1', port, path, rejectUnauthorized: false }, (res) => {
            res.resume();
            resolve(res.headers);
          }).on('error', reject).end();
        });
        expect([path, headers['strict-transport-security'], headers['x-content-type-options']]).toEqual([path, HSTS, 'nosniff']);
      }
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
