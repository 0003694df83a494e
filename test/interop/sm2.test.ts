/**
 * SM2 artifacts built with pki/ — root CA, tier CA, device certificate, CRL, OCSP response, CSR,
 * PKCS#12 — checked by the openssl 3.0 CLI with the standard identity and by a second SM2
 * implementation (sm-crypto), never by our own verifier. Each artifact has a twin signed with the
 * empty identity (what Node and OpenSSL 3.0 make by default), and that twin must fail the same checks.
 *
 * How openssl 3.0 is asked (the issue's traps): per link `verify -partial_chain -vfyopt distid:…`
 * (the option reaches only the target certificate), and `pkeyutl -verify -rawin -digest sm3 -pkeyopt
 * distid:…` over the signed bytes cut out with `asn1parse -strparse`. `crl -verify` has no distid
 * option, checks the empty identity, and exits 0 either way: its output is read (so does `req -verify`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrivateKey } from 'node:crypto';
import { buildCertificate, randomSerial } from '../../pki/certificate.ts';
import { readCertificate } from '../../pki/certificate-reader.ts';
import { buildCrl, parseCrl } from '../../pki/crl.ts';
import { buildCsr, checkCsrProofOfPossession, parseCsr, verifyCsr } from '../../pki/csr.ts';
import { toPem } from '../../pki/der.ts';
import { generateKeyPair, keyIdentifier, publicKeyInfoOf } from '../../pki/key-pair.ts';
import { encodeName } from '../../pki/name.ts';
import { certIdFor } from '../../pki/ocsp-request.ts';
import { buildOcspResponse, parseOcspResponse } from '../../pki/ocsp-response.ts';
import { certificateToPem } from '../../pki/pem.ts';
import { buildPkcs12 } from '../../pki/pkcs12.ts';
import { PkiError } from '../../pki/pki-error.ts';
import { endEntityExtensions, rootCaExtensions, tierCaExtensions } from '../../pki/profiles.ts';
import type { Signer } from '../../pki/signer.ts';
import { sm2Signer } from '../../pki/sm2-signer.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import { SigningPool } from '../../server/ca/signing-pool.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { SM2_SPKI_PREFIX, SM2_WITH_SM3_DER, smCryptoVerifies } from '../helpers/sm2-independent.ts';

const NOW = new Date('2026-06-01T08:00:00Z');
const AT = String(NOW.getTime() / 1000 + 86_400);
const DAY = 86_400_000;
const DISTID = 'distid:1234567812345678';
const POLICY = '1.3.6.1.4.1.32473.1.2';
const LINKS = { caIssuersUrl: 'http://pki.xt.gov.intranet/ca/t2.crt', ocspUrl: 'http://pki.xt.gov.intranet/ocsp', crlUrl: 'http://pki.xt.gov.intranet/crl/t2.crl' };

const dir = new TempDir();
afterAll(() => dir.cleanup());

interface Ca {
  name: Buffer;
  signer: Signer;
  /** The same key signing with the empty identity. */
  emptySigner: Signer;
  der: Buffer;
}

/** The signed bytes and the signature value of a SIGNED{…} structure, cut out by `openssl asn1parse -strparse`. */
async function cutByOpenssl(der: Buffer, name: string): Promise<{ tbs: Buffer; signature: Buffer }> {
  const parsed = await openssl(['asn1parse', '-inform', 'DER', '-in', dir.file(`${name}.der`, der)]);
  expect(parsed.code).toBe(0);
  const top = parsed.stdout.split('\n').filter((l) => /d=1 /.test(l));
  const offset = (line: string) => line.split(':')[0].trim();
  expect(top).toHaveLength(3);
  expect(top[2]).toContain('BIT STRING');
  for (const [part, line] of [['tbs', top[0]], ['sig', top[2]]] as const) {
    const r = await openssl(['asn1parse', '-inform', 'DER', '-in', dir.file(`${name}.der`), '-strparse', offset(line), '-noout', '-out', dir.file(`${name}.${part}`)]);
    expect(r.code).toBe(0);
  }
  return { tbs: dir.read(`${name}.tbs`), signature: dir.read(`${name}.sig`) };
}

