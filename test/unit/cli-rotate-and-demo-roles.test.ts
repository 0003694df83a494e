// `tierca rotate run` changes nothing without --execute (a server dry run, exit 0), and against the
// local demo each command sends the demo token of the role it needs (cli/api-client.ts
// DEMO_ROLE_BY_COMMAND), so the README tour runs as written against `npm start`.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { demoRoleFor } from '../../cli/api-client.ts';
import { FakeServer, runCli } from './cli-fake-server.ts';

const dir = mkdtempSync(join(tmpdir(), 'tierca-cli-roles-'));
let server: FakeServer;
const TOKENS = { admin: 'demo-admin-token-0', officer: 'demo-officer-token-0', auditor: 'demo-auditor-token-0' };
for (const [role, token] of Object.entries(TOKENS)) writeFileSync(join(dir, `demo-${role}.token`), `${token}\n`, { mode: 0o600 });

beforeAll(async () => {
  server = await FakeServer.start();
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => server.reset());

const RUN = { requestId: 'r', dryRun: true, at: '2026-01-01T00:00:00.000Z', summary: { 'would-renew': 2 }, remaining: 0, items: [] };

describe('rotate run', () => {
  it('without --execute asks for a dry run only, says so, and exits 0', async () => {
    server.on('POST /api/v1/rotation/run', { json: RUN });
    const r = await runCli(['rotate', 'run', '--tier', 't1'], { TIERCA_URL: server.url, TIERCA_TOKEN: 't' });
    expect(r.code).toBe(0);
    expect(server.requests.map((q) => [q.method, q.path, q.json])).toEqual([['POST', '/api/v1/rotation/run', { tier: 't1', dryRun: true }]]);
    expect(r.stdout).toBe('dry run, nothing changed: would renew 2\nrun again with --execute to do it\n');
  });

  it('with --execute runs for real, in batches under one request id', async () => {
    server.on('GET /api/v1/rotation/due', { json: { now: RUN.at, horizon: RUN.at, items: [] } });
    server.on('POST /api/v1/rotation/run', { json: { ...RUN, dryRun: false, summary: {} } });
    const r = await runCli(['rotate', 'run', '--execute', '--request-id', 'run-1'], { TIERCA_URL: server.url, TIERCA_TOKEN: 't' });
    expect(r.code).toBe(0);
    const post = server.requests.find((q) => q.method === 'POST')!;
    expect(post.json).toEqual({ requestId: 'run-1', limit: 25 });
    expect(r.stdout).toBe('run run-1: nothing was due\n');
  });
});

describe('the demo token by the role each command needs', () => {
  it.each([
    [['ca', 'list'], 'admin', 'GET /api/v1/cas', []],
    [['rotate', 'due'], 'admin', 'GET /api/v1/rotation/due', { now: RUN.at, horizon: RUN.at, items: [] }],
    [['principal', 'list'], 'admin', 'GET /api/v1/principals', []],
    [['crl', 'generate', '--ca', 'yuhu-t2'], 'admin', 'POST /api/v1/crls', []],
    [['subject', 'list'], 'officer', 'GET /api/v1/subjects', []],
    [['cert', 'list'], 'officer', 'GET /api/v1/certificates', []],
    [['request', 'list'], 'officer', 'GET /api/v1/requests', []],
    [['audit', 'tail'], 'auditor', 'GET /api/v1/audit', []],
    [['whoami'], 'admin', 'GET /api/v1/whoami', { id: 'p', name: 'n', role: 'sysadmin', domains: [] }],
  ] as const)('%j sends demo-%s', async (argv, role, route, json) => {
    server.on(route, { json });
    const r = await runCli([...argv], { TIERCA_URL: server.url, TIERCA_DATA: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(server.requests[0].headers.authorization).toBe(`Bearer ${TOKENS[role]}`);
  });

  it('a subcommand entry wins over its command, an unlisted command has none', () => {
    expect(demoRoleFor(['crl', 'show'])).toBe('officer');
    expect(demoRoleFor(['crl', 'generate'])).toBe('admin');
    expect(demoRoleFor(['ca', 'rollover'])).toBe('admin');
    expect(demoRoleFor(['cert', 'renew'])).toBe('officer');
    expect(demoRoleFor(['whoami'])).toBeUndefined();
  });
});
