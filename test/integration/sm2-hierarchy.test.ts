// SM2 through the whole service: an all-SM2 hierarchy and two mixed ones (an SM2 tier CA under an
// ECDSA root, and an ECDSA tier CA under an SM2 root) made by the key ceremony from configuration,
// holders enrolling with openssl's SM2 CSRs (empty identity and the standard one) and with
// server-made SM2 keys, then CRLs and OCSP. Every SM2 signature is checked by openssl 3.0 with the
// standard identity — per link `verify -partial_chain -vfyopt distid:…` and `pkeyutl -verify -rawin
// -digest sm3 -pkeyopt distid:…` over the bytes openssl cuts out — and by sm-crypto; each must fail
// under the empty identity. GM/T 0015: no basicConstraints on SM2 end-entity certificates, 16-octet
// serials, device certificates for serverAuth and clientAuth.
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { call, startTestTierca, type TestTierca } from '../helpers/tierca.ts';
import { caPem, smallConfig } from '../helpers/rotation.ts';
import { snapshotCounts } from '../helpers/database.ts';
import { runTierca } from '../helpers/processes.ts';
import { DISTID, VERIFIED, cutByOpenssl, pkeyutlVerify } from '../helpers/sm2-fixtures.ts';
import { smCryptoVerifies } from '../helpers/sm2-independent.ts';
import { readCertificate } from '../../pki/certificate-reader.ts';
import { parseOcspResponse } from '../../pki/ocsp-response.ts';
import { decodePemOrDerOf } from '../../pki/pem.ts';

const tmp = new TempDir();
const running: TestTierca[] = [];
afterAll(async () => {
  for (const t of running) await t.close();
  tmp.cleanup();
});

type Alg = 'SM2' | 'P-256' | 'P-384';
interface Shape {
  name: string;
  root: Alg;
  domain: Alg;
  /** The tier whose CA and holders the test uses, and its CA algorithm. */
  tier: 't1' | 't3';
  tierCa: Alg;
}

const SHAPES: Shape[] = [
  { name: 'all SM2', root: 'SM2', domain: 'SM2', tier: 't1', tierCa: 'SM2' },
  { name: 'an SM2 tier CA under ECDSA', root: 'P-384', domain: 'P-384', tier: 't3', tierCa: 'SM2' },
  { name: 'an ECDSA tier CA under an SM2 root', root: 'SM2', domain: 'SM2', tier: 't1', tierCa: 'P-256' },
];

function configOf(s: Shape): Record<string, any> {
  const cfg = smallConfig({ [s.tier]: { caAlgorithm: s.tierCa, keyAlgorithms: ['SM2'], keyGeneration: ['holder', 'server'], approvals: 1, maxValidityDays: { user: 30, device: 30, organ: 45 } } });
  cfg.root = { ...cfg.root, algorithm: s.root };
  cfg.domainCa = { ...cfg.domainCa, algorithm: s.domain };
  return cfg;
}

const der = (pem: string): Buffer => decodePemOrDerOf(pem, ['CERTIFICATE']);
const spkiOf = (pem: string): Buffer => readCertificate(der(pem)).publicKeyInfo;

/** An SM2 link (`cert` signed by `issuer`'s SM2 key): openssl per link and pkeyutl with the standard identity, sm-crypto, and not under the empty identity. */
async function expectSm2Link(name: string, certPem: string, issuerPem: string): Promise<void> {
  const link = await openssl(['verify', '-partial_chain', '-vfyopt', DISTID, '-CAfile', tmp.file(`${name}-issuer.pem`, issuerPem), tmp.file(`${name}.pem`, certPem)]);
  expect(link.stdout + link.stderr, name).toMatch(/: OK/);
  await expectSm2Signature(name, der(certPem), spkiOf(issuerPem));
}

/** The SIGNED{…} structure `signed` verifies with the standard identity under `issuerSpki` — by openssl and sm-crypto — and not with the empty one. */
async function expectSm2Signature(name: string, signed: Buffer, issuerSpki: Buffer): Promise<void> {
  const cut = await cutSigned(name, signed);
  expect(await pkeyutlVerify(tmp, name, issuerSpki), name).toBe(VERIFIED);
  expect(smCryptoVerifies({ publicKeyInfo: issuerSpki, data: cut.tbs, signature: cut.signature }), name).toBe(true);
  const pub = tmp.file(`${name}.empty-pub.pem`, `-----BEGIN PUBLIC KEY-----\n${issuerSpki.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END PUBLIC KEY-----\n`);
  const empty = await openssl(['pkeyutl', '-verify', '-rawin', '-digest', 'sm3', '-pubin', '-inkey', pub, '-in', tmp.file(`${name}.tbs`), '-sigfile', tmp.file(`${name}.sig`)]);
  expect(empty.code, `${name} must not verify under the empty identity`).not.toBe(0);
  expect(smCryptoVerifies({ publicKeyInfo: issuerSpki, data: cut.tbs, signature: cut.signature, userId: '' }), name).toBe(false);
}

