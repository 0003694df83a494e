// certbot (Debian's) against the ACME server over HTTPS, as a server admin would run it: register
// with external account binding, http-01 in standalone mode, renew, revoke with a reason, and dns-01
// through the rfc2136 plugin against a real BIND 9 with a wildcard inside the domain. What certbot
// gets is checked by the openssl CLI (verify under the tier policy, OCSP status) and by Python's
// `cryptography`.
import { request } from 'node:https';
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTierca, freePort, type TestTierca } from '../helpers/tierca.ts';
import { exampleConfigData, EXAMPLE_TIER_OIDS } from '../helpers/config.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { startBind9, type Bind9 } from '../helpers/bind9.ts';
import { pythonCheck } from '../helpers/relying-party.ts';
import { countRows } from '../helpers/database.ts';
import { tlsTestCredentials } from '../helpers/tls-test-ca.ts';

const ZONE = 'yuhu.xiangtan.intranet';
const WEB = `web.${ZONE}`;
const tmp = new TempDir();
let t: TestTierca;
let dns: Bind9;
let http01Port: number;
let tlsCa: string;

beforeAll(async () => {
  dns = await startBind9(ZONE, { web: '127.0.0.1', www: '127.0.0.1' });
  http01Port = await freePort();
  const tls = await tlsTestCredentials(tmp);
  tlsCa = tls.caFile;
  t = await startTestTierca({
    tls: { cert: tls.cert, key: tls.key },
    configData: { ...exampleConfigData(), acme: { resolvers: [dns.server], http01Port, validationRanges: ['127.0.0.1/32'] } },
  });
}, 90_000);

afterAll(async () => {
  await t?.close();
  await dns?.stop();
  tmp.cleanup();
});