/** `openssl pkeyutl -verify` of `name`'s cut-out signature with the standard identity. */
async function pkeyutlVerify(name: string, issuerSpki: Buffer): Promise<string> {
  const pub = dir.file(`${name}.issuer-pub.pem`, toPem(issuerSpki, 'PUBLIC KEY'));
  const r = await openssl(['pkeyutl', '-verify', '-rawin', '-digest', 'sm3', '-pkeyopt', DISTID, '-pubin', '-inkey', pub, '-in', dir.file(`${name}.tbs`), '-sigfile', dir.file(`${name}.sig`)]);
  return `${r.code} ${(r.stdout + r.stderr).split('\n')[0]}`;
}

const VERIFIED = '0 Signature Verified Successfully';
const NOT_VERIFIED = '1 Signature Verification Failure';

/** Both independent checks of an artifact and of its empty-identity twin. */
async function expectStandardOnly(name: string, der: Buffer, twin: Buffer, issuerSpki: Buffer, ourTbs: Buffer): Promise<void> {
  const good = await cutByOpenssl(der, name);
  expect(good.tbs).toEqual(ourTbs); // openssl cuts out the bytes our builder signed
  expect(await pkeyutlVerify(name, issuerSpki)).toBe(VERIFIED);
  expect(smCryptoVerifies({ publicKeyInfo: issuerSpki, data: good.tbs, signature: good.signature })).toBe(true);
  const bad = await cutByOpenssl(twin, `${name}-empty`);
  expect(await pkeyutlVerify(`${name}-empty`, issuerSpki)).toBe(NOT_VERIFIED);
  expect(smCryptoVerifies({ publicKeyInfo: issuerSpki, data: bad.tbs, signature: bad.signature })).toBe(false);
  expect(smCryptoVerifies({ publicKeyInfo: issuerSpki, data: bad.tbs, signature: bad.signature, userId: '' })).toBe(true); // it is a real signature, of the other identity
}

async function sm2Ca(): Promise<Pick<Ca, 'signer' | 'emptySigner'>> {
  const { privateKey } = await generateKeyPair('SM2');
  return { signer: softwareSigner({ privateKey, algorithm: 'SM2' }), emptySigner: sm2Signer({ privateKey, id: Buffer.alloc(0) }) };
}

function certParams(p: { issuer: Ca | null; name: Buffer; signer: Signer; publicKeyInfo: Buffer; extensions: ReturnType<typeof rootCaExtensions>; serial: Buffer }) {
  return {
    serial: p.serial,
    issuer: p.issuer?.name ?? p.name,
    subject: p.name,
    notBefore: new Date(NOW.getTime() - 3_600_000),
    notAfter: new Date(NOW.getTime() + 365 * DAY),
    publicKeyInfo: p.publicKeyInfo,
    extensions: p.extensions,
  };
}

let root: Ca;
let tier: Ca;
const certs = new Map<string, { der: Buffer; twin: Buffer; issuer: Ca }>();
let leafSerial: Buffer;

