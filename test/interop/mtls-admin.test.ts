// Mutual TLS on the admin API: tierca serves HTTPS with a certificate it issued, and a principal logs
// in with a client certificate tierca issued it — through Node's own tls (https), with the chain
// checked by openssl too. A certificate on hold or revoked, a disabled principal, a tierca
// certificate that is not a principal's and one from elsewhere are all refused, and each refusal
// is audited with its reason. Bearer tokens keep working over HTTPS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import pino from 'pino';
import { startTestTierca, call, freePort, TEST_PASSPHRASE, type TestTierca, addApprovingPrincipal } from '../helpers/tierca.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { opensslCsr } from '../helpers/pki-fixtures.ts';
import { startService, type RunningService } from '../../server/bootstrap.ts';

let t: TestTierca;
let https: RunningService;
const tmp = new TempDir();
let rootPem: string;
const SERVER_NAME = 'admin-api.yuetang.xiangtan.intranet';

interface ClientCredentials {
  key: Buffer;
  cert: string;
}

/** One HTTPS exchange on a fresh connection (a client certificate belongs to a connection). */
function get(path: string, opts: { client?: ClientCredentials; token?: string; method?: string; body?: unknown } = {}): Promise<{ status: number; body: any; authorized: boolean }> {
  const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  return new Promise((resolve, reject) => {
    const req = httpsRequest({
      host: '127.0.0.1', port: https.port, path, method: opts.method ?? 'GET', servername: SERVER_NAME, ca: rootPem, agent: false,
      ...(opts.client ? { key: opts.client.key, cert: opts.client.cert } : {}),
      headers: {
        ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
      },
    }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined, authorized: (res.socket as any)?.authorized ?? false }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** A key (made by openssl, never sent) and a CSR, and the certificate tierca issues principal `id` from it. */
async function principalCertificate(id: string, name: string): Promise<ClientCredentials & { serial: string; issuerId: string; pemPath: string; chainPath: string }> {
  const { keyPath, csrPem } = await opensslCsr(tmp, name, 'P-256');
  const res = await call(t, 'admin', 'POST', `/api/v1/principals/${id}/certificate`, { csr: csrPem });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  const intermediates = res.body.chain.slice(0, -1).join('');
  return {
    key: readFileSync(keyPath),
    cert: res.body.pem + intermediates,
    serial: res.body.certificate.serial,
    issuerId: res.body.certificate.issuerId,
    pemPath: tmp.file(`${name}.pem`, res.body.pem),
    chainPath: tmp.file(`${name}-chain.pem`, intermediates),
  };
}

async function lastLogin() {
  return (await t.store.audit.list({ action: 'auth.login' })).at(-1)!;
}

beforeAll(async () => {
  t = await startTestTierca();
  rootPem = (await call(t, null, 'GET', '/ca/root.pem')).raw.toString();
  // The HTTPS listener's own certificate: a tierca device certificate.
  const subject = await call(t, 'officer', 'POST', '/api/v1/subjects', { kind: 'device', domain: 'yuetang', organ: 'government', tier: 't1', name: 'admin-api', dns: [SERVER_NAME] });
  const { keyPath, csrPem } = await opensslCsr(tmp, 'server', 'P-256');
  const issued = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: subject.body.id, csr: csrPem });
  expect(issued.status).toBe(201);
  https = await startService({
    dataDir: t.dataDir, databaseUrl: t.db.databaseUrl, searchPath: t.db.searchPath, sqliteFile: t.db.sqliteFile,
    passphrase: TEST_PASSPHRASE, port: await freePort(), log: pino({ level: 'silent' }),
    tls: { key: readFileSync(keyPath), cert: issued.body.pem + issued.body.chain.slice(0, -1).join(''), ca: rootPem },
  });
  expect(https.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
});
afterAll(async () => {
  await https?.close();
  await t?.close();
  tmp.cleanup();
});

describe('mutual TLS login to the admin API', () => {
  it('logs a principal in with the client certificate tierca issued it, acting with its role and no more', async () => {
    const made = await call(t, 'admin', 'POST', '/api/v1/principals', { name: '审计员 mTLS', role: 'auditor' });
    const client = await principalCertificate(made.body.id, 'auditor-client');
    const checked = await openssl(['verify', '-CAfile', tmp.file('root.pem', rootPem), '-untrusted', client.chainPath, '-purpose', 'sslclient', client.pemPath]);
    expect(checked.stdout.trim(), checked.stderr).toBe(`${client.pemPath}: OK`);
    const text = (await openssl(['x509', '-in', client.pemPath, '-noout', '-subject', '-ext', 'extendedKeyUsage', '-nameopt', 'utf8,sep_comma_plus_space'])).stdout;
    expect(text).toContain(`OU=tierca principal, CN=${made.body.id} (principal)`);
    expect(text).toContain('TLS Web Client Authentication');

    const me = await get('/api/v1/whoami', { client });
    expect(me).toMatchObject({ status: 200, body: { id: made.body.id, role: 'auditor', name: '审计员 mTLS' } });
    expect((await get('/api/v1/audit?limit=1', { client })).status).toBe(200);
    const denied = await get('/api/v1/principals', { client, method: 'POST', body: { name: 'x', role: 'auditor' } });
    expect([denied.status, denied.body.detail]).toEqual([403, 'role auditor lacks permission principal:manage']);
    const record = (await t.store.audit.list({ action: 'principal.add' })).at(-1)!;
    expect(record).toMatchObject({ principalId: made.body.id, role: 'auditor', outcome: 'denied' });
  });

  it('refuses the certificate while it is on hold and once it is revoked', async () => {
    const made = await addApprovingPrincipal(t, { name: 'mTLS officer', role: 'officer', domains: ['yuhu'] });
    const client = await principalCertificate(made.body.id, 'officer-client');
    expect((await get('/api/v1/whoami', { client })).status).toBe(200);

    const hold = await call(t, 'officer', 'POST', `/api/v1/certificates/${client.serial}/hold`, { issuer: client.issuerId });
    expect(hold.status).toBe(200);
    const held = await get('/api/v1/whoami', { client });
    expect([held.status, held.body.type]).toEqual([401, 'urn:tierca:problem:unauthenticated']);
    expect(await lastLogin()).toMatchObject({ principalId: made.body.id, outcome: 'denied', detail: { reason: 'certificate-revoked' } });
    expect((await call(t, 'officer', 'POST', `/api/v1/certificates/${client.serial}/release`, { issuer: client.issuerId })).status).toBe(200);
    expect((await get('/api/v1/whoami', { client })).status).toBe(200);

    const revoked = await call(t, 'officer', 'POST', `/api/v1/certificates/${client.serial}/revoke`, { issuer: client.issuerId, reason: 'keyCompromise' });
    expect(revoked.status).toBe(200);
    const refused = await get('/api/v1/whoami', { client });
    expect(refused.status).toBe(401);
    expect(await lastLogin()).toMatchObject({ principalId: made.body.id, source: expect.stringMatching(/127\.0\.0\.1$/), target: 'GET /api/v1/whoami', detail: { reason: 'certificate-revoked' } });
  });

  it('refuses a disabled principal\'s certificate', async () => {
    const made = await addApprovingPrincipal(t, { name: 'leaving sysadmin', role: 'sysadmin' });
    const client = await principalCertificate(made.body.id, 'leaver-client');
    expect((await get('/api/v1/whoami', { client })).body.role).toBe('sysadmin');
    expect((await call(t, 'admin', 'POST', `/api/v1/principals/${made.body.id}/disable`)).status).toBe(200);
    expect((await get('/api/v1/whoami', { client })).status).toBe(401);
    expect(await lastLogin()).toMatchObject({ principalId: made.body.id, detail: { reason: 'principal-disabled' } });
    const again = await call(t, 'admin', 'POST', `/api/v1/principals/${made.body.id}/certificate`, { csr: (await opensslCsr(tmp, 'again', 'P-256')).csrPem });
    expect([again.status, again.body.detail]).toEqual([409, `principal ${made.body.id} is disabled`]);
  });

  it('refuses a tierca certificate that is not a principal\'s, and a client certificate from elsewhere', async () => {
    const subject = await call(t, 'officer', 'POST', '/api/v1/subjects', { kind: 'user', domain: 'yuhu', organ: 'court', tier: 't1', name: 'not a principal', emails: ['np@yuhu.xiangtan.intranet'] });
    const { keyPath, csrPem } = await opensslCsr(tmp, 'user', 'P-256');
    const user = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: subject.body.id, csr: csrPem });
    const userClient = { key: readFileSync(keyPath), cert: user.body.pem + user.body.chain.slice(0, -1).join('') };
    expect((await get('/api/v1/whoami', { client: userClient })).status).toBe(401);
    expect(await lastLogin()).toMatchObject({ principalId: null, detail: { reason: 'certificate-unknown' } });

    const selfKey = tmp.file('self.key');
    const selfCert = tmp.file('self.pem');
    const made = await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', selfKey, '-out', selfCert, '-days', '1', '-subj', '/CN=intruder']);
    expect(made.code, made.stderr).toBe(0);
    const stranger = await get('/api/v1/whoami', { client: { key: readFileSync(selfKey), cert: readFileSync(selfCert, 'utf8') } });
    expect(stranger.status).toBe(401);
    expect(await lastLogin()).toMatchObject({ detail: { reason: 'certificate-unverified' } });
  });

  it('still takes bearer tokens over HTTPS, and refuses a request with neither', async () => {
    expect((await get('/api/v1/whoami', { token: t.tokens.admin })).body.role).toBe('sysadmin');
    const none = await get('/api/v1/whoami');
    expect([none.status, none.body.detail]).toEqual([401, 'a bearer token is required']);
  });
});
