/**
 * The whole hierarchy built with pki/ — root (P-384) → domain CA (P-256, name constraints) → tier CA
 * (one policy) → an end entity of every profile — checked by the openssl 3.0 CLI (`verify` with
 * RFC 5280 policy processing and name constraints, `x509 -text`) and read back by @peculiar/x509.
 */
import { parseCidr } from '../../pki/ip-range.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as x509 from '@peculiar/x509';
import { buildCertificate, randomSerial, serialToHex } from '../../pki/certificate.ts';
import { readCertificate, verifyCertificateSignature } from '../../pki/certificate-reader.ts';
import { encodeName, type DistinguishedName } from '../../pki/name.ts';
import { certificateToPem } from '../../pki/pem.ts';
import {
  domainCaExtensions,
  endEntityExtensions,
  rootCaExtensions,
  tierCaExtensions,
  type EndEntityProfile,
  type IssuerLinks,
} from '../../pki/profiles.ts';
import { certificatePolicies, type Extension } from '../../pki/extensions.ts';
import { generateKeyPair, keyIdentifier, publicKeyInfoOf } from '../../pki/key-pair.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import type { KeyAlgorithm, RsaPadding } from '../../pki/algorithms.ts';
import type { Signer } from '../../pki/signer.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { DOCUMENTATION_ARC } from '../../pki/oid.ts';

// RFC 5612's documentation arc, as the example configuration uses it (pki/oid.ts).
const ARC = DOCUMENTATION_ARC;
const T1 = `${ARC}.1.1`;
const T2 = `${ARC}.1.2`;
const T3 = `${ARC}.1.3`;

/** The fixed clock of this test; openssl verifies at NOW + 1 day with -attime. */
const NOW = new Date('2026-06-01T08:00:00Z');
const AT = String(NOW.getTime() / 1000 + 86_400);
const DAY = 86_400_000;

const BASE: DistinguishedName = [
  { type: 'C', value: 'CN' },
  { type: 'ST', value: '湖南省' },
];
const YUHU: DistinguishedName = [...BASE, { type: 'L', value: '雨湖区' }];
const ORG = { type: 'O', value: '湘潭市电子政务内网' } as const;

const BASE_URL = 'http://pki.xt.gov.intranet';
const linksOf = (ca: string): IssuerLinks => ({
  caIssuersUrl: `${BASE_URL}/ca/${ca}.crt`,
  ocspUrl: `${BASE_URL}/ocsp`,
  crlUrl: `${BASE_URL}/crl/${ca}.crl`,
  deltaCrlUrl: `${BASE_URL}/crl/${ca}-delta.crl`,
});

interface Ca {
  subject: Buffer;
  signer: Signer;
  keyId: Buffer;
  der: Buffer;
}

async function signerOf(alg: KeyAlgorithm, rsaPadding?: RsaPadding) {
  const { privateKey } = await generateKeyPair(alg);
  return softwareSigner({ privateKey, algorithm: alg, rsaPadding });
}

async function issue(p: {
  issuer: Ca | null;
  subject: DistinguishedName;
  signer?: Signer;
  publicKeyInfo: Buffer;
  extensions: Extension[];
  notBefore?: Date;
  notAfter?: Date;
}): Promise<Buffer> {
  const subject = encodeName(p.subject);
  return buildCertificate({
    serial: randomSerial(),
    issuer: p.issuer ? p.issuer.subject : subject,
    subject,
    notBefore: p.notBefore ?? new Date(NOW.getTime() - 3_600_000),
    notAfter: p.notAfter ?? new Date(NOW.getTime() + 365 * DAY),
    publicKeyInfo: p.publicKeyInfo,
    extensions: p.extensions,
    signer: (p.issuer?.signer ?? p.signer)!,
  });
}

const dir = new TempDir();
let root: Ca;
let domain: Ca;
let tier: Ca;
let ecLeafKey: Buffer;
let rsaLeafKey: Buffer;
const leaves = new Map<string, Buffer>();

