/**
 * OCSP against the openssl 3.0 CLI: requests made by `openssl ocsp -reqout` are parsed by
 * parseOcspRequest; responses made by buildOcspResponse are checked by `openssl ocsp -respin`
 * (signature, delegated responder, status lines, nonce) and read by pkijs as a second parser;
 * malformed requests (truncations, seeded random mutations, oversized) only ever give
 * PkiError('malformed').
 *
 * The certificates are made here with the openssl CLI; the commands run are in SETUP below.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrivateKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import * as pkijs from 'pkijs';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { children, readOnly } from '../../pki/der-reader.ts';
import { certIdFor, parseOcspRequest, type OcspRequest } from '../../pki/ocsp-request.ts';
import { buildOcspResponse, parseOcspResponse, type CertStatus, type SingleResponseParams } from '../../pki/ocsp-response.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import { PkiError } from '../../pki/pki-error.ts';
import type { Signer } from '../../pki/signer.ts';

const P256 = ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'];
const RESPONDER_EXT = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature',
  'extendedKeyUsage=OCSPSigning',
  'noCheck=ignored', // id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1)
  'subjectKeyIdentifier=hash',
  'authorityKeyIdentifier=keyid',
].join('\n');
const LEAF_EXT = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature',
  'extendedKeyUsage=clientAuth',
  'subjectKeyIdentifier=hash',
  'authorityKeyIdentifier=keyid',
  'authorityInfoAccess=OCSP;URI:http://ocsp.xiangtan.intranet/ocsp',
].join('\n');

/** Every openssl command that makes the fixtures, in order (cwd: the temporary folder). */
const SETUP: string[][] = [
  [...P256, '-out', 'ca.key'],
  ['req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '30', '-subj', '/C=CN/ST=湖南省/L=湘潭市/O=Tierca Test/CN=Test Tier CA',
    '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.pem', '-utf8'],
  [...P256, '-out', 'responder.key'],
  ['req', '-new', '-key', 'responder.key', '-subj', '/CN=Test OCSP Responder', '-out', 'responder.csr'],
  ['x509', '-req', '-in', 'responder.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '0x7001', '-days', '10', '-extfile', 'responder.ext', '-out', 'responder.pem'],
  [...P256, '-out', 'other.key'],
  // leaf1's serial has its high bit set (INTEGER 00 f1 e2 …), leaf2 and leaf3 do not.
  ...(['leaf1:0xf1e2d3c4b5a69788', 'leaf2:0x1002', 'leaf3:0x1003'] as const).flatMap((spec) => {
    const [name, serial] = spec.split(':');
    return [
      [...P256, '-out', `${name}.key`],
      ['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`],
      ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', serial, '-days', '10', '-extfile', 'leaf.ext', '-out', `${name}.pem`],
    ];
  }),
  // Requests several tests share: one without nonce, two certificates with a nonce, a SHA-256 CertID.
  ['ocsp', '-issuer', 'ca.pem', '-cert', 'leaf2.pem', '-no_nonce', '-reqout', 'q-good.der'],
  ['ocsp', '-issuer', 'ca.pem', '-cert', 'leaf1.pem', '-cert', 'leaf2.pem', '-reqout', 'q-nonce.der'],
  ['ocsp', '-sha256', '-issuer', 'ca.pem', '-cert', 'leaf3.pem', '-reqout', 'req-sha256.der'],
];

let tmp: TempDir;
let issuerName: Buffer;
let issuerSpki: Buffer;
let responderSigner: Signer;
let caSigner: Signer;
let otherKey: KeyObject;
let responderCertDer: Buffer;
let caCert: X509Certificate;
const serials: Record<string, string> = {};

async function run(args: string[]): Promise<string> {
  const r = await openssl(args, { cwd: tmp.path });
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** The subject Name DER of a certificate (TBSCertificate field 6, after the optional [0] version). */
function subjectOf(certDer: Buffer): Buffer {
  const tbs = children(children(readOnly(certDer, 0x30))[0]);
  return tbs[tbs[0].tag === 0xa0 ? 5 : 4].raw;
}

const canonicalSerial = (cert: X509Certificate) => cert.serialNumber.toLowerCase().replace(/^(00)+(?=..)/, '');

/** openssl's ASN1_TIME_print form: "Mar  4 05:06:07 2026 GMT". */
function opensslTime(d: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${months[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} ${d.getUTCFullYear()} GMT`;
}

function statusOf(serial: string, statuses: Record<string, CertStatus>): CertStatus {
  return statuses[serial] ?? { status: 'unknown' };
}

/** The current second, and the answer window openssl accepts (thisUpdate ≤ now < nextUpdate). */
function window() {
  const now = new Date(Math.floor(Date.now() / 1000) * 1000);
  return { now, nextUpdate: new Date(now.getTime() + 3600_000) };
}

async function respond(
  req: OcspRequest,
  statuses: Record<string, CertStatus>,
  opts: { signer?: Signer; certificates?: Buffer[]; nonce?: Buffer | null } = {},
): Promise<Buffer> {
  const { now, nextUpdate } = window();
  const responses: SingleResponseParams[] = req.certIds.map((id) => ({
    certId: id.raw,
    certStatus: statusOf(id.serial, statuses),
    thisUpdate: now,
    nextUpdate,
  }));
  const signer = opts.signer ?? responderSigner;
  return buildOcspResponse({
    responderPublicKeyInfo: signer.publicKeyInfo,
    producedAt: now,
    responses,
    nonce: opts.nonce === undefined ? req.nonce : opts.nonce,
    certificates: opts.certificates ?? [responderCertDer],
    signer,
  });
}

beforeAll(async () => {
  tmp = new TempDir();
  tmp.file('responder.ext', RESPONDER_EXT);
  tmp.file('leaf.ext', LEAF_EXT);
  for (const args of SETUP) await run(args);
  caCert = new X509Certificate(tmp.read('ca.pem'));
  issuerName = subjectOf(caCert.raw);
  issuerSpki = caCert.publicKey.export({ type: 'spki', format: 'der' });
  responderCertDer = new X509Certificate(tmp.read('responder.pem')).raw;
  responderSigner = softwareSigner({ privateKey: createPrivateKey(tmp.read('responder.key')), algorithm: 'P-256' });
  caSigner = softwareSigner({ privateKey: createPrivateKey(tmp.read('ca.key')), algorithm: 'P-256' });
  otherKey = createPrivateKey(tmp.read('other.key'));
  for (const name of ['leaf1', 'leaf2', 'leaf3']) serials[name] = canonicalSerial(new X509Certificate(tmp.read(`${name}.pem`)));
});

afterAll(() => tmp?.cleanup());

describe('requests made by openssl ocsp', () => {
  it('parses a one-certificate request with a nonce: serial, CertID bytes equal to certIdFor, nonce', async () => {
    await run(['ocsp', '-issuer', 'ca.pem', '-cert', 'leaf1.pem', '-reqout', 'req-nonce.der']);
    const req = parseOcspRequest(tmp.read('req-nonce.der'));
    expect(serials.leaf1).toBe('f1e2d3c4b5a69788');
    expect(req.certIds).toHaveLength(1);
    const [id] = req.certIds;
    expect(id.hashAlgorithm).toBe('sha1');
    expect(id.serial).toBe('f1e2d3c4b5a69788');
    expect(id.raw).toEqual(certIdFor({ issuerName, issuerPublicKeyInfo: issuerSpki, serial: serials.leaf1 }));
    // openssl 3.0 sends a 16-octet nonce wrapped in an OCTET STRING (RFC 8954 §2.1)
    expect(req.nonce).toHaveLength(18);
    expect(req.nonce!.subarray(0, 2).toString('hex')).toBe('0410');
    expect(req.signed).toBe(false);
  });

  it('parses a request made with -no_nonce', async () => {
    await run(['ocsp', '-issuer', 'ca.pem', '-cert', 'leaf2.pem', '-no_nonce', '-reqout', 'req-plain.der']);
    const req = parseOcspRequest(tmp.read('req-plain.der'));
    expect(req.nonce).toBeNull();
    expect(req.certIds.map((c) => c.serial)).toEqual(['1002']);
  });

  it('parses a request for two certificates, in order', async () => {
    await run(['ocsp', '-issuer', 'ca.pem', '-cert', 'leaf1.pem', '-cert', 'leaf2.pem', '-reqout', 'req-two.der']);
    const req = parseOcspRequest(tmp.read('req-two.der'));
    expect(req.certIds.map((c) => c.serial)).toEqual([serials.leaf1, serials.leaf2]);
    expect(req.certIds[1].raw).toEqual(certIdFor({ issuerName, issuerPublicKeyInfo: issuerSpki, serial: '1002' }));
  });

  it('parses SHA-256 CertIDs (openssl ocsp -sha256) equal to certIdFor(…, sha256)', async () => {
    const [id] = parseOcspRequest(tmp.read('req-sha256.der')).certIds;
    expect(id.hashAlgorithm).toBe('sha256');
    expect(id.issuerKeyHash).toHaveLength(32);
    expect(id.raw).toEqual(certIdFor({ issuerName, issuerPublicKeyInfo: issuerSpki, serial: '1003', hashAlgorithm: 'sha256' }));
  });
});

describe('responses checked by openssl ocsp', () => {
  const revokedAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 7200_000);
  const statuses = (): Record<string, CertStatus> => ({
    [serials.leaf1]: { status: 'revoked', revokedAt, reason: 1 },
    [serials.leaf2]: { status: 'good' },
  });

  /** `openssl ocsp -respin` for the status lines of the given certificates (-no_nonce: the request is rebuilt from -cert). */
  async function check(resp: string, certs: string[], extra: string[] = [], digest: string[] = []) {
    // A digest option (-sha256) must come before the -cert it applies to.
    const args = ['ocsp', '-respin', resp, '-issuer', 'ca.pem', ...digest, ...certs.flatMap((c) => ['-cert', c]), '-no_nonce', ...extra];
    return openssl(args, { cwd: tmp.path });
  }

  it('good: "Response verify OK" with the delegated responder (EKU OCSPSigning, noCheck) and whole-second times', async () => {
    const der = await respond(parseOcspRequest(tmp.read('q-good.der')), statuses());
    tmp.file('r-good.der', der);
    const r = await check('r-good.der', ['leaf2.pem'], ['-CAfile', 'ca.pem']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('Response verify OK');
    expect(r.stdout).toContain('leaf2.pem: good');
    const { thisUpdate, nextUpdate } = parseOcspResponse(der).responses[0];
    expect(r.stdout).toContain(`This Update: ${opensslTime(thisUpdate)}`);
    expect(r.stdout).toContain(`Next Update: ${opensslTime(nextUpdate!)}`);

    // pkijs, as a second reader, finds the answer for leaf2 and reads it as good (0).
    const leaf = pkijs.Certificate.fromBER(new Uint8Array(new X509Certificate(tmp.read('leaf2.pem')).raw));
    const issuer = pkijs.Certificate.fromBER(new Uint8Array(caCert.raw));
    expect(await pkijs.OCSPResponse.fromBER(new Uint8Array(der)).getCertificateStatus(leaf, issuer)).toEqual({ isForCertificate: true, status: 0 });
  });

  it('revoked: "Reason: keyCompromise" and the revocation time', async () => {
    await run(['ocsp', '-issuer', 'ca.pem', '-cert', 'leaf1.pem', '-no_nonce', '-reqout', 'q-revoked.der']);
    tmp.file('r-revoked.der', await respond(parseOcspRequest(tmp.read('q-revoked.der')), statuses()));
    const r = await check('r-revoked.der', ['leaf1.pem'], ['-CAfile', 'ca.pem']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('Response verify OK');
    expect(r.stdout).toContain('leaf1.pem: revoked');
    expect(r.stdout).toContain('Reason: keyCompromise');
    expect(r.stdout).toContain(`Revocation Time: ${opensslTime(revokedAt)}`);
    const leaf = pkijs.Certificate.fromBER(new Uint8Array(new X509Certificate(tmp.read('leaf1.pem')).raw));
    const issuer = pkijs.Certificate.fromBER(new Uint8Array(caCert.raw));
    expect(await pkijs.OCSPResponse.fromBER(new Uint8Array(tmp.read('r-revoked.der'))).getCertificateStatus(leaf, issuer)).toEqual({ isForCertificate: true, status: 1 });
  });

  it('revoked with reason certificateHold, and unspecified printed without a Reason line', async () => {
    await run(['ocsp', '-issuer', 'ca.pem', '-cert', 'leaf1.pem', '-cert', 'leaf2.pem', '-no_nonce', '-reqout', 'q-hold.der']);
    const req = parseOcspRequest(tmp.read('q-hold.der'));
    tmp.file('r-hold.der', await respond(req, {
      [serials.leaf1]: { status: 'revoked', revokedAt, reason: 6 },
      [serials.leaf2]: { status: 'revoked', revokedAt, reason: 0 },
    }));
    const r = await check('r-hold.der', ['leaf1.pem', 'leaf2.pem'], ['-CAfile', 'ca.pem']);
    expect(r.code).toBe(0);
    const [first, second] = r.stdout.split('leaf2.pem:');
    expect(first).toContain('leaf1.pem: revoked');
    expect(first).toContain('Reason: certificateHold');
    expect(second).toContain(' revoked');
    expect(second).not.toContain('Reason:');
  });

  it('unknown', async () => {
    await run(['ocsp', '-issuer', 'ca.pem', '-cert', 'leaf3.pem', '-no_nonce', '-reqout', 'q-unknown.der']);
    tmp.file('r-unknown.der', await respond(parseOcspRequest(tmp.read('q-unknown.der')), statuses()));
    const r = await check('r-unknown.der', ['leaf3.pem'], ['-CAfile', 'ca.pem']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('Response verify OK');
    expect(r.stdout).toContain('leaf3.pem: unknown');
  });

  it('answers a SHA-256 CertID that openssl matches with -sha256', async () => {
    tmp.file('r-sha256.der', await respond(parseOcspRequest(tmp.read('req-sha256.der')), { [serials.leaf3]: { status: 'good' } }));
    const r = await check('r-sha256.der', ['leaf3.pem'], ['-CAfile', 'ca.pem'], ['-sha256']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('Response verify OK');
    expect(r.stdout).toContain('leaf3.pem: good');
    // The answer is for the SHA-256 CertID only: a SHA-1 lookup does not find it.
    const sha1 = await check('r-sha256.der', ['leaf3.pem'], ['-CAfile', 'ca.pem']);
    expect(sha1.stdout).toContain('leaf3.pem: ERROR: No Status found.');
  });

  it('echoes the nonce of a two-certificate request: openssl -reqin checks it, no "Nonce Verify error"', async () => {
    const req = parseOcspRequest(tmp.read('q-nonce.der'));
    expect(req.nonce).not.toBeNull();
    const der = await respond(req, statuses());
    expect(parseOcspResponse(der).nonce).toEqual(req.nonce);
    tmp.file('r-nonce.der', der);
    const withReq = await openssl(['ocsp', '-reqin', 'q-nonce.der', '-respin', 'r-nonce.der', '-CAfile', 'ca.pem'], { cwd: tmp.path });
    expect(withReq.code).toBe(0);
    expect(withReq.stderr).toContain('Response verify OK');
    expect(withReq.stdout + withReq.stderr).not.toMatch(/nonce/i);
    const lines = await check('r-nonce.der', ['leaf1.pem', 'leaf2.pem'], ['-CAfile', 'ca.pem']);
    expect(lines.stdout).toMatch(/leaf1\.pem: revoked[\s\S]*leaf2\.pem: good/);
  });

  it('a wrong nonce is reported by openssl ("Nonce Verify error"), a missing one warned about', async () => {
    const req = parseOcspRequest(tmp.read('q-nonce.der'));
    const wrong = Buffer.concat([Buffer.from([0x04, 0x10]), randomBytes(16)]);
    tmp.file('r-wrong-nonce.der', await respond(req, statuses(), { nonce: wrong }));
    const r = await openssl(['ocsp', '-reqin', 'q-nonce.der', '-respin', 'r-wrong-nonce.der', '-CAfile', 'ca.pem'], { cwd: tmp.path });
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain('Nonce Verify error');

    tmp.file('r-no-nonce.der', await respond(req, statuses(), { nonce: null }));
    const missing = await openssl(['ocsp', '-reqin', 'q-nonce.der', '-respin', 'r-no-nonce.der', '-CAfile', 'ca.pem'], { cwd: tmp.path });
    expect(missing.stdout + missing.stderr).toContain('WARNING: no nonce in response');
  });

  it('a response signed with the wrong key fails verification in openssl', async () => {
    const req = parseOcspRequest(tmp.read('q-good.der'));
    // Claims the responder (its ResponderID and certificate) but is signed by another key.
    const wrongSigner: Signer = { ...softwareSigner({ privateKey: otherKey, algorithm: 'P-256' }), publicKeyInfo: responderSigner.publicKeyInfo };
    tmp.file('r-wrong-key.der', await respond(req, statuses(), { signer: wrongSigner }));
    const r = await check('r-wrong-key.der', ['leaf2.pem'], ['-CAfile', 'ca.pem']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Response Verify Failure');
    expect(r.stderr).not.toContain('Response verify OK');
  });

  it('a response signed by the CA itself, without certs, verifies with -VAfile ca.pem', async () => {
    const req = parseOcspRequest(tmp.read('q-good.der'));
    tmp.file('r-by-ca.der', await respond(req, statuses(), { signer: caSigner, certificates: [] }));
    expect(parseOcspResponse(tmp.read('r-by-ca.der')).certificates).toEqual([]);
    const r = await check('r-by-ca.der', ['leaf2.pem'], ['-VAfile', 'ca.pem']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('Response verify OK');
    expect(r.stdout).toContain('leaf2.pem: good');
  });

  it('openssl prints our response with -resp_text: ResponderID byKey, producedAt, the responder certificate', async () => {
    tmp.file('r-text.der', await respond(parseOcspRequest(tmp.read('q-good.der')), statuses()));
    const r = await openssl(['ocsp', '-respin', 'r-text.der', '-resp_text', '-noverify'], { cwd: tmp.path });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('OCSP Response Status: successful (0x0)');
    expect(r.stdout).toContain('Response Type: Basic OCSP Response');
    expect(r.stdout).toContain('Version: 1 (0x0)');
    expect(r.stdout).toMatch(/Responder Id: [0-9A-F]{40}/);
    expect(r.stdout).toMatch(/Produced At: \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} GMT/);
    expect(r.stdout).toContain('Subject: CN=Test OCSP Responder');
  });
});

describe('malformed requests', () => {
  function outcome(input: Buffer): string {
    try {
      parseOcspRequest(input);
      return 'parsed';
    } catch (err) {
      return err instanceof PkiError ? `PkiError:${err.code}` : `other:${(err as Error)?.name}:${String(err)}`;
    }
  }

  /** mulberry32: a small seeded PRNG, so a failing mutation is reproducible. */
  function prng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  it('every truncation of an openssl request is malformed', async () => {
    const der = tmp.read('q-nonce.der');
    expect(outcome(der)).toBe('parsed');
    const seen = new Set<string>();
    for (let length = 0; length < der.length; length++) seen.add(outcome(der.subarray(0, length)));
    expect([...seen]).toEqual(['PkiError:malformed']);
  });

  it('4,000 seeded random byte mutations give malformed or a parse, never another exception', async () => {
    const der = tmp.read('q-nonce.der');
    const random = prng(20260101);
    const counts: Record<string, number> = {};
    for (let i = 0; i < 4000; i++) {
      const mutated = Buffer.from(der);
      const flips = 1 + Math.floor(random() * 3);
      for (let f = 0; f < flips; f++) mutated[Math.floor(random() * mutated.length)] ^= 1 + Math.floor(random() * 255);
      const kind = outcome(mutated);
      counts[kind] = (counts[kind] ?? 0) + 1;
    }
    expect(Object.keys(counts).filter((k) => k !== 'parsed' && k !== 'PkiError:malformed')).toEqual([]);
    expect(counts['PkiError:malformed']).toBeGreaterThan(2000);
  });

  it('an empty body, a huge length prefix and an indefinite length are malformed', () => {
    expect(outcome(Buffer.alloc(0))).toBe('PkiError:malformed');
    expect(outcome(Buffer.from('3084ffffffff', 'hex'))).toBe('PkiError:malformed');
    const der = tmp.read('q-nonce.der');
    const huge = Buffer.from(der);
    huge[1] = 0x84; // claims a 4-octet length, then reads the content as length octets
    expect(outcome(huge)).toBe('PkiError:malformed');
    expect(outcome(Buffer.concat([Buffer.from('3080', 'hex'), der.subarray(2), Buffer.from('0000', 'hex')]))).toBe('PkiError:malformed');
  });

  it('a request with 17 CertIDs (openssl ocsp with 17 -cert) is malformed, 16 parse', async () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => ['-cert', `leaf${(i % 3) + 1}.pem`]).flat();
    await run(['ocsp', '-issuer', 'ca.pem', ...many(17), '-reqout', 'req-17.der']);
    await run(['ocsp', '-issuer', 'ca.pem', ...many(16), '-reqout', 'req-16.der']);
    expect(outcome(tmp.read('req-17.der'))).toBe('PkiError:malformed');
    expect(parseOcspRequest(tmp.read('req-16.der')).certIds).toHaveLength(16);
  });
});
