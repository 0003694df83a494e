// Every kind of artifact tierca produces, read by a second, independent X.509 stack: Python's
// `cryptography` (Debian's python3-cryptography, Rust parser; test/helpers/relying-party.py). Each
// is loaded, every extension read (`cert.extensions` raised on the old 2.25.<UUID> policy arc), and
// its signature checked with the issuer's key. Validity nesting is checked with `openssl x509 -dates`:
// a fresh CA's first leaf, its responder and a rollover link start no earlier than their issuer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FixedClock } from '../../server/clock.ts';
import { call, startTestTierca, type TestTierca } from '../helpers/tierca.ts';
import { TempDir, openssl } from '../helpers/openssl.ts';
import { EXAMPLE_TIER_OIDS } from '../helpers/config.ts';
import { caPem, issueLeaf, smallConfig, type IssuedLeaf } from '../helpers/rotation.ts';
import { opensslCsr } from '../helpers/pki-fixtures.ts';
import { pythonCheck, type RelyingPartyJob } from '../helpers/relying-party.ts';
import { buildCertificate, randomSerial } from '../../pki/certificate.ts';
import { buildCsr } from '../../pki/csr.ts';
import { certificatePolicies } from '../../pki/extensions.ts';
import { generateKeyPair } from '../../pki/key-pair.ts';
import { encodeName } from '../../pki/name.ts';
import { certificateToPem } from '../../pki/pem.ts';
import { softwareSigner } from '../../pki/software-signer.ts';

const clock = new FixedClock(new Date(Math.floor(Date.now() / 1000) * 1000));
const DAY = 86_400_000;
let t: TestTierca;
const tmp = new TempDir();
const ca: Record<string, string> = {};
const CA_IDS = ['root', 'yuhu', 'yuhu-t1', 'yuhu-t2', 'yuhu-t3'];
const TIERS = ['t1', 't2', 't3'] as const;
const leaves: Record<string, IssuedLeaf> = {};

/** openssl's notBefore and notAfter of a PEM certificate file, as epoch milliseconds. */
async function dates(path: string): Promise<{ notBefore: number; notAfter: number }> {
  const out = (await openssl(['x509', '-noout', '-dates', '-in', path])).stdout;
  return { notBefore: Date.parse(/notBefore=(.+)/.exec(out)![1]), notAfter: Date.parse(/notAfter=(.+)/.exec(out)![1]) };
}

/** Asserts that openssl reads `child` inside `issuer`'s validity. */
async function expectNested(child: string, issuer: string): Promise<void> {
  const [c, i] = [await dates(child), await dates(issuer)];
  expect(c.notBefore).toBeGreaterThanOrEqual(i.notBefore);
  expect(c.notAfter).toBeLessThanOrEqual(i.notAfter);
}

/** Every job read without error, every signature good. */
async function expectAllGood(jobs: RelyingPartyJob[]): Promise<any[]> {
  const results = await pythonCheck(jobs);
  results.forEach((r, i) => {
    expect(r, `${jobs[i].kind} ${jobs[i].path}`).toMatchObject({ ok: true });
    if ('issuer' in jobs[i] && jobs[i].issuer) expect(r.signatureValid, jobs[i].path).toBe(true);
  });
  return results;
}

