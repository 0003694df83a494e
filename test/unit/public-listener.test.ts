// The plain-HTTP listener beside HTTPS serves the public routes only: exact prefixes, deny by default.
import { describe, expect, it } from 'vitest';
import { createServer, type RequestListener } from 'node:http';
import { isPublicPath, publicOnly } from '../../server/http/public-listener.ts';

describe('isPublicPath', () => {
  it.each([
    '/ocsp', '/ocsp/', '/ocsp/MEow', '/ocsp?x=1', '/crl/yuhu-t1.crl', '/crl/yuhu-t1-delta.crl', '/ca', '/ca/', '/ca?x', '/ca/root.pem',
    '/status/yuhu-t1/0a', '/healthz', '/metrics',
  ])('serves %s', (url) => expect(isPublicPath(url)).toBe(true));
  it.each([
    '/', '/api/v1/whoami', '/api/v1/certificates/0a/renew', '//api/v1/whoami', '/cabinet', '/ocspx', '/crl', '/crlx/a', '/healthz/x',
    '/metricsx', 'http://host/ca/root.pem', '*', '', undefined,
  ])('refuses %s', (url) => expect(isPublicPath(url)).toBe(false));
});

describe('publicOnly', () => {
  it('passes public requests to the app and answers 404 problem+json to the rest, naming the HTTPS URL', async () => {
    const seen: string[] = [];
    const app: RequestListener = (req, res) => {
      seen.push(req.url!);
      res.end('app');
    };
    const server = createServer(publicOnly(app, 'https://ca.example:8443'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const ok = await fetch(`http://127.0.0.1:${port}/crl/root.crl`);
      expect([ok.status, await ok.text()]).toEqual([200, 'app']);
      const refused = await fetch(`http://127.0.0.1:${port}/api/v1/principals`, { method: 'POST', body: '{}', headers: { authorization: 'Bearer x' } });
      expect([refused.status, refused.headers.get('content-type')]).toEqual([404, 'application/problem+json']);
      expect(await refused.json()).toEqual({
        type: 'urn:tierca:problem:not-found', title: 'Not found', status: 404, instance: '/api/v1/principals',
        detail: 'this plain-HTTP listener serves OCSP, CRLs, CA certificates and status only; the admin API is at https://ca.example:8443',
      });
      expect(seen).toEqual(['/crl/root.crl']);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
