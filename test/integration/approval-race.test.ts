// Two officers approving the same t3 request at the same moment: exactly one issues it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTierca, call, type TestTierca, addApprovingPrincipal } from '../helpers/tierca.ts';
import { nodeCsr } from '../helpers/pki-fixtures.ts';

let t: TestTierca;
beforeAll(async () => {
  t = await startTestTierca();
});
afterAll(async () => {
  await t?.close();
});

describe('dual control under concurrency', () => {
  it('issues once when two approvals race, and refuses the other as not pending', async () => {
    const third = await addApprovingPrincipal(t, { name: 'third officer', role: 'officer', domains: ['yuhu'] });
    expect(third.status).toBe(201);
    for (let round = 0; round < 3; round++) {
      const subject = await call(t, 'officer', 'POST', '/api/v1/subjects', {
        kind: 'device', domain: 'yuhu', organ: 'court', tier: 't3', name: `race-${round}`, dns: [`race-${round}.yuhu.xiangtan.intranet`],
      });
      const { csrPem } = await nodeCsr('P-384');
      const pending = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: subject.body.id, csr: csrPem });
      expect(pending.status).toBe(202);
      const id = pending.body.request.id;
      const [a, b] = await Promise.all([
        call(t, 'officer2', 'POST', `/api/v1/requests/${id}/approve`),
        fetch(`${t.url}/api/v1/requests/${id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${third.body.token}` } })
          .then(async (r) => ({ status: r.status, body: await r.json() })),
      ]);
      expect([a.status, b.status].sort()).toEqual([201, 409]);
      const loser = a.status === 409 ? a : b;
      // Whichever check inside the transaction meets the winner first refuses it: the request is no
      // longer pending, or the subject already holds the certificate it was for.
      expect(['urn:tierca:problem:request-not-pending', 'urn:tierca:problem:already-holds-certificate']).toContain(loser.body.type);
      expect(await t.store.certificates.count({ subjectId: subject.body.id })).toBe(1);
    }
  });

  it('20 concurrent approvals of one t3 request issue exactly one certificate, and the request ends done', async () => {
    const approvers: string[] = [];
    for (let i = 0; i < 20; i++) {
      const p = await addApprovingPrincipal(t, { name: `approver ${i}`, role: 'officer', domains: ['yuhu'] });
      expect(p.status).toBe(201);
      approvers.push(p.body.token);
    }
    const subject = await call(t, 'officer', 'POST', '/api/v1/subjects', {
      kind: 'device', domain: 'yuhu', organ: 'court', tier: 't3', name: 'race-20', dns: ['race-20.yuhu.xiangtan.intranet'],
    });
    const { csrPem } = await nodeCsr('P-384');
    const pending = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: subject.body.id, csr: csrPem });
    expect(pending.status).toBe(202);
    const id = pending.body.request.id;
    const answers = await Promise.all(approvers.map((token) =>
      fetch(`${t.url}/api/v1/requests/${id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
        .then(async (r) => ({ status: r.status, body: await r.json() }))));
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
    const losers = answers.filter((a) => a.status !== 201);
    expect(losers.map((a) => a.status)).toEqual(Array(19).fill(409));
    for (const l of losers) expect(['urn:tierca:problem:request-not-pending', 'urn:tierca:problem:already-holds-certificate']).toContain(l.body.type);
    expect(await t.store.certificates.count({ subjectId: subject.body.id })).toBe(1);
    // A loser refused as already-holds-certificate must not have closed the done request as failed.
    const request = await t.store.requests.get(id);
    expect(request).toMatchObject({ status: 'done' });
    const winner = answers.find((a) => a.status === 201)!;
    expect(request!.result).toEqual({ issuerId: winner.body.certificate.issuerId, serial: winner.body.certificate.serial });
  });
});
