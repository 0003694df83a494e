/**
 * `tierca cert issue` against a fake server: the request body for a CSR and for a server-made key,
 * the files written (the PKCS#12 with mode 0600, never over an existing file), the passphrase the
 * server made printed once, 202 pending requests, and the usage errors.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildCsr } from '../../pki/csr.ts';
import { toPem } from '../../pki/der.ts';
import { generateKeyPair } from '../../pki/key-pair.ts';
import { encodeName } from '../../pki/name.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import { fakeStdin, FakeServer, problem, runCli } from './cli-fake-server.ts';

const dir = mkdtempSync(join(tmpdir(), 'tierca-cli-issue-'));
let server: FakeServer;
let env: Record<string, string>;
let csrDer: Buffer;
let csrPem: string;

const PEM = '-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n';
const CHAIN = ['-----BEGIN CERTIFICATE-----\nMIIBtier\n-----END CERTIFICATE-----', '-----BEGIN CERTIFICATE-----\nMIIBroot\n-----END CERTIFICATE-----\n'];
const SUMMARY = {
  serial: '7c00ffee12345678',
  issuerId: 'yuhu-t1',
  subjectId: 's-1',
  profile: 'device',
  tier: 't1',
  domain: 'yuhu',
  subject: 'C=CN,L=雨湖区,CN=gw-01',
  notBefore: '2026-01-01T00:00:00.000Z',
  notAfter: '2028-01-01T00:00:00.000Z',
  status: 'good',
  revokedAt: null,
  reason: null,
  fingerprint: 'ab',
  keyAlgorithm: 'P-256',
};
const P12 = randomBytes(900);

beforeAll(async () => {
  server = await FakeServer.start();
  env = { TIERCA_URL: server.url, TIERCA_TOKEN: 'officer-token' };
  const { privateKey } = await generateKeyPair('P-256');
  csrDer = await buildCsr({ subject: encodeName([{ type: 'CN', value: 'gw-01' }]), signer: softwareSigner({ privateKey, algorithm: 'P-256' }) });
  csrPem = toPem(csrDer, 'CERTIFICATE REQUEST');
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => server.reset());

let n = 0;
const fresh = (name: string) => join(dir, `${++n}-${name}`);

describe('cert issue --csr', () => {
  it('sends the CSR as base64 DER with days and profile, writes the certificate and the chain', async () => {
    server.on('POST /api/v1/certificates', { status: 201, json: { certificate: SUMMARY, pem: PEM, chain: CHAIN } });
    const csr = fresh('req.pem');
    writeFileSync(csr, `a CSR made by the device\n${csrPem}`);
    const out = fresh('cert.pem');
    const chainOut = fresh('chain.pem');
    const r = await runCli(['cert', 'issue', '--subject', 's-1', '--csr', csr, '--days', '365', '--profile', 'device', '--out', out, '--chain-out', chainOut], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const req = server.only();
    expect([req.method, req.path, req.headers.authorization]).toEqual(['POST', '/api/v1/certificates', 'Bearer officer-token']);
    expect(req.json).toEqual({ subjectId: 's-1', csr: csrDer.toString('base64'), days: 365, profile: 'device' });
    expect(readFileSync(out, 'utf8')).toBe(PEM);
    expect(readFileSync(chainOut, 'utf8')).toBe(`${CHAIN[0]}\n${CHAIN[1]}`);
    expect(r.stdout).toBe(
      'issued certificate 7c00ffee12345678 (device, t1, yuhu) by yuhu-t1, valid until 2028-01-01 00:00Z\n' +
        'subject: C=CN,L=雨湖区,CN=gw-01\n' +
        `certificate written to ${out}\n` +
        `chain (2 certificates) written to ${chainOut}\n`,
    );
  });

  it('accepts a DER CSR and prints the PEM when there is no --out', async () => {
    server.on('POST /api/v1/certificates', { status: 201, json: { certificate: SUMMARY, pem: PEM, chain: CHAIN } });
    const csr = fresh('req.der');
    writeFileSync(csr, csrDer);
    const r = await runCli(['cert', 'issue', '--subject', 's-1', '--csr', csr], env);
    expect(r.code).toBe(0);
    expect(server.only().json).toEqual({ subjectId: 's-1', csr: csrDer.toString('base64') });
    expect(r.stdout.endsWith(`\n\n${PEM}`)).toBe(true);
  });

  it('refuses a file that is not a CSR before sending anything (exit 2)', async () => {
    const csr = fresh('key.pem');
    writeFileSync(csr, '-----BEGIN PRIVATE KEY-----\nMIGHAgEA\n-----END PRIVATE KEY-----\n');
    const r = await runCli(['cert', 'issue', '--subject', 's-1', '--csr', csr], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`error: --csr: ${csr}: not a PEM CERTIFICATE REQUEST or DER\n`);
    const missing = await runCli(['cert', 'issue', '--subject', 's-1', '--csr', join(dir, 'none.pem')], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`error: --csr: cannot read ${join(dir, 'none.pem')}: no such file\n`);
    expect(server.requests).toHaveLength(0);
  });

  it('reports a policy refusal with exit 6', async () => {
    server.on('POST /api/v1/certificates', problem('policy-key-algorithm', 422, 'Key algorithm or size not allowed for this tier', 'P-256 is not allowed at t3'));
    const csr = fresh('req.pem');
    writeFileSync(csr, csrPem);
    const r = await runCli(['cert', 'issue', '--subject', 's-1', '--csr', csr], env);
    expect(r.code).toBe(6);
    expect(r.stderr).toBe('error: Key algorithm or size not allowed for this tier: P-256 is not allowed at t3\n');
  });
});

describe('cert issue --generate', () => {
  it('writes the PKCS#12 with mode 0600 and prints the passphrase the server made, once', async () => {
    server.on('POST /api/v1/certificates', {
      status: 201,
      json: { certificate: SUMMARY, pem: PEM, chain: CHAIN, pkcs12: P12.toString('base64'), passphrase: 'Qx7-kd93-ZZp1-mn02' },
    });
    const p12 = fresh('gw.p12');
    const r = await runCli(['cert', 'issue', '--subject', 's-1', '--generate', '--alg', 'P-384', '--p12', p12, '--out', fresh('c.pem')], env);
    expect(r.code).toBe(0);
    // No passphrase file and no terminal: the server is asked to make one.
    expect(server.only().json).toEqual({ subjectId: 's-1', generate: { algorithm: 'P-384' } });
    expect(readFileSync(p12)).toEqual(P12);
    expect(statSync(p12).mode & 0o777).toBe(0o600);
    expect(r.stdout.split('Qx7-kd93-ZZp1-mn02')).toHaveLength(2);
    expect(r.stdout).toContain('PKCS#12 passphrase (shown only this once; the server does not keep it): Qx7-kd93-ZZp1-mn02\n');
    expect(r.stdout).toContain(`PKCS#12 with the private key written to ${p12} (mode 0600)\n`);
    expect(r.stderr).toBe('');
  });

  it('never uses the keystore passphrase (TIERCA_PASSPHRASE) for the PKCS#12', async () => {
    server.on('POST /api/v1/certificates', { status: 201, json: { certificate: SUMMARY, pem: PEM, chain: CHAIN, pkcs12: P12.toString('base64'), passphrase: 'made' } });
    const r = await runCli(['cert', 'issue', '--subject', 's-1', '--generate', '--p12', fresh('gw.p12')], { ...env, TIERCA_PASSPHRASE: 'the CA keystore secret' });
    expect(r.code).toBe(0);
    expect(server.only().json).toEqual({ subjectId: 's-1', generate: {} });
  });

  it('sends the passphrase of --p12-passphrase-file and does not print it', async () => {
    server.on('POST /api/v1/certificates', { status: 201, json: { certificate: SUMMARY, pem: PEM, chain: CHAIN, pkcs12: P12.toString('base64') } });
    const passFile = fresh('p12.pass');
    writeFileSync(passFile, 'correct horse battery\n', { mode: 0o600 });
    const p12 = fresh('gw.p12');
    const r = await runCli(['cert', 'issue', '--subject', 's-1', '--generate', '--p12', p12, '--p12-passphrase-file', passFile], env);
    expect(r.code).toBe(0);
    expect(server.only().json).toEqual({ subjectId: 's-1', generate: { passphrase: 'correct horse battery' } });
    expect(r.stdout).not.toContain('correct horse battery');
    expect(r.stdout).not.toContain('passphrase');
    expect(statSync(p12).mode & 0o777).toBe(0o600);
  });

  it('asks twice on a terminal, echo off', async () => {
    server.on('POST /api/v1/certificates', { status: 201, json: { certificate: SUMMARY, pem: PEM, chain: CHAIN, pkcs12: P12.toString('base64') } });
    const stdin = fakeStdin(true);
    stdin.write('s3cret-p12\r');
    stdin.write('s3cret-p12\r');
    const p12 = fresh('gw.p12');
    const r = await runCli(['cert', 'issue', '--subject', 's-1', '--generate', '--p12', p12], env, stdin);
    expect(r.code).toBe(0);
    expect(server.only().json).toEqual({ subjectId: 's-1', generate: { passphrase: 's3cret-p12' } });
    expect(r.stderr).toBe('PKCS#12 passphrase (empty: let the server make one): \nRepeat the PKCS#12 passphrase: \n');
    expect(stdin.rawModes).toEqual([true, false, true, false]);
  });

  it('refuses two different entries at the prompt (exit 2) and leaves no file', async () => {
    const stdin = fakeStdin(true);
    stdin.write('one\rtwo\r');
    const p12 = fresh('gw.p12');
    const r = await runCli(['cert', 'issue', '--subject', 's-1', '--generate', '--p12', p12], env, stdin);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error: the two passphrases differ\n');
    expect(server.requests).toHaveLength(0);
    expect(existsSync(p12)).toBe(false);
  });

  it('never overwrites an existing file and sends nothing (exit 2)', async () => {
    const p12 = fresh('exists.p12');
    writeFileSync(p12, 'old key');
    const r = await runCli(['cert', 'issue', '--subject', 's-1', '--generate', '--p12', p12], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`error: --p12: ${p12} already exists; choose another file (a key file is never overwritten)\n`);
    expect(readFileSync(p12, 'utf8')).toBe('old key');
    expect(server.requests).toHaveLength(0);
  });

  it('removes the empty key file when the server refuses', async () => {
    server.on('POST /api/v1/certificates', problem('policy-server-keygen', 422, 'Server-made keys are not allowed for this tier'));
    const p12 = fresh('gw.p12');
    const r = await runCli(['cert', 'issue', '--subject', 's-3', '--generate', '--p12', p12], env);
    expect(r.code).toBe(6);
    expect(existsSync(p12)).toBe(false);
  });

  it('prints the pending request id on 202 and leaves no key file', async () => {
    server.on('POST /api/v1/certificates', { status: 202, json: { request: { id: 'req-42', status: 'pending' } } });
    const p12 = fresh('gw.p12');
    const r = await runCli(['cert', 'issue', '--subject', 's-3', '--generate', '--p12', p12], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('request req-42 is pending: a second officer must approve it (tierca request approve req-42)\n');
    expect(existsSync(p12)).toBe(false);
  });

  it('prints the raw answer with --json, and still writes the file', async () => {
    const answer = { certificate: SUMMARY, pem: PEM, chain: CHAIN, pkcs12: P12.toString('base64'), passphrase: 'pp' };
    server.on('POST /api/v1/certificates', { status: 201, json: answer });
    const p12 = fresh('gw.p12');
    const r = await runCli(['--json', 'cert', 'issue', '--subject', 's-1', '--generate', '--p12', p12], env);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(answer);
    expect(readFileSync(p12)).toEqual(P12);
  });
});

describe('cert issue usage errors (exit 2, nothing sent)', () => {
  it.each([
    [['--subject', 's-1'], 'error: cert issue: give --csr <file> (key made by the holder) or --generate (key made by the server)\n'],
    [['--subject', 's-1', '--generate'], 'error: cert issue --generate: --p12 <out.p12> is required (the private key comes back only in it)\n'],
    [['--subject', 's-1', '--csr', 'x.pem', '--p12', 'x.p12'], 'error: cert issue: --alg, --p12 and --p12-passphrase-file go with --generate only\n'],
    [['--subject', 's-1', '--csr', 'x.pem', '--generate'], "error: option '--csr <file>' cannot be used with option '--generate'\n"],
    [['--csr', 'x.pem'], "error: required option '--subject <id>' not specified\n"],
    [['--subject', 's-1', '--generate', '--p12', 'x', '--alg', 'P-521'], "error: option '--alg <algorithm>' argument 'P-521' is invalid. Allowed choices are P-256, P-384, RSA-2048, RSA-3072, RSA-4096, SM2.\n"],
    [['--subject', 's-1', '--csr', 'x.pem', '--days', '-5'], "error: option '--days <n>' argument '-5' is invalid. expected a whole number of at least 1.\n"],
  ])('%j', async (args, message) => {
    const r = await runCli(['cert', 'issue', ...args], env);
    expect(r.code).toBe(2);
    expect(r.stderr.startsWith(message)).toBe(true);
    expect(server.requests).toHaveLength(0);
  });
});
