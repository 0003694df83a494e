// Issuance through the API for organs, devices and users at every tier, checked by openssl; every
// policy refusal with its status, problem type and no row changed; dual control; concurrency.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTierca, call, type TestTierca, type RoleName, addApprovingPrincipal } from '../helpers/tierca.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { snapshotCounts, countRows } from '../helpers/database.ts';
import { opensslCsr, nodeCsr } from '../helpers/pki-fixtures.ts';
import { EXAMPLE_TIER_OIDS } from '../helpers/config.ts';
import { knexOf } from '../../server/storage/knex-store.ts';

let t: TestTierca;
const tmp = new TempDir();
let rootPem: string;

beforeAll(async () => {
  t = await startTestTierca();
  rootPem = tmp.file('root.pem', (await call(t, null, 'GET', '/ca/root.pem')).raw);
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

let seq = 0;
async function addSubject(body: Record<string, unknown>, role: RoleName = 'officer') {
  const res = await call(t, role, 'POST', '/api/v1/subjects', body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id as string;
}

function subjectFor(kind: 'organ' | 'device' | 'user', tier: string, domain = 'yuhu') {
  const n = ++seq;
  const suffix = domain === 'yuhu' ? 'yuhu.xiangtan.intranet' : 'shaoshan.xiangtan.intranet';
  return {
    kind, domain, organ: 'government', tier, name: `${kind}-${tier}-${n}`,
    ...(kind === 'device' ? { dns: [`gw-${n}.${suffix}`], ips: [domain === 'yuhu' ? '10.21.0.1' : '10.25.0.1'] } : {}),
    ...(kind === 'user' ? { emails: [`user${n}@${suffix}`] } : {}),
    ...(kind === 'organ' ? { emails: [`seal${n}@${suffix}`] } : {}),
  };
}

/** Writes the chain of an issue answer and runs openssl verify with a tier policy. */
async function verifyWithPolicy(name: string, issued: { pem: string; chain: string[] }, oid: string) {
  const leaf = tmp.file(`${name}.pem`, issued.pem);
  const untrusted = tmp.file(`${name}-chain.pem`, issued.chain.slice(0, -1).join(''));
  return openssl(['verify', '-CAfile', rootPem, '-untrusted', untrusted, '-policy', oid, '-explicit_policy', '-purpose', 'any', leaf]);
}

describe('issuance matrix: profile × tier, verified by openssl with the tier policy', () => {
  const cases: { kind: 'organ' | 'device' | 'user'; tier: 't1' | 't2'; alg: 'P-256' | 'P-384' | 'RSA-2048' | 'RSA-3072'; eku: RegExp; ku: RegExp }[] = [
    { kind: 'organ', tier: 't1', alg: 'P-256', eku: /Document Signing|1\.3\.6\.1\.5\.5\.7\.3\.36/, ku: /Digital Signature, Non Repudiation/ },
    { kind: 'device', tier: 't1', alg: 'RSA-2048', eku: /TLS Web Server Authentication, TLS Web Client Authentication, ipsec Internet Key Exchange/, ku: /Digital Signature, Key Encipherment/ },
    { kind: 'user', tier: 't1', alg: 'P-384', eku: /TLS Web Client Authentication, E-mail Protection/, ku: /Digital Signature, Non Repudiation/ },
    { kind: 'organ', tier: 't2', alg: 'P-384', eku: /Document Signing|1\.3\.6\.1\.5\.5\.7\.3\.36/, ku: /Digital Signature, Non Repudiation/ },
    { kind: 'device', tier: 't2', alg: 'P-256', eku: /TLS Web Server Authentication/, ku: /Digital Signature/ },
    { kind: 'user', tier: 't2', alg: 'P-256', eku: /E-mail Protection/, ku: /Digital Signature, Non Repudiation/ },
  ];
  it.each(cases)('$kind at $tier from a $alg CSR', async ({ kind, tier, alg, eku, ku }) => {
    const subjectId = await addSubject(subjectFor(kind, tier));
    const { csrPem } = await opensslCsr(tmp, `${kind}-${tier}`, alg);
    const res = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, csr: csrPem });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.certificate).toMatchObject({ tier, domain: 'yuhu', status: 'good', keyAlgorithm: alg, issuerId: `yuhu-${tier}` });
    expect(res.body.chain).toHaveLength(3);
    const ok = await verifyWithPolicy(`${kind}-${tier}`, res.body, EXAMPLE_TIER_OIDS[tier]);
    expect(ok.stdout.trim(), ok.stderr).toMatch(/: OK$/);
    const other = tier === 't1' ? 't2' : 't3';
    const bad = await verifyWithPolicy(`${kind}-${tier}-x`, res.body, EXAMPLE_TIER_OIDS[other]);
    expect(bad.code).not.toBe(0);

    const text = (await openssl(['x509', '-in', tmp.file(`${kind}-${tier}.pem`), '-noout', '-text', '-nameopt', 'utf8,sep_comma_plus_space'])).stdout;
    expect(text).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:FALSE/);
    expect(text).toMatch(new RegExp(`X509v3 Key Usage: critical\\n\\s+${ku.source}`));
    expect(text).toMatch(eku);
    expect(text).toContain(`Policy: ${EXAMPLE_TIER_OIDS[tier]}`);
    expect(text).toContain(`OCSP - URI:${t.url}/ocsp`);
    expect(text).toContain(`CA Issuers - URI:${t.url}/ca/yuhu-${tier}.crt`);
    expect(text).toContain(`URI:${t.url}/crl/yuhu-${tier}.crl`);
    expect(text).toMatch(/X509v3 Subject Key Identifier/);
    expect(text).toMatch(/X509v3 Authority Key Identifier/);
    // The subject comes from the registered subject, never from the CSR.
    expect(text).toMatch(/Subject: C=CN, ST=湖南省, L=雨湖区, O=雨湖区人民政府, CN=/);
    expect(text).not.toContain('Not From Here');
    // Positive serial of at least 64 bits.
    expect(BigInt(`0x${res.body.certificate.serial}`) > 2n ** 64n).toBe(true);
  });

  it('issues a server-made key as a PKCS#12 that openssl reads with the printed passphrase only', async () => {
    const subjectId = await addSubject(subjectFor('device', 't1'));
    const res = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, generate: { algorithm: 'P-256' } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(typeof res.body.passphrase).toBe('string');
    const p12 = tmp.file('gen.p12', Buffer.from(res.body.pkcs12, 'base64'));
    const info = await openssl(['pkcs12', '-in', p12, '-info', '-noout', '-passin', `pass:${res.body.passphrase}`]);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stderr + info.stdout).toMatch(/PBES2, PBKDF2, AES-256-CBC/);
    const wrong = await openssl(['pkcs12', '-in', p12, '-info', '-noout', '-passin', 'pass:not-the-passphrase']);
    expect(wrong.code).not.toBe(0);
    // The server kept no private key for a signing certificate: nothing escrowed.
    expect(await countRows(t.store, 'escrowed_keys')).toBe(0);
  });

  it('escrows the key of a user encryption certificate in the key-management centre, wrapped', async () => {
    const subjectId = await addSubject(subjectFor('user', 't2'));
    const res = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, profile: 'user-enc', generate: { passphrase: 'holder-chosen-passphrase' } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.passphrase).toBeUndefined();
    // The KMC makes a user's encryption key (GM/T 0034) and keeps it in its history; the older
    // escrow table is not used for it.
    expect(await t.store.escrow.get(res.body.certificate.issuerId, res.body.certificate.serial)).toBeUndefined();
    const row = await knexOf(t.store)('kmc_keys').where({ issuer_id: res.body.certificate.issuerId, serial: res.body.certificate.serial }).first();
    expect(row).toMatchObject({ subject_id: subjectId, algorithm: 'P-256' });
    const wrapped = Buffer.from(row.wrapped);
    expect(wrapped.includes(Buffer.from([0x02, 0x01, 0x00, 0x30]))).toBe(false);
    const history = await call(t, 'officer', 'GET', `/api/v1/subjects/${subjectId}/keys`);
    expect(history.body.map((k: any) => k.serial)).toEqual([res.body.certificate.serial]);
    const text = (await openssl(['x509', '-noout', '-text'], { input: res.body.pem })).stdout;
    expect(text).toMatch(/X509v3 Key Usage: critical\n\s+Key Agreement/);
  });
});