/** An API call over the HTTPS listener as the officer, trusting the throwaway TLS CA. */
function officer(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(`${t.url}${path}`, {
      method, ca: readFileSync(tlsCa),
      headers: { authorization: `Bearer ${t.tokens.officer}`, ...(payload ? { 'content-type': 'application/json' } : {}) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, body: text && (res.headers['content-type'] ?? '').includes('json') ? JSON.parse(text) : text });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

interface CertbotRun { code: number; stdout: string; stderr: string }

/** certbot with its folders under the test's temporary folder, never the machine's /etc/letsencrypt. */
function certbot(args: string[]): Promise<CertbotRun> {
  const base = ['--config-dir', tmp.file('le/config'), '--work-dir', tmp.file('le/work'), '--logs-dir', tmp.file('le/logs'), '--non-interactive'];
  return new Promise((resolve) => {
    execFile('certbot', [...args, ...base], { env: { ...process.env, REQUESTS_CA_BUNDLE: tlsCa }, timeout: 120_000, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const directory = () => `${t.url}/acme/t2/directory`;
const live = (name: string, file: string) => tmp.file(`le/config/live/${name}/${file}`);

async function verifyUnderTier(name: string): Promise<void> {
  writeFileSync(tmp.file('root.pem'), Buffer.from(await (await fetch(`${t.service.httpUrl}/ca/root.pem`)).arrayBuffer()));
  const res = await openssl(['verify', '-CAfile', tmp.file('root.pem'), '-untrusted', live(name, 'chain.pem'),
    '-policy', EXAMPLE_TIER_OIDS.t2, '-explicit_policy', '-purpose', 'sslserver', live(name, 'cert.pem')]);
  expect(res.code, res.stderr).toBe(0);
  expect(res.stdout).toContain(': OK');
}

/** `openssl ocsp` at the URL the certificate names, over the plain-HTTP public listener. */
async function ocspStatus(name: string): Promise<string> {
  const uri = await openssl(['x509', '-noout', '-ocsp_uri', '-in', live(name, 'cert.pem')]);
  expect(uri.stdout.trim()).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/ocsp$/);
  const res = await openssl(['ocsp', '-issuer', live(name, 'chain.pem'), '-cert', live(name, 'cert.pem'), '-url', uri.stdout.trim(),
    '-CAfile', tmp.file('root.pem'), '-verify_other', live(name, 'chain.pem')]);
  expect(res.code, res.stderr).toBe(0);
  expect(res.stderr).toContain('Response verify OK');
  return res.stdout;
}

describe('certbot against the ACME server', () => {
  it('registers with external account binding; an account without it is refused', async () => {
    const refused = await certbot(['register', '--server', directory(), '--agree-tos', '-m', 'ops@yuhu.xiangtan.intranet']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/externalAccountRequired|external account/i);
    const key = await officer('POST', '/api/v1/acme/account-keys', { domain: 'yuhu', organ: 'government', tier: 't2' });
    expect(key.status, JSON.stringify(key.body)).toBe(201);
    expect(key.body.directory).toBe(directory());
    const res = await certbot(['register', '--server', directory(), '--agree-tos', '-m', 'ops@yuhu.xiangtan.intranet',
      '--eab-kid', key.body.keyId, '--eab-hmac-key', key.body.hmacKey]);
    expect(res.code, res.stderr).toBe(0);
    const accounts = await officer('GET', '/api/v1/acme/accounts?domain=yuhu');
    expect(accounts.status).toBe(200);
    expect(accounts.body).toHaveLength(1);
    expect(accounts.body[0]).toMatchObject({ domain: 'yuhu', organ: 'government', tier: 't2', status: 'valid' });
  });

  it('issues over http-01 in standalone mode: the chain verifies under the tier policy, OCSP says good, Python reads it', async () => {
    const res = await certbot(['certonly', '--server', directory(), '--standalone', '--http-01-port', String(http01Port), '--http-01-address', '127.0.0.1',
      '-d', WEB, '--cert-name', 'web', '--key-type', 'ecdsa']);
    expect(res.code, res.stderr).toBe(0);
    await verifyUnderTier('web');
    expect(await ocspStatus('web')).toMatch(/cert\.pem: good/);
    const text = await openssl(['x509', '-noout', '-ext', 'subjectAltName', '-in', live('web', 'cert.pem')]);
    expect(text.stdout).toContain(`DNS:${WEB}`);
    const chain = readFileSync(live('web', 'chain.pem'), 'utf8').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n/g)!;
    writeFileSync(tmp.file('issuer.pem'), chain[0]);
    const [py] = await pythonCheck([{ kind: 'cert', path: live('web', 'cert.pem'), issuer: tmp.file('issuer.pem') }]);
    expect(py.signatureValid).toBe(true);
    expect(py.policies).toContain(EXAMPLE_TIER_OIDS.t2);
    expect(py.eku).toContain('1.3.6.1.5.5.7.3.1');
  });

  it('renews with `certbot renew`: a new certificate, the old one still good until revoked', async () => {
    const before = readFileSync(live('web', 'cert.pem'), 'utf8');
    const res = await certbot(['renew', '--cert-name', 'web', '--force-renewal', '--no-random-sleep-on-renew']);
    expect(res.code, res.stderr).toBe(0);
    const after = readFileSync(live('web', 'cert.pem'), 'utf8');
    expect(after).not.toBe(before);
    expect(readdirSync(tmp.file('le/config/archive/web')).filter((f) => f.startsWith('cert'))).toHaveLength(2);
    await verifyUnderTier('web');
    expect(await ocspStatus('web')).toMatch(/cert\.pem: good/);
  });

  it('revokes with `certbot revoke --reason keycompromise`: OCSP then answers revoked with that reason', async () => {
    const res = await certbot(['revoke', '--server', directory(), '--cert-path', live('web', 'cert.pem'), '--reason', 'keycompromise', '--no-delete-after-revoke']);
    expect(res.code, res.stderr).toBe(0);
    const status = await ocspStatus('web');
    expect(status).toMatch(/cert\.pem: revoked/);
    expect(status).toContain('Reason: keyCompromise');
  });

  it('issues a wildcard over dns-01 through the rfc2136 plugin and BIND 9', async () => {
    writeFileSync(tmp.file('rfc2136.ini'), [
      `dns_rfc2136_server = 127.0.0.1`,
      `dns_rfc2136_port = ${dns.port}`,
      `dns_rfc2136_name = ${dns.tsig.name}`,
      `dns_rfc2136_secret = ${dns.tsig.secret}`,
      `dns_rfc2136_algorithm = ${dns.tsig.algorithm}`,
      '',
    ].join('\n'), { mode: 0o600 });
    const res = await certbot(['certonly', '--server', directory(), '--authenticator', 'dns-rfc2136', '--dns-rfc2136-credentials', tmp.file('rfc2136.ini'),
      '--dns-rfc2136-propagation-seconds', '1', '-d', `*.${ZONE}`, '-d', `www.${ZONE}`, '--cert-name', 'wild', '--key-type', 'ecdsa']);
    expect(res.code, res.stderr).toBe(0);
    await verifyUnderTier('wild');
    const text = await openssl(['x509', '-noout', '-ext', 'subjectAltName', '-in', live('wild', 'cert.pem')]);
    expect(text.stdout).toContain(`DNS:*.${ZONE}`);
    expect(text.stdout).toContain(`DNS:www.${ZONE}`);
    expect(await ocspStatus('wild')).toMatch(/cert\.pem: good/);
  });

  it('refuses a name outside the domain with a rejectedIdentifier problem, and issues nothing', async () => {
    const certs = await countRows(t.store, 'certificates');
    const res = await certbot(['certonly', '--server', directory(), '--standalone', '--http-01-port', String(http01Port), '--http-01-address', '127.0.0.1',
      '-d', 'web.other.intranet', '--cert-name', 'outside']);
    expect(res.code).not.toBe(0);
    // certbot 2.1 on Python 3.11 then trips over its own traceback handling (josepy's immutable
    // Error: "AttributeError: can't set attribute") and prints that instead; its log keeps our problem.
    const log = readFileSync(tmp.file('le/logs/letsencrypt.log'), 'utf8');
    expect(log).toContain('urn:ietf:params:acme:error:rejectedIdentifier :: The server will not issue certificates for the identifier :: DNS name web.other.intranet is outside domain yuhu');
    expect(await countRows(t.store, 'certificates')).toBe(certs);
  });
});
