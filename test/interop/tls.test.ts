// Certificates from tierca in real TLS: a mutual-TLS handshake between two devices with Node's tls,
// and a user's certificate as the client of `openssl s_server` / `openssl s_client`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import tls from 'node:tls';
import { startTestTierca, call, freePort, type TestTierca } from '../helpers/tierca.ts';
import { TempDir } from '../helpers/openssl.ts';
import { opensslCsr } from '../helpers/pki-fixtures.ts';

let t: TestTierca;
const tmp = new TempDir();
let rootPem: string;

beforeAll(async () => {
  t = await startTestTierca();
  rootPem = (await call(t, null, 'GET', '/ca/root.pem')).raw.toString();
  tmp.file('root.pem', rootPem);
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

async function issue(kind: 'device' | 'user', name: string, tier = 't1') {
  const body = kind === 'device'
    ? { kind, domain: 'yuetang', organ: 'government', tier, name, dns: [`${name}.yuetang.xiangtan.intranet`] }
    : { kind, domain: 'yuetang', organ: 'government', tier, name, emails: [`${name}@yuetang.xiangtan.intranet`] };
  const subject = await call(t, 'officer', 'POST', '/api/v1/subjects', body);
  const { keyPath, csrPem } = await opensslCsr(tmp, name, 'P-256');
  const res = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: subject.body.id, csr: csrPem });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  const certPath = tmp.file(`${name}.pem`, res.body.pem);
  // The chain a TLS peer sends: leaf, tier CA, domain CA (not the root, which the other side trusts).
  const fullChain = tmp.file(`${name}-full.pem`, res.body.pem + res.body.chain.slice(0, -1).join(''));
  const intermediates = tmp.file(`${name}-intermediates.pem`, res.body.chain.slice(0, -1).join(''));
  return { keyPath, certPath, fullChain, intermediates, key: readFileSync(keyPath), cert: readFileSync(fullChain) };
}

describe('mutual TLS', () => {
  it('completes a handshake between two tierca devices with Node tls, each verifying the other', async () => {
    const server = await issue('device', 'tls-server');
    const client = await issue('device', 'tls-client');
    const port = await freePort();
    const srv = tls.createServer({ key: server.key, cert: server.cert, ca: rootPem, requestCert: true, rejectUnauthorized: true }, (socket) => {
      const peer = socket.getPeerCertificate();
      socket.end(`hello ${peer.subject.CN}`);
    });
    await new Promise<void>((resolve) => srv.listen(port, '127.0.0.1', resolve));
    try {
      const reply = await new Promise<string>((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port, servername: 'tls-server.yuetang.xiangtan.intranet', key: client.key, cert: client.cert, ca: rootPem }, () => {
          expect(socket.authorized).toBe(true);
        });
        let data = '';
        socket.on('data', (d) => (data += d));
        socket.on('end', () => resolve(data));
        socket.on('error', reject);
      });
      expect(reply).toBe('hello tls-client');
    } finally {
      srv.close();
    }
  });

  it('refuses a client without a certificate', async () => {
    const server = await issue('device', 'tls-server2');
    const port = await freePort();
    const srv = tls.createServer({ key: server.key, cert: server.cert, ca: rootPem, requestCert: true, rejectUnauthorized: true }, (s) => s.end('no'));
    await new Promise<void>((resolve) => srv.listen(port, '127.0.0.1', resolve));
    try {
      const outcome = await new Promise<string>((resolve) => {
        const socket = tls.connect({ host: '127.0.0.1', port, servername: 'tls-server2.yuetang.xiangtan.intranet', ca: rootPem });
        socket.on('data', () => resolve('data'));
        socket.on('error', (err) => resolve(`error: ${err.message}`));
        socket.on('end', () => resolve('end'));
      });
      expect(outcome).toMatch(/error|end/);
      expect(outcome).not.toBe('data');
    } finally {
      srv.close();
    }
  });

  it('authenticates a user certificate as the client of openssl s_server, through openssl s_client', async () => {
    const server = await issue('device', 'ossl-server');
    const user = await issue('user', 'ossl-user');
    const port = await freePort();
    const rootPath = tmp.file('root-s.pem', rootPem);
    const s = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', server.certPath, '-cert_chain', server.intermediates, '-key', server.keyPath,
      '-CAfile', rootPath, '-Verify', '3', '-verify_return_error', '-naccept', '1', '-www'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let serverOut = '';
    s.stdout.on('data', (d) => (serverOut += d));
    s.stderr.on('data', (d) => (serverOut += d));
    try {
      await new Promise<void>((resolve, reject) => {
        const deadline = Date.now() + 10_000;
        const poll = () => (serverOut.includes('ACCEPT') ? resolve() : Date.now() > deadline ? reject(new Error(serverOut)) : setTimeout(poll, 50));
        poll();
      });
      const c = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-cert', user.certPath, '-cert_chain', user.intermediates, '-key', user.keyPath,
        '-CAfile', rootPath, '-verify_return_error', '-verify_hostname', 'ossl-server.yuetang.xiangtan.intranet', '-quiet'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let clientOut = '';
      c.stdout.on('data', (d) => (clientOut += d));
      c.stderr.on('data', (d) => (clientOut += d));
      c.stdin.write('GET / HTTP/1.0\r\n\r\n');
      const code = await new Promise<number>((resolve) => c.on('close', (code) => resolve(code ?? -1)));
      expect(code, `${clientOut}\n--- server ---\n${serverOut}`).toBe(0);
      expect(clientOut).toContain('verify return:1');
      // -www answers with the session, which names the client certificate it verified.
      expect(clientOut).toMatch(/Client certificate|CN ?= ?ossl-user/);
    } finally {
      s.kill();
    }
  });
});
