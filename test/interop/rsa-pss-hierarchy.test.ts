// RSA CAs signing with RSASSA-PSS, chosen in the config: openssl verifies the chain with the tier
// policy, and the certificates say rsassaPss. The same config with PKCS#1 is the default elsewhere.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTierca, call, type TestTierca } from '../helpers/tierca.ts';
import { exampleConfigData, EXAMPLE_TIER_OIDS } from '../helpers/config.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { opensslCsr } from '../helpers/pki-fixtures.ts';

let t: TestTierca;
const tmp = new TempDir();

beforeAll(async () => {
  const data = exampleConfigData();
  t = await startTestTierca({
    configData: {
      ...data,
      domains: data.domains.slice(1, 2),
      root: { ...data.root, algorithm: 'RSA-2048', rsaPadding: 'pss' },
      domainCa: { ...data.domainCa, algorithm: 'RSA-2048', rsaPadding: 'pss' },
      tiers: { t1: { caAlgorithm: 'RSA-2048', caRsaPadding: 'pss' } },
    },
  });
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

describe('an RSA-PSS hierarchy from config', () => {
  it('signs CA and end-entity certificates with RSASSA-PSS that openssl verifies under the tier policy', async () => {
    const subject = await call(t, 'officer', 'POST', '/api/v1/subjects', {
      kind: 'device', domain: 'yuhu', organ: 'government', tier: 't1', name: 'pss-gw', dns: ['pss-gw.yuhu.xiangtan.intranet'],
    });
    const { csrPem } = await opensslCsr(tmp, 'pss', 'P-256');
    const issued = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: subject.body.id, csr: csrPem });
    expect(issued.status, JSON.stringify(issued.body)).toBe(201);
    const leaf = tmp.file('leaf.pem', issued.body.pem);
    const root = tmp.file('root.pem', issued.body.chain[2]);
    const untrusted = tmp.file('untrusted.pem', issued.body.chain.slice(0, 2).join(''));
    const ok = await openssl(['verify', '-CAfile', root, '-untrusted', untrusted, '-policy', EXAMPLE_TIER_OIDS.t1, '-explicit_policy', leaf]);
    expect(ok.stdout.trim(), ok.stderr).toBe(`${leaf}: OK`);
    for (const pem of [issued.body.pem, ...issued.body.chain]) {
      const text = (await openssl(['x509', '-noout', '-text'], { input: pem })).stdout;
      expect(text).toMatch(/Signature Algorithm: rsassaPss/);
      expect(text).toMatch(/Hash Algorithm: sha256/);
    }
    // The OCSP answer for it verifies too (its responder signs with its own key).
    const ocsp = await openssl(['ocsp', '-issuer', tmp.file('issuer.pem', issued.body.chain[0]), '-cert', leaf, '-url', `${t.url}/ocsp`,
      '-CAfile', root, '-verify_other', untrusted]);
    expect(ocsp.stdout).toContain(`${leaf}: good`);
    expect(ocsp.stderr).toContain('Response verify OK');
  });
});
