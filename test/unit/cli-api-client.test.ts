import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../server/errors.ts';
import { ApiClient, apiPath, errorFromResponse, exitCodeForStatus, isLoopback, parseServerUrl, resolveToken } from '../../cli/api-client.ts';
import { CliError } from '../../cli/cli-error.ts';
import { FakeServer, problem } from './cli-fake-server.ts';

const dir = mkdtempSync(join(tmpdir(), 'tierca-cli-api-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('errorFromResponse', () => {
  it('takes the exit code of every problem type from server/errors.ts', () => {
    for (const [code, { status, exit, title }] of Object.entries(ERROR_CODES)) {
      const body = JSON.stringify({ type: `urn:tierca:problem:${code}`, title, status, detail: 'd' });
      const err = errorFromResponse(status, '', body, 'GET /x');
      expect([code, err.exitCode]).toEqual([code, exit]);
      expect(err.message).toBe(`${title}: d`);
      expect(err.problem).toEqual({ type: `urn:tierca:problem:${code}`, title, status, detail: 'd' });
    }
  });

  it('names the error id the server logged', () => {
    const body = JSON.stringify({ type: 'urn:tierca:problem:internal', title: 'Internal error', status: 500, errorId: 'e-42' });
    expect(errorFromResponse(500, '', body, 'GET /x').message).toBe('Internal error (error id e-42)');
  });

  it('falls back to the HTTP status for an unknown problem type or a body that is not a problem', () => {
    const unknown = JSON.stringify({ type: 'about:blank', title: 'Not Found', status: 404 });
    expect(errorFromResponse(404, 'Not Found', unknown, 'GET /x').exitCode).toBe(3);
    const html = errorFromResponse(502, 'Bad Gateway', '<html>proxy</html>', 'GET /api/v1/cas');
    expect(html.exitCode).toBe(9);
    expect(html.message).toBe('GET /api/v1/cas: HTTP 502 Bad Gateway');
    expect(html.problem).toBeUndefined();
  });

  it('maps statuses to the documented exit codes', () => {
    const table = [400, 401, 403, 404, 409, 413, 415, 422, 429, 500, 502, 503, 504].map((s) => [s, exitCodeForStatus(s)]);
    expect(table).toEqual([[400, 2], [401, 4], [403, 4], [404, 3], [409, 5], [413, 2], [415, 2], [422, 6], [429, 8], [500, 1], [502, 9], [503, 9], [504, 9]]);
  });
});

describe('server URLs', () => {
  it('keeps a path prefix and drops query and fragment', () => {
    expect(parseServerUrl('https://ca.intranet/tierca?x=1#y').href).toBe('https://ca.intranet/tierca/');
    const api = new ApiClient({ baseUrl: 'https://ca.intranet/tierca', token: () => 't' });
    expect(api.url('/api/v1/cas', { a: 'x y', b: undefined, c: 3 }).href).toBe('https://ca.intranet/tierca/api/v1/cas?a=x+y&c=3');
  });

  it('refuses what is not an http(s) URL, and credentials in it', () => {
    expect(() => parseServerUrl('127.0.0.1:8080')).toThrow(CliError);
    expect(() => parseServerUrl('ftp://x')).toThrow('--server: "ftp://x" is not an http or https URL');
    expect(() => parseServerUrl('http://admin:secret@x')).toThrow('credentials do not belong in the URL');
    try {
      parseServerUrl('nope');
    } catch (err) {
      expect((err as CliError).exitCode).toBe(2);
    }
  });

  it('knows which servers are on this machine', () => {
    for (const u of ['http://127.0.0.1:8080', 'http://localhost:1', 'http://LOCALHOST', 'http://[::1]:8080', 'http://127.1.2.3']) {
      expect([u, isLoopback(new URL(u))]).toEqual([u, true]);
    }
    for (const u of ['http://10.0.0.1', 'http://ca.intranet', 'http://127.0.0.1.evil.example', 'http://localhost.example', 'http://[::2]']) {
      expect([u, isLoopback(new URL(u))]).toEqual([u, false]);
    }
  });

  it('percent-encodes interpolated path segments', () => {
    expect(apiPath`/api/v1/subjects/${'a/b c'}/revoke`).toBe('/api/v1/subjects/a%2Fb%20c/revoke');
    expect(apiPath`/ca/${'../admin'}.crt`).toBe('/ca/..%2Fadmin.crt');
  });
});