describe('dual control at t3', () => {
  it('holds the first officer\'s issue as a request until a different officer approves', async () => {
    const subjectId = await addSubject(subjectFor('device', 't3'));
    const { csrPem } = await opensslCsr(tmp, 'dual', 'P-384');
    const first = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, csr: csrPem });
    expect(first.status).toBe(202);
    const requestId = first.body.request.id;
    expect(first.body.request).toMatchObject({ status: 'pending', approvalsRequired: 1, approvals: [] });
    expect(await t.store.certificates.count({ subjectId })).toBe(0);

    const before = await snapshotCounts(t.store);
    const self = await call(t, 'officer', 'POST', `/api/v1/requests/${requestId}/approve`);
    expect(self.status).toBe(422);
    expect(self.body.type).toBe('urn:tierca:problem:policy-self-approval');
    const after = await snapshotCounts(t.store);
    expect({ ...after, audit_log: 0 }).toEqual({ ...before, audit_log: 0 });
    expect(after.audit_log).toBe(before.audit_log + 1);

    const listed = await call(t, 'officer2', 'GET', '/api/v1/requests?status=pending');
    expect(listed.body.map((r: any) => r.id)).toContain(requestId);
    const approved = await call(t, 'officer2', 'POST', `/api/v1/requests/${requestId}/approve`);
    expect(approved.status, JSON.stringify(approved.body)).toBe(201);
    const ok = await verifyWithPolicy('dual', approved.body, EXAMPLE_TIER_OIDS.t3);
    expect(ok.stdout.trim(), ok.stderr).toMatch(/: OK$/);
    const again = await call(t, 'officer2', 'POST', `/api/v1/requests/${requestId}/approve`);
    expect(again.status).toBe(409);
    expect(again.body.type).toBe('urn:tierca:problem:request-not-pending');
  });
});

