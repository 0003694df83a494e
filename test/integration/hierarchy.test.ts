// The demo-shaped hierarchy served by a real tierca: GET /ca, CA certificates, openssl verify with
// tier policies, sealed keys, and clear refusals that change nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate } from '@peculiar/x509';
import { startTestTierca, call, TEST_PASSPHRASE, type TestTierca } from '../helpers/tierca.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { snapshotCounts } from '../helpers/database.ts';
import { EXAMPLE_TIER_OIDS } from '../helpers/config.ts';
import { startService } from '../../server/bootstrap.ts';
import pino from 'pino';

const escapeUtf8 = (s: string) => [...Buffer.from(s)].map((b) => `\\${b.toString(16).toUpperCase()}`).join('');
const DOMAINS = ['xiangtan', 'yuhu', 'yuetang', 'xiangtan-county', 'xiangxiang', 'shaoshan'];
const TIERS = ['t1', 't2', 't3'];

let t: TestTierca;
const tmp = new TempDir();

beforeAll(async () => {
  t = await startTestTierca();
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

describe('GET /ca', () => {
  it('lists the root, six domain CAs and eighteen tier CAs with their fields', async () => {
    const res = await call(t, null, 'GET', '/ca');
    expect(res.status).toBe(200);
    const cas = res.body as any[];
    expect(cas).toHaveLength(1 + 6 + 18);
    const root = cas.find((c) => c.id === 'root');
    expect(root).toMatchObject({ layer: 'root', parent: null, status: 'active', domain: null, tier: null, keyAlgorithm: 'P-384' });
    // Lifetimes are calendar years: the root ends 20 years on, to the second.
    expect(root.notAfter).toBe(`${Number(root.notBefore.slice(0, 4)) + 20}${root.notBefore.slice(4)}`);
    const yuhu = cas.find((c) => c.id === 'yuhu');
    expect(yuhu.notAfter).toBe(`${Number(yuhu.notBefore.slice(0, 4)) + 10}${yuhu.notBefore.slice(4)}`);
    for (const d of DOMAINS) {
      expect(cas.find((c) => c.id === d)).toMatchObject({ layer: 'domain', parent: 'root', domain: d, tier: null });
      for (const tier of TIERS) {
        const ca = cas.find((c) => c.id === `${d}-${tier}`);
        expect(ca).toMatchObject({ layer: 'tier', parent: d, domain: d, tier, status: 'active' });
        expect(ca.urls).toEqual({
          certificate: `${t.url}/ca/${d}-${tier}.crt`,
          pem: `${t.url}/ca/${d}-${tier}.pem`,
          crl: `${t.url}/crl/${d}-${tier}.crl`,
          deltaCrl: `${t.url}/crl/${d}-${tier}-delta.crl`,
          ocsp: `${t.url}/ocsp`,
        });
        // Validity nests: a child never outlives its parent.
        expect(Date.parse(ca.notAfter)).toBeLessThanOrEqual(Date.parse(cas.find((c) => c.id === d).notAfter));
      }
    }
  });

  it('serves each CA certificate as DER and PEM, the same certificate', async () => {
    const der = await call(t, null, 'GET', '/ca/yuhu-t2.crt');
    expect(der.status).toBe(200);
    expect(der.headers.get('content-type')).toBe('application/pkix-cert');
    const pem = await call(t, null, 'GET', '/ca/yuhu-t2.pem');
    expect(pem.raw.toString()).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
    const a = new X509Certificate(new Uint8Array(der.raw));
    const b = new X509Certificate(pem.raw.toString());
    expect(a.equal(b)).toBe(true);
    expect(a.subject).toContain('CN=雨湖区 t2 签发CA');
  });

  it('answers 404 problem+json for an unknown CA', async () => {
    const res = await call(t, null, 'GET', '/ca/nowhere.crt');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body.type).toBe('urn:tierca:problem:not-found');
  });
});

describe('openssl verify on the whole hierarchy', () => {
  it('verifies every tier CA against root + its domain CA, passing only for its own tier policy', async () => {
    const rootPem = tmp.file('root.pem', (await call(t, null, 'GET', '/ca/root.pem')).raw);
    const checks: Promise<void>[] = [];
    for (const d of DOMAINS) {
      const domainPem = tmp.file(`${d}.pem`, (await call(t, null, 'GET', `/ca/${d}.pem`)).raw);
      for (const tier of TIERS) {
        const tierPem = tmp.file(`${d}-${tier}.pem`, (await call(t, null, 'GET', `/ca/${d}-${tier}.pem`)).raw);
        const other = TIERS[(TIERS.indexOf(tier) + 1) % 3];
        checks.push((async () => {
          const ok = await openssl(['verify', '-CAfile', rootPem, '-untrusted', domainPem, '-policy', EXAMPLE_TIER_OIDS[tier], '-explicit_policy', tierPem]);
          expect(ok.stdout.trim(), `${d}-${tier} ${ok.stderr}`).toBe(`${tierPem}: OK`);
          const bad = await openssl(['verify', '-CAfile', rootPem, '-untrusted', domainPem, '-policy', EXAMPLE_TIER_OIDS[other], '-explicit_policy', tierPem]);
          expect(bad.code).not.toBe(0);
          expect(bad.stderr + bad.stdout).toMatch(/no explicit policy/);
        })());
      }
    }
    await Promise.all(checks);
  });

  it('shows the name constraints, path lengths and policies openssl sees', async () => {
    const domainPem = tmp.file('yuhu-text.pem', (await call(t, null, 'GET', '/ca/yuhu.pem')).raw);
    const text = (await openssl(['x509', '-in', domainPem, '-noout', '-text', '-nameopt', 'utf8'])).stdout;
    expect(text).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:1/);
    expect(text).toMatch(/X509v3 Name Constraints: critical/);
    expect(text).toContain('DNS:yuhu.xiangtan.intranet');
    // openssl escapes UTF-8 inside DirName: L = 雨湖区 as \\E9\\9B\\A8…
    expect(text).toContain(`DirName:C = CN, ST = ${escapeUtf8('湖南省')}, L = ${escapeUtf8('雨湖区')}`);
    const tierPem = tmp.file('yuhu-t3-text.pem', (await call(t, null, 'GET', '/ca/yuhu-t3.pem')).raw);
    const tierText = (await openssl(['x509', '-in', tierPem, '-noout', '-text'])).stdout;
    expect(tierText).toMatch(/CA:TRUE, pathlen:0/);
    expect(tierText).toContain(`Policy: ${EXAMPLE_TIER_OIDS.t3}`);
    expect(tierText).not.toContain(EXAMPLE_TIER_OIDS.t1);
  });
});