async function makeCa(p: { issuer: Ca | null; subject: DistinguishedName; signer: Signer; extensions: (pki: Buffer) => Extension[] }): Promise<Ca> {
  const der = await issue({ issuer: p.issuer, subject: p.subject, signer: p.signer, publicKeyInfo: p.signer.publicKeyInfo, extensions: p.extensions(p.signer.publicKeyInfo) });
  return { subject: encodeName(p.subject), signer: p.signer, keyId: keyIdentifier(p.signer.publicKeyInfo), der };
}

function leafFor(profile: EndEntityProfile, key: Buffer, names: { dns?: string[]; ip?: string[]; email?: string[] }, cn: string, issuer = tier): Promise<Buffer> {
  return issue({
    issuer,
    subject: [...YUHU, { type: 'O', value: '中共雨湖区委员会' }, { type: 'CN', value: cn }],
    publicKeyInfo: key,
    extensions: endEntityExtensions({ profile, publicKeyInfo: key, issuerKeyId: issuer.keyId, policyOid: T2, links: linksOf('yuhu-t2'), ...names }),
  });
}

/** openssl verify of `leaf` against the test root with domain + tier as untrusted intermediates. */
async function verify(leaf: Buffer, opts: { policy?: string; untrusted?: Buffer[]; extra?: string[] } = {}) {
  const name = `leaf-${Math.random().toString(36).slice(2)}.pem`;
  const untrusted = (opts.untrusted ?? [domain.der, tier.der]).map(certificateToPem).join('');
  const args = ['verify', '-attime', AT, '-x509_strict', '-CAfile', dir.file('root.pem'), '-untrusted', dir.file(`${name}.chain`, untrusted)];
  if (opts.policy) args.push('-policy', opts.policy, '-explicit_policy');
  args.push(...(opts.extra ?? []), dir.file(name, certificateToPem(leaf)));
  const result = await openssl(args);
  return { ...result, output: result.stdout + result.stderr, name };
}

async function text(cert: Buffer): Promise<string> {
  const r = await openssl(['x509', '-inform', 'DER', '-text', '-noout', '-nameopt', 'utf8,sep_comma_plus_space'], { input: cert });
  expect(r.code).toBe(0);
  return r.stdout;
}

/** The extension block of `openssl x509 -text` as trimmed lines. */
const lines = (t: string) => t.split('\n').map((l) => l.trim());

beforeAll(async () => {
  const [rootSigner, domainSigner, tierSigner, ecLeaf, rsaLeaf] = await Promise.all([
    signerOf('P-384'),
    signerOf('P-256'),
    signerOf('P-256'),
    generateKeyPair('P-256'),
    generateKeyPair('RSA-2048'),
  ]);
  ecLeafKey = publicKeyInfoOf(ecLeaf.publicKey);
  rsaLeafKey = publicKeyInfoOf(rsaLeaf.publicKey);
  root = await makeCa({
    issuer: null,
    subject: [...BASE, ORG, { type: 'CN', value: '湘潭市电子政务内网根CA' }],
    signer: rootSigner,
    extensions: (publicKeyInfo) => rootCaExtensions({ publicKeyInfo }),
  });
  domain = await makeCa({
    issuer: root,
    subject: [...YUHU, ORG, { type: 'CN', value: '雨湖区域CA' }],
    signer: domainSigner,
    extensions: (publicKeyInfo) =>
      domainCaExtensions({
        publicKeyInfo,
        issuerKeyId: root.keyId,
        policyOids: [T1, T2, T3],
        permitted: { directoryName: YUHU, dnsSuffix: 'yuhu.xt.gov.intranet', emailSuffix: 'yuhu.xt.gov.intranet', ipRanges: [parseCidr('10.20.0.0/16'), parseCidr('2001:db8::/32')] },
        links: linksOf('root'),
      }),
  });
  tier = await makeCa({
    issuer: domain,
    subject: [...YUHU, ORG, { type: 'CN', value: '雨湖区受限级CA' }],
    signer: tierSigner,
    extensions: (publicKeyInfo) => tierCaExtensions({ publicKeyInfo, issuerKeyId: domain.keyId, policyOid: T2, links: linksOf('yuhu') }),
  });
  dir.file('root.pem', certificateToPem(root.der));

  leaves.set('organ', await leafFor('organ', ecLeafKey, { email: ['office@yuhu.xt.gov.intranet'] }, '中共雨湖区委员会'));
  leaves.set('device', await leafFor('device', ecLeafKey, { dns: ['gw.yuhu.xt.gov.intranet'], ip: ['10.20.30.40', '2001:db8::7'] }, 'gw.yuhu.xt.gov.intranet'));
  leaves.set('device-rsa', await leafFor('device', rsaLeafKey, { dns: ['yuhu.xt.gov.intranet'] }, 'VPN 网关'));
  leaves.set('user-sign', await leafFor('user-sign', ecLeafKey, { email: ['zhang.san@mail.yuhu.xt.gov.intranet'] }, '张三'));
  leaves.set('user-enc', await leafFor('user-enc', ecLeafKey, { email: ['zhang.san@mail.yuhu.xt.gov.intranet'] }, '张三'));
  leaves.set('user-enc-rsa', await leafFor('user-enc', rsaLeafKey, { email: ['zhang.san@mail.yuhu.xt.gov.intranet'] }, '张三'));
  leaves.set('ocsp', await leafFor('ocsp', ecLeafKey, {}, 'OCSP 雨湖区受限级CA'));
});

