// Defect 6 (issue 13), the CA side: each domain's address ranges become iPAddress name constraints
// of its domain CA (RFC 5280 §4.2.1.10), read by `openssl x509 -ext nameConstraints` and by Python
// `cryptography`; openssl verify then refuses a leaf whose IP SAN is outside, and a domain without
// ranges lets no IP SAN through at all.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTierca, call, type TestTierca } from '../helpers/tierca.ts';
import { exampleConfigData } from '../helpers/config.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { buildCertificate, randomSerial } from '../../pki/certificate.ts';
import { encodeName, type DistinguishedName } from '../../pki/name.ts';
import { certificateToPem } from '../../pki/pem.ts';
import { domainCaExtensions, endEntityExtensions, rootCaExtensions } from '../../pki/profiles.ts';
import { generateKeyPair, keyIdentifier, publicKeyInfoOf } from '../../pki/key-pair.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import { parseCidr } from '../../pki/ip-range.ts';
import type { Extension } from '../../pki/extensions.ts';
import type { Signer } from '../../pki/signer.ts';

const tmp = new TempDir();
afterAll(() => tmp.cleanup());

/** The nameConstraints block of `openssl x509 -ext nameConstraints`, trimmed lines. */
async function nameConstraintsText(der: Buffer): Promise<string[]> {
  const r = await openssl(['x509', '-inform', 'DER', '-noout', '-ext', 'nameConstraints'], { input: der });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

/** What Python `cryptography` reads: the permitted and excluded iPAddress networks. */
function pythonIpSubtrees(der: Buffer): { permitted: string[]; excluded: string[] } {
  const script = [
    'import sys, json',
    'from cryptography import x509',
    'c = x509.load_der_x509_certificate(sys.stdin.buffer.read())',
    'nc = c.extensions.get_extension_for_class(x509.NameConstraints)',
    'ips = lambda t: [str(n.value) for n in (t or []) if isinstance(n, x509.IPAddress)]',
    'print(json.dumps({"critical": nc.critical, "permitted": ips(nc.value.permitted_subtrees), "excluded": ips(nc.value.excluded_subtrees)}))',
  ].join('\n');
  const out = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { input: der, encoding: 'utf8' }));
  expect(out.critical).toBe(true);
  return { permitted: out.permitted, excluded: out.excluded };
}

describe('the ceremony writes each domain\'s ranges into its domain CA', () => {
  let t: TestTierca;
  beforeAll(async () => {
    const data = exampleConfigData();
    // shaoshan without ranges, yuetang with IPv4 only: the families they lack are excluded whole.
    delete data.domains.find((d: { slug: string }) => d.slug === 'shaoshan').ipRanges;
    data.domains.find((d: { slug: string }) => d.slug === 'yuetang').ipRanges = ['10.22.0.0/16'];
    // Policy arcs Python cryptography 38 reads (it refuses arcs ≥ 2^64, like the 2.25 UUID arc; RFC 5280 App. B).
    data.tiers = { t1: { oid: '1.3.6.1.4.1.32473.1.1' }, t2: { oid: '1.3.6.1.4.1.32473.1.2' }, t3: { oid: '1.3.6.1.4.1.32473.1.3' } };
    t = await startTestTierca({ configData: data });
  });
  afterAll(async () => {
    await t?.close();
  });

  const caDer = async (id: string) => {
    const res = await call(t, null, 'GET', `/ca/${id}.crt`);
    expect(res.status).toBe(200);
    return res.raw;
  };

  it('openssl shows the IPv4 and IPv6 subtrees beside DNS, e-mail and directoryName', async () => {
    const lines = await nameConstraintsText(await caDer('yuhu'));
    expect(lines).toEqual([
      'X509v3 Name Constraints: critical',
      'Permitted:',
      'DNS:yuhu.xiangtan.intranet',
      'email:yuhu.xiangtan.intranet',
      'email:.yuhu.xiangtan.intranet',
      expect.stringMatching(/^DirName:C = CN, ST = /),
      'IP:10.21.0.0/255.255.0.0',
      'IP:FD00:21:0:0:0:0:0:0/FFFF:FFFF:0:0:0:0:0:0',
    ]);
    expect(pythonIpSubtrees(await caDer('yuhu'))).toEqual({ permitted: ['10.21.0.0/16', 'fd00:21::/32'], excluded: [] });
  });

  it('a domain without ranges excludes every address; one with IPv4 only excludes all of IPv6', async () => {
    const shaoshan = await nameConstraintsText(await caDer('shaoshan'));
    expect(shaoshan.slice(-3)).toEqual(['Excluded:', 'IP:0.0.0.0/0.0.0.0', 'IP:0:0:0:0:0:0:0:0/0:0:0:0:0:0:0:0']);
    expect(shaoshan.filter((l) => l.startsWith('IP:'))).toHaveLength(2);
    expect(pythonIpSubtrees(await caDer('shaoshan'))).toEqual({ permitted: [], excluded: ['0.0.0.0/0', '::/0'] });
    expect(pythonIpSubtrees(await caDer('yuetang'))).toEqual({ permitted: ['10.22.0.0/16'], excluded: ['::/0'] });
  });

  it('the tier CAs carry no name constraints of their own (the domain CA\'s bind the whole path)', async () => {
    const r = await openssl(['x509', '-inform', 'DER', '-noout', '-ext', 'nameConstraints'], { input: await caDer('yuhu-t2') });
    expect((r.stdout + r.stderr).trim()).toBe('No extensions in certificate');
  });
});

