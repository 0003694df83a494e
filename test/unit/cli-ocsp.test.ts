/**
 * `tierca ocsp check` against a fake responder that parses the CLI's request with tierca's own
 * parser and answers with responses signed by tierca's builder: exit 0 good, 10 revoked, 11
 * unknown, 12 for an answer that must not be believed; the issuer by file or fetched by id; no token.
 * (test/interop has openssl answer the same questions; this file checks the CLI's side.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildCertificate, randomSerial } from '../../pki/certificate.ts';
import { toPem } from '../../pki/der.ts';
import { basicConstraints, EKU, extendedKeyUsage, keyUsage, ocspNoCheck, subjectKeyIdentifier, authorityKeyIdentifier } from '../../pki/extensions.ts';
import { generateKeyPair, keyIdentifier, publicKeyInfoOf } from '../../pki/key-pair.ts';
import { encodeName } from '../../pki/name.ts';
import { parseOcspRequest } from '../../pki/ocsp-request.ts';
import { buildOcspResponse, ocspErrorResponse, parseOcspResponse, type CertStatus } from '../../pki/ocsp-response.ts';
import type { Signer } from '../../pki/signer.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import { FakeServer, runCli, type RecordedRequest } from './cli-fake-server.ts';

const dir = mkdtempSync(join(tmpdir(), 'tierca-cli-ocsp-'));
const NOW = new Date();
const HOUR = 3_600_000;
let server: FakeServer;
let env: Record<string, string>;

interface Party {
  signer: Signer;
  cert: Buffer;
  name: Buffer;
}

let ca: Party;
let otherCa: Party;
let responder: Party;
let rogueResponder: Party; // OCSP-signing EKU, but issued by another CA
let plain: Party; // issued by the CA, without the OCSP-signing EKU
let leaf: Buffer;
let leafSerial: string;
const files: Record<string, string> = {};

async function makeCa(cn: string): Promise<Party> {
  const { privateKey } = await generateKeyPair('P-256');
  const signer = softwareSigner({ privateKey, algorithm: 'P-256' });
  const name = encodeName([{ type: 'C', value: 'CN' }, { type: 'CN', value: cn }]);
  const spki = publicKeyInfoOf(privateKey);
  const cert = await buildCertificate({
    serial: randomSerial(),
    issuer: name,
    subject: name,
    notBefore: new Date(NOW.getTime() - HOUR),
    notAfter: new Date(NOW.getTime() + 1000 * HOUR),
    publicKeyInfo: spki,
    extensions: [basicConstraints({ ca: true, pathLength: 0 }), keyUsage(['keyCertSign', 'cRLSign']), subjectKeyIdentifier(keyIdentifier(spki))],
    signer,
  });
  return { signer, cert, name };
}

async function issue(issuer: Party, cn: string, eku?: string): Promise<Party> {
  const { privateKey } = await generateKeyPair('P-256');
  const spki = publicKeyInfoOf(privateKey);
  const name = encodeName([{ type: 'CN', value: cn }]);
  const cert = await buildCertificate({
    serial: randomSerial(),
    issuer: issuer.name,
    subject: name,
    notBefore: new Date(NOW.getTime() - HOUR),
    notAfter: new Date(NOW.getTime() + 24 * HOUR),
    publicKeyInfo: spki,
    extensions: [
      basicConstraints({ ca: false }),
      keyUsage(['digitalSignature']),
      authorityKeyIdentifier(keyIdentifier(issuer.signer.publicKeyInfo)),
      ...(eku ? [extendedKeyUsage([eku]), ocspNoCheck()] : []),
    ],
    signer: issuer.signer,
  });
  return { signer: softwareSigner({ privateKey, algorithm: 'P-256' }), cert, name };
}

/** What the fake responder answers, and how. */
let answer: { status: CertStatus; by: () => Party; echoNonce: boolean; certs: () => Buffer[]; thisUpdate?: Date; nextUpdate?: Date };