afterAll(() => dir.cleanup());

describe('policy processing: a tier CA only vouches for its tier', () => {
  const names = ['organ', 'device', 'device-rsa', 'user-sign', 'user-enc', 'user-enc-rsa', 'ocsp'];
  for (const name of names) {
    it(`${name}: verifies with -policy t2 -explicit_policy, fails for t3 and t1`, async () => {
      const leaf = leaves.get(name)!;
      const ok = await verify(leaf, { policy: T2 });
      expect(ok.output.trim()).toBe(`${dir.path}/${ok.name}: OK`);
      expect(ok.code).toBe(0);
      for (const other of [T3, T1]) {
        const bad = await verify(leaf, { policy: other });
        expect(bad.code).not.toBe(0);
        expect(bad.output).toContain('error 43 at 0 depth lookup: no explicit policy');
      }
    });
  }

  it('the device certificate also passes the sslserver and sslclient purposes', async () => {
    for (const purpose of ['sslserver', 'sslclient']) {
      const r = await verify(leaves.get('device')!, { policy: T2, extra: ['-purpose', purpose] });
      expect(r.code).toBe(0);
    }
  });

  it('the responder certificate passes the ocsphelper purpose and the S/MIME user certificate smimesign', async () => {
    expect((await verify(leaves.get('ocsp')!, { extra: ['-purpose', 'ocsphelper'] })).code).toBe(0);
    expect((await verify(leaves.get('user-sign')!, { extra: ['-purpose', 'smimesign'] })).code).toBe(0);
  });
});