describe('key custody', () => {
  it('stores CA keys sealed: no PKCS#8 structure or PEM in the keys table', async () => {
    const keys = await t.store.keys.list();
    expect(keys.length).toBeGreaterThanOrEqual(25);
    for (const key of keys) {
      expect(key.custody).toBe('software');
      const sealed = key.sealed!;
      expect(sealed.includes(Buffer.from('PRIVATE KEY'))).toBe(false);
      // A PKCS#8 PrivateKeyInfo starts SEQUENCE { INTEGER 0, AlgorithmIdentifier … }: 02 01 00 30.
      expect(sealed.includes(Buffer.from([0x02, 0x01, 0x00, 0x30]))).toBe(false);
    }
  });

  it('refuses a wrong passphrase clearly and changes nothing', async () => {
    const before = await snapshotCounts(t.store);
    await expect(startService({
      dataDir: t.dataDir, databaseUrl: t.db.databaseUrl, searchPath: t.db.searchPath, sqliteFile: t.db.sqliteFile,
      passphrase: `${TEST_PASSPHRASE}-wrong`, port: 0, log: pino({ level: 'silent' }),
    })).rejects.toMatchObject({ code: 'wrong-passphrase', message: 'the keystore passphrase is wrong' });
    expect(await snapshotCounts(t.store)).toEqual(before);
  });
});

describe('admin API authentication', () => {
  it('refuses a missing or wrong token with 401 and writes nothing but the failed login to the audit log', async () => {
    const before = await snapshotCounts(t.store);
    const none = await call(t, null, 'GET', '/api/v1/cas');
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ type: 'urn:tierca:problem:unauthenticated', status: 401, detail: 'a bearer token is required' });
    const wrong = await call(t, null, 'POST', '/api/v1/subjects', { kind: 'device' }, { authorization: 'Bearer tca_wrongwrongwrongwrongwrong' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.detail).toBe('the token is not valid');
    const after = await snapshotCounts(t.store);
    // A presented credential that fails is a login attempt: audited (issue 6); no credential at all is not.
    expect({ ...after, audit_log: 0 }).toEqual({ ...before, audit_log: 0 });
    expect(after.audit_log).toBe(before.audit_log + 1);
  });

  it('lists CAs for a sysadmin and shows one with its PEM and children', async () => {
    const list = await call(t, 'admin', 'GET', '/api/v1/cas');
    expect(list.status).toBe(200);
    expect(list.body).toHaveLength(25);
    const show = await call(t, 'admin', 'GET', '/api/v1/cas/yuhu');
    expect(show.status).toBe(200);
    expect(show.body.children.sort()).toEqual(['yuhu-t1', 'yuhu-t2', 'yuhu-t3']);
    expect(show.body.subject).toContain('L=雨湖区');
    expect(show.body.pem).toMatch(/BEGIN CERTIFICATE/);
    const missing = await call(t, 'admin', 'GET', '/api/v1/cas/atlantis');
    expect(missing.status).toBe(404);
  });
});