describe('resolveToken', () => {
  const local = new URL('http://127.0.0.1:8080/');
  const remote = new URL('http://ca.intranet:8080/');
  const data = join(dir, 'data');
  mkdirSync(data);
  writeFileSync(join(data, 'demo-admin.token'), 'demo-token\n', { mode: 0o600 });
  const tokenFile = join(dir, 'my.token');
  writeFileSync(tokenFile, '  file-token \n', { mode: 0o600 });

  it('reads --token-file first, trimmed', () => {
    expect(resolveToken({ tokenFile, env: { TIERCA_TOKEN: 'env-token', TIERCA_DATA: data }, serverUrl: local })).toBe('file-token');
  });

  it('resolves a relative --token-file against the working folder', () => {
    expect(resolveToken({ tokenFile: 'my.token', env: {}, serverUrl: remote, cwd: dir })).toBe('file-token');
  });

  it('then TIERCA_TOKEN', () => {
    expect(resolveToken({ env: { TIERCA_TOKEN: ' env-token ', TIERCA_DATA: data }, serverUrl: local })).toBe('env-token');
  });

  it('then the demo token, for a server on this machine only', () => {
    expect(resolveToken({ env: { TIERCA_DATA: data }, serverUrl: local })).toBe('demo-token');
    expect(resolveToken({ env: { TIERCA_DATA: 'data' }, serverUrl: new URL('http://localhost:9/'), cwd: dir })).toBe('demo-token');
    expect(() => resolveToken({ env: { TIERCA_DATA: data }, serverUrl: remote })).toThrow(
      'no API token: give --token-file <path> or set TIERCA_TOKEN (the demo token is used only for a server on this machine)',
    );
  });

  it('defaults TIERCA_DATA to ./data', () => {
    expect(resolveToken({ env: {}, serverUrl: local, cwd: dir })).toBe('demo-token');
  });

  it('is exit 4 when there is no token, exit 2 when the token file is unusable', () => {
    const none = (() => {
      try {
        resolveToken({ env: { TIERCA_DATA: join(dir, 'nothing') }, serverUrl: local });
      } catch (err) {
        return err as CliError;
      }
    })();
    expect(none?.exitCode).toBe(4);
    expect(none?.message).toBe(`no API token: give --token-file <path> or set TIERCA_TOKEN (no demo token at ${join(dir, 'nothing', 'demo-admin.token')} either)`);

    const missing = () => resolveToken({ tokenFile: join(dir, 'absent.token'), env: {}, serverUrl: local });
    expect(missing).toThrow(`cannot read token file ${join(dir, 'absent.token')}: no such file`);
    writeFileSync(join(dir, 'empty.token'), '\n');
    expect(() => resolveToken({ tokenFile: join(dir, 'empty.token'), env: {}, serverUrl: local })).toThrow(`token file ${join(dir, 'empty.token')} is empty`);
    try {
      missing();
    } catch (err) {
      expect((err as CliError).exitCode).toBe(2);
    }
  });

  it('does not fall back to the demo token when the file is unreadable', () => {
    if (process.getuid?.() === 0) return; // root reads every file
    const locked = join(dir, 'locked');
    mkdirSync(locked);
    writeFileSync(join(locked, 'demo-admin.token'), 't');
    chmodSync(join(locked, 'demo-admin.token'), 0);
    expect(() => resolveToken({ env: { TIERCA_DATA: locked }, serverUrl: local })).toThrow('no API token');
  });
});

describe('ApiClient against a fake server', () => {
  let server: FakeServer;
  beforeAll(async () => {
    server = await FakeServer.start();
  });
  afterAll(() => server.close());
  afterEach(() => server.reset());

  it('sends JSON with the bearer token and parses the answer', async () => {
    server.on('POST /api/v1/subjects', { status: 201, json: { id: 's1' } });
    const api = new ApiClient({ baseUrl: server.url, token: () => 'tok-1', userAgent: 'tierca-cli/test' });
    const res = await api.post('/api/v1/subjects', { name: '张三' });
    expect(res).toEqual({ status: 201, body: { id: 's1' } });
    const req = server.only();
    expect(req.headers.authorization).toBe('Bearer tok-1');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['user-agent']).toBe('tierca-cli/test');
    expect(req.json).toEqual({ name: '张三' });
  });

  it('asks for the token only for authenticated requests', async () => {
    server.on('GET /ca/root.crt', { body: Buffer.from([0x30, 0x00]), contentType: 'application/pkix-cert' });
    const api = new ApiClient({
      baseUrl: server.url,
      token: () => {
        throw new Error('token read for a public route');
      },
    });
    const res = await api.binary({ method: 'GET', path: '/ca/root.crt', accept: 'application/pkix-cert' });
    expect(res.body).toEqual(Buffer.from([0x30, 0x00]));
    expect(server.only().headers.authorization).toBeUndefined();
  });

  it('turns a problem answer into a CliError with the problem', async () => {
    server.on('GET /api/v1/cas/nope', problem('not-found', 404, 'Not found', 'no CA nope'));
    const api = new ApiClient({ baseUrl: server.url, token: () => 't' });
    await expect(api.get('/api/v1/cas/nope')).rejects.toMatchObject({
      exitCode: 3,
      message: 'Not found: no CA nope',
      problem: { type: 'urn:tierca:problem:not-found', status: 404 },
    });
  });

  it('reports an answer that is not JSON as exit 1', async () => {
    server.on('GET /api/v1/cas', { body: '<html>', contentType: 'text/html' });
    const api = new ApiClient({ baseUrl: server.url, token: () => 't' });
    await expect(api.get('/api/v1/cas')).rejects.toMatchObject({ exitCode: 1, message: `the answer to GET /api/v1/cas from ${server.url} is not JSON` });
  });

  it('reports a timeout as exit 9', async () => {
    server.on('GET /api/v1/whoami', () => new Promise((resolve) => setTimeout(() => resolve({ json: {} }), 500)));
    const api = new ApiClient({ baseUrl: server.url, token: () => 't', timeoutMs: 50 });
    await expect(api.get('/api/v1/whoami')).rejects.toMatchObject({
      exitCode: 9,
      message: `no answer from the tierca server at ${server.url} within 0.05 s`,
    });
  });
});