describe('openssl x509 -text shows the profile extensions', () => {
  const common = (t: string[]) => {
    expect(t).toContain('X509v3 Basic Constraints: critical');
    expect(t).toContain('CA:FALSE');
    expect(t).toContain('X509v3 Key Usage: critical');
    expect(t).toContain(`Policy: ${T2}`);
    expect(t).toContain(`CA Issuers - URI:${BASE_URL}/ca/yuhu-t2.crt`);
    expect(t).toContain('X509v3 Subject Key Identifier:');
    expect(t).toContain('X509v3 Authority Key Identifier:');
    expect(t).toContain(tier.keyId.toString('hex').toUpperCase().match(/../g)!.join(':'));
  };
  const crlLinks = (t: string[]) => {
    expect(t).toContain(`OCSP - URI:${BASE_URL}/ocsp`);
    expect(t).toContain(`URI:${BASE_URL}/crl/yuhu-t2.crl`);
    expect(t).toContain('X509v3 Freshest CRL:');
    expect(t).toContain(`URI:${BASE_URL}/crl/yuhu-t2-delta.crl`);
  };

  it('organ', async () => {
    const t = lines(await text(leaves.get('organ')!));
    common(t);
    crlLinks(t);
    expect(t).toContain('Digital Signature, Non Repudiation');
    // openssl 3.0 has no name for id-kp-documentSigning (RFC 9336) and prints the OID.
    expect(t).toContain('1.3.6.1.5.5.7.3.36, E-mail Protection');
    expect(t).toContain('email:office@yuhu.xt.gov.intranet');
  });

  it('device (EC and RSA)', async () => {
    const t = lines(await text(leaves.get('device')!));
    common(t);
    crlLinks(t);
    expect(t[t.indexOf('X509v3 Key Usage: critical') + 1]).toBe('Digital Signature');
    expect(t).toContain('TLS Web Server Authentication, TLS Web Client Authentication, ipsec Internet Key Exchange');
    expect(t).toContain('DNS:gw.yuhu.xt.gov.intranet, IP Address:10.20.30.40, IP Address:2001:DB8:0:0:0:0:0:7');
    const r = lines(await text(leaves.get('device-rsa')!));
    expect(r[r.indexOf('X509v3 Key Usage: critical') + 1]).toBe('Digital Signature, Key Encipherment');
    expect(r).toContain('DNS:yuhu.xt.gov.intranet');
  });

  it('user-sign', async () => {
    const t = lines(await text(leaves.get('user-sign')!));
    common(t);
    crlLinks(t);
    expect(t).toContain('Digital Signature, Non Repudiation');
    expect(t).toContain('TLS Web Client Authentication, E-mail Protection');
    expect(t).toContain('email:zhang.san@mail.yuhu.xt.gov.intranet');
  });

  it('user-enc (EC: key agreement; RSA: key encipherment, no data encipherment)', async () => {
    const t = lines(await text(leaves.get('user-enc')!));
    common(t);
    crlLinks(t);
    expect(t[t.indexOf('X509v3 Key Usage: critical') + 1]).toBe('Key Agreement');
    expect(t[t.indexOf('X509v3 Extended Key Usage:') + 1]).toBe('E-mail Protection');
    const r = lines(await text(leaves.get('user-enc-rsa')!));
    expect(r[r.indexOf('X509v3 Key Usage: critical') + 1]).toBe('Key Encipherment');
  });

  it('ocsp responder: OCSP Signing, OCSP No Check, no OCSP URL, no CDP', async () => {
    const raw = await text(leaves.get('ocsp')!);
    const t = lines(raw);
    common(t);
    expect(t[t.indexOf('X509v3 Key Usage: critical') + 1]).toBe('Digital Signature');
    expect(t[t.indexOf('X509v3 Extended Key Usage:') + 1]).toBe('OCSP Signing');
    expect(t).toContain('OCSP No Check:');
    expect(raw).not.toContain('OCSP - URI');
    expect(raw).not.toContain('CRL Distribution Points');
    expect(raw).not.toContain('Freshest CRL');
    expect(raw).not.toContain('Subject Alternative Name');
  });

  it('root, domain and tier CAs', async () => {
    const r = lines(await text(root.der));
    expect(r).toContain('CA:TRUE');
    expect(r).toContain('Certificate Sign, CRL Sign');
    expect(r).toContain('Policy: X509v3 Any Policy');
    expect(r).not.toContain('X509v3 Authority Key Identifier:');

    const d = lines(await text(domain.der));
    expect(d).toContain('CA:TRUE, pathlen:1');
    expect(d).toContain('Certificate Sign, CRL Sign');
    expect(d).toContain('X509v3 Name Constraints: critical');
    const nc = d.slice(d.indexOf('X509v3 Name Constraints: critical') + 1, d.indexOf('X509v3 Name Constraints: critical') + 6);
    // openssl prints a DirName constraint with its default name options, UTF-8 as \XX escapes.
    const esc = (s: string) => [...Buffer.from(s)].map((b) => `\\${b.toString(16).toUpperCase()}`).join('');
    expect(nc).toEqual([
      'Permitted:',
      'DNS:yuhu.xt.gov.intranet',
      'email:yuhu.xt.gov.intranet',
      'email:.yuhu.xt.gov.intranet',
      `DirName:C = CN, ST = ${esc('湖南省')}, L = ${esc('雨湖区')}`,
    ]);
    for (const oid of [T1, T2, T3]) expect(d).toContain(`Policy: ${oid}`);
    expect(d).toContain(`CA Issuers - URI:${BASE_URL}/ca/root.crt`);
    expect(d).toContain(`URI:${BASE_URL}/crl/root.crl`);

    const t = lines(await text(tier.der));
    expect(t).toContain('CA:TRUE, pathlen:0');
    expect(t).toContain(`Policy: ${T2}`);
    expect(t).not.toContain(`Policy: ${T1}`);
    expect(t).not.toContain(`Policy: ${T3}`);
  });
});

