// Defect 7 (issue 13) against a real server on loopback: a limited source stays limited under a
// flood of requests from 10,050 distinct addresses; anonymous requests from a shared address never
// lock out a valid token; anonymous refusals are counted in the metrics, not audited; the limiter
// runs on the injected clock.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest, Agent } from 'node:http';
import { startTestTierca, type TestTierca } from '../helpers/tierca.ts';
import { snapshotCounts } from '../helpers/database.ts';
import { FixedClock } from '../../server/clock.ts';

let t: TestTierca;
const clock = new FixedClock(new Date(Math.floor(Date.now() / 1000) * 1000));

beforeAll(async () => {
  t = await startTestTierca({ clock });
});
afterAll(async () => {
  await t?.close();
});

/** One request from a chosen loopback source address, on its own connection. */
function from(source: string, path: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1', port: t.port, path, localAddress: source, agent: new Agent({ keepAlive: false }),
      headers: token ? { authorization: `Bearer ${token}` } : {},
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

const badToken = (i: number) => `tca_guess${String(i).padStart(24, '0')}`;

async function refusals(reason: string): Promise<number> {
  const text = (await from('127.0.0.1', '/metrics')).body;
  const m = new RegExp(`^tierca_http_login_refusals_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

describe('the failed-login limiter', () => {
  it('keeps a limited source limited while 10,050 distinct addresses send token-less requests', async () => {
    const limited = '127.0.0.50';
    for (let i = 0; i < 20; i++) expect((await from(limited, '/api/v1/whoami', badToken(i))).status).toBe(401);
    expect((await from(limited, '/api/v1/whoami', badToken(20))).status).toBe(429);
    const before = await snapshotCounts(t.store);
    const anonymousBefore = await refusals('no-credentials');
    // The clock is fixed: however long the flood takes on a loaded machine, the penalty cannot run out.
    let next = 0;
    const statuses = new Map<number, number>();
    await Promise.all(Array.from({ length: 24 }, async () => {
      while (next < 10_050) {
        const n = next++;
        const { status } = await from(`127.1.${n >> 8}.${n & 255}`, '/api/v1/whoami');
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }
    }));
    expect(Object.fromEntries(statuses)).toEqual({ 401: 10_050 });
    // Anonymous refusals are counted, not audited: no row anywhere.
    expect(await snapshotCounts(t.store)).toEqual(before);
    expect((await refusals('no-credentials')) - anonymousBefore).toBe(10_050);
    expect((await from(limited, '/api/v1/whoami', t.tokens.auditor)).status).toBe(429);
  }, 240_000);

  it('does not let 20 anonymous requests from one address lock out a valid token from it', async () => {
    const nat = '127.0.0.60';
    for (let i = 0; i < 25; i++) expect((await from(nat, '/api/v1/whoami')).status).toBe(401);
    const ok = await from(nat, '/api/v1/whoami', t.tokens.auditor);
    expect([ok.status, JSON.parse(ok.body).role]).toEqual([200, 'auditor']);
  });

  it('counts bad tokens per source and lifts the penalty on the injected clock, one window after the 20th failure', async () => {
    const source = '127.0.0.70';
    for (let i = 0; i < 20; i++) expect((await from(source, '/api/v1/whoami', badToken(100 + i))).status).toBe(401);
    expect((await from(source, '/api/v1/whoami', t.tokens.auditor)).status).toBe(429);
    expect((await from('127.0.0.71', '/api/v1/whoami', t.tokens.auditor)).status).toBe(200);
    clock.advance(59_999);
    expect((await from(source, '/api/v1/whoami', t.tokens.auditor)).status).toBe(429);
    clock.advance(1);
    expect((await from(source, '/api/v1/whoami', t.tokens.auditor)).status).toBe(200);
  });
});