describe('refusals: status, problem type, and no row changed', () => {
  async function refused(role: RoleName, method: string, path: string, body: unknown, status: number, type: string, detail?: RegExp) {
    const before = await snapshotCounts(t.store);
    const res = await call(t, role, method, path, body);
    expect(res.status, JSON.stringify(res.body)).toBe(status);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body.type).toBe(`urn:tierca:problem:${type}`);
    if (detail) expect(res.body.detail).toMatch(detail);
    const after = await snapshotCounts(t.store);
    // Only the audit log grows: the refusal itself is recorded.
    expect({ ...after, audit_log: 0 }).toEqual({ ...before, audit_log: 0 });
    expect(after.audit_log - before.audit_log).toBeLessThanOrEqual(1);
    return res;
  }

  it('refuses a key algorithm the tier does not allow (RSA-2048 at t2)', async () => {
    const subjectId = await addSubject(subjectFor('device', 't2'));
    const { csrPem } = await opensslCsr(tmp, 'rsa2048-t2', 'RSA-2048');
    await refused('officer', 'POST', '/api/v1/certificates', { subjectId, csr: csrPem }, 422, 'policy-key-algorithm', /RSA-2048 is not allowed at tier t2/);
  });

  it('refuses keys tierca does not know (RSA-1024, secp256k1)', async () => {
    const subjectId = await addSubject(subjectFor('device', 't1'));
    for (const alg of ['RSA-1024', 'secp256k1'] as const) {
      const { csrPem } = await opensslCsr(tmp, `weak-${alg}`, alg);
      await refused('officer', 'POST', '/api/v1/certificates', { subjectId, csr: csrPem }, 422, 'policy-key-algorithm');
    }
  });

  it('refuses a validity above the tier maximum instead of clamping it', async () => {
    const subjectId = await addSubject(subjectFor('user', 't2'));
    const { csrPem } = await opensslCsr(tmp, 'long', 'P-256');
    await refused('officer', 'POST', '/api/v1/certificates', { subjectId, csr: csrPem, days: 366 }, 422, 'policy-validity', /366 days is above the tier t2 maximum of 365 days/);
  });

  it('refuses names outside the domain constraints', async () => {
    await refused('officer', 'POST', '/api/v1/subjects', { ...subjectFor('device', 't1'), dns: ['vpn.shaoshan.xiangtan.intranet'] }, 422, 'policy-name-constraints', /outside domain yuhu/);
    await refused('officer', 'POST', '/api/v1/subjects', { ...subjectFor('user', 't1'), emails: ['someone@example.com'] }, 422, 'policy-name-constraints');
  });

  it('refuses IP addresses outside the domain ranges (config ipRanges), IPv4 and IPv6', async () => {
    for (const ip of ['8.8.8.8', '0.0.0.0', '::', '10.25.0.1', 'fd00:25::1']) {
      await refused('officer', 'POST', '/api/v1/subjects', { ...subjectFor('device', 't1'), ips: [ip] }, 422, 'policy-name-constraints', new RegExp(`IP address ${ip.replace(/\./g, '\\.')} is outside domain yuhu \\(10\\.21\\.0\\.0/16, fd00:21::/32\\)`));
    }
    // Inside the ranges: both families are issued, and openssl reads them in the SAN.
    const subjectId = await addSubject({ ...subjectFor('device', 't1'), ips: ['10.21.200.7', 'fd00:21::7'] });
    const { csrPem } = await opensslCsr(tmp, 'ip-inside', 'P-256');
    const res = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, csr: csrPem });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const text = await openssl(['x509', '-noout', '-ext', 'subjectAltName'], { input: res.body.pem });
    expect(text.stdout).toMatch(/IP Address:10\.21\.200\.7, IP Address:FD00:21:0:0:0:0:0:7/);
  });

  it("refuses a device common name that reads as another host than the device's DNS names", async () => {
    await refused('officer', 'POST', '/api/v1/subjects', { ...subjectFor('device', 't1'), name: 'www.yuhu.xiangtan.intranet' }, 422, 'policy-name-constraints',
      /common name www\.yuhu\.xiangtan\.intranet reads as a host name: it must be one of the device's DNS names/);
    await refused('officer', 'POST', '/api/v1/subjects', { ...subjectFor('device', 't1'), name: 'www.shaoshan.xiangtan.intranet' }, 422, 'policy-name-constraints');
    // The same name is fine when it is one of the SANs; a single-label name names no host.
    const own = subjectFor('device', 't1');
    await addSubject({ ...own, name: own.dns![0].toUpperCase() });
    await addSubject({ ...subjectFor('device', 't1'), name: 'vpn-gw-77' });
  });

  it('refuses server-made keys at t3', async () => {
    const subjectId = await addSubject(subjectFor('organ', 't3'));
    await refused('officer', 'POST', '/api/v1/certificates', { subjectId, generate: { algorithm: 'P-384' } }, 422, 'policy-server-keygen');
  });

  it('refuses a second live certificate of the same profile', async () => {
    const subjectId = await addSubject(subjectFor('device', 't1'));
    const { csrPem } = await opensslCsr(tmp, 'twice', 'P-256');
    expect((await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, csr: csrPem })).status).toBe(201);
    await refused('officer', 'POST', '/api/v1/certificates', { subjectId, csr: csrPem }, 409, 'already-holds-certificate');
  });

  it('refuses malformed and badly signed CSRs with 400', async () => {
    const subjectId = await addSubject(subjectFor('device', 't1'));
    await refused('officer', 'POST', '/api/v1/certificates', { subjectId, csr: 'not a csr at all' }, 400, 'malformed-input');
    const { csrPem } = await opensslCsr(tmp, 'tamper', 'P-256');
    const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
    der[der.length - 5] ^= 0x01;
    await refused('officer', 'POST', '/api/v1/certificates', { subjectId, csr: der.toString('base64') }, 400, 'bad-csr-signature');
  });

  it('refuses oversized and non-JSON bodies', async () => {
    const before = await snapshotCounts(t.store);
    const big = await call(t, 'officer', 'POST', '/api/v1/subjects', JSON.stringify({ name: 'x'.repeat(70 * 1024) }), { 'content-type': 'application/json' });
    expect(big.status).toBe(413);
    expect(big.body.type).toBe('urn:tierca:problem:payload-too-large');
    const broken = await call(t, 'officer', 'POST', '/api/v1/subjects', '{"kind":', { 'content-type': 'application/json' });
    expect(broken.status).toBe(400);
    expect(broken.body.type).toBe('urn:tierca:problem:malformed-input');
    const wrongType = await call(t, 'officer', 'POST', '/api/v1/subjects', 'kind=device', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(wrongType.status).toBe(415);
    expect(await snapshotCounts(t.store)).toEqual(before);
  });

  it('refuses unknown subjects, and sysadmins and auditors issuing', async () => {
    await refused('officer', 'POST', '/api/v1/certificates', { subjectId: 'sub-nope', generate: {} }, 404, 'not-found');
    const subjectId = await addSubject(subjectFor('device', 't1'));
    const { csrPem } = await opensslCsr(tmp, 'byadmin', 'P-256');
    await refused('admin', 'POST', '/api/v1/certificates', { subjectId, csr: csrPem }, 403, 'forbidden', /lacks permission certificate:issue/);
    await refused('auditor', 'POST', '/api/v1/certificates', { subjectId, csr: csrPem }, 403, 'forbidden');
  });

  it('refuses an officer acting outside its domains', async () => {
    const made = await addApprovingPrincipal(t, { name: 'yuhu officer', role: 'officer', domains: ['yuhu'] });
    expect(made.status).toBe(201);
    const subjectId = await addSubject(subjectFor('device', 't1', 'shaoshan'));
    const { csrPem } = await opensslCsr(tmp, 'outside', 'P-256');
    const before = await snapshotCounts(t.store);
    const res = await fetch(`${t.url}/api/v1/certificates`, {
      method: 'POST', headers: { authorization: `Bearer ${made.body.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ subjectId, csr: csrPem }),
    });
    expect(res.status).toBe(403);
    expect((await res.json()).detail).toBe('role officer lacks permission certificate:issue in domain shaoshan');
    const after = await snapshotCounts(t.store);
    expect({ ...after, audit_log: 0 }).toEqual({ ...before, audit_log: 0 });
  });
});

describe('concurrency', () => {
  it('200 parallel issuances give 200 distinct serials and 200 rows', async () => {
    const ids = await Promise.all(Array.from({ length: 200 }, () => addSubject(subjectFor('device', 't1'))));
    const csrs = await Promise.all(ids.map(() => nodeCsr('P-256')));
    const before = await t.store.certificates.count({ issuerId: 'yuhu-t1' });
    const results = await Promise.all(ids.map((subjectId, i) => call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, csr: csrs[i].csrPem })));
    expect(results.map((r) => r.status)).toEqual(Array(200).fill(201));
    const serials = new Set(results.map((r) => r.body.certificate.serial));
    expect(serials.size).toBe(200);
    expect(await t.store.certificates.count({ issuerId: 'yuhu-t1' })).toBe(before + 200);
  });
});
