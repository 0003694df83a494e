// GET /api/v1/cas/{id} returns the `policies` docs/api.md promises: the certificatePolicies OIDs each CA
// certificate carries, as openssl reads them from the certificate itself — for a tier CA exactly its
// tier's policy OID, for the root and domain CAs whatever their certificates say.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTierca, call, type TestTierca } from '../helpers/tierca.ts';
import { openssl } from '../helpers/openssl.ts';

let t: TestTierca;

beforeAll(async () => {
  t = await startTestTierca();
});
afterAll(async () => {
  await t?.close();
});

/** The policy OIDs in a PEM certificate, as `openssl x509 -ext certificatePolicies` prints them. */
async function opensslPolicies(pem: string): Promise<string[]> {
  const text = (await openssl(['x509', '-noout', '-ext', 'certificatePolicies', '-certopt', 'ext_parse'], { input: pem })).stdout;
  return [...text.matchAll(/Policy: (\S+)/g)].map((m) => (m[1] === 'X509v3' ? '2.5.29.32.0' : m[1]));
}

describe('GET /api/v1/cas/{id} policies', () => {
  it('gives each CA the policy OIDs of its certificate; a tier CA exactly its tier\'s', async () => {
    const list = await call(t, 'auditor', 'GET', '/api/v1/cas');
    expect(list.status).toBe(200);
    const tiers = t.service.services.config.tiers;
    const ids: string[] = list.body.map((c: { id: string }) => c.id);
    for (const id of ['root', 'yuhu', 'yuhu-t1', 'yuhu-t2', 'shaoshan-t3']) expect(ids).toContain(id);
    for (const id of ids) {
      const ca = await call(t, 'auditor', 'GET', `/api/v1/cas/${id}`);
      expect(ca.status).toBe(200);
      expect(Array.isArray(ca.body.policies), id).toBe(true);
      expect(ca.body.policies, id).toEqual(await opensslPolicies(ca.body.pem));
      if (ca.body.layer === 'tier') expect(ca.body.policies, id).toEqual([tiers.get(ca.body.tier)!.oid]);
    }
    const domain = await call(t, 'auditor', 'GET', '/api/v1/cas/yuhu');
    expect(domain.body.policies.length).toBeGreaterThan(0);
  });
});