beforeAll(async () => {
  const rootKeys = await sm2Ca();
  const rootName = encodeName([{ type: 'C', value: 'CN' }, { type: 'O', value: '湘潭市电子政务内网' }, { type: 'CN', value: '湘潭市国密根CA' }]);
  const rootParams = certParams({ issuer: null, name: rootName, ...rootKeys, publicKeyInfo: rootKeys.signer.publicKeyInfo, extensions: rootCaExtensions({ publicKeyInfo: rootKeys.signer.publicKeyInfo }), serial: randomSerial() });
  root = { name: rootName, ...rootKeys, der: await buildCertificate({ ...rootParams, signer: rootKeys.signer }) };
  certs.set('root', { der: root.der, twin: await buildCertificate({ ...rootParams, signer: rootKeys.emptySigner }), issuer: root });

  const tierKeys = await sm2Ca();
  const tierName = encodeName([{ type: 'C', value: 'CN' }, { type: 'O', value: '湘潭市电子政务内网' }, { type: 'CN', value: '雨湖区受限级国密CA' }]);
  const tierParams = certParams({
    issuer: root,
    name: tierName,
    ...tierKeys,
    publicKeyInfo: tierKeys.signer.publicKeyInfo,
    extensions: tierCaExtensions({ publicKeyInfo: tierKeys.signer.publicKeyInfo, issuerKeyId: keyIdentifier(root.signer.publicKeyInfo), policyOid: POLICY, links: LINKS }),
    serial: randomSerial(),
  });
  tier = { name: tierName, ...tierKeys, der: await buildCertificate({ ...tierParams, signer: root.signer }) };
  certs.set('tier', { der: tier.der, twin: await buildCertificate({ ...tierParams, signer: root.emptySigner }), issuer: root });

  const { publicKey } = await generateKeyPair('SM2');
  const leafKey = publicKeyInfoOf(publicKey);
  leafSerial = randomSerial();
  const leafParams = certParams({
    issuer: tier,
    name: encodeName([{ type: 'C', value: 'CN' }, { type: 'O', value: '中共雨湖区委员会' }, { type: 'CN', value: 'gw.yuhu.xt.gov.intranet' }]),
    signer: tier.signer,
    publicKeyInfo: leafKey,
    extensions: endEntityExtensions({ profile: 'device', publicKeyInfo: leafKey, issuerKeyId: keyIdentifier(tier.signer.publicKeyInfo), policyOid: POLICY, links: LINKS, dns: ['gw.yuhu.xt.gov.intranet'] }),
    serial: leafSerial,
  });
  certs.set('device', { der: await buildCertificate({ ...leafParams, signer: tier.signer }), twin: await buildCertificate({ ...leafParams, signer: tier.emptySigner }), issuer: tier });
  for (const [name, c] of certs) {
    dir.file(`${name}.pem`, certificateToPem(c.der));
    dir.file(`${name}-empty.pem`, certificateToPem(c.twin));
  }
});

describe('SM2 certificates', () => {
  it('are encoded as the standards write them: SM2-with-SM3 without parameters, id-ecPublicKey on curve SM2', async () => {
    for (const [name, { der }] of certs) {
      const fields = readCertificate(der);
      expect(fields.signatureAlgorithm, name).toEqual(SM2_WITH_SM3_DER);
      expect(fields.tbs.includes(SM2_WITH_SM3_DER), name).toBe(true); // TBSCertificate.signature too
      expect(fields.publicKeyInfo.subarray(0, SM2_SPKI_PREFIX.length), name).toEqual(SM2_SPKI_PREFIX);
    }
    const text = await openssl(['x509', '-in', dir.file('device.pem'), '-noout', '-text']);
    expect(text.stdout).toContain('Signature Algorithm: SM2-with-SM3');
    expect(text.stdout).toContain('ASN1 OID: SM2');
  });

  for (const name of ['root', 'tier', 'device']) {
    it(`${name}: pkeyutl and sm-crypto verify it with 1234567812345678; its empty-identity twin fails both`, async () => {
      const { der, twin, issuer } = certs.get(name)!;
      await expectStandardOnly(`cert-${name}`, der, twin, issuer.signer.publicKeyInfo, readCertificate(der).tbs);
    });
  }

  for (const [name, issuer] of [['tier', 'root'], ['device', 'tier']]) {
    it(`${name}: openssl verify -partial_chain -vfyopt distid against its issuer says OK; the twin fails with error 7`, async () => {
      const args = (file: string) => ['verify', '-attime', AT, '-partial_chain', '-vfyopt', DISTID, '-CAfile', dir.file(`${issuer}.pem`), dir.file(file)];
      const ok = await openssl(args(`${name}.pem`));
      expect([ok.code, ok.stdout.trim()]).toEqual([0, `${dir.file(`${name}.pem`)}: OK`]);
      const bad = await openssl(args(`${name}-empty.pem`));
      expect(bad.code).toBe(2);
      expect(bad.stdout + bad.stderr).toContain('error 7 at 0 depth lookup: certificate signature failure');
    });
  }

  it('the device certificate passes -purpose sslserver and sslclient per link', async () => {
    for (const purpose of ['sslserver', 'sslclient']) {
      const r = await openssl(['verify', '-attime', AT, '-partial_chain', '-vfyopt', DISTID, '-purpose', purpose, '-CAfile', dir.file('tier.pem'), dir.file('device.pem')]);
      expect([purpose, r.code]).toEqual([purpose, 0]);
    }
  });
});