describe('name constraints of the domain CA', () => {
  /** A leaf built directly (bypassing profile input checks would not matter: names are valid, only outside). */
  const outside = (subject: DistinguishedName, names: { dns?: string[]; email?: string[] }, profile: EndEntityProfile) =>
    issue({
      issuer: tier,
      subject,
      publicKeyInfo: ecLeafKey,
      extensions: endEntityExtensions({ profile, publicKeyInfo: ecLeafKey, issuerKeyId: tier.keyId, policyOid: T2, links: linksOf('yuhu-t2'), ...names }),
    });

  it('refuses a DNS name outside the domain suffix', async () => {
    const leaf = await outside([...YUHU, { type: 'CN', value: 'evil' }], { dns: ['evil.example.com'] }, 'device');
    const r = await verify(leaf, { policy: T2 });
    expect(r.code).not.toBe(0);
    expect(r.output).toContain('error 47 at 0 depth lookup: permitted subtree violation');
  });

  it('refuses a name that only ends like the suffix (no label boundary)', async () => {
    const leaf = await outside([...YUHU, { type: 'CN', value: 'evil' }], { dns: ['evilyuhu.xt.gov.intranet'] }, 'device');
    const r = await verify(leaf, { policy: T2 });
    expect(r.output).toContain('permitted subtree violation');
  });

  it('refuses a subject in another county (L=岳塘区)', async () => {
    const leaf = await outside([...BASE, { type: 'L', value: '岳塘区' }, { type: 'CN', value: '张三' }], { email: ['a@yuhu.xt.gov.intranet'] }, 'user-sign');
    const r = await verify(leaf, { policy: T2 });
    expect(r.code).not.toBe(0);
    expect(r.output).toContain('error 47 at 0 depth lookup: permitted subtree violation');
  });

  it('refuses an e-mail address outside the domain, accepts mailboxes at the domain and at its hosts', async () => {
    const bad = await outside([...YUHU, { type: 'CN', value: '张三' }], { email: ['zhang@example.com'] }, 'user-sign');
    expect((await verify(bad, { policy: T2 })).output).toContain('permitted subtree violation');
    for (const email of ['zhang@yuhu.xt.gov.intranet', 'zhang@mail.yuhu.xt.gov.intranet']) {
      const good = await outside([...YUHU, { type: 'CN', value: '张三' }], { email: [email] }, 'user-sign');
      expect((await verify(good, { policy: T2 })).code).toBe(0);
    }
  });
});

describe('RSA-2048 issuing CAs', () => {
  for (const padding of ['pkcs1', 'pss'] as const) {
    it(`an RSA-2048 tier CA signing with ${padding} makes certificates that verify`, async () => {
      const signer = await signerOf('RSA-2048', padding);
      const rsaTier = await makeCa({
        issuer: domain,
        subject: [...YUHU, ORG, { type: 'CN', value: `雨湖区 RSA ${padding} CA` }],
        signer,
        extensions: (publicKeyInfo) => tierCaExtensions({ publicKeyInfo, issuerKeyId: domain.keyId, policyOid: T2, links: linksOf('yuhu') }),
      });
      const leaf = await leafFor('device', ecLeafKey, { dns: ['gw.yuhu.xt.gov.intranet'] }, 'gw', rsaTier);
      const r = await verify(leaf, { policy: T2, untrusted: [domain.der, rsaTier.der] });
      expect(r.output.trim()).toBe(`${dir.path}/${r.name}: OK`);
      const t = await text(leaf);
      expect(t).toContain(padding === 'pss' ? 'Signature Algorithm: rsassaPss' : 'Signature Algorithm: sha256WithRSAEncryption');
      if (padding === 'pss') {
        expect(t).toContain('Hash Algorithm: sha256');
        expect(t).toContain('Mask Algorithm: mgf1 with sha256');
        expect(t).toContain('Salt Length: 0x20');
      }
      expect(verifyCertificateSignature(leaf, signer.publicKeyInfo)).toBe(true);
      expect(verifyCertificateSignature(leaf, tier.signer.publicKeyInfo)).toBe(false);
    });
  }
});