describe('openssl verify holds the constraints', () => {
  const NOW = new Date('2026-06-01T08:00:00Z');
  const AT = String(NOW.getTime() / 1000 + 3600);
  const BASE: DistinguishedName = [{ type: 'C', value: 'CN' }, { type: 'ST', value: '湖南省' }];
  interface Ca { subject: Buffer; signer: Signer; der: Buffer }
  let root: Ca;
  let ranged: Ca;
  let unranged: Ca;
  let leafKey: Buffer;

  const issue = (issuer: Ca | null, subject: DistinguishedName, signer: Signer, publicKeyInfo: Buffer, extensions: Extension[]) =>
    buildCertificate({
      serial: randomSerial(), issuer: issuer ? issuer.subject : encodeName(subject), subject: encodeName(subject),
      notBefore: new Date(NOW.getTime() - 60_000), notAfter: new Date(NOW.getTime() + 86_400_000), publicKeyInfo, extensions, signer: issuer?.signer ?? signer,
    });
  const links = { caIssuersUrl: 'http://pki.test/ca.crt', crlUrl: 'http://pki.test/ca.crl' };

  async function domainCa(slug: string, ranges: string[]): Promise<Ca> {
    const signer = softwareSigner({ privateKey: (await generateKeyPair('P-256')).privateKey, algorithm: 'P-256' });
    const dn: DistinguishedName = [...BASE, { type: 'L', value: slug }, { type: 'CN', value: `${slug} CA` }];
    const der = await issue(root, dn, signer, signer.publicKeyInfo, domainCaExtensions({
      publicKeyInfo: signer.publicKeyInfo, issuerKeyId: keyIdentifier(root.signer.publicKeyInfo), policyOids: ['1.3.6.1.4.1.32473.1.1'],
      permitted: { directoryName: [...BASE, { type: 'L', value: slug }], dnsSuffix: `${slug}.test`, emailSuffix: `${slug}.test`, ipRanges: ranges.map(parseCidr) },
      links,
    }));
    return { subject: encodeName(dn), signer, der };
  }

  beforeAll(async () => {
    const rootSigner = softwareSigner({ privateKey: (await generateKeyPair('P-256')).privateKey, algorithm: 'P-256' });
    const rootDn: DistinguishedName = [...BASE, { type: 'CN', value: 'test root' }];
    root = { subject: encodeName(rootDn), signer: rootSigner, der: await issue(null, rootDn, rootSigner, rootSigner.publicKeyInfo, rootCaExtensions({ publicKeyInfo: rootSigner.publicKeyInfo })) };
    ranged = await domainCa('yuhu', ['10.21.0.0/16', 'fd00:21::/32']);
    unranged = await domainCa('shaoshan', []);
    leafKey = publicKeyInfoOf((await generateKeyPair('P-256')).publicKey);
    tmp.file('root.pem', certificateToPem(root.der));
  });

  async function verify(ca: Ca, slug: string, ip: string[]) {
    const der = await issue(ca, [...BASE, { type: 'L', value: slug }, { type: 'CN', value: `gw.${slug}.test` }], ca.signer, leafKey, endEntityExtensions({
      profile: 'device', publicKeyInfo: leafKey, issuerKeyId: keyIdentifier(ca.signer.publicKeyInfo), policyOid: '1.3.6.1.4.1.32473.1.1', links, dns: [`gw.${slug}.test`], ip,
    }));
    const name = `leaf-${slug}-${ip.join('_').replace(/[:.]/g, '-')}.pem`;
    const r = await openssl(['verify', '-attime', AT, '-CAfile', tmp.file('root.pem'), '-untrusted', tmp.file(`${name}.ca`, certificateToPem(ca.der)), tmp.file(name, certificateToPem(der))]);
    return { code: r.code, output: r.stdout + r.stderr };
  }

  it('passes IP SANs inside the ranges (IPv4 and IPv6)', async () => {
    expect((await verify(ranged, 'yuhu', ['10.21.3.4', 'fd00:21::7'])).code).toBe(0);
  });

  it('refuses an IP SAN outside the ranges, whichever family', async () => {
    for (const ip of ['8.8.8.8', '10.22.0.1', '0.0.0.0', '::', 'fd00:22::1', '::ffff:10.21.0.1']) {
      const r = await verify(ranged, 'yuhu', ['10.21.0.1', ip]);
      expect([ip, r.code, r.output]).toEqual([ip, 2, expect.stringContaining('permitted subtree violation')]);
    }
  });

  it('a domain CA without ranges lets no IP SAN through, while a DNS-only leaf still verifies', async () => {
    expect((await verify(unranged, 'shaoshan', [])).code).toBe(0);
    for (const ip of ['10.25.0.1', '::1']) {
      const r = await verify(unranged, 'shaoshan', [ip]);
      expect([ip, r.code, r.output]).toEqual([ip, 2, expect.stringContaining('excluded subtree violation')]);
    }
  });
});
