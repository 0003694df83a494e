/**
 * SM2 artifacts built with pki/ — root CA, tier CA, device certificate, CRL, OCSP response —
 * checked by the openssl 3.0 CLI with the standard identity and by a second SM2
 * implementation (sm-crypto), never by our own verifier. Each artifact has a twin signed with the
 * empty identity (what Node and OpenSSL 3.0 make by default), and that twin must fail the same checks.
 *
 * How openssl 3.0 is asked (the issue's traps): per link `verify -partial_chain -vfyopt distid:…`
 * (the option reaches only the target certificate), and `pkeyutl -verify -rawin -digest sm3 -pkeyopt
 * distid:…` over the signed bytes cut out with `asn1parse -strparse`. `crl -verify` has no distid
 * option, checks the empty identity, and exits 0 either way: its output is read. CSRs, PKCS#12 and the
 * signing threads: sm2-enrolment.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCertificate, randomSerial } from '../../pki/certificate.ts';
import { readCertificate } from '../../pki/certificate-reader.ts';
import { buildCrl } from '../../pki/crl.ts';
import { parseCrl } from '../../pki/crl-reader.ts';
import { generateKeyPair, keyIdentifier, publicKeyInfoOf } from '../../pki/key-pair.ts';
import { encodeName } from '../../pki/name.ts';
import { certIdFor } from '../../pki/ocsp-request.ts';
import { buildOcspResponse, parseOcspResponse } from '../../pki/ocsp-response.ts';
import { certificateToPem } from '../../pki/pem.ts';
import { endEntityExtensions } from '../../pki/profiles.ts';
import type { Signer } from '../../pki/signer.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { AT, DAY, DISTID, LINKS, NOT_VERIFIED, NOW, POLICY, VERIFIED, certParams, cutByOpenssl, pkeyutlVerify, sm2Hierarchy, type Sm2Ca } from '../helpers/sm2-fixtures.ts';
import { SM2_SPKI_PREFIX, SM2_WITH_SM3_DER, smCryptoVerifies } from '../helpers/sm2-independent.ts';

const dir = new TempDir();
afterAll(() => dir.cleanup());

/** Both independent checks of an artifact and of its empty-identity twin. */
async function expectStandardOnly(name: string, der: Buffer, twin: Buffer, issuerSpki: Buffer, ourTbs: Buffer): Promise<void> {
  const good = await cutByOpenssl(dir, der, name);
  expect(good.tbs).toEqual(ourTbs); // openssl cuts out the bytes our builder signed
  expect(await pkeyutlVerify(dir, name, issuerSpki)).toBe(VERIFIED);
  expect(smCryptoVerifies({ publicKeyInfo: issuerSpki, data: good.tbs, signature: good.signature })).toBe(true);
  const bad = await cutByOpenssl(dir, twin, `${name}-empty`);
  expect(await pkeyutlVerify(dir, `${name}-empty`, issuerSpki)).toBe(NOT_VERIFIED);
  expect(smCryptoVerifies({ publicKeyInfo: issuerSpki, data: bad.tbs, signature: bad.signature })).toBe(false);
  expect(smCryptoVerifies({ publicKeyInfo: issuerSpki, data: bad.tbs, signature: bad.signature, userId: '' })).toBe(true); // it is a real signature, of the other identity
}

let root: Sm2Ca;
let tier: Sm2Ca;
const certs = new Map<string, { der: Buffer; twin: Buffer; issuer: Sm2Ca }>();
let leafSerial: Buffer;

beforeAll(async () => {
  ({ root, tier } = await sm2Hierarchy());
  certs.set('root', { der: root.der, twin: root.twin, issuer: root });
  certs.set('tier', { der: tier.der, twin: tier.twin, issuer: root });
  const { publicKey } = await generateKeyPair('SM2');
  const leafKey = publicKeyInfoOf(publicKey);
  leafSerial = randomSerial();
  const leafParams = certParams({
    issuer: tier,
    name: encodeName([{ type: 'C', value: 'CN' }, { type: 'O', value: '中共雨湖区委员会' }, { type: 'CN', value: 'gw.yuhu.xt.gov.intranet' }]),
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
