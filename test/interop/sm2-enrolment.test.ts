/**
 * SM2 enrolment against real clients: CSRs made by `openssl req` with the empty identity (OpenSSL
 * 3.0's default) and with `-sigopt distid:1234567812345678` are both accepted and say which identity
 * proved possession; a tampered one is refused; CSRs we build pass `openssl req -verify -vfyopt`
 * (which, like `crl -verify`, exits 0 on failure: its output is read). A PKCS#12 with a server-made
 * SM2 key is read by `openssl pkcs12`, and SM2 issuance runs on a signing thread.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrivateKey } from 'node:crypto';
import { buildCertificate, randomSerial } from '../../pki/certificate.ts';
import { buildCsr, checkCsrProofOfPossession, parseCsr, verifyCsr } from '../../pki/csr.ts';
import { toPem } from '../../pki/der.ts';
import { generateKeyPair, keyIdentifier, publicKeyInfoOf } from '../../pki/key-pair.ts';
import { encodeName } from '../../pki/name.ts';
import { parseOcspResponse } from '../../pki/ocsp-response.ts';
import { certificateToPem } from '../../pki/pem.ts';
import { buildPkcs12 } from '../../pki/pkcs12.ts';
import { PkiError } from '../../pki/pki-error.ts';
import { endEntityExtensions } from '../../pki/profiles.ts';
import { sm2Signer } from '../../pki/sm2-signer.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import { SigningPool } from '../../server/ca/signing-pool.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { AT, DAY, DISTID, LINKS, NOW, POLICY, VERIFIED, certParams, pkeyutlVerify, sm2Hierarchy, type Sm2Ca } from '../helpers/sm2-fixtures.ts';
import { smCryptoVerifies } from '../helpers/sm2-independent.ts';

const dir = new TempDir();
afterAll(() => dir.cleanup());

let root: Sm2Ca;
let tier: Sm2Ca;
beforeAll(async () => {
  ({ root, tier } = await sm2Hierarchy());
  dir.file('tier.pem', certificateToPem(tier.der));
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
    expect(await pkeyutlVerify(dir, 'holder', spki)).toBe(VERIFIED);
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
          issuer: { name: tier.name, publicKeyInfo: tier.signer.publicKeyInfo, keyId: keyIdentifier(tier.signer.publicKeyInfo), notBefore: new Date(NOW.getTime() - DAY), notAfter: new Date(NOW.getTime() + 365 * DAY) },
          subject: encodeName([{ type: 'CN', value: 'vpn-gw-02.yuhu.xt.gov.intranet' }]),
          publicKeyInfo: leafKey,
          notBefore: NOW,
          notAfter: new Date(NOW.getTime() + 300 * DAY),
          profile: 'device',
          policyOid: POLICY,
          names: { dns: ['vpn-gw-02.yuhu.xt.gov.intranet'], ip: [], email: [] },
          permitted: { dns: ['yuhu.xt.gov.intranet'], email: [] },
          links: LINKS,
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
      await expect(pool.verifyCsr(parseCsr(good))).resolves.toEqual({ popIdentity: 'default' });
      const tampered = Buffer.from(good);
      tampered[tampered.length - 4] ^= 0x01;
      const err = await pool.verifyCsr(parseCsr(tampered)).catch((e: unknown) => e);
      expect([(err as PkiError).code, (err as PkiError).message]).toEqual(['bad-signature', 'CSR signature does not verify']);
    } finally {
      await pool.close();
    }
  });
});