async function respond(req: RecordedRequest) {
  const parsed = parseOcspRequest(req.body);
  const signer = answer.by();
  const der = await buildOcspResponse({
    responderPublicKeyInfo: signer.signer.publicKeyInfo,
    producedAt: NOW,
    responses: parsed.certIds.map((id) => ({
      certId: id.raw,
      certStatus: answer.status,
      thisUpdate: answer.thisUpdate ?? new Date(NOW.getTime() - 60_000),
      nextUpdate: answer.nextUpdate ?? new Date(NOW.getTime() + HOUR),
    })),
    nonce: answer.echoNonce ? parsed.nonce : null,
    certificates: answer.certs(),
    signer: signer.signer,
  });
  return { body: der, contentType: 'application/ocsp-response' };
}

beforeAll(async () => {
  ca = await makeCa('雨湖区 t2 CA');
  otherCa = await makeCa('Other CA');
  responder = await issue(ca, 'OCSP responder yuhu-t2', EKU.ocspSigning);
  rogueResponder = await issue(otherCa, 'rogue responder', EKU.ocspSigning);
  plain = await issue(ca, 'not-a-responder');
  const device = await issue(ca, 'vpn-gw-01');
  leaf = device.cert;
  files.leaf = join(dir, 'leaf.pem');
  files.issuer = join(dir, 'issuer.pem');
  files.other = join(dir, 'other.pem');
  files.leafDer = join(dir, 'leaf.der');
  writeFileSync(files.leaf, toPem(leaf, 'CERTIFICATE'));
  writeFileSync(files.leafDer, leaf);
  writeFileSync(files.issuer, toPem(ca.cert, 'CERTIFICATE'));
  writeFileSync(files.other, toPem(otherCa.cert, 'CERTIFICATE'));
  const { readCertificate } = await import('../../pki/certificate-reader.ts');
  leafSerial = readCertificate(leaf).serial;
  server = await FakeServer.start();
  // No TIERCA_TOKEN and no demo token: ocsp check is public and must not need one.
  env = { TIERCA_URL: server.url, TIERCA_DATA: join(dir, 'no-data') };
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => server.reset());

const useResponder = (status: CertStatus, more: Partial<typeof answer> = {}) => {
  answer = { status, by: () => responder, echoNonce: true, certs: () => [responder.cert], ...more };
  server.on('POST /ocsp', respond);
};

describe('ocsp check', () => {
  it('good: exit 0, the request is an RFC 6960 request for this certificate, no token sent', async () => {
    useResponder({ status: 'good' });
    const r = await runCli(['ocsp', 'check', files.leaf, '--issuer', files.issuer], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const req = server.only();
    expect([req.method, req.path, req.headers['content-type'], req.headers.authorization]).toEqual(['POST', '/ocsp', 'application/ocsp-request', undefined]);
    const parsed = parseOcspRequest(req.body);
    expect(parsed.certIds.map((c) => [c.hashAlgorithm, c.serial])).toEqual([['sha1', leafSerial]]);
    expect(parsed.nonce?.length).toBe(18); // OCTET STRING of 16 random octets (RFC 8954 §2.1)
    expect(r.stdout.split('\n')[0]).toBe(`${files.leaf}: good`);
    expect(r.stdout).toContain(`serial:       ${leafSerial}\n`);
    expect(r.stdout).toContain('responder:    delegated responder certificate issued by the CA\n');
    expect(r.stdout).toContain('nonce:        echoed\n');
  });

  it('revoked: exit 10 with time and reason', async () => {
    useResponder({ status: 'revoked', revokedAt: new Date('2026-02-03T04:05:06Z'), reason: 1 });
    const r = await runCli(['ocsp', 'check', files.leafDer, '--issuer', files.issuer], env);
    expect(r.code).toBe(10);
    expect(r.stdout.split('\n')[0]).toBe(`${files.leafDer}: revoked at 2026-02-03T04:05:06.000Z, reason keyCompromise`);
  });

  it('on hold: exit 10, reason certificateHold', async () => {
    useResponder({ status: 'revoked', revokedAt: new Date('2026-02-03T04:05:06Z'), reason: 6 });
    const r = await runCli(['--json', 'ocsp', 'check', files.leaf, '--issuer', files.issuer], env);
    expect(r.code).toBe(10);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'revoked', revokedAt: '2026-02-03T04:05:06.000Z', reason: 'certificateHold' });
  });

  it('unknown: exit 11', async () => {
    useResponder({ status: 'unknown' });
    const r = await runCli(['ocsp', 'check', files.leaf, '--issuer', files.issuer], env);
    expect(r.code).toBe(11);
    expect(r.stdout.split('\n')[0]).toBe(`${files.leaf}: unknown`);
  });

  it('--json gives the verified answer', async () => {
    useResponder({ status: 'good' });
    const r = await runCli(['--json', 'ocsp', 'check', files.leaf, '--issuer', files.issuer], env);
    const json = JSON.parse(r.stdout);
    expect(json).toMatchObject({ certificate: files.leaf, serial: leafSerial, issuer: files.issuer, status: 'good', responder: 'delegated', nonce: 'matched' });
    expect(Date.parse(json.nextUpdate)).toBeGreaterThan(NOW.getTime());
  });

  it('fetches the issuer with --issuer-id from the public /ca/{id}.crt', async () => {
    useResponder({ status: 'good' });
    server.on('GET /ca/yuhu-t2.crt', { body: ca.cert, contentType: 'application/pkix-cert' });
    const r = await runCli(['ocsp', 'check', files.leaf, '--issuer-id', 'yuhu-t2'], env);
    expect(r.code).toBe(0);
    expect(server.requests.map((q) => [q.method, q.path, q.headers.authorization])).toEqual([
      ['GET', '/ca/yuhu-t2.crt', undefined],
      ['POST', '/ocsp', undefined],
    ]);
  });

  it('--no-nonce sends none and accepts an answer without one (a pre-signed answer)', async () => {
    useResponder({ status: 'good' }, { echoNonce: false });
    const r = await runCli(['--json', 'ocsp', 'check', files.leaf, '--issuer', files.issuer, '--no-nonce'], env);
    expect(r.code).toBe(0);
    expect(parseOcspRequest(server.only().body).nonce).toBeNull();
    expect(JSON.parse(r.stdout).nonce).toBe('not-sent');
  });

  it('accepts an answer signed by the CA itself, and one that does not echo the nonce', async () => {
    useResponder({ status: 'good' }, { by: () => ca, certs: () => [], echoNonce: false });
    const r = await runCli(['--json', 'ocsp', 'check', files.leaf, '--issuer', files.issuer], env);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ responder: 'issuer', nonce: 'absent' });
  });

  it.each([
    ['a responder certificate from another CA', () => ({ by: () => rogueResponder, certs: () => [rogueResponder.cert] }), 'the responder certificate was not issued by the issuing CA (RFC 6960 §4.2.2.2)'],
    ['a responder without the OCSP-signing EKU', () => ({ by: () => plain, certs: () => [plain.cert] }), 'the responder certificate lacks the id-kp-OCSPSigning extended key usage (RFC 6960 §4.2.2.2)'],
    ['a key that no certificate in the answer holds', () => ({ by: () => rogueResponder, certs: () => [] }), 'the answer is signed by neither the issuing CA nor a responder certificate it carries'],
    ['an expired answer', () => ({ nextUpdate: new Date(NOW.getTime() - HOUR), thisUpdate: new Date(NOW.getTime() - 2 * HOUR) }), 'the answer expired at'],
    ['an answer from the future', () => ({ thisUpdate: new Date(NOW.getTime() + HOUR), nextUpdate: new Date(NOW.getTime() + 2 * HOUR) }), "the answer's thisUpdate"],
  ])('refuses %s with exit 12', async (_what, more, message) => {
    useResponder({ status: 'good' }, more());
    const r = await runCli(['ocsp', 'check', files.leaf, '--issuer', files.issuer], env);
    expect(r.code).toBe(12);
    expect(r.stderr).toContain(`error: the OCSP answer cannot be trusted: ${message}`);
    expect(r.stdout).toBe('');
  });

  it('refuses an answer whose signature was tampered with (exit 12)', async () => {
    answer = { status: { status: 'good' }, by: () => responder, echoNonce: true, certs: () => [responder.cert] };
    server.on('POST /ocsp', async (req) => {
      const good = (await respond(req)).body;
      // The parser's signature is a view into `good`: flip its last octet, leaving the DER well formed.
      const signature = parseOcspResponse(good).signature!;
      const bad = Buffer.from(good);
      bad[signature.byteOffset - good.byteOffset + signature.length - 1] ^= 0x01;
      return { body: bad, contentType: 'application/ocsp-response' };
    });
    const r = await runCli(['ocsp', 'check', files.leaf, '--issuer', files.issuer], env);
    expect(r.code).toBe(12);
    expect(r.stderr).toBe("error: the OCSP answer cannot be trusted: the answer's signature does not verify\n");
  });

  it('refuses a replayed answer whose nonce differs (exit 12)', async () => {
    answer = { status: { status: 'good' }, by: () => responder, echoNonce: false, certs: () => [responder.cert] };
    server.on('POST /ocsp', async (req) => {
      const parsed = parseOcspRequest(req.body);
      const der = await buildOcspResponse({
        responderPublicKeyInfo: responder.signer.publicKeyInfo,
        producedAt: NOW,
        responses: [{ certId: parsed.certIds[0].raw, certStatus: { status: 'good' }, thisUpdate: NOW, nextUpdate: new Date(NOW.getTime() + HOUR) }],
        nonce: Buffer.from('0410' + '00'.repeat(16), 'hex'),
        certificates: [responder.cert],
        signer: responder.signer,
      });
      return { body: der, contentType: 'application/ocsp-response' };
    });
    const r = await runCli(['ocsp', 'check', files.leaf, '--issuer', files.issuer], env);
    expect(r.code).toBe(12);
    expect(r.stderr).toBe('error: the OCSP answer cannot be trusted: the answer carries a different nonce than the request (a replayed answer?)\n');
  });

  it.each([
    ['unauthorized', 4],
    ['tryLater', 9],
    ['malformedRequest', 1],
    ['internalError', 1],
  ] as const)('responseStatus %s exits %d', async (status, code) => {
    server.on('POST /ocsp', { body: ocspErrorResponse(status), contentType: 'application/ocsp-response' });
    const r = await runCli(['ocsp', 'check', files.leaf, '--issuer', files.issuer], env);
    expect(r.code).toBe(code);
    expect(r.stderr).toBe(`error: the OCSP responder answered ${status} (RFC 6960 §2.3)\n`);
  });

  it('refuses an issuer that did not issue the certificate (exit 2, nothing sent)', async () => {
    const r = await runCli(['ocsp', 'check', files.leaf, '--issuer', files.other], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`error: ${files.other} is not the issuer of ${files.leaf}: the names differ\n`);
    expect(server.requests).toHaveLength(0);
  });

  it('needs exactly one of --issuer and --issuer-id (exit 2)', async () => {
    const none = await runCli(['ocsp', 'check', files.leaf], env);
    const both = await runCli(['ocsp', 'check', files.leaf, '--issuer', files.issuer, '--issuer-id', 'x'], env);
    for (const r of [none, both]) {
      expect(r.code).toBe(2);
      expect(r.stderr).toBe('error: ocsp check: give the issuing CA as --issuer <issuer.pem> or --issuer-id <id> (one of them)\n');
    }
  });

  it('refuses a file that is not a certificate (exit 2)', async () => {
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'hello');
    const r = await runCli(['ocsp', 'check', junk, '--issuer', files.issuer], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`error: certificate: ${junk}: not a PEM CERTIFICATE or DER\n`);
  });

  it('an unknown --issuer-id is exit 3', async () => {
    const r = await runCli(['ocsp', 'check', files.leaf, '--issuer-id', 'nope'], env);
    expect(r.code).toBe(3);
  });
});
