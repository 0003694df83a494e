// Issue 13, defect 1: one sysadmin must not pass dual control alone. Adding a sysadmin or an officer
// is itself a request a second sysadmin approves, and an approval counts only from a principal that
// neither is the requester, nor was created by the requester, nor by a request the requester approved
// (docs/decisions/0014-dual-control-principals.md). Both engines.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTierca, call, type TestTierca, type ApiResponse } from '../helpers/tierca.ts';
import { knexOf } from '../../server/storage/knex-store.ts';
import { snapshotCounts, tableNames } from '../helpers/database.ts';
import { createPrincipal } from '../../server/ra/principal.service.ts';
import { nodeCsr } from '../helpers/pki-fixtures.ts';

let t: TestTierca;
beforeAll(async () => {
  t = await startTestTierca();
});
afterAll(async () => {
  await t?.close();
});

/** Calls the API with a bare token. */
async function as(token: string, method: string, path: string, body?: unknown): Promise<ApiResponse> {
  const res = await fetch(`${t.url}${path}`, {
    method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const raw = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body: raw.length ? JSON.parse(raw.toString('utf8')) : null, raw };
}

/** Every text of every row of every table, to look for a secret. */
async function everything(): Promise<string> {
  const db = knexOf(t.store);
  const parts: string[] = [];
  for (const table of await tableNames(t.store)) parts.push(JSON.stringify(await db(table).select('*'), (_k, v) => (v && v.type === 'Buffer' ? Buffer.from(v.data).toString('latin1') : v)));
  return parts.join('\n');
}

/** `admin` asks for a principal, `approver` approves; returns the request and the approval. */
async function mint(body: Record<string, unknown>, approver: 'admin2' | string = 'admin2') {
  const asked = await call(t, 'admin', 'POST', '/api/v1/principals', body);
  expect(asked.status, JSON.stringify(asked.body)).toBe(202);
  const approved = approver === 'admin2'
    ? await call(t, 'admin2', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`)
    : await as(approver, 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
  return { asked, approved };
}

describe('adding a sysadmin or an officer is dual-controlled', () => {
  it('a sysadmin alone gets a request, not a principal, and cannot approve it', async () => {
    const before = await snapshotCounts(t.store);
    const asked = await call(t, 'admin', 'POST', '/api/v1/principals', { name: 'second me', role: 'sysadmin' });
    expect(asked.status).toBe(202);
    expect(asked.body.request).toMatchObject({ action: 'principal.add', status: 'pending', requestedBy: expect.stringMatching(/^prn-/) });
    expect(JSON.stringify(asked.body)).not.toMatch(/tca_/);
    const after = await snapshotCounts(t.store);
    expect(after.principals).toBe(before.principals);
    expect(after.tokens).toBe(before.tokens);
    const self = await call(t, 'admin', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
    expect([self.status, self.body.type]).toEqual([422, 'urn:tierca:problem:policy-self-approval']);
    expect((await snapshotCounts(t.store)).principals).toBe(before.principals);
    // Officers too.
    const officer = await call(t, 'admin', 'POST', '/api/v1/principals', { name: 'my officer', role: 'officer', domains: ['yuhu'] });
    expect(officer.status).toBe(202);
    // Auditors and devices approve nothing: they are created at once.
    const auditor = await call(t, 'admin', 'POST', '/api/v1/principals', { name: 'an auditor', role: 'auditor' });
    expect([auditor.status, typeof auditor.body.token]).toEqual([201, 'string']);
  });

  it('the second sysadmin\'s approval creates it and shows its token once, stored nowhere in plain', async () => {
    const { approved } = await mint({ name: 'third sysadmin', role: 'sysadmin' });
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    expect(approved.body.request.status).toBe('done');
    const token = approved.body.result.token as string;
    expect(token).toMatch(/^tca_[A-Za-z0-9_-]{43}$/);
    const me = await as(token, 'GET', '/api/v1/whoami');
    expect(me.body).toMatchObject({ id: approved.body.result.principal.id, role: 'sysadmin' });
    expect(await everything()).not.toContain(token);
    const listed = await call(t, 'auditor', 'GET', '/api/v1/requests');
    expect(JSON.stringify(listed.body)).not.toContain(token);
  });

  it('a sysadmin minted by A and approved by B counts for neither A nor B: the CA stays active', async () => {
    const { approved } = await mint({ name: 'minted', role: 'sysadmin' });
    const minted = approved.body.result.token as string;
    for (const requester of ['admin', 'admin2'] as const) {
      const asked = await call(t, requester, 'POST', '/api/v1/cas/shaoshan-t1/revoke', { reason: 'keyCompromise' });
      expect(asked.status, JSON.stringify(asked.body)).toBe(202);
      const before = await snapshotCounts(t.store);
      const vote = await as(minted, 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
      expect([vote.status, vote.body.type]).toEqual([422, 'urn:tierca:problem:policy-self-approval']);
      expect(vote.body.detail).toMatch(requester === 'admin'
        ? /was created by the requester prn-[0-9a-f]+: its approval does not count/
        : /was created by request req-[0-9a-f-]+, which the requester prn-[0-9a-f]+ approved: its approval does not count/);
      const after = await snapshotCounts(t.store);
      expect({ ...after, audit_log: 0 }).toEqual({ ...before, audit_log: 0 });
      expect((await call(t, 'auditor', 'GET', '/api/v1/cas/shaoshan-t1')).body.status).toBe('active');
      expect((await call(t, 'auditor', 'GET', `/api/v1/requests`)).body.find((r: { id: string }) => r.id === asked.body.request.id).status).toBe('pending');
      await call(t, requester === 'admin' ? 'admin2' : 'admin', 'POST', `/api/v1/requests/${asked.body.request.id}/reject`);
    }
  });

  it('an officer minted through a request cannot vouch for the sysadmins who made it, and a sysadmin minted by a minted one neither', async () => {
    // admin asks, admin2 approves: M. M (a sysadmin) then asks for N, admin approves: N was created by M's request.
    const { approved } = await mint({ name: 'M', role: 'sysadmin' });
    const m = approved.body.result.token as string;
    const askedN = await as(m, 'POST', '/api/v1/principals', { name: 'N', role: 'sysadmin' });
    expect(askedN.status).toBe(202);
    const n = (await call(t, 'admin', 'POST', `/api/v1/requests/${askedN.body.request.id}/approve`)).body.result.token as string;
    // N may not approve M's request (created by M) nor admin's (created by a request admin approved).
    for (const asker of [m, t.tokens.admin]) {
      const asked = await as(asker, 'POST', '/api/v1/cas/shaoshan-t2/revoke', { reason: 'superseded' });
      expect(asked.status).toBe(202);
      const vote = await as(n, 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
      expect([vote.status, vote.body.type]).toEqual([422, 'urn:tierca:problem:policy-self-approval']);
      await call(t, 'admin2', 'POST', `/api/v1/requests/${asked.body.request.id}/reject`);
    }
    expect((await call(t, 'auditor', 'GET', '/api/v1/cas/shaoshan-t2')).body.status).toBe('active');
  });

  it('two officers one sysadmin made alone (before the fix, or from the audit log) are one person: no t3 certificate', async () => {
    // As the old direct path left them: made by admin, no second approval (migration 0005 recovers
    // created_by from the audit log for such rows).
    const adminId = (await call(t, 'admin', 'GET', '/api/v1/whoami')).body.id as string;
    const made = await t.store.transaction(async (tx) => {
      const now = new Date();
      const one = await createPrincipal(tx, { name: 'old officer 1', role: 'officer', domains: ['yuhu'], now, createdBy: adminId });
      const two = await createPrincipal(tx, { name: 'old officer 2', role: 'officer', domains: ['yuhu'], now, createdBy: adminId });
      return [one.token, two.token] as const;
    });
    const subject = await as(made[0], 'POST', '/api/v1/subjects', {
      kind: 'device', domain: 'yuhu', organ: 'court', tier: 't3', name: 'one-person', dns: ['one-person.yuhu.xiangtan.intranet'],
    });
    expect(subject.status, JSON.stringify(subject.body)).toBe(201);
    const { csrPem } = await nodeCsr('P-384');
    const asked = await as(made[0], 'POST', '/api/v1/certificates', { subjectId: subject.body.id, csr: csrPem });
    expect(asked.status).toBe(202);
    const before = await snapshotCounts(t.store);
    const vote = await as(made[1], 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
    expect([vote.status, vote.body.type]).toEqual([422, 'urn:tierca:problem:policy-self-approval']);
    expect(vote.body.detail).toMatch(/and the requester prn-[0-9a-f]+ were both made by prn-[0-9a-f]+ alone: its approval does not count/);
    const after = await snapshotCounts(t.store);
    expect({ ...after, audit_log: 0 }).toEqual({ ...before, audit_log: 0 });
    // An independent officer (from the ceremony) still approves it.
    expect((await call(t, 'officer2', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`)).status).toBe(201);
  });
});