describe('an SM2 CRL', () => {
  const crlOf = (signer: Signer) =>
    buildCrl({
      issuer: tier.name,
      authorityKeyId: keyIdentifier(tier.signer.publicKeyInfo),
      thisUpdate: NOW,
      nextUpdate: new Date(NOW.getTime() + DAY),
      crlNumber: 7n,
      entries: [{ serial: leafSerial.toString('hex'), revokedAt: NOW, reason: 1 }],
      signer,
    });

  it('verifies with pkeyutl and sm-crypto under 1234567812345678, its empty-identity twin does not', async () => {
    const der = await crlOf(tier.signer);
    const twin = await crlOf(tier.emptySigner);
    const parsed = parseCrl(der);
    expect(parsed.signatureAlgorithm).toEqual(SM2_WITH_SM3_DER);
    await expectStandardOnly('crl', der, twin, tier.signer.publicKeyInfo, parsed.tbs);
    const text = await openssl(['crl', '-inform', 'DER', '-in', dir.file('crl.der'), '-noout', '-text']);
    expect(text.stdout).toContain('Signature Algorithm: SM2-with-SM3');
    expect(text.stdout).toContain(`Serial Number: ${leafSerial.toString('hex').toUpperCase()}`);
  });

  it('`openssl crl -verify` (3.0) checks the empty identity only and exits 0 either way: its output, not its code, tells', async () => {
    const version = (await openssl(['version'])).stdout;
    const run = (file: string) => openssl(['crl', '-inform', 'DER', '-in', dir.file(file), '-CAfile', dir.file('tier.pem'), '-verify', '-noout']);
    const standard = await run('crl.der');
    const empty = await run('crl-empty.der');
    expect([standard.code, empty.code]).toEqual([0, 0]);
    if (/^OpenSSL 3\./.test(version)) {
      // OpenSSL 4.0 makes the standard identity its default; then the two flip.
      expect(standard.stdout + standard.stderr).toContain('verify failure');
      expect(empty.stdout + empty.stderr).toContain('verify OK');
    }
  });
});

describe('an SM2 OCSP response', () => {
  const responseOf = (signer: Signer) =>
    buildOcspResponse({
      responderPublicKeyInfo: tier.signer.publicKeyInfo,
      producedAt: NOW,
      responses: [
        {
          certId: certIdFor({ issuerName: tier.name, issuerPublicKeyInfo: tier.signer.publicKeyInfo, serial: leafSerial.toString('hex') }),
          certStatus: { status: 'revoked', revokedAt: NOW, reason: 1 },
          thisUpdate: NOW,
          nextUpdate: new Date(NOW.getTime() + 4 * 3_600_000),
        },
      ],
      signer,
    });

  /** The BasicOCSPResponse inside responseBytes, cut out by openssl. */
  async function basicOf(der: Buffer, name: string): Promise<Buffer> {
    const parsed = await openssl(['asn1parse', '-inform', 'DER', '-in', dir.file(`${name}.der`, der)]);
    const octets = parsed.stdout.split('\n').find((l) => /d=3 .*prim: OCTET STRING/.test(l))!;
    const r = await openssl(['asn1parse', '-inform', 'DER', '-in', dir.file(`${name}.der`), '-strparse', octets.split(':')[0].trim(), '-noout', '-out', dir.file(`${name}.basic`)]);
    expect(r.code).toBe(0);
    return dir.read(`${name}.basic`);
  }

  it('verifies with pkeyutl and sm-crypto under 1234567812345678 over ResponseData, its empty-identity twin does not', async () => {
    const der = await responseOf(tier.signer);
    const parsed = parseOcspResponse(der);
    expect(parsed.signatureAlgorithm).toEqual(SM2_WITH_SM3_DER);
    const basic = await basicOf(der, 'ocsp');
    const twinBasic = await basicOf(await responseOf(tier.emptySigner), 'ocsp-empty');
    await expectStandardOnly('ocsp-basic', basic, twinBasic, tier.signer.publicKeyInfo, parsed.tbsResponseData!);
    const text = await openssl(['ocsp', '-respin', dir.file('ocsp.der'), '-resp_text', '-noverify']);
    expect(text.stdout).toContain('Signature Algorithm: SM2-with-SM3');
    expect(text.stdout).toContain('Cert Status: revoked');
  });
});