async function ocspAnswer(name: string, issuerPem: string, target: string[], nonce: boolean): Promise<string> {
  const req = tmp.path + `/${name}.req`;
  const made = await openssl(['ocsp', '-issuer', issuerPem, ...target, '-reqout', req, nonce ? '-nonce' : '-no_nonce']);
  expect(made.code, made.stderr).toBe(0);
  const res = await fetch(`${t.url}/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: new Uint8Array(tmp.read(`${name}.req`)) });
  expect(res.status).toBe(200);
  return tmp.file(`${name}.der`, Buffer.from(await res.arrayBuffer()));
}

beforeAll(async () => {
  t = await startTestTierca({ clock, configData: smallConfig() });
  for (const id of CA_IDS) ca[id] = tmp.file(`${id}.pem`, await caPem(t, id));
  for (const tier of TIERS) for (const kind of ['organ', 'device', 'user'] as const) leaves[`${kind}-${tier}`] = await issueLeaf(t, tmp, { kind, tier });
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

describe('Python cryptography reads and verifies every artifact', () => {
  it('the root, domain and tier CA certificates', async () => {
    const issuerOf: Record<string, string> = { root: 'root', yuhu: 'root', 'yuhu-t1': 'yuhu', 'yuhu-t2': 'yuhu', 'yuhu-t3': 'yuhu' };
    const results = await expectAllGood(CA_IDS.map((id) => ({ kind: 'cert', path: ca[id], issuer: ca[issuerOf[id]] })));
    const [root, domain, ...tierCas] = results;
    expect(root.extensions.map((e: any) => e.oid)).toEqual(['2.5.29.19', '2.5.29.15', '2.5.29.14', '2.5.29.32']);
    expect(domain.extensions.map((e: any) => e.type)).toContain('NameConstraints');
    expect(domain.policies).toEqual(TIERS.map((tier) => EXAMPLE_TIER_OIDS[tier]));
    expect(tierCas.map((r) => r.policies)).toEqual(TIERS.map((tier) => [EXAMPLE_TIER_OIDS[tier]]));
  });

  it('organ, device and user certificates at each tier', async () => {
    const names = Object.keys(leaves);
    const results = await expectAllGood(names.map((n) => ({ kind: 'cert', path: tmp.file(`${n}.pem`, leaves[n].pem), issuer: ca[leaves[n].issuerId] })));
    results.forEach((r, i) => {
      const leaf = leaves[names[i]];
      expect(r.policies).toEqual([EXAMPLE_TIER_OIDS[leaf.tier]]);
      expect(r.extensions.map((e: any) => e.type)).toEqual(expect.arrayContaining([
        'BasicConstraints', 'KeyUsage', 'ExtendedKeyUsage', 'SubjectKeyIdentifier', 'AuthorityKeyIdentifier', 'SubjectAlternativeName',
        'CertificatePolicies', 'AuthorityInformationAccess', 'CRLDistributionPoints',
      ]));
    });
  });

  it("a fresh CA's first leaf starts no earlier than the CA (openssl x509 -dates on both)", async () => {
    for (const tier of TIERS) {
      const leaf = tmp.file(`first-${tier}.pem`, leaves[`organ-${tier}`].pem);
      await expectNested(leaf, ca[`yuhu-${tier}`]);
      // The RA back-dates a minute; the CA made at this very instant clamps it to its own start.
      expect((await dates(leaf)).notBefore).toBe((await dates(ca[`yuhu-${tier}`])).notBefore);
    }
  });

  it('a principal client certificate', async () => {
    const made = await call(t, 'admin', 'POST', '/api/v1/principals', { name: 'python auditor', role: 'auditor' });
    const { csrPem } = await opensslCsr(tmp, 'principal', 'P-256');
    const res = await call(t, 'admin', 'POST', `/api/v1/principals/${made.body.id}/certificate`, { csr: csrPem });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const [r] = await expectAllGood([{ kind: 'cert', path: tmp.file('principal.pem', res.body.pem), issuer: ca[res.body.certificate.issuerId] }]);
    expect(r.subject).toBe(`CN=${made.body.id} (principal),OU=tierca principal,O=湘潭市电子政务内网,L=雨湖区,ST=湖南省,C=CN`);
    expect(r.eku).toContain('1.3.6.1.5.5.7.3.2');
  });

  it('PKCS#12 files of server-made keys: a device key and an escrowed encryption key', async () => {
    const bundles: RelyingPartyJob[] = [];
    for (const [kind, tier, profile, generate] of [
      ['device', 't1', undefined, { algorithm: 'P-256' }],
      ['user', 't2', 'user-enc', { passphrase: 'holder-chosen-passphrase' }],
    ] as const) {
      const subject = await call(t, 'officer', 'POST', '/api/v1/subjects', {
        kind, domain: 'yuhu', organ: 'government', tier, name: `p12 ${kind}`,
        ...(kind === 'device' ? { dns: ['p12.yuhu.xiangtan.intranet'] } : { emails: ['p12@yuhu.xiangtan.intranet'] }),
      });
      const res = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: subject.body.id, ...(profile ? { profile } : {}), generate });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      bundles.push({
        kind: 'p12', path: tmp.file(`${kind}.p12`, Buffer.from(res.body.pkcs12, 'base64')),
        password: res.body.passphrase ?? generate.passphrase, issuer: ca[res.body.certificate.issuerId],
      });
    }
    const results = await expectAllGood(bundles);
    for (const r of results) expect(r.keyMatches).toBe(true);
    expect(results[1].extensions.map((e: any) => e.type)).toContain('KeyUsage');
  });

  it('a CSR tierca makes (buildCsr)', async () => {
    const { privateKey } = await generateKeyPair('P-256');
    const der = await buildCsr({ subject: encodeName([{ type: 'CN', value: 'vpn-gw-02' }]), signer: softwareSigner({ privateKey, algorithm: 'P-256' }) });
    const [r] = await expectAllGood([{ kind: 'csr', path: tmp.file('made.csr', der) }]);
    expect([r.subject, r.signatureValid]).toEqual(['CN=vpn-gw-02', true]);
  });

  it('OCSP responses: good, revoked, unknown, with nonce; and the delegated responder certificates they carry', async () => {
    const good = leaves['device-t1'];
    const revoked = leaves['user-t1'];
    const revoke = await call(t, 'officer', 'POST', `/api/v1/certificates/${revoked.serial}/revoke`, { reason: 'keyCompromise' });
    expect(revoke.status).toBe(200);
    const issuer = ca['yuhu-t1'];
    const answers = [
      await ocspAnswer('good', issuer, ['-cert', tmp.file('good.pem', good.pem)], false),
      await ocspAnswer('revoked', issuer, ['-cert', tmp.file('revoked.pem', revoked.pem)], false),
      await ocspAnswer('unknown', issuer, ['-serial', '0x1234567890abcdef'], false),
      await ocspAnswer('nonce', issuer, ['-cert', tmp.file('good.pem', good.pem)], true),
    ];
    const results = await expectAllGood(answers.map((path) => ({ kind: 'ocsp', path, issuer })));
    expect(results.map((r) => r.certStatus)).toEqual(['GOOD', 'REVOKED', 'UNKNOWN', 'GOOD']);
    expect(results[1].revocationReason).toBe('key_compromise');
    expect(results.map((r) => r.nonce === null)).toEqual([true, true, true, false]);
    for (const r of results) {
      expect(r.responderSignedByIssuer).toBe(true);
      expect(r.responders[0].eku).toEqual(['1.3.6.1.5.5.7.3.9']);
      expect(r.responders[0].extensions.map((e: any) => e.oid)).toContain('1.3.6.1.5.5.7.48.1.5');
    }
    // The responder certificate lies within its CA's validity too (openssl x509 -dates).
    const responder = await t.store.responders.current('yuhu-t1', clock.now());
    await expectNested(tmp.file('responder.pem', certificateToPem(responder!.certificate)), issuer);
  });

  it('full and delta CRLs, the revocation listed', async () => {
    const revoked = leaves['organ-t2'];
    expect((await call(t, 'officer', 'POST', `/api/v1/certificates/${revoked.serial}/revoke`, { reason: 'superseded' })).status).toBe(200);
    const fetchCrls = async () => {
      const full = tmp.file('full.crl', (await call(t, null, 'GET', '/crl/yuhu-t2.crl')).raw);
      const delta = tmp.file('delta.crl', (await call(t, null, 'GET', '/crl/yuhu-t2-delta.crl')).raw);
      return expectAllGood([{ kind: 'crl', path: full, issuer: ca['yuhu-t2'] }, { kind: 'crl', path: delta, issuer: ca['yuhu-t2'] }]);
    };
    let [full, delta] = await fetchCrls();
    for (let i = 0; i < 50 && ![...full.entries, ...delta.entries].some((e: any) => e.serial === revoked.serial.replace(/^0+/, '')); i++) {
      await new Promise((r) => setTimeout(r, 100));
      [full, delta] = await fetchCrls();
    }
    const listed = [...full.entries, ...delta.entries].filter((e: any) => e.serial === revoked.serial.replace(/^0+/, ''));
    expect(listed.map((e: any) => e.reason)).toContain('superseded');
    expect(full.deltaOf).toBeNull();
    expect(typeof delta.deltaOf).toBe('number');
    expect(delta.extensions.map((e: any) => e.type)).toContain('DeltaCRLIndicator');
  });

  it('rollover link certificates, each within its issuer\'s validity (openssl x509 -dates)', async () => {
    clock.advance(DAY);
    const asked = await call(t, 'admin', 'POST', '/api/v1/cas/yuhu-t1/rollover', {});
    expect(asked.status, JSON.stringify(asked.body)).toBe(202);
    expect((await call(t, 'admin2', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`)).status).toBe(200);
    const g2 = tmp.file('yuhu-t1-g2.pem', await caPem(t, 'yuhu-t1-g2'));
    const links = (await call(t, 'admin', 'GET', '/api/v1/cas/yuhu-t1/links')).body as { kind: string; pem: string }[];
    const file = (kind: string) => tmp.file(`${kind}.pem`, links.find((l) => l.kind === kind)!.pem);
    // old-with-new: the old key signed by the new one; new-with-old: the new key signed by the old one.
    const jobs: RelyingPartyJob[] = [
      { kind: 'cert', path: file('old-with-new'), issuer: g2 },
      { kind: 'cert', path: file('new-with-old'), issuer: ca['yuhu-t1'] },
      { kind: 'cert', path: g2, issuer: ca.yuhu },
    ];
    const results = await expectAllGood(jobs);
    for (const r of results) expect(r.policies).toEqual([EXAMPLE_TIER_OIDS.t1]);
    await expectNested(file('old-with-new'), g2);
    await expectNested(file('new-with-old'), ca['yuhu-t1']);
  });
});

