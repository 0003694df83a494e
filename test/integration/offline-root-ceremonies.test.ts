// Later ceremonies of an offline root started from the ONLINE side (issue 20; docs/offline-root.md,
// docs/decisions/0032-offline-root-online-requests.md), end to end with the real `tierca` binary: two
// data folders stand for the two machines and bundles go between them as files. After the first
// ceremony the online side, under dual control, adds a domain, revokes a domain CA and rolls one over;
// `tierca root request` carries all three in request bundle 2, `root sign` shows and signs them, and
// `root import` installs them: the new domain issues (openssl with the tier policy against the root
// alone, and Python's cryptography), the revoked domain CA and a certificate under it answer revoked
// (openssl ocsp, the root CRL) and nothing more is issued under it, the new generation issues and
// chains. Also: nothing pending is refused, one sysadmin alone gets nothing, refused imports are
// audited with nothing else changed. Runs on SQLite and PostgreSQL (TIERCA_TEST_DB).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freshDatabase, runTierca, startServe, http, type ProcessDatabase, type ServeProcess } from '../helpers/processes.ts';
import { TEST_PASSPHRASE } from '../helpers/tierca.ts';
import { exampleConfigData, EXAMPLE_TIER_OIDS } from '../helpers/config.ts';
import { TempDir, openssl } from '../helpers/openssl.ts';
import { opensslCsr } from '../helpers/pki-fixtures.ts';
import { pythonCheck } from '../helpers/relying-party.ts';
import { freePort } from '../helpers/net.ts';
import { countsOnline as countsOfflineRootTest, eventually, issueDevice, newOfficer as newOfficerOf } from '../helpers/offline-root.ts';
import { knexOf } from '../../server/storage/knex-store.ts';

const tmp = new TempDir();
const rootDir = join(tmp.path, 'offline-root');
const rootPass = tmp.file('root.pass', 'the root officer passphrase 1\n');
const onlinePass = tmp.file('online.pass', `${TEST_PASSPHRASE}\n`);
const T2 = EXAMPLE_TIER_OIDS.t2!;

let db: ProcessDatabase;
let server: ServeProcess;
let url = '';
let rootPem = '';
let updatedConfig = '';
let admin = '';
let admin2 = '';
let officer = '';
let xiangtanLeaf: { pem: string; chain: string[] };

const run = (args: string[], env: Record<string, string> = {}) => runTierca(args, { env: { ...db.env, TIERCA_ROOT_DATA: '', ...env } });
const text = (r: { stdout: Buffer }) => r.stdout.toString('utf8');
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

beforeAll(async () => {
  db = await freshDatabase();
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const data = exampleConfigData();
  // The first ceremony knows two domains; the updated file adds Yuetang.
  const config = tmp.file('config.json', JSON.stringify({ ...data, publicUrl: url, domains: data.domains.slice(0, 2) }));
  updatedConfig = tmp.file('config-updated.json', JSON.stringify({ ...data, publicUrl: url, domains: data.domains.slice(0, 3) }));
  expect((await run(['root', 'init', '--config', config, '--data', rootDir, '--passphrase-file', rootPass])).code).toBe(0);
  rootPem = join(rootDir, 'root.pem');
  const online = await run(['init', '--config', config, '--passphrase-file', onlinePass, '--sysadmins', '2', '--offline-root', rootPem, '--bundle-out', join(tmp.path, 'request-1.bundle')]);
  expect(online.code, online.stderr).toBe(0);
  [admin, admin2] = text(online).match(/^tca_[A-Za-z0-9_-]{43}$/gm)! as [string, string];
  const signed = await run(['root', 'sign', join(tmp.path, 'request-1.bundle'), '--data', rootDir, '--out', join(tmp.path, 'response-1.bundle'), '--yes', '--passphrase-file', rootPass]);
  expect(signed.code, signed.stderr).toBe(0);
  expect((await run(['root', 'import', join(tmp.path, 'response-1.bundle')])).code).toBe(0);
  server = await startServe({ env: db.env, port });
  officer = await newOfficer('city officer', ['xiangtan', 'yuhu']);
  const leaf = await issue('xiangtan', 'city.xiangtan.intranet', 'gw-city');
  expect(leaf.status, JSON.stringify(leaf.body)).toBe(201);
  xiangtanLeaf = leaf.body;
}, 240_000);

