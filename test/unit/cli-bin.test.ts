/**
 * `bin/tierca.js` as a user runs it: a child process (`node bin/tierca.js …`) whose exit status is
 * what `run` returned and whose output reaches a pipe in full before it exits.
 */
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeServer } from './cli-fake-server.ts';

const BIN = new URL('../../bin/tierca.js', import.meta.url).pathname;

function tierca(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const start = performance.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr, ms: performance.now() - start }),
    );
  });
}

let server: FakeServer;
beforeAll(async () => {
  server = await FakeServer.start();
});
afterAll(() => server.close());

describe('bin/tierca.js', () => {
  it('is an executable node script', () => {
    expect(readFileSync(BIN, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(statSync(BIN).mode & 0o111).toBe(0o111);
  });

  it('prints the version and exits 0, fast enough to use by hand', async () => {
    const r = await tierca(['--version']);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, `${JSON.parse(readFileSync('package.json', 'utf8')).version}\n`, '']);
    // tsx compiles the sources on the way in; measured ~0.6 s on this machine kind.
    expect(r.ms).toBeLessThan(5000);
  });

  it('exits 2 on a usage error', async () => {
    const r = await tierca(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: unknown command 'frobnicate'");
  });

  it('exits 9 when the server cannot be reached', async () => {
    const closed = await FakeServer.start();
    const url = closed.url;
    await closed.close();
    const r = await tierca(['whoami'], { TIERCA_URL: url, TIERCA_TOKEN: 't' });
    expect(r.code).toBe(9);
    expect(r.stderr).toContain(`error: cannot reach the tierca server at ${url}: connection refused`);
  });

  it('writes a large answer to a pipe in full before exiting, with the exit code of a problem', async () => {
    const many = Array.from({ length: 5000 }, (_, i) => ({ serial: i.toString(16).padStart(32, '0'), subject: `CN=设备-${i}`, status: 'good' }));
    server.on('GET /api/v1/certificates', { json: many });
    const r = await tierca(['--json', 'cert', 'list'], { TIERCA_URL: server.url, TIERCA_TOKEN: 't' });
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(400_000);
    expect(JSON.parse(r.stdout)).toEqual(many);
    server.on('GET /api/v1/cas/x', { status: 403, json: { type: 'urn:tierca:problem:forbidden', title: 'Forbidden', status: 403, detail: 'role auditor lacks ca:read' } });
    const denied = await tierca(['ca', 'show', 'x'], { TIERCA_URL: server.url, TIERCA_TOKEN: 't' });
    expect([denied.code, denied.stderr]).toEqual([4, 'error: Forbidden: role auditor lacks ca:read\n']);
  });
});