describe('the check can fail', () => {
  it('a certificate with the old 2.25.<UUID> policy arc: Python cannot read its extensions', async () => {
    const { privateKey } = await generateKeyPair('P-256');
    const signer = softwareSigner({ privateKey, algorithm: 'P-256' });
    const name = encodeName([{ type: 'CN', value: 'old arc' }]);
    const der = await buildCertificate({
      serial: randomSerial(), issuer: name, subject: name, notBefore: clock.now(), notAfter: new Date(clock.now().getTime() + DAY),
      publicKeyInfo: signer.publicKeyInfo, extensions: [certificatePolicies(['2.25.128645345817574449542064460584668162789.1.2'])], signer,
    });
    const path = tmp.file('old-arc.pem', certificateToPem(der));
    const [r] = await pythonCheck([{ kind: 'cert', path, issuer: path }]);
    expect(r).toEqual({ ok: false, error: 'ValueError: error parsing asn1 value: ParseError { kind: InvalidValue, location: [0, "PolicyInformation::policy_identifier"] }' });
  });

  it('a signature by another key is refused', async () => {
    const [r] = await pythonCheck([{ kind: 'cert', path: ca['yuhu-t1'], issuer: ca.root }]);
    expect(r).toEqual({ ok: false, error: 'InvalidSignature: ' });
  });
});