describe('names and times as openssl and a second parser read them', () => {
  it('shows the Chinese subject with -nameopt utf8,sep_comma_plus', async () => {
    const r = await openssl(['x509', '-inform', 'DER', '-noout', '-subject', '-issuer', '-nameopt', 'utf8,sep_comma_plus'], {
      input: leaves.get('organ')!,
    });
    expect(r.stdout).toBe(
      'subject=C=CN,ST=湖南省,L=雨湖区,O=中共雨湖区委员会,CN=中共雨湖区委员会\n' +
        'issuer=C=CN,ST=湖南省,L=雨湖区,O=湘潭市电子政务内网,CN=雨湖区受限级CA\n',
    );
  });

  it('writes whole seconds, UTCTime through 2049 and GeneralizedTime from 2050', async () => {
    const notBefore = new Date('2049-12-31T23:59:59.999Z');
    const notAfter = new Date('2050-01-01T00:00:00.750Z');
    const key = ecLeafKey;
    const cert = await issue({
      issuer: tier,
      subject: [...YUHU, { type: 'CN', value: 'times' }],
      publicKeyInfo: key,
      extensions: endEntityExtensions({ profile: 'user-sign', publicKeyInfo: key, issuerKeyId: tier.keyId, policyOid: T2, links: linksOf('yuhu-t2') }),
      notBefore,
      notAfter,
    });
    const fields = readCertificate(cert);
    expect(fields.notBefore.toISOString()).toBe('2049-12-31T23:59:59.000Z');
    expect(fields.notAfter.toISOString()).toBe('2050-01-01T00:00:00.000Z');
    const asn1 = await openssl(['asn1parse', '-inform', 'DER'], { input: cert });
    expect(asn1.stdout).toMatch(/UTCTIME\s+:491231235959Z/);
    expect(asn1.stdout).toMatch(/GENERALIZEDTIME\s+:20500101000000Z/);
    const dates = await openssl(['x509', '-inform', 'DER', '-noout', '-dates'], { input: cert });
    expect(dates.stdout).toBe('notBefore=Dec 31 23:59:59 2049 GMT\nnotAfter=Jan  1 00:00:00 2050 GMT\n');
  });

  it('readCertificate returns the fields openssl sees', async () => {
    const leaf = leaves.get('device')!;
    const f = readCertificate(leaf);
    const r = await openssl(['x509', '-inform', 'DER', '-noout', '-serial'], { input: leaf });
    expect(r.stdout.trim()).toBe(`serial=${f.serial.toUpperCase()}`);
    expect(f.serial).toMatch(/^[0-9a-f]+$/);
    expect(f.subjectKeyId!.equals(keyIdentifier(ecLeafKey))).toBe(true);
    expect(f.authorityKeyId!.equals(tier.keyId)).toBe(true);
    expect(f.issuer.equals(tier.subject)).toBe(true);
    expect(f.publicKeyInfo.equals(ecLeafKey)).toBe(true);
    expect(f.notBefore.toISOString()).toBe('2026-06-01T07:00:00.000Z');
    expect(verifyCertificateSignature(leaf, tier.signer.publicKeyInfo)).toBe(true);
    expect(verifyCertificateSignature(domain.der, root.signer.publicKeyInfo)).toBe(true);
    expect(verifyCertificateSignature(root.der, root.signer.publicKeyInfo)).toBe(true);
    const tampered = Buffer.from(leaf);
    tampered[tampered.indexOf(Buffer.from('gw.yuhu'))] ^= 0x20;
    expect(verifyCertificateSignature(tampered, tier.signer.publicKeyInfo)).toBe(false);
    expect(readCertificate(root.der).authorityKeyId).toBeNull();
    expect(serialToHex(Buffer.from(f.serial, 'hex'))).toBe(f.serial);
  });

  it('@peculiar/x509 parses the certificates and verifies their signatures', async () => {
    const leaf = new x509.X509Certificate(new Uint8Array(leaves.get('device')!));
    const issuer = new x509.X509Certificate(new Uint8Array(tier.der));
    expect(leaf.subject).toBe('C=CN, ST=湖南省, L=雨湖区, O=中共雨湖区委员会, CN=gw.yuhu.xt.gov.intranet');
    expect(leaf.issuer).toBe(issuer.subject);
    expect(leaf.serialNumber.toLowerCase().replace(/^(00)+/, '')).toBe(readCertificate(leaves.get('device')!).serial);
    expect(await leaf.verify({ publicKey: issuer.publicKey, signatureOnly: true })).toBe(true);
    expect(await issuer.verify({ publicKey: new x509.X509Certificate(new Uint8Array(domain.der)).publicKey, signatureOnly: true })).toBe(true);

    const bc = leaf.getExtension(x509.BasicConstraintsExtension)!;
    expect(bc.ca).toBe(false);
    expect(bc.critical).toBe(true);
    const ku = leaf.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    const eku = leaf.getExtension(x509.ExtendedKeyUsageExtension)!;
    expect(eku.usages).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2', '1.3.6.1.5.5.7.3.17']);
    const san = leaf.getExtension(x509.SubjectAlternativeNameExtension)!;
    expect(san.names.toJSON()).toEqual([
      { type: 'dns', value: 'gw.yuhu.xt.gov.intranet' },
      { type: 'ip', value: '10.20.30.40' },
      { type: 'ip', value: '2001:db8::7' },
    ]);
    // Every arc below 2^28 (RFC 5280 App. B): a second parser reads the policy as plain text.
    const policies = leaf.getExtension(x509.CertificatePolicyExtension)!;
    expect(policies.policies).toEqual([T2]);
    expect(Buffer.from(policies.value).equals(certificatePolicies([T2]).value)).toBe(true);
    const tierBc = issuer.getExtension(x509.BasicConstraintsExtension)!;
    expect([tierBc.ca, tierBc.pathLength]).toEqual([true, 0]);
  });
});