afterAll(async () => {
  await server?.stop();
  await db?.cleanup();
  tmp.cleanup();
});

/** A new officer for `domains`, under dual control (admin asks, admin2 approves); its token. */
const newOfficer = (name: string, domains: string[]) => newOfficerOf(url, { first: admin, second: admin2 }, name, domains);

const issue = (domain: string, dnsSuffix: string, name: string, token = officer) => issueDevice(url, tmp, token, { domain, dnsSuffix, name });

/** Asks as admin and approves as admin2; the approval's body. */
async function dualControlled(path: string, body: unknown): Promise<any> {
  const asked = await http(url, 'POST', path, { token: admin, body });
  expect(asked.status, JSON.stringify(asked.body)).toBe(202);
  const approved = await http(url, 'POST', `/api/v1/requests/${asked.body.request.id}/approve`, { token: admin2 });
  expect(approved.status, JSON.stringify(approved.body)).toBe(200);
  return approved.body;
}

describe('requests decided online, under dual control', { timeout: 180_000 }, () => {
  it('root request with nothing pending is refused (exit 5), writes no file and changes nothing', async () => {
    const before = await countsOnline();
    const out = join(tmp.path, 'nothing.bundle');
    const res = await run(['root', 'request', '--out', out, '--passphrase-file', onlinePass]);
    expect(res.code).toBe(5);
    expect(res.stderr).toContain('error: nothing is pending for the offline root: no domain CA revocation, rollover or new domain awaits it');
    expect(existsSync(out)).toBe(false);
    expect(await countsOnline()).toEqual(before);
  });

  it('one sysadmin alone cannot add a domain nor revoke a domain CA: the approval must be another\'s', async () => {
    const before = await countsOnline();
    for (const [path, body] of [['/api/v1/domains', domainOf('yuetang')], ['/api/v1/cas/xiangtan/revoke', { reason: 'keyCompromise' }]] as const) {
      const asked = await http(url, 'POST', path, { token: admin, body });
      expect(asked.status, JSON.stringify(asked.body)).toBe(202);
      const self = await http(url, 'POST', `/api/v1/requests/${asked.body.request.id}/approve`, { token: admin });
      expect([self.status, self.body.type]).toEqual([422, 'urn:tierca:problem:policy-self-approval']);
      // Withdrawn, so that the test after this one asks afresh.
      expect((await http(url, 'POST', `/api/v1/requests/${asked.body.request.id}/reject`, { token: admin2, body: {} })).status).toBe(200);
    }
    const after = await countsOnline();
    // Only the two requests and their audit records: no domain, CA, key or root request.
    expect({ ...after, requests: before.requests, audit_log: before.audit_log }).toEqual(before);
    expect(await rootRequests()).toEqual([]);
    // An officer may not ask at all; a domain that clashes is refused before any request opens.
    expect((await http(url, 'POST', '/api/v1/domains', { token: officer, body: domainOf('yuetang') })).status).toBe(403);
    const clash = await http(url, 'POST', '/api/v1/domains', { token: admin, body: { ...domainOf('yuetang'), ipRanges: ['10.21.5.0/24'] } });
    expect([clash.status, clash.body.type]).toEqual([400, 'urn:tierca:problem:bad-request']);
    expect(clash.body.detail).toContain('10.21.5.0/24 overlaps 10.21.0.0/16 of yuhu');
  });

  it('a domain added after the first ceremony: its CAs are made online and wait for the root; issuance under it answers 422', async () => {
    const add = await run(['ca', 'add-domain', '--config', updatedConfig, '--domain', 'yuetang', '--server', url], { TIERCA_TOKEN: admin });
    expect(add.code, add.stderr).toBe(0);
    const id = /request (\S+) to add domain yuetang .* is pending/.exec(text(add))![1]!;
    const approved = await http(url, 'POST', `/api/v1/requests/${id}/approve`, { token: admin2 });
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    expect(approved.body.result).toEqual({ domain: 'yuetang', cas: ['yuetang', 'yuetang-t1', 'yuetang-t2', 'yuetang-t3'], awaitingRoot: true });
    const domains = (await http(url, 'GET', '/api/v1/domains', { token: admin })).body as { slug: string }[];
    expect(domains.map((d) => d.slug)).toContain('yuetang');
    const yuetangOfficer = await newOfficer('yuetang officer', ['yuetang']);
    const before = await countsOnline();
    const early = await issue('yuetang', 'yuetang.xiangtan.intranet', 'early', yuetangOfficer);
    expect([early.status, early.body.type]).toEqual([422, 'urn:tierca:problem:ca-unavailable']);
    expect(early.body.detail).toContain('its domain CA yuetang awaits its certificate from the offline root');
    expect((await countsOnline()).certificates).toBe(before.certificates);
  });

  it('a domain CA revoked online: asked of the root, and nothing more is issued under it at once, with nothing written', async () => {
    const done = await dualControlled('/api/v1/cas/xiangtan/revoke', { reason: 'keyCompromise' });
    expect(done.result).toMatchObject({ caId: 'xiangtan', status: 'revocation-awaiting-root', reason: 'keyCompromise' });
    const before = await countsOnline();
    const refused = await issue('xiangtan', 'city.xiangtan.intranet', 'after-revoke');
    expect([refused.status, refused.body.type]).toEqual([422, 'urn:tierca:problem:ca-unavailable']);
    expect(refused.body.detail).toContain('the revocation of its CA xiangtan was decided and awaits the offline root');
    const after = await countsOnline();
    expect({ certificates: after.certificates, subjects: after.subjects }).toEqual({ certificates: before.certificates, subjects: before.subjects + 1 });
    // The revoked status reaches relying parties only with the root's CRL and OCSP answer: good until then.
    const caPem = tmp.file('xiangtan.pem', (await http(url, 'GET', '/ca/xiangtan.pem')).raw.toString('utf8'));
    const ocsp = await openssl(['ocsp', '-issuer', rootPem, '-cert', caPem, '-url', `${url}/ocsp`, '-CAfile', rootPem, '-no_nonce']);
    expect(ocsp.stdout).toMatch(/xiangtan\.pem: good/);
    // Asked twice: refused.
    const again = await http(url, 'POST', '/api/v1/cas/xiangtan/revoke', { token: admin, body: { reason: 'keyCompromise' } });
    expect([again.status, again.body.type]).toEqual([409, 'urn:tierca:problem:conflict']);
  });

  it('a domain CA rolled over online: the new key is made here, its generation awaits the root', async () => {
    const done = await dualControlled('/api/v1/cas/yuhu/rollover', {});
    expect(done.result).toMatchObject({ previous: 'yuhu', awaitingRoot: 'yuhu-g2' });
    expect(done.result.keyFingerprint).toMatch(/^[0-9a-f]{64}$/);
    // The old generation still issues meanwhile.
    expect((await issue('yuhu', 'yuhu.xiangtan.intranet', 'gw-yuhu-old')).status).toBe(201);
  });
});

