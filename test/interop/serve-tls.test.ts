// `tierca serve` over TLS, as processes: the HTTPS listener on --port with a tierca device certificate
// whose key file is encrypted (passphrase from a file), reached by Node's tls and `openssl s_client
// -verify_return_error` against the tierca root; a principal logging in through the CLI with the client
// certificate tierca issued it; the plain-HTTP --http-port serving OCSP, CRLs and CA certificates and
// refusing the admin API; `npm start` doing the same from the environment; bad TLS options refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { freshDatabase, initHierarchyFor, runTierca, startServe, type ProcessDatabase, type ServeProcess } from '../helpers/processes.ts';
import { freePort } from '../helpers/tierca.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { opensslCsr } from '../helpers/pki-fixtures.ts';

const tmp = new TempDir();
const SERVER_NAME = 'ca.yuetang.xiangtan.intranet';
let db: ProcessDatabase;
let tokens: Record<string, string>;
let httpPort: number;
let tlsPort: number;
let serve: ServeProcess | undefined;
let rootPath: string;
let rootPem: string;
const files = { cert: '', key: '', passphrase: '', device: '', issuer: '', intermediates: '', clientCert: '', clientKey: '', principalId: '' };

async function api(base: string, method: string, path: string, token?: string, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const raw = Buffer.from(await res.arrayBuffer());
  const json = (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(raw.toString()) : undefined;
  return { status: res.status, body: json, raw, headers: res.headers };
}

const tlsArgs = () => ['--tls-cert', files.cert, '--tls-key', files.key, '--tls-key-passphrase-file', files.passphrase];

beforeAll(async () => {
  db = await freshDatabase();
  httpPort = await freePort();
  tlsPort = await freePort();
  // Certificates name the plain-HTTP listener for OCSP, CRLs and CA certificates.
  // The service's own certificate names 127.0.0.1, so its domain's ranges take in the loopback block.
  tokens = await initHierarchyFor(db, {
    publicUrl: `http://127.0.0.1:${httpPort}`,
    configData: (data) => ({
      ...data,
      domains: data.domains.map((d: { slug: string; ipRanges?: string[] }) => (d.slug === 'yuetang' ? { ...d, ipRanges: [...(d.ipRanges ?? []), '127.0.0.0/8'] } : d)),
    }),
  });
  // A plain server first, to issue the HTTPS listener's certificate and a principal's.
  const plain = await startServe({ env: db.env, port: httpPort });
  try {
    const base = plain.url;
    rootPem = (await api(base, 'GET', '/ca/root.pem')).raw.toString();
    rootPath = tmp.file('root.pem', rootPem);
    // The listener's key, encrypted under a passphrase kept in a file.
    files.passphrase = tmp.file('tls-key.pass', 'listener key passphrase\n');
    files.key = tmp.file('tls.key');
    const made = await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-aes-256-cbc', '-pass', `file:${files.passphrase}`, '-out', files.key]);
    expect(made.code, made.stderr).toBe(0);
    expect(readFileSync(files.key, 'utf8')).toContain('BEGIN ENCRYPTED PRIVATE KEY');
    const csrPath = tmp.file('tls.csr');
    expect((await openssl(['req', '-new', '-key', files.key, '-passin', `file:${files.passphrase}`, '-subj', '/CN=ignored', '-out', csrPath])).code).toBe(0);
    const subject = await api(base, 'POST', '/api/v1/subjects', tokens.officer, {
      kind: 'device', domain: 'yuetang', organ: 'government', tier: 't1', name: 'tierca-service', dns: [SERVER_NAME], ips: ['127.0.0.1'],
    });
    expect(subject.status, JSON.stringify(subject.body)).toBe(201);
    const issued = await api(base, 'POST', '/api/v1/certificates', tokens.officer, { subjectId: subject.body.id, csr: readFileSync(csrPath, 'utf8') });
    expect(issued.status, JSON.stringify(issued.body)).toBe(201);
    files.device = tmp.file('device.pem', issued.body.pem);
    files.issuer = tmp.file('device-issuer.pem', issued.body.chain[0]);
    files.intermediates = tmp.file('device-intermediates.pem', issued.body.chain.slice(0, -1).join(''));
    files.cert = tmp.file('tls-chain.pem', issued.body.pem + issued.body.chain.slice(0, -1).join(''));
    // A principal and its client certificate (the key never leaves this test).
    const principal = await api(base, 'POST', '/api/v1/principals', tokens.admin, { name: 'TLS auditor', role: 'auditor' });
    expect(principal.status).toBe(201);
    files.principalId = principal.body.id;
    const client = await opensslCsr(tmp, 'client', 'P-256');
    const certified = await api(base, 'POST', `/api/v1/principals/${principal.body.id}/certificate`, tokens.admin, { csr: client.csrPem });
    expect(certified.status, JSON.stringify(certified.body)).toBe(201);
    files.clientKey = client.keyPath;
    files.clientCert = tmp.file('client-chain.pem', certified.body.pem + certified.body.chain.slice(0, -1).join(''));
  } finally {
    await plain.stop();
  }
  serve = await startServe({ env: db.env, port: tlsPort, args: [...tlsArgs(), '--http-port', String(httpPort)], readyPort: httpPort });
}, 120_000);
afterAll(async () => {
  await serve?.stop();
  await db?.cleanup();
  tmp.cleanup();
});

describe('tierca serve --tls-cert/--tls-key', () => {
  it('says where it listens', () => {
    expect(serve!.output()).toContain(`tierca listening on https://127.0.0.1:${tlsPort} (OCSP, CRLs and CA certificates also on http://127.0.0.1:${httpPort})`);
  });

  it('completes a handshake with Node tls, which verifies the chain to the tierca root and the host name', async () => {
    const peer = await new Promise<{ authorized: boolean; error: Error | null; subject: string; names: string | undefined }>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: tlsPort, servername: SERVER_NAME, ca: rootPem }, () => {
        const cert = socket.getPeerCertificate();
        resolve({ authorized: socket.authorized, error: socket.authorizationError, subject: String(cert.subject.CN), names: cert.subjectaltname });
        socket.end();
      });
      socket.on('error', reject);
    });
    expect(peer).toMatchObject({ authorized: true, error: null, subject: 'tierca-service' });
    expect(peer.names).toContain(`DNS:${SERVER_NAME}`);
    // Without the tierca root the chain does not verify.
    const refused = await new Promise<Error>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port: tlsPort, servername: SERVER_NAME }, () => socket.end());
      socket.on('error', resolve);
    });
    expect((refused as NodeJS.ErrnoException).code).toBe('UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
  });

  it('passes openssl s_client -verify_return_error against the root, with the host name and the IP checked', async () => {
    const res = await openssl([
      's_client', '-connect', `127.0.0.1:${tlsPort}`, '-servername', SERVER_NAME, '-CAfile', rootPath,
      '-verify_return_error', '-verify_hostname', SERVER_NAME, '-verify_ip', '127.0.0.1',
    ], { input: '' });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('Verify return code: 0 (ok)');
    const stranger = await openssl(['s_client', '-connect', `127.0.0.1:${tlsPort}`, '-verify_return_error', '-verify_hostname', 'other.example'], { input: '' });
    expect(stranger.code).not.toBe(0);
  });

  it('logs a principal in through the CLI with its client certificate, and refuses a client certificate over plain HTTP', async () => {
    const base = ['--server', `https://127.0.0.1:${tlsPort}`, '--ca-file', rootPath];
    const env = { TIERCA_DATA: db.dataDir, TIERCA_TOKEN: '' };
    const me = await runTierca([...base, '--client-cert', files.clientCert, '--client-key', files.clientKey, '--json', 'whoami'], { env });
    expect(me.code, me.stderr).toBe(0);
    expect(JSON.parse(me.stdout.toString())).toMatchObject({ id: files.principalId, role: 'auditor', name: 'TLS auditor' });
    // The environment does the same as the options.
    const byEnv = await runTierca([...base, '--json', 'whoami'], { env: { ...env, TIERCA_CLIENT_CERT: files.clientCert, TIERCA_CLIENT_KEY: files.clientKey } });
    expect(byEnv.code, byEnv.stderr).toBe(0);
    expect(JSON.parse(byEnv.stdout.toString()).id).toBe(files.principalId);
    // It acts with its role only: an auditor may not add principals (exit 4, 403).
    const denied = await runTierca([...base, '--client-cert', files.clientCert, '--client-key', files.clientKey, 'principal', 'add', '--name', 'x', '--role', 'auditor'], { env });
    expect([denied.code, denied.stderr]).toEqual([4, expect.stringContaining('role auditor lacks permission principal:manage')]);
    // Without a client certificate or a token: no login (exit 4).
    const none = await runTierca([...base, 'whoami'], { env: { ...env, TIERCA_DATA: tmp.path } });
    expect(none.code).toBe(4);
    // Without the root the server's certificate does not verify: unreachable (exit 9), named.
    const untrusted = await runTierca(['--server', `https://127.0.0.1:${tlsPort}`, '--client-cert', files.clientCert, '--client-key', files.clientKey, 'whoami'], { env });
    expect(untrusted.code).toBe(9);
    expect(untrusted.stderr).toContain(`cannot reach the tierca server at https://127.0.0.1:${tlsPort}`);
    const plain = await runTierca(['--server', `http://127.0.0.1:${httpPort}`, '--client-cert', files.clientCert, '--client-key', files.clientKey, 'whoami'], { env });
    expect([plain.code, plain.stderr]).toEqual([2, expect.stringContaining('--client-cert needs an https --server')]);
  });

  it('serves OCSP, CRLs and CA certificates over plain HTTP, and not the admin API', async () => {
    const http = `http://127.0.0.1:${httpPort}`;
    expect((await api(http, 'GET', '/ca/root.crt')).status).toBe(200);
    const index = await api(http, 'GET', '/ca');
    expect(index.status).toBe(200);
    const tierCa = (index.body as { id: string; layer: string }[]).find((c) => c.layer === 'tier')!;
    const crl = await api(http, 'GET', `/crl/${tierCa.id}.crl`);
    expect([crl.status, crl.headers.get('content-type')]).toEqual([200, 'application/pkix-crl']);
    // openssl fetches the device certificate's status from the URL its AIA names (the plain listener).
    const ocsp = await openssl(['ocsp', '-issuer', files.issuer, '-cert', files.device, '-url', `${http}/ocsp`, '-CAfile', rootPath, '-verify_other', files.intermediates]);
    expect(ocsp.code, ocsp.stderr).toBe(0);
    expect(ocsp.stdout).toContain(`${files.device}: good`);
    expect(ocsp.stderr).toContain('Response verify OK');
    // The admin API is not there, even with a valid token; it is over HTTPS.
    const whoami = await api(http, 'GET', '/api/v1/whoami', tokens.admin);
    expect([whoami.status, whoami.body.type, whoami.body.detail]).toEqual([
      404, 'urn:tierca:problem:not-found',
      `this plain-HTTP listener serves OCSP, CRLs, CA certificates and status only; the admin API is at https://127.0.0.1:${tlsPort}`,
    ]);
    const write = await api(http, 'POST', '/api/v1/principals', tokens.admin, { name: 'over http', role: 'auditor' });
    expect(write.status).toBe(404);
    // Over HTTPS the public routes are served too, and bearer tokens work.
    const https = await runTierca(['--server', `https://127.0.0.1:${tlsPort}`, '--ca-file', rootPath, '--json', 'whoami'], { env: { TIERCA_TOKEN: tokens.admin } });
    expect(https.code, https.stderr).toBe(0);
    expect(JSON.parse(https.stdout.toString()).role).toBe('sysadmin');
    const principals = await runTierca(['--server', `https://127.0.0.1:${tlsPort}`, '--ca-file', rootPath, '--json', 'principal', 'list'], { env: { TIERCA_TOKEN: tokens.admin } });
    expect(JSON.parse(principals.stdout.toString()).map((p: { name: string }) => p.name)).not.toContain('over http');
  });

  it('refuses bad TLS options with the option named, before it opens anything', async () => {
    const env = { ...db.env, TIERCA_PASSPHRASE: 'unused-here-passphrase' };
    const port = String(await freePort());
    const wrong = tmp.file('wrong.pass', 'not the passphrase\n');
    const cases: [string[], string][] = [
      [['--tls-cert', files.cert, '--tls-key', files.key, '--tls-key-passphrase-file', wrong], `--tls-key: the passphrase does not decrypt ${files.key}`],
      [['--tls-cert', files.cert, '--tls-key', files.key], `--tls-key: ${files.key} is encrypted; give its passphrase with --tls-key-passphrase-file or TIERCA_TLS_KEY_PASSPHRASE`],
      [['--tls-cert', files.cert, '--tls-key', files.clientKey], `--tls-key: the key in ${files.clientKey} is not the key of the certificate in ${files.cert}`],
      [['--tls-cert', files.cert], '--tls-cert and --tls-key go together'],
      [['--tls-cert', files.key, '--tls-key', files.clientKey], `--tls-cert: ${files.key} holds no PEM certificate`],
      [['--http-port', String(httpPort)], '--http-port goes with --tls-cert and --tls-key'],
    ];
    for (const [args, message] of cases) {
      const run = await runTierca(['serve', '--port', port, ...args], { env, timeoutMs: 20_000 });
      expect([run.code, run.stderr], args.join(' ')).toEqual([2, expect.stringContaining(message)]);
    }
  });
});

describe('npm start with TIERCA_TLS_CERT/TIERCA_TLS_KEY', () => {
  it('serves HTTPS on PORT and the public routes on TIERCA_HTTP_PORT', async () => {
    await serve?.stop();
    serve = undefined;
    const npm = await startServe({
      entry: 'npm', port: tlsPort, readyPort: httpPort,
      env: { ...db.env, TIERCA_TLS_CERT: files.cert, TIERCA_TLS_KEY: files.key, TIERCA_TLS_KEY_PASSPHRASE_FILE: files.passphrase, TIERCA_HTTP_PORT: String(httpPort) },
    });
    try {
      const me = await runTierca(['--server', `https://127.0.0.1:${tlsPort}`, '--ca-file', rootPath, '--client-cert', files.clientCert, '--client-key', files.clientKey, '--json', 'whoami'], { env: { TIERCA_TOKEN: '' } });
      expect(me.code, me.stderr).toBe(0);
      expect(JSON.parse(me.stdout.toString()).id).toBe(files.principalId);
      expect((await api(`http://127.0.0.1:${httpPort}`, 'GET', '/api/v1/whoami', tokens.admin)).status).toBe(404);
    } finally {
      await npm.stop();
    }
  });
});
