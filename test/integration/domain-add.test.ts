// A domain added to a running installation under an ONLINE root (`POST /api/v1/domains`, decision
// 0032; the offline-root path is in offline-root-ceremonies.test.ts): two sysadmins, the domain CA
// signed by the root at once and its tier CAs by it, issuance under it the moment the approval
// answers, with the domain's name constraints and IP ranges; checked by openssl (tier policy, name
// constraints) and Python's cryptography. A refused request writes nothing. SQLite and PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addApprovingPrincipal, call, startTestTierca, type TestTierca } from '../helpers/tierca.ts';
import { exampleConfigData, EXAMPLE_TIER_OIDS } from '../helpers/config.ts';
import { snapshotCounts } from '../helpers/database.ts';
import { TempDir, openssl } from '../helpers/openssl.ts';
import { opensslCsr } from '../helpers/pki-fixtures.ts';
import { pythonCheck } from '../helpers/relying-party.ts';

const tmp = new TempDir();
let t: TestTierca;
const data = exampleConfigData();
const yuetang = data.domains.find((d: { slug: string }) => d.slug === 'yuetang');

beforeAll(async () => {
  t = await startTestTierca({ configData: { ...data, domains: data.domains.filter((d: { slug: string }) => d.slug !== 'yuetang') } });
}, 120_000);

afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

describe('adding a domain under an online root', { timeout: 120_000 }, () => {
  it('refuses a clash and the requester\'s own approval, writing nothing', async () => {
    const before = await snapshotCounts(t.store);
    const clash = await call(t, 'admin', 'POST', '/api/v1/domains', { ...yuetang, slug: 'yuetang', dnsSuffix: 'yuhu.xiangtan.intranet' });
    expect([clash.status, clash.body.type]).toEqual([400, 'urn:tierca:problem:bad-request']);
    const byOfficer = await call(t, 'officer', 'POST', '/api/v1/domains', yuetang);
    expect(byOfficer.status).toBe(403);
    const after = await snapshotCounts(t.store);
    // Each refusal is audited (a failed write, a denial); nothing else is written.
    expect(after).toEqual({ ...before, audit_log: before.audit_log! + 2 });
  });

  it('two sysadmins add it: the root signs its domain CA at once and it issues with its constraints', async () => {
    const asked = await call(t, 'admin', 'POST', '/api/v1/domains', yuetang);
    expect(asked.status, JSON.stringify(asked.body)).toBe(202);
    const self = await call(t, 'admin', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
    expect([self.status, self.body.type]).toEqual([422, 'urn:tierca:problem:policy-self-approval']);
    expect((await call(t, 'admin', 'GET', '/api/v1/domains')).body.map((d: { slug: string }) => d.slug)).not.toContain('yuetang');
    const approved = await call(t, 'admin2', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    expect(approved.body.result).toEqual({ domain: 'yuetang', cas: ['yuetang', 'yuetang-t1', 'yuetang-t2', 'yuetang-t3'], awaitingRoot: false });

    const officer = await addApprovingPrincipal(t, { name: 'yuetang officer', role: 'officer', domains: ['yuetang'] });
    expect(officer.status, JSON.stringify(officer.body)).toBe(201);
    const token = { authorization: `Bearer ${officer.body.token}` };
    const subject = await call(t, null, 'POST', '/api/v1/subjects', {
      kind: 'device', domain: 'yuetang', organ: 'government', tier: 't2', name: 'gw-01', dns: ['gw-01.yuetang.xiangtan.intranet'], ips: ['10.22.0.5'],
    }, token);
    expect(subject.status, JSON.stringify(subject.body)).toBe(201);
    const { csrPem } = await opensslCsr(tmp, 'gw-01', 'P-256');
    const issued = await call(t, null, 'POST', '/api/v1/certificates', { subjectId: subject.body.id, csr: csrPem }, token);
    expect(issued.status, JSON.stringify(issued.body)).toBe(201);
    expect(issued.body.certificate.issuerId).toBe('yuetang-t2');

    const root = tmp.file('root.pem', (await call(t, null, 'GET', '/ca/root.pem')).raw);
    const leaf = tmp.file('leaf.pem', issued.body.pem);
    const [tierPem, domainPem] = issued.body.chain as string[];
    const chain = tmp.file('chain.pem', `${tierPem}${domainPem}`);
    const ok = await openssl(['verify', '-CAfile', root, '-untrusted', chain, '-policy', EXAMPLE_TIER_OIDS.t2!, '-explicit_policy', '-purpose', 'any', leaf]);
    expect(ok.stdout.trim(), ok.stderr).toBe(`${leaf}: OK`);
    const domainText = (await openssl(['x509', '-in', tmp.file('yuetang.pem', domainPem!), '-noout', '-text'])).stdout;
    expect(domainText).toContain('DNS:yuetang.xiangtan.intranet');
    expect(domainText).toContain('IP:10.22.0.0/255.255.0.0');
    const files = [leaf, tmp.file('t2.pem', tierPem!), tmp.file('d.pem', domainPem!), root];
    const checks = await pythonCheck(files.slice(0, -1).map((path, i) => ({ kind: 'cert' as const, path, issuer: files[i + 1]! })));
    expect(checks.map((c) => c.signatureValid)).toEqual([true, true, true]);

    // An address of another domain is refused by name constraints, nothing written.
    const before = await snapshotCounts(t.store);
    const outside = await call(t, null, 'POST', '/api/v1/subjects', {
      kind: 'device', domain: 'yuetang', organ: 'government', tier: 't2', name: 'gw-02', dns: ['gw-02.yuetang.xiangtan.intranet'], ips: ['10.21.0.5'],
    }, token);
    expect(outside.status).toBe(422);
    expect((await snapshotCounts(t.store)).subjects).toBe(before.subjects);
  });
});
