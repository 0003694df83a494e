// Issue 13 defect 2: a subject revocation racing many issuances for that subject. The revocation runs
// in one transaction holding the subject's row lock and issuance re-checks the subject inside its own,
// so once the revocation has answered, no certificate of the subject is good — on both engines.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTierca, call, type TestTierca } from '../helpers/tierca.ts';
import { nodeCsr } from '../helpers/pki-fixtures.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';

let t: TestTierca;
const tmp = new TempDir();
beforeAll(async () => {
  t = await startTestTierca();
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

describe('subject revocation against concurrent issuance', () => {
  it('leaves no good certificate of the subject, however the issuances interleave', async () => {
    for (let round = 0; round < 3; round++) {
      // Users hold two profiles; issuance of user-sign races the revocation many times over.
      const subject = await call(t, 'officer', 'POST', '/api/v1/subjects', {
        kind: 'user', domain: 'yuhu', organ: 'court', tier: 't1', name: `leaver-${round}`, emails: [`leaver${round}@yuhu.xiangtan.intranet`],
      });
      expect(subject.status).toBe(201);
      // One certificate the subject surely holds before the race (its encryption certificate).
      const held = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: subject.body.id, profile: 'user-enc', generate: { algorithm: 'P-256' } });
      expect(held.status, JSON.stringify(held.body)).toBe(201);
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
      // A relying party sees it too: every certificate an issuance answered 201 for is revoked over
      // OCSP (openssl ocsp, signature verified against the issuer) and on /status.
      for (const [i, a] of [held, ...answers].entries()) {
        if (a.status !== 201) continue;
        const body = a.body as { pem: string; chain: string[]; certificate: { serial: string; issuerId: string } };
        const cert = tmp.file(`r${round}-${i}.pem`, body.pem);
        const issuer = tmp.file(`r${round}-${i}-issuer.pem`, body.chain[0]);
        const root = tmp.file(`r${round}-${i}-root.pem`, body.chain.slice(1).join(''));
        const check = await openssl(['ocsp', '-issuer', issuer, '-cert', cert, '-url', `${t.url}/ocsp`, '-CAfile', root, '-no_nonce']);
        expect(check.stdout, check.stderr).toContain(`${cert}: revoked`);
        expect(check.stderr).toContain('Response verify OK');
        const status = await call(t, null, 'GET', `/status/${body.certificate.issuerId}/${body.certificate.serial}`);
        expect(status.body.status).toBe('revoked');
      }
    }
  });
});
