// Issue 13 defect 2: a subject revocation racing many issuances for that subject. The revocation runs
// in one transaction holding the subject's row lock and issuance re-checks the subject inside its own,
// so once the revocation has answered, no certificate of the subject is good — on both engines.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTierca, call, type TestTierca } from '../helpers/tierca.ts';
import { nodeCsr } from '../helpers/pki-fixtures.ts';

let t: TestTierca;
beforeAll(async () => {
  t = await startTestTierca();
});
afterAll(async () => {
  await t?.close();
});

describe('subject revocation against concurrent issuance', () => {
  it('leaves no good certificate of the subject, however the issuances interleave', async () => {
    for (let round = 0; round < 3; round++) {
      // Users hold two profiles; issuance of user-sign races the revocation many times over.
      const subject = await call(t, 'officer', 'POST', '/api/v1/subjects', {
        kind: 'user', domain: 'yuhu', organ: 'court', tier: 't1', name: `leaver-${round}`, emails: [`leaver${round}@yuhu.xiangtan.intranet`],
      });
      expect(subject.status).toBe(201);
      const csrs = await Promise.all(Array.from({ length: 24 }, () => nodeCsr('P-256')));
      const issuances = csrs.map(({ csrPem }, i) =>
        new Promise((resolve) => setTimeout(resolve, i % 8)).then(() =>
          call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: subject.body.id, csr: csrPem })));
      const revoke = new Promise((resolve) => setTimeout(resolve, 3)).then(() =>
        call(t, 'officer', 'POST', `/api/v1/subjects/${subject.body.id}/revoke`, { reason: 'affiliationChanged' }));
      const revoked = await revoke;
      expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
      // Right after the revocation answered, and again once every issuance has answered.
      const goodNow = (await t.store.certificates.list({ subjectId: subject.body.id })).filter((c) => c.status === 'good');
      expect(goodNow).toEqual([]);
      const answers = await Promise.all(issuances);
      for (const a of answers) expect([201, 409]).toContain(a.status);
      const all = await t.store.certificates.list({ subjectId: subject.body.id });
      expect(all.filter((c) => c.status === 'good')).toEqual([]);
      expect((await t.store.subjects.get(subject.body.id))!.status).toBe('revoked');
      for (const s of revoked.body.revoked as string[]) expect(all.map((c) => c.serial)).toContain(s);
    }
  });
});