describe('SM2 CSRs made by openssl req', () => {
  let key: string;
  beforeAll(async () => {
    key = dir.file('holder-sm2.key');
    expect((await openssl(['genpkey', '-algorithm', 'SM2', '-out', key])).code).toBe(0);
  });

  async function req(name: string, extra: string[]): Promise<Buffer> {
    const out = dir.file(`${name}.csr`);
    const r = await openssl(['req', '-new', '-key', key, '-sm3', ...extra, '-subj', '/C=CN/CN=holder', '-outform', 'DER', '-out', out]);
    expect(r.code).toBe(0);
    return dir.read(`${name}.csr`);
  }

  it('`req -sm3` (empty identity) is accepted as popIdentity "empty"', async () => {
    const csr = parseCsr(await req('csr-empty', []));
    expect(csr.keyAlgorithm).toBe('SM2');
    expect(checkCsrProofOfPossession(csr)).toEqual({ popIdentity: 'empty' });
  });

  it('`req -sm3 -sigopt distid:1234567812345678` is accepted as popIdentity "default"', async () => {
    const der = await req('csr-default', ['-sigopt', DISTID]);
    expect(checkCsrProofOfPossession(parseCsr(der))).toEqual({ popIdentity: 'default' });
    const check = await openssl(['req', '-verify', '-inform', 'DER', '-in', dir.file('csr-default.csr'), '-vfyopt', DISTID, '-noout']);
    expect((check.stdout + check.stderr).trim()).toBe('Certificate request self-signature verify OK');
  });

  it('a CSR we build (buildCsr, SM2 signer) passes `openssl req -verify -vfyopt distid:…`, and its empty-identity twin does not', async () => {
    const { privateKey } = await generateKeyPair('SM2');
    const subject = encodeName([{ type: 'C', value: 'CN' }, { type: 'CN', value: '张三' }]);
    const ours = await buildCsr({ subject, signer: softwareSigner({ privateKey, algorithm: 'SM2' }) });
    const twin = await buildCsr({ subject, signer: sm2Signer({ privateKey, id: Buffer.alloc(0) }) });
    const check = (name: string, der: Buffer) => openssl(['req', '-verify', '-inform', 'DER', '-in', dir.file(name, der), '-vfyopt', DISTID, '-noout']);
    const ok = await check('ours.csr', ours);
    expect([ok.code, (ok.stdout + ok.stderr).trim()]).toEqual([0, 'Certificate request self-signature verify OK']);
    const bad = await check('ours-empty.csr', twin);
    // Like `crl -verify`, `req -verify` of OpenSSL 3.0 exits 0 on a failed signature: read the output.
    expect([bad.code, (bad.stdout + bad.stderr).trim()]).toEqual([0, 'Certificate request self-signature verify failure']);
  });

  it('a tampered CSR, or one signed with another identity, is refused with bad-signature', async () => {
    const tampered = Buffer.from(await req('csr-tampered', ['-sigopt', DISTID]));
    tampered[tampered.length - 3] ^= 0x01;
    const other = await req('csr-alice', ['-sigopt', 'distid:ALICE123@YAHOO.COM']);
    for (const der of [tampered, other]) {
      let caught: unknown;
      try {
        verifyCsr(parseCsr(der));
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(PkiError);
      expect([(caught as PkiError).code, (caught as PkiError).message]).toEqual(['bad-signature', 'CSR signature does not verify']);
    }
  });
});

describe('a PKCS#12 holding a server-made SM2 key', () => {
  it('`openssl pkcs12 -info -nodes` reads it, the key matches the certificate, and the key signs standard SM2 after reload', async () => {
    const { privateKey } = await generateKeyPair('SM2');
    const spki = publicKeyInfoOf(privateKey);
    const cert = await buildCertificate({
      ...certParams({
        issuer: tier,
        name: encodeName([{ type: 'C', value: 'CN' }, { type: 'CN', value: '张三' }]),
        signer: tier.signer,
        publicKeyInfo: spki,
        extensions: endEntityExtensions({ profile: 'user-sign', publicKeyInfo: spki, issuerKeyId: keyIdentifier(tier.signer.publicKeyInfo), policyOid: POLICY, links: LINKS, email: ['zhang.san@yuhu.xt.gov.intranet'] }),
        serial: randomSerial(),
      }),
      signer: tier.signer,
    });
    const p12 = await buildPkcs12({ privateKey, certificate: cert, chain: [tier.der, root.der], passphrase: 'sm2 p12 test', friendlyName: '张三', iterations: 2048 });
    const info = await openssl(['pkcs12', '-in', dir.file('holder.p12', p12), '-info', '-nodes', '-passin', 'pass:sm2 p12 test']);
    expect(info.code).toBe(0);
    expect(info.stderr).toContain('Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256');
    const keyPem = info.stdout.match(/-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/)![0];
    const pub = await openssl(['pkey', '-in', dir.file('holder-key.pem', keyPem), '-pubout', '-outform', 'DER', '-out', dir.file('holder-pub.der')]);
    expect(pub.code).toBe(0);
    expect(dir.read('holder-pub.der')).toEqual(spki);
    const certPub = await openssl(['x509', '-in', dir.file('holder-cert.pem', certificateToPem(cert)), '-noout', '-pubkey']);
    expect(certPub.stdout).toBe(toPem(spki, 'PUBLIC KEY'));

    // The key as the holder gets it back signs SM2 with the standard identity, checked by openssl.
    const reloaded = sm2Signer({ privateKey: createPrivateKey(keyPem) });
    const data = Buffer.from('document signed by 张三');
    dir.file('holder.tbs', data);
    dir.file('holder.sig', await reloaded.sign(data));
    expect(await pkeyutlVerify('holder', spki)).toBe(VERIFIED);
  });
});

describe('SM2 on a signing thread (server/ca/signing-pool.ts rebuilds the signer from inMemoryKey)', () => {
  it('a thread signs an SM2 certificate and OCSP answer that openssl verifies with the standard identity', async () => {
    const pool = new SigningPool(1);
    try {
      expect(tier.signer.inMemoryKey?.algorithm).toBe('SM2');
      const { publicKey } = await generateKeyPair('SM2');
      const leafKey = publicKeyInfoOf(publicKey);
      const serial = randomSerial();
      const signed = await pool.signIssuance(
        {
          serial,
          issuer: { name: tier.name, publicKeyInfo: tier.signer.publicKeyInfo, keyId: keyIdentifier(tier.signer.publicKeyInfo), notAfter: new Date(NOW.getTime() + 365 * DAY) },
          subject: encodeName([{ type: 'CN', value: 'vpn-gw-02.yuhu.xt.gov.intranet' }]),
          publicKeyInfo: leafKey,
          notBefore: NOW,
          notAfter: new Date(NOW.getTime() + 300 * DAY),
          profile: 'device',
          policyOid: POLICY,
          links: LINKS,
          names: { dns: ['vpn-gw-02.yuhu.xt.gov.intranet'], ip: [], email: [] },
          ocsp: { thisUpdate: NOW, nextUpdate: new Date(NOW.getTime() + 3_600_000), responderCertificate: tier.der },
        },
        { ca: tier.signer, responder: tier.signer },
      );
      const path = dir.file('threaded.pem', certificateToPem(signed.certificate));
      const verify = await openssl(['verify', '-attime', AT, '-partial_chain', '-vfyopt', DISTID, '-CAfile', dir.file('tier.pem'), path]);
      expect([verify.code, verify.stdout.trim()]).toEqual([0, `${path}: OK`]);
      const parsed = parseOcspResponse(signed.ocsp);
      expect(smCryptoVerifies({ publicKeyInfo: tier.signer.publicKeyInfo, data: parsed.tbsResponseData!, signature: parsed.signature! })).toBe(true);
      // And an SM2 CSR's proof of possession on the thread.
      const good = await buildCsr({ subject: encodeName([{ type: 'CN', value: 'x' }]), signer: tier.signer });
      await expect(pool.verifyCsr(parseCsr(good))).resolves.toBeUndefined();
      const tampered = Buffer.from(good);
      tampered[tampered.length - 4] ^= 0x01;
      const err = await pool.verifyCsr(parseCsr(tampered)).catch((e: unknown) => e);
      expect([(err as PkiError).code, (err as PkiError).message]).toEqual(['bad-signature', 'CSR signature does not verify']);
    } finally {
      await pool.close();
    }
  });
});
