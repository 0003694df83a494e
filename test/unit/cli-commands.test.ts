/**
 * The API commands of `tierca`, run in-process against a fake server: the request each sends
 * (method, path, query, body, Authorization), what it prints for people and with --json, and the
 * exit code of each kind of failure.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../cli/main.ts';
import { Capture, fakeStdin, FakeServer, problem, runCli } from './cli-fake-server.ts';

const TOKEN = 'test-token-0123';
const dir = mkdtempSync(join(tmpdir(), 'tierca-cli-cmd-'));
let server: FakeServer;
let env: Record<string, string>;

beforeAll(async () => {
  server = await FakeServer.start();
  env = { TIERCA_URL: server.url, TIERCA_TOKEN: TOKEN };
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => server.reset());

const CAS = [
  {
    id: 'root',
    name: '湘潭市信任根',
    layer: 'root',
    domain: null,
    tier: null,
    parent: null,
    status: 'active',
    notBefore: '2026-01-01T00:00:00.000Z',
    notAfter: '2046-01-01T00:00:00.000Z',
    fingerprint: 'aa11bb22cc33dd44ee55ff6600112233445566778899aabbccddeeff00112233',
    serial: '01',
    urls: { certificate: 'http://x/ca/root.crt' },
  },
  {
    id: 'yuhu-t2',
    name: '雨湖区 t2',
    layer: 'tier',
    domain: 'yuhu',
    tier: 't2',
    parent: 'yuhu',
    status: 'revoked',
    notBefore: '2026-01-01T00:00:00.000Z',
    notAfter: '2031-06-30T12:30:00.000Z',
    fingerprint: '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    serial: '02',
  },
];

const CERT = {
  serial: '5f3a9c01d2e4b7aa',
  issuerId: 'yuhu-t2',
  subjectId: 's-1',
  profile: 'device',
  tier: 't2',
  domain: 'yuhu',
  subject: 'C=CN,ST=湖南省,L=雨湖区,O=人民政府,CN=vpn-gw-01',
  notBefore: '2026-01-01T00:00:00.000Z',
  notAfter: '2027-01-01T00:00:00.000Z',
  status: 'good',
  revokedAt: null,
  reason: null,
  fingerprint: 'ff',
  keyAlgorithm: 'P-256',
};

describe('authentication', () => {
  it('sends TIERCA_TOKEN as a bearer token', async () => {
    server.on('GET /api/v1/whoami', { json: { id: 'p1', name: '管理员', role: 'sysadmin', domains: [] } });
    const r = await runCli(['whoami'], env);
    expect(r.code).toBe(0);
    expect(server.only().headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(r.stdout).toBe('id:       p1\nname:     管理员\nrole:     sysadmin\ndomains:  -\n');
  });

  it('reads --token-file, which wins over TIERCA_TOKEN', async () => {
    const file = join(dir, 'officer.token');
    writeFileSync(file, 'from-file\n', { mode: 0o600 });
    server.on('GET /api/v1/whoami', { json: { id: 'p2', name: 'o', role: 'officer', domains: ['yuhu', 'shaoshan'] } });
    const r = await runCli(['--token-file', file, 'whoami'], env);
    expect(r.code).toBe(0);
    expect(server.only().headers.authorization).toBe('Bearer from-file');
    expect(r.stdout).toContain('domains:  yuhu, shaoshan\n');
  });

  it('falls back to $TIERCA_DATA/demo-admin.token for a server on this machine', async () => {
    const data = join(dir, 'demo');
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, 'demo-admin.token'), 'demo-admin-token\n', { mode: 0o600 });
    server.on('GET /api/v1/whoami', { json: { id: 'p1', name: 'admin', role: 'sysadmin', domains: [] } });
    const r = await runCli(['whoami'], { TIERCA_URL: server.url, TIERCA_DATA: data });
    expect(r.code).toBe(0);
    expect(server.only().headers.authorization).toBe('Bearer demo-admin-token');
  });

  it('never uses the demo token for a server elsewhere: exit 4 before any connection', async () => {
    const data = join(dir, 'demo');
    // 192.0.2.0/24 is TEST-NET-1: nothing answers there, so reaching it would be exit 9, not 4.
    const r = await runCli(['--server', 'http://192.0.2.1:8080', 'ca', 'list'], { TIERCA_DATA: data });
    expect(r.code).toBe(4);
    expect(r.stderr).toBe('error: no API token: give --token-file <path> or set TIERCA_TOKEN (the demo token is used only for a server on this machine)\n');
  });

  it('has no option that takes the token as a value', async () => {
    const r = await runCli(['--token', TOKEN, 'whoami'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: unknown option '--token'");
    expect(server.requests).toHaveLength(0);
    const help = await runCli(['--help'], {});
    expect(help.stdout).not.toMatch(/--token[ =]/);
    expect(help.stdout).toContain('--token-file <path>');
  });

  it('reads a missing token file as a usage error (exit 2)', async () => {
    const r = await runCli(['--token-file', join(dir, 'absent'), 'whoami'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`error: cannot read token file ${join(dir, 'absent')}: no such file\n`);
  });
});

describe('errors and exit codes', () => {
  it.each([
    ['not-found', 404, 'Not found', 3],
    ['forbidden', 403, 'Forbidden', 4],
    ['unauthenticated', 401, 'Authentication required', 4],
    ['conflict', 409, 'Conflict', 5],
    ['policy-validity', 422, 'Validity above the tier maximum', 6],
    ['wrong-passphrase', 500, 'Wrong keystore passphrase', 7],
    ['rate-limited', 429, 'Too many requests', 8],
    ['unavailable', 503, 'Service unavailable', 9],
    ['internal', 500, 'Internal error', 1],
    ['bad-request', 400, 'Bad request', 2],
  ])('%s (%d) exits %d and prints "error: <title>: <detail>"', async (code, status, title, exit) => {
    server.on('GET /api/v1/cas/x', problem(code, status, title, `detail of ${code}`));
    const r = await runCli(['ca', 'show', 'x'], env);
    expect(r.code).toBe(exit);
    expect(r.stderr).toBe(`error: ${title}: detail of ${code}\n`);
    expect(r.stdout).toBe('');
  });

  it('prints the problem document on stdout with --json', async () => {
    server.on('POST /api/v1/subjects', problem('policy-name-constraints', 422, 'Name outside the domain constraints', 'vpn.evil.example'));
    const r = await runCli(
      ['--json', 'subject', 'add', '--kind', 'device', '--domain', 'yuhu', '--organ', 'government', '--tier', 't2', '--name', 'gw', '--dns', 'vpn.evil.example'],
      env,
    );
    expect(r.code).toBe(6);
    expect(r.stderr).toBe('error: Name outside the domain constraints: vpn.evil.example\n');
    expect(JSON.parse(r.stdout)).toEqual({
      type: 'urn:tierca:problem:policy-name-constraints',
      title: 'Name outside the domain constraints',
      status: 422,
      detail: 'vpn.evil.example',
    });
  });

  it('exits 9 naming the URL when nothing listens there', async () => {
    const closed = await FakeServer.start();
    const url = closed.url;
    await closed.close();
    const r = await runCli(['ca', 'list'], { TIERCA_URL: url, TIERCA_TOKEN: TOKEN });
    expect(r.code).toBe(9);
    expect(r.stderr).toBe(
      `error: cannot reach the tierca server at ${url}: connection refused (is \`tierca serve\` running there? --server or TIERCA_URL choose another)\n`,
    );
  });

  it('refuses a --server that is not a URL (exit 2)', async () => {
    const r = await runCli(['--server', 'localhost:8080', 'ca', 'list'], { TIERCA_TOKEN: TOKEN });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: --server: "localhost:8080" is not an http or https URL\n');
  });
});

describe('ca', () => {
  it('lists CAs as an aligned table, Chinese names two columns wide', async () => {
    server.on('GET /api/v1/cas', { json: CAS });
    const r = await runCli(['ca', 'list'], env);
    expect(r.code).toBe(0);
    expect(server.only()).toMatchObject({ method: 'GET', path: '/api/v1/cas' });
    expect(r.stdout).toBe(
      [
        'ID       NAME          LAYER  DOMAIN  TIER  STATUS   NOT AFTER          FINGERPRINT',
        'root     湘潭市信任根  root   -       -     active   2046-01-01 00:00Z  aa11bb22cc33dd44…',
        'yuhu-t2  雨湖区 t2     tier   yuhu    t2    revoked  2031-06-30 12:30Z  0123456789abcdef…',
        '',
      ].join('\n'),
    );
  });

  it('prints the API JSON as it came with --json (before or after the subcommand)', async () => {
    server.on('GET /api/v1/cas', { json: CAS });
    const before = await runCli(['--json', 'ca', 'list'], env);
    const after = await runCli(['ca', 'list', '--json'], env);
    expect(JSON.parse(before.stdout)).toEqual(CAS);
    expect(after.stdout).toBe(before.stdout);
  });

  it('colours the status on a terminal, unless --no-color or NO_COLOR', async () => {
    server.on('GET /api/v1/cas', { json: CAS });
    const onTerminal = async (argv: string[], extra: Record<string, string> = {}) => {
      const stdout = new Capture();
      stdout.isTTY = true;
      const code = await run(argv, { stdout, stderr: new Capture(), env: { ...env, ...extra }, stdin: fakeStdin() });
      expect(code).toBe(0);
      return stdout.text;
    };
    const coloured = await onTerminal(['ca', 'list']);
    expect(coloured).toContain('\u001b[32mactive\u001b[0m');
    expect(coloured).toContain('\u001b[31mrevoked\u001b[0m');
    const plain = await runCli(['ca', 'list'], env);
    expect(await onTerminal(['ca', 'list', '--no-color'])).toBe(plain.stdout);
    expect(await onTerminal(['ca', 'list'], { NO_COLOR: '1' })).toBe(plain.stdout);
  });

  it('says so when there are no CAs', async () => {
    server.on('GET /api/v1/cas', { json: [] });
    const r = await runCli(['ca', 'list'], env);
    expect(r.stdout).toBe('no CAs (run tierca init, or start the demo with npm start)\n');
  });

  it('shows one CA with its fields and PEM', async () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    server.on('GET /api/v1/cas/yuhu-t2', { json: { ...CAS[1], subject: 'CN=雨湖区 t2', keyAlgorithm: 'P-384', policies: ['2.25.9.2'], children: [], pem } });
    const r = await runCli(['ca', 'show', 'yuhu-t2'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('id:            yuhu-t2\n');
    expect(r.stdout).toContain('fingerprint:   0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n');
    expect(r.stdout).toContain('policies:      2.25.9.2\n');
    expect(r.stdout.endsWith(`\n${pem}`)).toBe(true);
  });

  it('encodes the id as one path segment', async () => {
    const r = await runCli(['ca', 'show', '../whoami'], env);
    expect(r.code).toBe(3);
    expect(server.only().path).toBe('/api/v1/cas/..%2Fwhoami');
  });

  it('revoke without --execute only shows what it would do', async () => {
    server.on('GET /api/v1/cas/yuhu', { json: { ...CAS[0], id: 'yuhu', name: '雨湖区', layer: 'domain', children: ['yuhu-t1', 'yuhu-t2'] } });
    const r = await runCli(['ca', 'revoke', 'yuhu', '--reason', 'cACompromise'], env);
    expect(r.code).toBe(0);
    expect(server.requests.map((q) => `${q.method} ${q.path}`)).toEqual(['GET /api/v1/cas/yuhu']);
    expect(r.stdout).toBe(
      'would revoke CA yuhu (雨湖区, domain) with reason cACompromise\n' +
        'every certificate it issued and every CA below it would stop validating: yuhu-t1, yuhu-t2\n' +
        'nothing changed; run again with --execute to revoke\n',
    );
  });

  it('revoke --execute posts the reason', async () => {
    server.on('GET /api/v1/cas/yuhu', { json: { ...CAS[0], id: 'yuhu', name: '雨湖区', layer: 'domain' } });
    server.on('POST /api/v1/cas/yuhu/revoke', { json: { ...CAS[0], id: 'yuhu', status: 'revoked' } });
    const r = await runCli(['ca', 'revoke', 'yuhu', '--reason', 'cACompromise', '--execute'], env);
    expect(r.code).toBe(0);
    const post = server.requests[1];
    expect([post.method, post.path, post.json]).toEqual(['POST', '/api/v1/cas/yuhu/revoke', { reason: 'cACompromise' }]);
    expect(r.stdout).toBe('revoked CA yuhu (雨湖区) with reason cACompromise\n');
  });

  it('revoke needs a known reason (exit 2)', async () => {
    const missing = await runCli(['ca', 'revoke', 'yuhu'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("error: required option '--reason <reason>' not specified");
    const wrong = await runCli(['ca', 'revoke', 'yuhu', '--reason', 'lost'], env);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("error: option '--reason <reason>' argument 'lost' is invalid. Allowed choices are unspecified, keyCompromise");
    expect(server.requests).toHaveLength(0);
  });
});

describe('subject', () => {
  it('add sends the subject with repeatable names', async () => {
    server.on('POST /api/v1/subjects', (req) => ({ status: 201, json: { id: 's-9', ...(req.json as object), status: 'active' } }));
    const r = await runCli(
      [
        'subject', 'add', '--kind', 'device', '--domain', 'yuhu', '--organ', 'government', '--tier', 't2', '--name', 'vpn-gw-01',
        '--dns', 'vpn-gw-01.yuhu.xt.gov', '--dns', 'vpn.yuhu.xt.gov', '--ip', '10.0.0.1', '--ip', 'fd00::1',
      ],
      env,
    );
    expect(r.code).toBe(0);
    const req = server.only();
    expect([req.method, req.path, req.headers.authorization]).toEqual(['POST', '/api/v1/subjects', `Bearer ${TOKEN}`]);
    expect(req.json).toEqual({
      kind: 'device',
      domain: 'yuhu',
      organ: 'government',
      tier: 't2',
      name: 'vpn-gw-01',
      dns: ['vpn-gw-01.yuhu.xt.gov', 'vpn.yuhu.xt.gov'],
      ips: ['10.0.0.1', 'fd00::1'],
    });
    expect(r.stdout).toMatch(/^added subject s-9\n/);
    expect(r.stdout).toContain('dns:     vpn-gw-01.yuhu.xt.gov, vpn.yuhu.xt.gov\n');
  });

  it('add with a user and e-mail, UTF-8 name', async () => {
    server.on('POST /api/v1/subjects', { status: 201, json: { id: 's-10' } });
    const r = await runCli(
      ['subject', 'add', '--kind', 'user', '--domain', 'shaoshan', '--organ', 'court', '--tier', 't3', '--name', '张三', '--email', 'zhangsan@ss.xt.gov'],
      env,
    );
    expect(r.code).toBe(0);
    expect(server.only().json).toEqual({ kind: 'user', domain: 'shaoshan', organ: 'court', tier: 't3', name: '张三', emails: ['zhangsan@ss.xt.gov'] });
  });

  it('add refuses a bad kind, a missing option or a bad IP before sending anything (exit 2)', async () => {
    const base = ['subject', 'add', '--domain', 'yuhu', '--organ', 'government', '--tier', 't2', '--name', 'x'];
    const badKind = await runCli([...base, '--kind', 'router'], env);
    expect(badKind.code).toBe(2);
    expect(badKind.stderr).toContain("argument 'router' is invalid. Allowed choices are organ, device, user.");
    const noKind = await runCli(base, env);
    expect(noKind.code).toBe(2);
    expect(noKind.stderr).toContain("error: required option '--kind <kind>' not specified");
    const badIp = await runCli([...base, '--kind', 'device', '--ip', '10.0.0.300'], env);
    expect(badIp.code).toBe(2);
    expect(badIp.stderr).toContain("error: option '--ip <address>' argument '10.0.0.300' is invalid. expected an IPv4 or IPv6 address.");
    expect(server.requests).toHaveLength(0);
  });

  it('list passes the filters as query parameters', async () => {
    server.on('GET /api/v1/subjects', {
      json: [{ id: 's-1', kind: 'device', domain: 'yuhu', organ: 'government', tier: 't2', name: '网关', status: 'active', dnsNames: ['gw.yuhu'], ipAddresses: ['10.0.0.1'], emails: [] }],
    });
    const r = await runCli(['subject', 'list', '--domain', 'yuhu', '--tier', 't2', '--kind', 'device'], env);
    expect(r.code).toBe(0);
    expect(server.only().query).toEqual({ domain: 'yuhu', tier: 't2', kind: 'device' });
    expect(r.stdout).toBe(
      'ID   KIND    DOMAIN  ORGAN       TIER  NAME  STATUS  NAMES\n' + 's-1  device  yuhu    government  t2    网关  active  gw.yuhu,10.0.0.1\n',
    );
  });

  it('list sends no query when there are no filters', async () => {
    server.on('GET /api/v1/subjects', { json: [] });
    const r = await runCli(['subject', 'list'], env);
    expect(server.only().query).toEqual({});
    expect(r.stdout).toBe('no subjects\n');
  });

  it('show prints the subject and its certificates', async () => {
    server.on('GET /api/v1/subjects/s-1', { json: { id: 's-1', kind: 'device', name: 'gw', certificates: [CERT] } });
    const r = await runCli(['subject', 'show', 's-1'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('id:    s-1\n');
    expect(r.stdout).toContain('SERIAL            ISSUER   SUBJECT');
    expect(r.stdout).toContain('5f3a9c01d2e4b7aa  yuhu-t2  C=CN,ST=湖南省,L=雨湖区,O=人民政府,CN=vpn-gw-01  device   t2    good    2027-01-01 00:00Z\n');
  });

  it('revoke without --execute lists what it would revoke and changes nothing', async () => {
    server.on('GET /api/v1/subjects/s-1', {
      json: { id: 's-1', name: 'gw', certificates: [CERT, { ...CERT, serial: '01', status: 'revoked', reason: 'superseded' }, { ...CERT, serial: '02', status: 'hold' }] },
    });
    const r = await runCli(['subject', 'revoke', 's-1', '--reason', 'affiliationChanged'], env);
    expect(r.code).toBe(0);
    expect(server.requests.map((q) => q.method)).toEqual(['GET']);
    expect(r.stdout).toMatch(/^would revoke 2 certificate\(s\) of subject s-1 \(gw\) with reason affiliationChanged\n/);
    expect(r.stdout).toContain('\n5f3a9c01d2e4b7aa ');
    expect(r.stdout).toContain('\n02 ');
    expect(r.stdout).not.toContain('\n01 ');
    expect(r.stdout.endsWith('nothing changed; run again with --execute to revoke\n')).toBe(true);
  });

  it('revoke --json without --execute describes the dry run', async () => {
    server.on('GET /api/v1/subjects/s-1', { json: { id: 's-1', name: 'gw', certificates: [CERT] } });
    const r = await runCli(['--json', 'subject', 'revoke', 's-1', '--reason', 'keyCompromise'], env);
    expect(JSON.parse(r.stdout)).toMatchObject({ dryRun: true, action: 'revoke-subject', reason: 'keyCompromise', certificates: [{ serial: CERT.serial }] });
  });

  it('revoke --execute posts and reports the serials', async () => {
    server.on('POST /api/v1/subjects/s-1/revoke', { json: { revoked: ['5f3a9c01d2e4b7aa', '02'] } });
    const r = await runCli(['subject', 'revoke', 's-1', '--reason', 'keyCompromise', '--execute'], env);
    expect(r.code).toBe(0);
    const req = server.only();
    expect([req.method, req.path, req.json]).toEqual(['POST', '/api/v1/subjects/s-1/revoke', { reason: 'keyCompromise' }]);
    expect(r.stdout).toBe('revoked 2 certificate(s) of subject s-1: 5f3a9c01d2e4b7aa, 02\n');
  });
});

describe('cert', () => {
  it('list passes every filter, the duration in canonical form', async () => {
    server.on('GET /api/v1/certificates', { json: [CERT, { ...CERT, serial: '0b', status: 'revoked', reason: 'keyCompromise' }] });
    const r = await runCli(
      ['cert', 'list', '--domain', 'yuhu', '--tier', 't2', '--status', 'good', '--issuer', 'yuhu-t2', '--subject', 's-1', '--expiring-within', '720h', '--limit', '50'],
      env,
    );
    expect(r.code).toBe(0);
    expect(server.only().query).toEqual({ domain: 'yuhu', tier: 't2', status: 'good', issuer: 'yuhu-t2', subject: 's-1', expiringWithin: '30d', limit: '50' });
    const lines = r.stdout.split('\n');
    // The subject takes 47 columns: 34 ASCII characters and 13 Chinese ones.
    expect(lines[0]).toBe(`SERIAL            ISSUER   SUBJECT${' '.repeat(42)}PROFILE  TIER  STATUS                   NOT AFTER`);
    expect(lines[2]).toBe('0b                yuhu-t2  C=CN,ST=湖南省,L=雨湖区,O=人民政府,CN=vpn-gw-01  device   t2    revoked (keyCompromise)  2027-01-01 00:00Z');
  });

  it('list refuses a bad duration, status or limit (exit 2)', async () => {
    for (const args of [['--expiring-within', 'month'], ['--status', 'expired'], ['--limit', '0'], ['--limit', 'ten']]) {
      const r = await runCli(['cert', 'list', ...args], env);
      expect([args, r.code]).toEqual([args, 2]);
    }
    expect(server.requests).toHaveLength(0);
  });

  it('show asks with the issuer and prints fields, chain count and PEM', async () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----';
    server.on('GET /api/v1/certificates/5f3a9c01d2e4b7aa', { json: { ...CERT, pem, chain: ['a', 'b'] } });
    const r = await runCli(['cert', 'show', '5F:3A:9C:01:D2:E4:B7:AA', '--issuer', 'yuhu-t2'], env);
    expect(r.code).toBe(0);
    expect(server.only().query).toEqual({ issuer: 'yuhu-t2' });
    expect(r.stdout).toContain('serial:        5f3a9c01d2e4b7aa\n');
    expect(r.stdout).toContain('chain:         2 certificate(s) up to the root (--json shows them)\n');
    expect(r.stdout.endsWith(`\n${pem}\n`)).toBe(true);
  });

  it('show refuses a serial that is not hex (exit 2)', async () => {
    const r = await runCli(['cert', 'show', 'xyz'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: command-argument value 'xyz' is invalid for argument 'serial'. expected a serial in hex");
  });

  it('revoke posts reason, invalidity date (as UTC) and issuer', async () => {
    server.on('POST /api/v1/certificates/5f3a9c01d2e4b7aa/revoke', {
      json: { ...CERT, status: 'revoked', reason: 'keyCompromise', revokedAt: '2026-03-02T00:00:00.000Z' },
    });
    const r = await runCli(
      ['cert', 'revoke', '5f3a9c01d2e4b7aa', '--reason', 'keyCompromise', '--invalidity-date', '2026-03-01T16:00:00+08:00', '--issuer', 'yuhu-t2'],
      env,
    );
    expect(r.code).toBe(0);
    expect(server.only().json).toEqual({ reason: 'keyCompromise', invalidityDate: '2026-03-01T08:00:00.000Z', issuer: 'yuhu-t2' });
    expect(r.stdout).toBe('revoked certificate 5f3a9c01d2e4b7aa of yuhu-t2: status revoked (keyCompromise, 2026-03-02T00:00:00.000Z)\n');
  });

  it('revoke refuses an invalidity date without a zone (exit 2)', async () => {
    const r = await runCli(['cert', 'revoke', '0a', '--reason', 'keyCompromise', '--invalidity-date', '2026-03-01 08:00'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('expected an ISO-8601 time with a zone');
  });

  it('revoke of a certificate already revoked for good is a conflict (exit 5)', async () => {
    server.on('POST /api/v1/certificates/0a/revoke', problem('revocation-final', 409, 'Revocation is final', 'revoked 2026-01-02 for keyCompromise'));
    const r = await runCli(['cert', 'revoke', '0a', '--reason', 'superseded'], env);
    expect(r.code).toBe(5);
    expect(r.stderr).toBe('error: Revocation is final: revoked 2026-01-02 for keyCompromise\n');
  });

  it('hold and release post to their paths, with the issuer when given', async () => {
    server.on('POST /api/v1/certificates/0a/hold', { json: { ...CERT, serial: '0a', status: 'hold' } });
    server.on('POST /api/v1/certificates/0a/release', { json: { ...CERT, serial: '0a', status: 'good' } });
    const held = await runCli(['cert', 'hold', '0a', '--issuer', 'yuhu-t2'], env);
    const released = await runCli(['cert', 'release', '0a'], env);
    expect([held.code, released.code]).toEqual([0, 0]);
    expect(server.requests.map((q) => [q.method, q.path, q.json])).toEqual([
      ['POST', '/api/v1/certificates/0a/hold', { issuer: 'yuhu-t2' }],
      ['POST', '/api/v1/certificates/0a/release', {}],
    ]);
    expect(held.stdout).toBe('held certificate 0a of yuhu-t2: status hold\n');
    expect(released.stdout).toBe('released certificate 0a of yuhu-t2: status good\n');
  });
});

describe('request', () => {
  const REQUEST = {
    id: 'r-1',
    action: 'certificate.issue',
    subjectId: 's-3',
    domain: 'yuhu',
    tier: 't3',
    requestedBy: 'officer-1',
    approvals: ['officer-1'],
    approvalsRequired: 2,
    status: 'pending',
    createdAt: '2026-01-01T00:00:00.000Z',
    expiresAt: '2026-01-02T00:00:00.000Z',
  };

  it('list filters by status', async () => {
    server.on('GET /api/v1/requests', { json: [REQUEST] });
    const r = await runCli(['request', 'list', '--status', 'pending'], env);
    expect(server.only().query).toEqual({ status: 'pending' });
    expect(r.stdout).toBe(
      'ID   STATUS   ACTION             SUBJECT  DOMAIN  TIER  REQUESTED BY  APPROVALS  EXPIRES\n' +
        'r-1  pending  certificate.issue  s-3      yuhu    t3    officer-1     1/2        2026-01-02 00:00Z\n',
    );
  });

  it('approve issues and writes the certificate and chain', async () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n';
    server.on('POST /api/v1/requests/r-1/approve', { status: 201, json: { certificate: { ...CERT, tier: 't3' }, pem, chain: [pem, pem] } });
    const out = join(dir, 'approved.pem');
    const chainOut = join(dir, 'approved-chain.pem');
    const r = await runCli(['request', 'approve', 'r-1', '--out', out, '--chain-out', chainOut], env);
    expect(r.code).toBe(0);
    expect(server.only()).toMatchObject({ method: 'POST', path: '/api/v1/requests/r-1/approve' });
    expect(r.stdout).toContain(`certificate written to ${out}\n`);
    expect(r.stdout).toContain(`chain (2 certificates) written to ${chainOut}\n`);
  });

  it('approve saves the PKCS#12 of a server-made key to --p12 (mode 0600) and prints its passphrase once', async () => {
    const p12 = randomBytes(300);
    server.on('POST /api/v1/requests/r-2/approve', {
      status: 201,
      json: { certificate: { ...CERT, serial: '0c' }, pem: 'PEM', chain: [], pkcs12: p12.toString('base64'), passphrase: 'made-by-server' },
    });
    const file = join(dir, 'approved.p12');
    const r = await runCli(['request', 'approve', 'r-2', '--p12', file], env);
    expect(r.code).toBe(0);
    expect(readFileSync(file)).toEqual(p12);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(r.stdout.split('made-by-server')).toHaveLength(2);
  });

  it('approve keeps a PKCS#12 even without --p12: ./<serial>.p12', async () => {
    const p12 = randomBytes(300);
    server.on('POST /api/v1/requests/r-3/approve', { status: 201, json: { certificate: { ...CERT, serial: '0d' }, pem: 'PEM', chain: [], pkcs12: p12.toString('base64') } });
    const cwd = process.cwd();
    const here = join(dir, 'approve-cwd');
    mkdirSync(here);
    process.chdir(here);
    try {
      const r = await runCli(['request', 'approve', 'r-3'], env);
      expect(r.code).toBe(0);
      expect(readFileSync(join(here, '0d.p12'))).toEqual(p12);
      expect(statSync(join(here, '0d.p12')).mode & 0o777).toBe(0o600);
      expect(r.stdout).toContain('PKCS#12 with the private key written to 0d.p12 (mode 0600)\n');
    } finally {
      process.chdir(cwd);
    }
  });

  it('approving your own request is refused by policy (exit 6)', async () => {
    server.on('POST /api/v1/requests/r-1/approve', problem('policy-self-approval', 422, 'A requester may not approve its own request'));
    const r = await runCli(['request', 'approve', 'r-1'], env);
    expect(r.code).toBe(6);
    expect(r.stderr).toBe('error: A requester may not approve its own request\n');
  });

  it('reject posts and reports the new status', async () => {
    server.on('POST /api/v1/requests/r-1/reject', { json: { ...REQUEST, status: 'rejected' } });
    const r = await runCli(['request', 'reject', 'r-1'], env);
    expect(r.code).toBe(0);
    expect(server.only()).toMatchObject({ method: 'POST', path: '/api/v1/requests/r-1/reject' });
    expect(r.stdout).toBe('request r-1 is now rejected\n');
  });
});

describe('crl', () => {
  it('generate for one CA', async () => {
    server.on('POST /api/v1/crls', {
      json: [
        { caId: 'yuhu-t2', number: '7', delta: false, thisUpdate: '2026-01-01T00:00:00Z', nextUpdate: '2026-01-01T04:00:00Z', entries: 3 },
        { caId: 'yuhu-t2', number: '8', delta: true, thisUpdate: '2026-01-01T00:00:00Z', nextUpdate: '2026-01-01T04:00:00Z', entries: 1 },
      ],
    });
    const r = await runCli(['crl', 'generate', '--ca', 'yuhu-t2'], env);
    expect(r.code).toBe(0);
    expect(server.only().json).toEqual({ ca: 'yuhu-t2' });
    expect(r.stdout).toBe(
      'CA       NUMBER  KIND   THIS UPDATE        NEXT UPDATE        ENTRIES\n' +
        'yuhu-t2  7       full   2026-01-01 00:00Z  2026-01-01 04:00Z  3\n' +
        'yuhu-t2  8       delta  2026-01-01 00:00Z  2026-01-01 04:00Z  1\n',
    );
  });

  it('generate for every CA sends an empty body', async () => {
    server.on('POST /api/v1/crls', { json: [] });
    await runCli(['crl', 'generate'], env);
    expect(server.only().json).toEqual({});
  });

  it('show prints the CRL and its entries', async () => {
    server.on('GET /api/v1/crls/yuhu-t2', {
      json: { caId: 'yuhu-t2', number: '7', thisUpdate: '2026-01-01T00:00:00Z', nextUpdate: '2026-01-01T04:00:00Z', entries: [{ serial: '0a', revokedAt: '2025-12-31T23:00:00Z', reason: 'keyCompromise' }] },
    });
    const r = await runCli(['crl', 'show', 'yuhu-t2'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      'caId:        yuhu-t2\nnumber:      7\nthisUpdate:  2026-01-01T00:00:00Z\nnextUpdate:  2026-01-01T04:00:00Z\nentries:     1\n\n' +
        'SERIAL  REVOKED AT         REASON\n0a      2025-12-31 23:00Z  keyCompromise\n',
    );
  });
});
