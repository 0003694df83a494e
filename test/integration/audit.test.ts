// The audit log: what each record holds, tail/export/verify through the API and the CLI, signed
// checkpoints checked with `openssl dgst`, appends from two instances in one chain, login failures
// rate-limited per source — and tampering with the audit table in the database: a changed field, a
// deleted row, two swapped rows, a deleted or forged checkpoint, a cut tail and a rewritten chain,
// each caught by `audit verify` naming the record.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest } from 'node:http';
import pino from 'pino';
import { startTestTierca, call, freePort, TEST_PASSPHRASE, type TestTierca } from '../helpers/tierca.ts';
import { snapshotCounts } from '../helpers/database.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { runCli } from '../unit/cli-fake-server.ts';
import { knexOf } from '../../server/storage/knex-store.ts';
import { startService } from '../../server/bootstrap.ts';
import { auditRecordHash, verifyAuditChain } from '../../server/audit/audit-log.ts';
import type { AuditRecord } from '../../server/storage/storage.ts';

let t: TestTierca;
const tmp = new TempDir();
const ids: Record<string, string> = {};
let deviceToken: string;

beforeAll(async () => {
  t = await startTestTierca();
  for (const role of ['admin', 'officer', 'auditor'] as const) ids[role] = (await call(t, role, 'GET', '/api/v1/whoami')).body.id;
  deviceToken = (await call(t, 'admin', 'POST', '/api/v1/principals', { name: 'probe', role: 'device' })).body.token;
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

const db = () => knexOf(t.store);
const verify = async (query = '') => (await call(t, 'auditor', 'GET', `/api/v1/audit/verify${query}`)).body;
/** GET /api/v1/audit/export as the auditor (JSON Lines: not parsed as one JSON document). */
async function exportAudit(query = ''): Promise<{ type: string | null; text: string }> {
  const res = await fetch(`${t.url}/api/v1/audit/export${query}`, { headers: { authorization: `Bearer ${t.tokens.auditor}` } });
  expect(res.status).toBe(200);
  return { type: res.headers.get('content-type'), text: await res.text() };
}
const cli = (argv: string[]) => runCli(argv, { TIERCA_URL: t.url, TIERCA_TOKEN: t.tokens.auditor });

/** JSON Lines → audit records as the repository gives them. */
const parseJsonl = (text: string): AuditRecord[] =>
  text.split('\n').filter(Boolean).map((line) => {
    const r = JSON.parse(line);
    return { ...r, at: new Date(r.at) };
  });

/** A request from a chosen loopback source address (the login rate limit is per source). */
function from(source: string, path: string, token?: string): Promise<{ status: number; body: any; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: t.port, path, localAddress: source, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('what the log records', () => {
  it('records a change, a denial and failed writes with time, principal, role, source, action, target, outcome and request id', async () => {
    const made = await call(t, 'officer', 'POST', '/api/v1/subjects',
      { kind: 'device', domain: 'yuhu', organ: 'court', tier: 't1', name: 'audited', dns: ['audited.yuhu.xiangtan.intranet'] }, { 'x-request-id': 'req-audit-1' });
    expect(made.status).toBe(201);
    const denied = await call(t, 'admin', 'POST', '/api/v1/subjects', { kind: 'device' }, { 'x-request-id': 'req-audit-2' });
    expect(denied.status).toBe(403);
    const missing = await call(t, 'officer', 'POST', '/api/v1/certificates/deadbeef01/revoke', { reason: 'keyCompromise' }, { 'x-request-id': 'req-audit-3' });
    expect(missing.status).toBe(404);
    const invalid = await call(t, 'officer', 'POST', '/api/v1/subjects', { kind: 'spaceship' }, { 'x-request-id': 'req-audit-4' });
    expect(invalid.status).toBe(400);
    const before = await snapshotCounts(t.store);
    const unread = await call(t, 'officer', 'POST', '/api/v1/subjects', 'kind=device', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(unread.status).toBe(415);
    expect(await snapshotCounts(t.store)).toEqual(before); // a body never read is no attempted action

    const records = (await call(t, 'auditor', 'GET', '/api/v1/audit?limit=20')).body as any[];
    const byRequest = (id: string) => records.filter((r) => r.requestId === id);
    const source = expect.stringMatching(/^(::ffff:)?127\.0\.0\.1$/);
    expect(byRequest('req-audit-1')).toEqual([{
      seq: expect.any(Number), at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), principalId: ids.officer, role: 'officer', source,
      action: 'subject.add', target: `subject:${made.body.id}`, outcome: 'success', requestId: 'req-audit-1',
      detail: { kind: 'device', domain: 'yuhu', tier: 't1', name: 'audited' }, prevHash: expect.stringMatching(/^[0-9a-f]{64}$/), hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    }]);
    expect(byRequest('req-audit-2')).toMatchObject([{ principalId: ids.admin, role: 'sysadmin', action: 'subject.add', target: 'POST /api/v1/subjects', outcome: 'denied', detail: { missing: 'subject:write' } }]);
    expect(byRequest('req-audit-3')).toMatchObject([{
      principalId: ids.officer, action: 'certificate.revoke', target: 'POST /api/v1/certificates/deadbeef01/revoke', outcome: 'failure', detail: { error: 'not-found' },
    }]);
    expect(byRequest('req-audit-4')).toMatchObject([{ action: 'subject.add', outcome: 'failure', detail: { error: 'bad-request' } }]);
  });

  it('keeps tokens out of the log: neither a new principal\'s token nor a wrong one appears anywhere in it', async () => {
    const made = await call(t, 'admin', 'POST', '/api/v1/principals', { name: 'secret keeper', role: 'auditor' });
    const wrong = 'tca_thisIsNotARealTokenButLooksLikeOne1234';
    const refused = await call(t, null, 'GET', '/api/v1/cas', undefined, { authorization: `Bearer ${wrong}` });
    expect(refused.status).toBe(401);
    expect(refused.raw.toString()).not.toContain(wrong);
    const exported = (await exportAudit()).text;
    expect(exported).toContain(`principal:${made.body.id}`);
    expect(exported).toContain('"reason":"unknown-token"');
    for (const secret of [made.body.token, wrong, t.tokens.admin, t.tokens.officer]) expect(exported).not.toContain(secret);
  });

  it('tails the newest records, or from a time, an actor, an action, a seq', async () => {
    const newest = (await call(t, 'auditor', 'GET', '/api/v1/audit?limit=3')).body;
    const last = (await t.store.audit.last())!;
    expect(newest.map((r: any) => r.seq)).toEqual([last.seq - 2, last.seq - 1, last.seq]);
    const subjects = (await call(t, 'auditor', 'GET', `/api/v1/audit?actor=${ids.officer}&action=subject.add&limit=50`)).body;
    expect(subjects.length).toBeGreaterThanOrEqual(2);
    expect(subjects.every((r: any) => r.principalId === ids.officer && r.action === 'subject.add')).toBe(true);
    const after = (await call(t, 'auditor', 'GET', `/api/v1/audit?after=${last.seq - 2}&limit=1`)).body;
    expect(after.map((r: any) => r.seq)).toEqual([last.seq - 1]);
    const since = (await call(t, 'auditor', 'GET', `/api/v1/audit?since=${encodeURIComponent(last.at.toISOString())}`)).body;
    expect(since[0].seq).toBeLessThanOrEqual(last.seq);
    expect(since.every((r: any) => r.at >= last.at.toISOString())).toBe(true);
    const bad = await call(t, 'auditor', 'GET', '/api/v1/audit?since=yesterday');
    expect([bad.status, bad.body.type]).toEqual([400, 'urn:tierca:problem:bad-request']);

    const tail = await cli(['audit', 'tail', '--limit', '2', '--action', 'subject.add']);
    expect(tail.code, tail.stderr).toBe(0);
    expect(tail.stdout).toMatch(/^SEQ +TIME +PRINCIPAL +ROLE +SOURCE +ACTION +TARGET +OUTCOME\n/);
    expect(tail.stdout.trim().split('\n')).toHaveLength(3);
  });

  it('exports JSON Lines from which anyone can recompute the chain, within a time range', async () => {
    const res = await exportAudit();
    expect(res.type).toBe('application/jsonl; charset=utf-8');
    const records = parseJsonl(res.text);
    expect(records[0].seq).toBe(1);
    // Recomputed here, from the export alone, with the published hash rule.
    expect(verifyAuditChain(records)).toEqual({ ok: true, checked: records.length });
    const mid = records[Math.floor(records.length / 2)];
    const ranged = parseJsonl((await exportAudit(`?from=${mid.at.toISOString()}&to=${records.at(-1)!.at.toISOString()}`)).text);
    expect(ranged.length).toBeGreaterThan(0);
    expect(ranged.every((r) => r.at >= mid.at && r.at < records.at(-1)!.at)).toBe(true);
    const out = tmp.file('audit.jsonl');
    const exported = await cli(['audit', 'export', '--out', out]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stderr).toMatch(/^exported \d+ audit records to /);
    expect(verifyAuditChain(parseJsonl(tmp.read('audit.jsonl').toString())).ok).toBe(true);
  });
});

describe('signed checkpoints', () => {
  it('keeps the audit key sealed like a CA key', async () => {
    const keys = await t.store.keys.list('audit');
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ algorithm: 'P-256', custody: 'software', purpose: 'audit' });
    expect(keys[0].sealed!.includes(Buffer.from([0x02, 0x01, 0x00, 0x30]))).toBe(false);
  });

  it('signs a checkpoint every 100 records on its own, and one on demand; openssl verifies the signatures', async () => {
    // Denials are records too: push the log past 200.
    while ((await t.store.audit.last())!.seq < 205) {
      await Promise.all(Array.from({ length: 20 }, () => fetch(`${t.url}/api/v1/cas`, { headers: { authorization: `Bearer ${deviceToken}` } })));
    }
    const deadline = Date.now() + 15_000;
    while ((await t.store.auditCheckpoints.list({ kind: 'periodic' })).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect((await t.store.auditCheckpoints.list({ kind: 'periodic' })).map((c) => c.seq)).toEqual([100, 200]);

    const asked = await call(t, 'auditor', 'POST', '/api/v1/audit/checkpoints');
    expect(asked.status).toBe(201);
    const own = (await t.store.audit.list({ fromSeq: asked.body.seq, limit: 1 }))[0];
    expect(own).toMatchObject({ action: 'audit.checkpoint', principalId: ids.auditor });
    expect(asked.body).toMatchObject({ seq: own.seq, hash: own.hash, kind: 'requested' });

    const listed = (await call(t, 'auditor', 'GET', '/api/v1/audit/checkpoints')).body;
    expect(listed.keys).toHaveLength(1);
    const keyPath = tmp.file('audit-key.pem', listed.keys[0].publicKey);
    for (const cp of listed.checkpoints) {
      expect(cp.payload).toBe(`tierca-audit-checkpoint-v1\nseq=${cp.seq}\nhash=${cp.hash}\nat=${cp.at}\nkind=${cp.kind}\nkey=${cp.keyId}\n`);
      const payload = tmp.file(`cp-${cp.seq}.txt`, cp.payload);
      const sig = tmp.file(`cp-${cp.seq}.sig`, Buffer.from(cp.signature, 'base64'));
      const ok = await openssl(['dgst', '-sha256', '-verify', keyPath, '-signature', sig, payload]);
      expect(ok.stdout.trim(), ok.stderr).toBe('Verified OK');
    }
    const forged = tmp.file('forged.txt', listed.checkpoints[0].payload.replace(/hash=(.)/, (_m: string, c: string) => `hash=${c === '0' ? '1' : '0'}`));
    const no = await openssl(['dgst', '-sha256', '-verify', keyPath, '-signature', tmp.file('cp-100.sig'), forged]);
    expect(no.stdout.trim()).toBe('Verification failure');
  });

  it('verifies the untouched log end to end, and through the CLI with the hash to keep', async () => {
    const result = await verify();
    const last = (await t.store.audit.last())!;
    // The verify run itself is recorded after it checked.
    expect(result).toEqual({ ok: true, checked: last.seq - 1, checkpoints: 3, lastSeq: last.seq - 1, lastHash: last.prevHash, unanchored: expect.any(Number) });
    const run = await cli(['audit', 'verify']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^audit log verified: \d+ records, 3 signed checkpoints\n/);
    const anchor = /--anchor (\d+:[0-9a-f]{64})/.exec(run.stdout)![1];
    expect((await cli(['audit', 'verify', '--anchor', anchor])).code).toBe(0);
  });
});

describe('several instances append to one chain', () => {
  it('serialises appends from two services on one database', async () => {
    const port = await freePort();
    const second = await startService({
      dataDir: t.dataDir, databaseUrl: t.db.databaseUrl, searchPath: t.db.searchPath, sqliteFile: t.db.sqliteFile,
      passphrase: TEST_PASSPHRASE, port, log: pino({ level: 'silent' }), pollMs: 200,
    });
    try {
      const urls = [t.url, second.url];
      await Promise.all(Array.from({ length: 40 }, (_, i) => fetch(`${urls[i % 2]}/api/v1/cas`, { headers: { authorization: `Bearer ${deviceToken}` } })));
      expect(verifyAuditChain(await t.store.audit.list({}))).toMatchObject({ ok: true });
      expect((await verify()).ok).toBe(true);
    } finally {
      await second.close();
    }
  });
});

describe('failed logins', () => {
  it('are audited and limited per source address: 20 a minute, then 429 and one record saying so', async () => {
    const source = '127.0.0.77';
    const before = (await t.store.audit.last())!.seq;
    for (let i = 0; i < 20; i++) expect((await from(source, '/api/v1/cas', `tca_guess${String(i).padStart(20, '0')}`)).status).toBe(401);
    const limited = await from(source, '/api/v1/cas', 'tca_guess_twenty_one_000000000');
    expect([limited.status, limited.body.type]).toEqual([429, 'urn:tierca:problem:rate-limited']);
    expect((await from(source, '/api/v1/whoami', t.tokens.auditor)).status).toBe(429);
    expect((await from('127.0.0.78', '/api/v1/whoami', t.tokens.auditor)).status).toBe(200);
    const records = (await t.store.audit.list({ fromSeq: before + 1, action: 'auth.login' })).filter((r) => r.source === source);
    expect(records.map((r) => r.detail.reason)).toEqual([...Array(20).fill('unknown-token'), 'rate-limited']);
    expect(records.every((r) => r.outcome === 'denied' && r.principalId === null)).toBe(true);
  });
});

describe('tampering with the audit table', () => {
  const K = 50;

  it('catches a changed field and names the record', async () => {
    const [row] = await db()('audit_log').where({ seq: K });
    await db()('audit_log').where({ seq: K }).update({ outcome: row.outcome === 'success' ? 'denied' : 'success' });
    try {
      expect((await verify()).firstBad).toEqual({ seq: K, problem: 'hash-mismatch', detail: `record ${K} was changed: its hash does not match its fields` });
      const run = await cli(['audit', 'verify']);
      expect(run.code).toBe(13);
      expect(run.stdout).toContain(`audit log does NOT verify: record ${K}: hash-mismatch`);
    } finally {
      await db()('audit_log').where({ seq: K }).update({ outcome: row.outcome });
    }
    expect((await verify()).ok).toBe(true);
  });

  it('catches a deleted row and names it', async () => {
    const [row] = await db()('audit_log').where({ seq: K });
    await db()('audit_log').where({ seq: K }).delete();
    try {
      expect((await verify()).firstBad).toMatchObject({ seq: K, problem: 'sequence-gap' });
    } finally {
      await db()('audit_log').insert(row);
    }
    expect((await verify()).ok).toBe(true);
  });

  it('catches two swapped rows and names the first', async () => {
    const [a] = await db()('audit_log').where({ seq: K });
    const [b] = await db()('audit_log').where({ seq: K + 1 });
    const { seq: _a, ...restA } = a;
    const { seq: _b, ...restB } = b;
    await db()('audit_log').where({ seq: K }).update(restB);
    await db()('audit_log').where({ seq: K + 1 }).update(restA);
    try {
      expect((await verify()).firstBad).toMatchObject({ seq: K, problem: 'broken-link' });
    } finally {
      await db()('audit_log').where({ seq: K }).update(restA);
      await db()('audit_log').where({ seq: K + 1 }).update(restB);
    }
    expect((await verify()).ok).toBe(true);
  });

  it('catches a deleted checkpoint and a forged signature', async () => {
    const [cp100] = await db()('audit_checkpoints').where({ seq: 100 });
    await db()('audit_checkpoints').where({ seq: 100 }).delete();
    try {
      expect((await verify()).firstBad).toEqual({ seq: 100, problem: 'checkpoint-missing', detail: 'the checkpoint at record 100 was deleted' });
    } finally {
      await db()('audit_checkpoints').insert(cp100);
    }
    const [cp200] = await db()('audit_checkpoints').where({ seq: 200 });
    const forged = Buffer.from(cp200.signature);
    forged[forged.length - 1] ^= 1;
    await db()('audit_checkpoints').where({ seq: 200 }).update({ signature: forged });
    try {
      expect((await verify()).firstBad).toMatchObject({ seq: 200, problem: 'checkpoint-signature' });
    } finally {
      await db()('audit_checkpoints').where({ seq: 200 }).update({ signature: cp200.signature });
    }
    expect((await verify()).ok).toBe(true);
  });

  it('catches records cut from the end of the log under a checkpoint, and a hash kept outside that no longer matches', async () => {
    const asked = await call(t, 'auditor', 'POST', '/api/v1/audit/checkpoints');
    const C = asked.body.seq as number;
    expect((await t.store.audit.last())!.seq).toBe(C);
    const [row] = await db()('audit_log').where({ seq: C });
    await db()('audit_log').where({ seq: C }).delete();
    // The verify run is recorded after it checked: it takes seq C, which must then be put back.
    expect((await verify()).firstBad).toMatchObject({ seq: C, problem: 'truncated' });
    await db()('audit_log').where({ seq: C }).delete();
    await db()('audit_log').insert(row);
    const good = await verify();
    expect(good.ok).toBe(true);
    const wrong = await verify(`?anchor=${C}:${'0'.repeat(64)}`);
    expect(wrong.firstBad).toMatchObject({ seq: C, problem: 'anchor-mismatch' });
    const beyond = await verify(`?anchor=999999:${'0'.repeat(64)}`);
    expect(beyond.firstBad).toMatchObject({ problem: 'truncated' });
    expect((await verify(`?anchor=${good.lastSeq}:${good.lastHash}`)).ok).toBe(true);
  });

  it('catches a changed record whose chain was recomputed after it (no key needed for that), at the next checkpoint', async () => {
    // What an attacker with write access to the database but not the keystore can do: change record
    // 150 and recompute every hash after it, so the chain alone is consistent again.
    const records = await t.store.audit.list({ fromSeq: 150 });
    let prevHash = (await t.store.audit.list({ fromSeq: 149, limit: 1 }))[0].hash;
    for (const r of records) {
      const changed = { ...r, prevHash, ...(r.seq === 150 ? { outcome: 'success' as const, detail: { hidden: true } } : {}) };
      const { hash: _old, ...rest } = changed;
      const hash = auditRecordHash(rest);
      await db()('audit_log').where({ seq: r.seq }).update({ outcome: changed.outcome, detail: JSON.stringify(changed.detail), prev_hash: prevHash, hash });
      prevHash = hash;
    }
    expect(verifyAuditChain(await t.store.audit.list({})).ok).toBe(true);
    const result = await verify();
    expect(result).toMatchObject({ ok: false, checked: 200, checkpoints: 1 });
    expect(result.firstBad).toMatchObject({ seq: 200, problem: 'checkpoint-mismatch' });
    expect(result.firstBad.detail).toMatch(/^record 200 is not the one signed at .+: a record from 101 to 200 was changed and the chain after it recomputed$/);
  });
});
