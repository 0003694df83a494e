// The real `tierca` binary end to end: init (the key ceremony), serve, and the API commands an
// administrator and an officer run, with their exit codes. Embedded SQLite in a temporary folder.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TempDir, openssl } from '../helpers/openssl.ts';
import { freePort } from '../helpers/tierca.ts';
import { opensslCsr } from '../helpers/pki-fixtures.ts';

const BIN = join(process.cwd(), 'bin', 'tierca.js');
const PASSPHRASE = 'cli-e2e-passphrase-0123';
const tmp = new TempDir();
const dataDir = join(tmp.path, 'data');
let server: ChildProcess | undefined;
let url = '';
let adminToken = '';
let admin2Token = '';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function tierca(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, TIERCA_URL: url, TIERCA_DATA: dataDir, TIERCA_PASSPHRASE: '', TIERCA_TOKEN: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

beforeAll(async () => {
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const config = join(tmp.path, 'config.json');
  const { parse } = await import('yaml');
  const { readFileSync } = await import('node:fs');
  const data = parse(readFileSync(join(process.cwd(), 'config', 'xiangtan.example.yaml'), 'utf8'));
  writeFileSync(config, JSON.stringify({ ...data, publicUrl: url, domains: data.domains.slice(0, 2) }));

  const init = await tierca(['init', '--config', config, '--data', dataDir, '--sysadmins', '2'], { TIERCA_PASSPHRASE: PASSPHRASE });
  expect(init.code, init.stderr).toBe(0);
  expect(init.stdout).toMatch(/root\s+湘潭市电子政务内网根CA/);
  expect(init.stdout).toMatch(/yuhu-t3/);
  // The example's policy arc is RFC 5612's documentation arc: init says so loudly.
  expect(init.stderr).toContain('DOCUMENTATION POLICY ARC — NOT FOR PRODUCTION');
  expect(init.stderr).toContain('1.3.6.1.4.1.32473.1.1, 1.3.6.1.4.1.32473.1.2, 1.3.6.1.4.1.32473.1.3');
  // Two sysadmins at the ceremony, each token once, on its own line; they are distinct and both work.
  expect(init.stderr).toContain('the 2 sysadmin tokens follow, one a line, one for each person. Each is shown only this once and stored only as a hash:');
  const tokens = init.stdout.match(/^tca_[A-Za-z0-9_-]{43}$/gm) ?? [];
  expect(tokens).toHaveLength(2);
  expect(tokens[0]).not.toBe(tokens[1]);
  [adminToken, admin2Token] = [tokens[0]!, tokens[1]!];

  server = spawn(process.execPath, [BIN, 'serve', '--data', dataDir, '--port', String(port)], {
    env: { ...process.env, TIERCA_PASSPHRASE: PASSPHRASE }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Ready when this child says it listens on our port — not merely when something answers there: the
  // port was free when chosen, and another test's server may have taken it since (then ours exits).
  let output = '';
  server.stdout!.on('data', (d) => (output += d));
  server.stderr!.on('data', (d) => (output += d));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`tierca serve exited before it was ready:\n${output}`);
    if (output.includes(`listening on ${url}`)) {
      try {
        if ((await fetch(`${url}/healthz`)).ok) break;
      } catch {
        // not up yet
      }
    }
    if (Date.now() > deadline) throw new Error(`tierca serve did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
});

afterAll(async () => {
  server?.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  tmp.cleanup();
});

describe('tierca CLI against a real server', () => {
  it('lists and shows CAs as tables and JSON', async () => {
    const admin = { TIERCA_TOKEN: adminToken };
    const list = await tierca(['ca', 'list'], admin);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/yuhu-t2/);
    const json = await tierca(['ca', 'list', '--json'], admin);
    const cas = JSON.parse(json.stdout);
    expect(cas.map((c: { id: string }) => c.id).sort()).toEqual(
      ['root', 'xiangtan', 'xiangtan-t1', 'xiangtan-t2', 'xiangtan-t3', 'yuhu', 'yuhu-t1', 'yuhu-t2', 'yuhu-t3'].sort(),
    );
    const show = await tierca(['ca', 'show', 'yuhu-t2', '--json'], admin);
    expect(JSON.parse(show.stdout)).toMatchObject({ id: 'yuhu-t2', layer: 'tier', tier: 't2', parent: 'yuhu' });
  });

  it('exits 3 for an unknown CA and 4 without a token, naming the problem', async () => {
    const missing = await tierca(['ca', 'show', 'atlantis'], { TIERCA_TOKEN: adminToken });
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/no CA atlantis/);
    const noToken = await tierca(['ca', 'list', '--server', url.replace('127.0.0.1', 'localhost')], { TIERCA_DATA: join(tmp.path, 'nowhere') });
    expect(noToken.code).toBe(4);
    const wrongToken = await tierca(['ca', 'list'], { TIERCA_TOKEN: 'tca_wrong_wrong_wrong_wrong_wrong' });
    expect(wrongToken.code).toBe(4);
    expect(wrongToken.stderr).toMatch(/the token is not valid/);
  });

  it('lets a sysadmin create an officer who registers a device, issues, revokes and checks OCSP', async () => {
    const asked = await tierca(['principal', 'add', '--role', 'officer', '--domains', 'yuhu', '--name', '雨湖区安全员', '--json'], { TIERCA_TOKEN: adminToken });
    expect(asked.code, asked.stderr).toBe(0);
    // A new officer is dual-controlled: the second sysadmin of the ceremony approves it.
    const made = await tierca(['request', 'approve', JSON.parse(asked.stdout).request.id, '--json'], { TIERCA_TOKEN: admin2Token });
    expect(made.code, made.stderr).toBe(0);
    expect(JSON.parse(made.stdout).result.principal).toMatchObject({ role: 'officer', domains: ['yuhu'] });
    const officer = { TIERCA_TOKEN: JSON.parse(made.stdout).result.token as string };

    const subject = await tierca(['subject', 'add', '--kind', 'device', '--domain', 'yuhu', '--organ', 'government', '--tier', 't1',
      '--name', 'vpn-gw-01', '--dns', 'vpn-gw-01.yuhu.xiangtan.intranet', '--ip', '10.21.0.1', '--json'], officer);
    expect(subject.code, subject.stderr).toBe(0);
    const subjectId = JSON.parse(subject.stdout).id;

    const { csrPath } = await opensslCsr(tmp, 'gw', 'P-256');
    const certPath = join(tmp.path, 'gw.pem');
    const issue = await tierca(['cert', 'issue', '--subject', subjectId, '--csr', csrPath, '--out', certPath, '--json'], officer);
    expect(issue.code, issue.stderr).toBe(0);
    const serial = JSON.parse(issue.stdout).certificate.serial;
    expect((await openssl(['x509', '-in', certPath, '-noout', '-serial'])).stdout.trim()).toBe(`serial=${serial.toUpperCase()}`);

    const good = await tierca(['ocsp', 'check', certPath, '--issuer-id', 'yuhu-t1']);
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout).toMatch(/good/);

    const byAdmin = await tierca(['cert', 'revoke', serial, '--reason', 'keyCompromise'], { TIERCA_TOKEN: adminToken });
    expect(byAdmin.code).toBe(4);
    const revoke = await tierca(['cert', 'revoke', serial, '--reason', 'keyCompromise'], officer);
    expect(revoke.code, revoke.stderr).toBe(0);
    const revoked = await tierca(['ocsp', 'check', certPath, '--issuer-id', 'yuhu-t1']);
    expect(revoked.code).toBe(10);
    expect(revoked.stdout).toMatch(/revoked/);
    expect(revoked.stdout).toMatch(/keyCompromise/);

    const list = await tierca(['cert', 'list', '--domain', 'yuhu', '--status', 'revoked', '--json'], officer);
    expect(JSON.parse(list.stdout).map((c: { serial: string }) => c.serial)).toEqual([serial]);
    const crl = await tierca(['crl', 'generate', '--ca', 'yuhu-t1', '--json'], { TIERCA_TOKEN: adminToken });
    expect(crl.code, crl.stderr).toBe(0);
    const shown = await tierca(['crl', 'show', 'yuhu-t1', '--json'], { TIERCA_TOKEN: adminToken });
    expect(JSON.parse(shown.stdout).entries.map((e: { serial: string }) => e.serial)).toContain(serial);
  });

  it('refuses a second init on the same data and writes nothing for a bad config', async () => {
    const again = await tierca(['init', '--config', join(process.cwd(), 'config', 'xiangtan.example.yaml'), '--data', dataDir], { TIERCA_PASSPHRASE: PASSPHRASE });
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already holds a CA hierarchy/);

    const bad = join(tmp.path, 'bad.yaml');
    writeFileSync(bad, 'publicUrl: http://127.0.0.1:1\ncountry: China\n');
    const empty = join(tmp.path, 'empty-data');
    const refused = await tierca(['init', '--config', bad, '--data', empty], { TIERCA_PASSPHRASE: PASSPHRASE });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/country/);
    expect(existsSync(empty) ? readdirSync(empty) : []).toEqual([]);
  });

  it('keeps the database file private to its owner', () => {
    expect(statSync(join(dataDir, 'tierca.db')).mode & 0o077).toBe(0);
  });
});