/**
 * The signed bytes and the signature value of a SIGNED{…} structure, cut out by `openssl asn1parse
 * -strparse` (the first and third elements: a BasicOCSPResponse carries its certificates fourth).
 */
async function cutSigned(name: string, signed: Buffer): Promise<{ tbs: Buffer; signature: Buffer }> {
  {
    const parsed = await openssl(['asn1parse', '-inform', 'DER', '-in', tmp.file(`${name}.der`, signed)]);
    const top = parsed.stdout.split('\n').filter((l) => /d=1 /.test(l));
    if (top.length === 3) return cutByOpenssl(tmp, signed, name);
    expect(top[2]).toContain('BIT STRING');
    for (const [part, line] of [['tbs', top[0]], ['sig', top[2]]] as const) {
      const r = await openssl(['asn1parse', '-inform', 'DER', '-in', tmp.file(`${name}.der`), '-strparse', line.split(':')[0].trim(), '-noout', '-out', tmp.file(`${name}.${part}`)]);
      expect(r.code).toBe(0);
    }
  }
  return { tbs: readFileSync(tmp.file(`${name}.tbs`)), signature: readFileSync(tmp.file(`${name}.sig`)) };
}

/** An ECDSA link: plain openssl, one certificate against its issuer. */
async function expectEcdsaLink(name: string, certPem: string, issuerPem: string): Promise<void> {
  const link = await openssl(['verify', '-partial_chain', '-CAfile', tmp.file(`${name}-issuer.pem`, issuerPem), tmp.file(`${name}.pem`, certPem)]);
  expect(link.stdout + link.stderr, name).toMatch(/: OK/);
}

const expectLink = (alg: Alg, name: string, certPem: string, issuerPem: string) =>
  alg === 'SM2' ? expectSm2Link(name, certPem, issuerPem) : expectEcdsaLink(name, certPem, issuerPem);