describe('readCertificate refuses what is not a certificate', () => {
  it('truncated, padded, mismatched signature algorithms, non-v3 with extensions', () => {
    const leaf = leaves.get('device')!;
    const codeOf = (der: Buffer) => {
      try {
        readCertificate(der);
        return 'no error';
      } catch (err) {
        return `${(err as { code?: string }).code}: ${(err as Error).message}`;
      }
    };
    expect(codeOf(leaf.subarray(0, leaf.length - 1))).toBe('malformed: malformed certificate: truncated DER content');
    expect(codeOf(Buffer.concat([leaf, Buffer.from([0])]))).toBe('malformed: malformed certificate: trailing bytes after DER element');
    // ecdsa-with-SHA256 → ecdsa-with-SHA384 in the outer AlgorithmIdentifier only (the last occurrence).
    const alg = Buffer.from('06082a8648ce3d040302', 'hex');
    const swapped = Buffer.from(leaf);
    swapped[swapped.lastIndexOf(alg) + alg.length - 1] = 0x03;
    expect(codeOf(swapped)).toBe('malformed: malformed certificate: signature algorithms in TBSCertificate and Certificate differ');
    // version v3 (2) → v2 (1): extensions are then not allowed.
    const v2 = Buffer.from(leaf);
    v2[v2.indexOf(Buffer.from('a003020102', 'hex')) + 4] = 0x01;
    expect(codeOf(v2)).toBe('malformed: malformed certificate: extensions in a certificate that is not v3');
    expect(codeOf(Buffer.from('3000', 'hex'))).toBe('malformed: malformed certificate: missing TBSCertificate');
  });
});