describe('request bundle 2 across the air gap', { timeout: 180_000 }, () => {
  it('root request writes everything pending; root sign shows the new certificates and the revocation, and signs them', async () => {
    const reqFile = join(tmp.path, 'request-2.bundle');
    const made = await run(['root', 'request', '--out', reqFile, '--passphrase-file', onlinePass, '--json']);
    expect(made.code, made.stderr).toBe(0);
    expect(JSON.parse(text(made))).toMatchObject({ request: 2, certify: ['yuetang', 'yuhu-g2'], revoke: ['xiangtan'], digest: sha256(reqFile) });
    expect((await rootRequests()).every((r) => r.request_sequence === 2)).toBe(true);
    const again = await run(['root', 'request', '--out', join(tmp.path, 'request-3.bundle'), '--passphrase-file', onlinePass]);
    expect(again.code).toBe(5);
    // A copy lost on the way: the same bundle, byte for byte, with no passphrase; an unknown one is not found.
    const copy = await run(['root', 'request', '--again', '2', '--out', join(tmp.path, 'request-2-copy.bundle')]);
    expect(copy.code, copy.stderr).toBe(0);
    expect(readFileSync(join(tmp.path, 'request-2-copy.bundle')).equals(readFileSync(reqFile))).toBe(true);
    const unknown = await run(['root', 'request', '--again', '7', '--out', join(tmp.path, 'request-7.bundle')]);
    expect([unknown.code, unknown.stderr.trim()]).toEqual([3, 'error: no request bundle 7 was written here (the last is 2)']);

    const signed = await run(['root', 'sign', reqFile, '--data', rootDir, '--out', join(tmp.path, 'response-2.bundle'), '--yes', '--passphrase-file', rootPass]);
    expect(signed.code, signed.stderr).toBe(0);
    expect(signed.stderr).toMatch(/domain CA yuetang\n\s+subject:\s+C=CN, ST=湖南省, L=岳塘区, O=湘潭市电子政务内网, CN=岳塘区域CA/);
    expect(signed.stderr).toMatch(/domain CA yuhu-g2\n\s+subject:\s+C=CN, ST=湖南省, L=雨湖区, O=湘潭市电子政务内网, CN=雨湖区域CA/);
    expect(signed.stderr).toMatch(/revoke domain CA xiangtan\n\s+serial:\s+[0-9a-f]+\n\s+reason:\s+keyCompromise/);
    expect(text(signed)).toMatch(/wrote response bundle 2 .*yuetang \(serial [0-9a-f]+\), yuhu-g2 \(serial [0-9a-f]+\); revoked xiangtan/);
  });

  it('refused imports — tampered, foreign, then replayed — are audited (denied, code, SHA-256) and change nothing else', async () => {
    const good = JSON.parse(readFileSync(join(tmp.path, 'response-2.bundle'), 'utf8'));
    const tampered = tmp.file('response-2-tampered.bundle', JSON.stringify({ ...good, payload: { ...good.payload, revocations: [] } }, null, 2));
    const otherRoot = join(tmp.path, 'other-root');
    expect((await run(['root', 'init', '--config', updatedConfig, '--data', otherRoot, '--passphrase-file', rootPass])).code).toBe(0);
    const foreign = join(tmp.path, 'foreign.bundle');
    expect((await run(['root', 'crl', '--data', otherRoot, '--out', foreign, '--passphrase-file', rootPass])).code).toBe(0);
    for (const [file, code, exit] of [[tampered, 'bundle-invalid', 2], [foreign, 'bundle-foreign', 5], [join(tmp.path, 'response-1.bundle'), 'bundle-replayed', 5]] as const) {
      const before = await countsOnline();
      const res = await run(['root', 'import', file]);
      expect([code, res.code]).toEqual([code, exit]);
      expect(res.stderr).toContain('nothing was changed');
      expect(await countsOnline()).toEqual({ ...before, audit_log: before.audit_log! + 1 });
      const last = await lastAudit();
      expect(last).toMatchObject({ action: 'offline-root.import', outcome: 'denied', detail: { code, digest: sha256(file) } });
    }
  });

  it('root import installs the new domain\'s CAs, the new generation and the revocation', async () => {
    const imported = await run(['root', 'import', join(tmp.path, 'response-2.bundle')]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(text(imported)).toMatch(/certified:\s+yuetang, yuhu-g2/);
    expect(text(imported)).toMatch(/activated:\s+yuetang-t1, yuetang-t2, yuetang-t3/);
    expect(text(imported)).toMatch(/revoked:\s+xiangtan/);
    // Answered now: a copy would only be refused by the root as a replay.
    const copy = await run(['root', 'request', '--again', '2', '--out', join(tmp.path, 'request-2-late.bundle')]);
    expect([copy.code, copy.stderr.trim()]).toEqual([5, 'error: request bundle 2 was answered already by response 2: the root would refuse it as a replay']);
    await eventually(async () => {
      const cas = (await http(url, 'GET', '/ca')).body as { id: string }[];
      if (!cas.some((c) => c.id === 'yuetang-t2') || !cas.some((c) => c.id === 'yuhu-g2')) throw new Error('the service has not learnt the new CAs');
    }, 30_000, 250);
  });
});

describe('after the import', { timeout: 180_000 }, () => {
  it('the new domain issues; openssl verifies against the root alone with the tier policy, Python checks each signature', async () => {
    const yuetangOfficer = await newOfficer('yuetang officer 2', ['yuetang']);
    const res = await issue('yuetang', 'yuetang.xiangtan.intranet', 'gw-yuetang', yuetangOfficer);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.chain).toHaveLength(3);
    await verifiedByRootAlone('gw-yuetang', res.body);
  });

  it('the running service, started before the domain existed, takes IP SANs inside the new domain\'s ranges and refuses others', async () => {
    const yuetangOfficer = await newOfficer('yuetang officer 3', ['yuetang']);
    const subject = (ip: string, name: string) => http(url, 'POST', '/api/v1/subjects', {
      token: yuetangOfficer, body: { kind: 'device', domain: 'yuetang', organ: 'government', tier: 't2', name, dns: [`${name}.yuetang.xiangtan.intranet`], ips: [ip] },
    });
    const before = await countsOnline();
    const outside = await subject('10.21.0.7', 'gw-outside');
    expect(outside.status, JSON.stringify(outside.body)).toBe(422);
    expect(outside.body.detail).toContain('10.21.0.7');
    // The refusal is audited (a failed write); nothing else is written.
    expect(await countsOnline()).toEqual({ ...before, audit_log: before.audit_log! + 1 });
    const inside = await subject('10.22.0.7', 'gw-inside');
    expect(inside.status, JSON.stringify(inside.body)).toBe(201);
    const { csrPem } = await opensslCsr(tmp, 'gw-inside', 'P-256');
    const res = await http(url, 'POST', '/api/v1/certificates', { token: yuetangOfficer, body: { subjectId: inside.body.id, csr: csrPem } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const leaf = tmp.file('gw-inside.pem', res.body.pem);
    expect((await openssl(['x509', '-in', leaf, '-noout', '-ext', 'subjectAltName'])).stdout).toContain('IP Address:10.22.0.7');
    await verifiedByRootAlone('gw-inside', res.body);
  });

  it('the revoked domain CA and a certificate under it answer revoked (openssl ocsp, verified; the root CRL); issuance under it refused, nothing written', async () => {
    const caPem = join(tmp.path, 'xiangtan.pem');
    await eventually(async () => {
      const ocsp = await openssl(['ocsp', '-issuer', rootPem, '-cert', caPem, '-url', `${url}/ocsp`, '-CAfile', rootPem, '-no_nonce']);
      if (!/xiangtan\.pem: revoked/.test(ocsp.stdout)) throw new Error(ocsp.stdout + ocsp.stderr);
      expect(ocsp.stdout + ocsp.stderr).toContain('Response verify OK');
      expect(ocsp.stdout).toContain('Reason: keyCompromise');
    }, 15_000, 250);
    const serial = (await openssl(['x509', '-in', caPem, '-noout', '-serial'])).stdout.trim().split('=')[1]!.toLowerCase().replace(/^0+/, '');
    const crlFile = join(tmp.path, 'root.crl');
    writeFileSync(crlFile, (await http(url, 'GET', '/crl/root.crl')).raw);
    const crl = await openssl(['crl', '-inform', 'DER', '-in', crlFile, '-CAfile', rootPem, '-noout', '-text']);
    expect(crl.stderr + crl.stdout).toContain('verify OK');
    expect(crl.stdout.toLowerCase()).toMatch(new RegExp(`serial number: 0*${serial}\n`));
    const [py] = await pythonCheck([{ kind: 'crl', path: crlFile, issuer: rootPem }]);
    expect(py).toMatchObject({ signatureValid: true, entries: [expect.objectContaining({ serial, reason: 'key_compromise' })] });

    const leaf = tmp.file('gw-city.pem', xiangtanLeaf.pem);
    const issuer = tmp.file('gw-city-issuer.pem', xiangtanLeaf.chain[0]!);
    await eventually(async () => {
      const ocsp = await openssl(['ocsp', '-issuer', issuer, '-cert', leaf, '-url', `${url}/ocsp`, '-CAfile', rootPem, '-verify_other', tmp.file('gw-city-chain.pem', xiangtanLeaf.chain.slice(0, -1).join('')), '-no_nonce']);
      if (!/gw-city\.pem: revoked/.test(ocsp.stdout)) throw new Error(ocsp.stdout + ocsp.stderr);
      expect(ocsp.stdout + ocsp.stderr).toContain('Response verify OK');
    }, 15_000, 250);
    const before = await countsOnline();
    const refused = await issue('xiangtan', 'city.xiangtan.intranet', 'after-import');
    expect([refused.status, refused.body.type]).toEqual([422, 'urn:tierca:problem:ca-unavailable']);
    expect(refused.body.detail).toContain('xiangtan is revoked');
    expect((await countsOnline()).certificates).toBe(before.certificates);
  });

  it('the domain CA\'s new generation is current: a tier CA rolled over under it issues, and the chain verifies against the root alone', async () => {
    const rolled = await dualControlled('/api/v1/cas/yuhu-t2/rollover', {});
    expect(rolled.result).toMatchObject({ previous: 'yuhu-t2', current: 'yuhu-t2-g2' });
    const res = await issue('yuhu', 'yuhu.xiangtan.intranet', 'gw-yuhu-new');
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const yuhuG2 = (await http(url, 'GET', '/ca/yuhu-g2.pem')).raw.toString('utf8');
    expect(res.body.chain[1].replace(/\s+/g, '')).toBe(yuhuG2.replace(/\s+/g, ''));
    await verifiedByRootAlone('gw-yuhu-new', res.body);
  });
});

/** openssl verify (tier policy, explicit) against the root alone; Python's cryptography checks each link. */
async function verifiedByRootAlone(name: string, issued: { pem: string; chain: string[] }): Promise<void> {
  const leaf = tmp.file(`${name}.pem`, issued.pem);
  const untrusted = tmp.file(`${name}-chain.pem`, issued.chain.slice(0, -1).join(''));
  const ok = await openssl(['verify', '-CAfile', rootPem, '-untrusted', untrusted, '-policy', T2, '-explicit_policy', '-purpose', 'any', leaf]);
  expect(ok.stdout.trim(), ok.stderr).toMatch(/: OK$/);
  const wrongTier = await openssl(['verify', '-CAfile', rootPem, '-untrusted', untrusted, '-policy', EXAMPLE_TIER_OIDS.t3!, '-explicit_policy', '-purpose', 'any', leaf]);
  expect(wrongTier.code).not.toBe(0);
  const files = [leaf, ...issued.chain.map((pem, i) => tmp.file(`${name}-${i}.pem`, pem))];
  const checks = await pythonCheck(files.slice(0, -1).map((path, i) => ({ kind: 'cert' as const, path, issuer: files[i + 1]! })));
  expect(checks.map((c) => c.signatureValid)).toEqual([true, true, true]);
  expect(readFileSync(files.at(-1)!, 'utf8').replace(/\s+/g, '')).toBe(readFileSync(rootPem, 'utf8').replace(/\s+/g, ''));
}

function domainOf(slug: string) {
  const d = exampleConfigData().domains.find((x: { slug: string }) => x.slug === slug)!;
  return { slug: d.slug, name: d.name, dnsSuffix: d.dnsSuffix, emailSuffix: d.emailSuffix, ipRanges: d.ipRanges ?? [] };
}

async function rootRequests(): Promise<{ id: string; request_sequence: number | null }[]> {
  const store = await db.openStore();
  try {
    return (await knexOf(store)('offline_root_requests').select('id', 'request_sequence')).map((r: any) => ({ id: r.id, request_sequence: r.request_sequence === null ? null : Number(r.request_sequence) }));
  } finally {
    await store.close();
  }
}

async function lastAudit() {
  const store = await db.openStore();
  try {
    return (await store.audit.list({})).at(-1)!;
  } finally {
    await store.close();
  }
}

function countsOnline(): Promise<Record<string, number>> {
  return countsOfflineRootTest(db, { withoutCrls: true });
}