describe.each(SHAPES)('$name', (shape) => {
  const tag = shape.name.replace(/\W+/g, '-');
  const issuer = `yuhu-${shape.tier}`;
  let t: TestTierca;
  const pem: Record<string, string> = {};

  async function subject(kind: 'device' | 'user', n: number): Promise<string> {
    const body = kind === 'device'
      ? { kind, domain: 'yuhu', organ: 'government', tier: shape.tier, name: `gw-${tag}-${n}`, dns: [`gw${n}.yuhu.xiangtan.intranet`] }
      : { kind, domain: 'yuhu', organ: 'government', tier: shape.tier, name: `u-${tag}-${n}`, emails: [`u${n}@yuhu.xiangtan.intranet`] };
    const res = await call(t, 'officer', 'POST', '/api/v1/subjects', body);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.id;
  }

  async function sm2Csr(name: string, standardIdentity: boolean): Promise<string> {
    await openssl(['genpkey', '-algorithm', 'SM2', '-out', tmp.file(`${tag}-${name}.key`)]);
    const args = ['req', '-new', '-key', tmp.file(`${tag}-${name}.key`), '-sm3', '-subj', `/CN=${name}`, '-out', tmp.file(`${tag}-${name}.csr`)];
    if (standardIdentity) args.push('-sigopt', DISTID);
    const made = await openssl(args);
    expect(made.code, made.stderr).toBe(0);
    return readFileSync(tmp.file(`${tag}-${name}.csr`), 'utf8');
  }

  it('makes the hierarchy; every CA link verifies as its algorithm says', async () => {
    t = await startTestTierca({ configData: configOf(shape) });
    running.push(t);
    for (const id of ['root', 'yuhu', issuer]) pem[id] = await caPem(t, id);
    // The root's self-signature: pkeyutl and sm-crypto over its TBS (openssl verify does not check it with distid).
    if (shape.root === 'SM2') await expectSm2Signature(`${tag}-root-self`, der(pem.root), spkiOf(pem.root));
    await expectLink(shape.root, `${tag}-domain`, pem.yuhu, pem.root);
    await expectLink(shape.domain, `${tag}-tier`, pem[issuer], pem.yuhu);
    const info = await call(t, 'admin', 'GET', `/api/v1/cas/${issuer}`);
    expect(info.body.keyAlgorithm).toBe(shape.tierCa);
  });

  it('issues from openssl CSRs of either identity, recording which; refuses a tampered one with nothing written', async () => {
    const empty = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: await subject('device', 1), csr: await sm2Csr('empty', false) });
    expect(empty.status, JSON.stringify(empty.body)).toBe(201);
    expect(empty.body.certificate).toMatchObject({ keyAlgorithm: 'SM2', popIdentity: 'empty', issuerId: issuer });
    const standard = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: await subject('device', 2), csr: await sm2Csr('standard', true) });
    expect(standard.status, JSON.stringify(standard.body)).toBe(201);
    expect(standard.body.certificate.popIdentity).toBe('default');
    pem.leaf = standard.body.pem;
    const shown = await call(t, 'officer', 'GET', `/api/v1/certificates/${standard.body.certificate.serial}`);
    expect(shown.body.popIdentity ?? shown.body.certificate?.popIdentity).toBe('default');

    const csrDer = decodePemOrDerOf(await sm2Csr('tampered', true), ['CERTIFICATE REQUEST']);
    csrDer[csrDer.length - 5] ^= 0x01; // inside the signature value
    const target = await subject('device', 3);
    const before = await snapshotCounts(t.store);
    const refused = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: target, csr: csrDer.toString('base64') });
    expect(refused.status).toBe(400);
    expect(refused.body.type).toBe('urn:tierca:problem:bad-csr-signature');
    const after = await snapshotCounts(t.store);
    expect({ ...after, audit_log: 0 }).toEqual({ ...before, audit_log: 0 });
  });

  it('signs the leaf as GM/T 0015 reads it: no basicConstraints, a 16-octet serial, serverAuth and clientAuth', async () => {
    await expectLink(shape.tierCa, `${tag}-leaf`, pem.leaf, pem[issuer]);
    const text = (await openssl(['x509', '-in', tmp.file(`${tag}-leaf-text.pem`, pem.leaf), '-noout', '-text'])).stdout;
    expect(text).not.toContain('X509v3 Basic Constraints');
    expect(text).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(text).toContain('Public Key Algorithm: id-ecPublicKey');
    expect(text).toMatch(/ASN1 OID: SM2/);
    const serial = (await openssl(['x509', '-in', tmp.file(`${tag}-leaf-serial.pem`, pem.leaf), '-noout', '-serial'])).stdout.trim().split('=')[1];
    expect(serial.length).toBe(32);
    expect(serial.startsWith('00')).toBe(false);
    // The whole chain for an SM2 stack: each SM2 link was checked above; an all-ECDSA path verifies at once.
    if (shape.tierCa !== 'SM2') {
      const chain = await openssl(['verify', '-partial_chain', '-CAfile', tmp.file(`${tag}-ica.pem`, pem[issuer]), tmp.file(`${tag}-leaf2.pem`, pem.leaf)]);
      expect(chain.stdout).toMatch(/: OK/);
    }
  });

  it('delivers a server-made SM2 key as a PKCS#12 that openssl reads, holding the key of the certificate', async () => {
    const res = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: await subject('user', 4), generate: { algorithm: 'SM2', passphrase: 'sm2-holder-passphrase' } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const p12 = tmp.file(`${tag}-u.p12`, Buffer.from(res.body.pkcs12, 'base64'));
    const info = await openssl(['pkcs12', '-in', p12, '-nodes', '-passin', 'pass:sm2-holder-passphrase']);
    expect(info.code, info.stderr).toBe(0);
    const key = tmp.file(`${tag}-u.key`, info.stdout.slice(info.stdout.indexOf('-----BEGIN PRIVATE KEY-----')));
    const fromKey = (await openssl(['pkey', '-in', key, '-pubout'])).stdout;
    const fromCert = (await openssl(['x509', '-in', tmp.file(`${tag}-u.pem`, res.body.pem), '-noout', '-pubkey'])).stdout;
    expect(fromKey).toBe(fromCert);
    await expectLink(shape.tierCa, `${tag}-user`, res.body.pem, pem[issuer]);
  });

  it('renews a device whose SM2 key signed the request with the standard identity (openssl pkeyutl), and refuses the empty identity', async () => {
    const serial = readCertificate(der(pem.leaf)).serial;
    const signedBy = async (name: string, body: Buffer, distid: boolean) => {
      const args = ['pkeyutl', '-sign', '-rawin', '-digest', 'sm3', '-inkey', tmp.file(`${tag}-standard.key`), '-in', tmp.file(`${tag}-${name}.body`, body), '-out', tmp.file(`${tag}-${name}.sig`)];
      if (distid) args.push('-pkeyopt', DISTID);
      expect((await openssl(args)).code).toBe(0);
      return {
        'content-type': 'application/json', 'tierca-certificate': der(pem.leaf).toString('base64'),
        'tierca-signature': readFileSync(tmp.file(`${tag}-${name}.sig`)).toString('base64'),
      };
    };
    const bodyOf = (id: string) => Buffer.from(JSON.stringify({ serial, signedAt: new Date().toISOString(), requestId: id }));
    const emptyBody = bodyOf(`sm2-empty-${tag}`.slice(0, 60));
    const refused = await call(t, null, 'POST', `/api/v1/certificates/${serial}/renew`, emptyBody, await signedBy('renew-empty', emptyBody, false));
    expect(refused.status, JSON.stringify(refused.body)).toBe(401);
    const body = bodyOf(`sm2-renew-${tag}`.slice(0, 60));
    const renewed = await call(t, null, 'POST', `/api/v1/certificates/${serial}/renew`, body, await signedBy('renew', body, true));
    expect(renewed.status, JSON.stringify(renewed.body)).toBe(201);
    expect(renewed.body.certificate).toMatchObject({ keyAlgorithm: 'SM2', issuerId: issuer });
    await expectLink(shape.tierCa, `${tag}-renewed`, renewed.body.pem, pem[issuer]);
  });

  it('signs CRLs and OCSP answers that verify with the standard identity, and say revoked after a revocation', async () => {
    const serial = readCertificate(der(pem.leaf)).serial;
    expect((await call(t, 'officer', 'POST', `/api/v1/certificates/${serial}/revoke`, { reason: 'keyCompromise' })).status).toBe(200);
    expect((await call(t, 'admin', 'POST', '/api/v1/crls', {})).status).toBe(201);
    const crl = await call(t, null, 'GET', `/crl/${issuer}.crl`);
    expect(crl.status).toBe(200);
    if (shape.tierCa === 'SM2') await expectSm2Signature(`${tag}-crl`, crl.raw, spkiOf(pem[issuer]));
    else {
      const checked = await openssl(['crl', '-inform', 'DER', '-in', tmp.file(`${tag}.crl`, crl.raw), '-noout', '-CAfile', tmp.file(`${tag}-crl-ca.pem`, pem[issuer])]);
      expect(checked.stdout + checked.stderr).toMatch(/verify OK/);
    }
    const listed = await openssl(['crl', '-inform', 'DER', '-in', tmp.file(`${tag}-list.crl`, crl.raw), '-noout', '-text']);
    expect(listed.stdout.toUpperCase()).toContain(serial.toUpperCase());

    const ocsp = await openssl(['ocsp', '-issuer', tmp.file(`${tag}-oi.pem`, pem[issuer]), '-cert', tmp.file(`${tag}-oc.pem`, pem.leaf), '-url', `${t.url}/ocsp`,
      '-no_nonce', '-noverify', '-respout', tmp.file(`${tag}-ocsp.der`), '-resp_text']);
    expect(ocsp.stdout).toContain('Cert Status: revoked');
    expect(ocsp.stdout).toContain('Revocation Reason: keyCompromise');
    // tierca's own client checks the SM2 answer (signature with the standard identity, responder authorisation) and says revoked.
    const checked = await runTierca(['ocsp', 'check', tmp.file(`${tag}-oc.pem`), '--issuer', tmp.file(`${tag}-oi.pem`), '--server', t.url, '--json'], { env: { TIERCA_TOKEN: '' } });
    expect(checked.code, checked.stderr).toBe(10);
    expect(JSON.parse(checked.stdout.toString())).toMatchObject({ status: 'revoked', reason: 'keyCompromise', responder: 'delegated' });
    const parsed = parseOcspResponse(readFileSync(tmp.file(`${tag}-ocsp.der`)));
    // Signed by the tier CA's delegated responder, whose key has the CA's algorithm and whose certificate the CA signed.
    const responder = parsed.certificates[0];
    const responderPem = `-----BEGIN CERTIFICATE-----\n${responder.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
    await expectLink(shape.tierCa, `${tag}-responder`, responderPem, pem[issuer]);
    if (shape.tierCa === 'SM2') {
      const basic = await openssl(['asn1parse', '-inform', 'DER', '-in', tmp.file(`${tag}-ocsp.der`)]);
      const octets = basic.stdout.split('\n').find((l) => /d=3 .*prim: OCTET STRING/.test(l))!;
      await openssl(['asn1parse', '-inform', 'DER', '-in', tmp.file(`${tag}-ocsp.der`), '-strparse', octets.split(':')[0].trim(), '-noout', '-out', tmp.file(`${tag}-ocsp.basic`)]);
      await expectSm2Signature(`${tag}-ocsp-basic`, readFileSync(tmp.file(`${tag}-ocsp.basic`)), readCertificate(responder).publicKeyInfo);
    }
  });
});
