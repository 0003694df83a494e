// The JDK's own PKIX (CertPathValidator, not OpenSSL) as a relying party: a principal's client
// certificate, a user's and an organ's certificate with ASCII common names, and a device's, each
// validated against the root with the domain CA's name constraints in force, an explicit policy
// required and the tier's policy as the initial policy (docs/decisions/0011-java-common-names.md).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestTierca, type TestTierca } from '../helpers/tierca.ts';
import { TempDir, openssl } from '../helpers/openssl.ts';
import { opensslCsr } from '../helpers/pki-fixtures.ts';
import { EXAMPLE_TIER_OIDS } from '../helpers/config.ts';
import { smallConfig } from '../helpers/rotation.ts';
import { javaValidate } from '../helpers/relying-party.ts';
import { buildCertificate, randomSerial } from '../../pki/certificate.ts';
import { generateKeyPair, keyIdentifier } from '../../pki/key-pair.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import { commonNameFor, encodeName, type DistinguishedName } from '../../pki/name.ts';
import { domainCaExtensions, endEntityExtensions, rootCaExtensions, tierCaExtensions } from '../../pki/profiles.ts';
import type { Extension } from '../../pki/extensions.ts';
import type { Signer } from '../../pki/signer.ts';
import { certificateToPem as toPem } from '../../pki/pem.ts';

let t: TestTierca;
const tmp = new TempDir();
let root: string;

beforeAll(async () => {
  t = await startTestTierca({ configData: smallConfig() });
  root = tmp.file('root.pem', (await call(t, null, 'GET', '/ca/root.pem')).raw);
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

/** Writes an issue answer's leaf and intermediates (leaf-most first, root left out). */
function filesOf(name: string, body: { pem: string; chain: string[] }) {
  return {
    leaf: tmp.file(`${name}.pem`, body.pem),
    intermediates: body.chain.slice(0, -1).map((pem, i) => tmp.file(`${name}-ca${i}.pem`, pem)),
  };
}

async function issueTo(subject: Record<string, unknown>, alg: 'P-256' | 'P-384' = 'P-256') {
  const made = await call(t, 'officer', 'POST', '/api/v1/subjects', { domain: 'yuhu', organ: 'government', ...subject });
  expect(made.status, JSON.stringify(made.body)).toBe(201);
  const { csrPem } = await opensslCsr(tmp, `${subject.name}`, alg);
  const res = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: made.body.id, csr: csrPem });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

async function subjectLine(pemPath: string): Promise<string> {
  return (await openssl(['x509', '-noout', '-subject', '-nameopt', 'utf8,sep_comma_plus_space', '-in', pemPath])).stdout.trim();
}

describe('the JDK validates what tierca issues, with the domain name constraints in force', () => {
  it('a principal client certificate (t1)', async () => {
    const made = await call(t, 'admin', 'POST', '/api/v1/principals', { name: 'java-auditor', role: 'auditor' });
    const { csrPem } = await opensslCsr(tmp, 'principal', 'P-256');
    const res = await call(t, 'admin', 'POST', `/api/v1/principals/${made.body.id}/certificate`, { csr: csrPem });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const files = filesOf('principal', res.body);
    expect(await subjectLine(files.leaf)).toBe(`subject=C=CN, ST=湖南省, L=雨湖区, O=湘潭市电子政务内网, OU=tierca principal, CN=${made.body.id} (principal)`);
    expect(await javaValidate({ root, policy: EXAMPLE_TIER_OIDS.t1, ...files })).toEqual({ valid: true, policyTree: true });
  });

  it.each([
    ['a user with an ASCII common name', { kind: 'user', tier: 't1', name: 'zhangsan', emails: ['zhangsan@yuhu.xiangtan.intranet'] }, 'P-256'],
    ['an organ with an ASCII common name', { kind: 'organ', tier: 't2', name: 'yuhu-gov.seal', emails: ['seal@yuhu.xiangtan.intranet'] }, 'P-384'],
    ['a user with a Chinese common name', { kind: 'user', tier: 't2', name: '张三', emails: ['zhangsan3@yuhu.xiangtan.intranet'] }, 'P-256'],
    ['a device', { kind: 'device', tier: 't1', name: 'vpn-gw-01', dns: ['vpn-gw-01.yuhu.xiangtan.intranet'], ips: ['10.21.0.9'] }, 'P-256'],
  ] as const)('%s', async (label, subject, alg) => {
    const body = await issueTo({ ...subject }, alg);
    const files = filesOf(label.replaceAll(' ', '-'), body);
    // Only a name a relying party could read as a host name is qualified, and never a device's.
    const cn = subject.kind === 'device' || subject.name === '张三' ? subject.name : `${subject.name} (${subject.kind})`;
    expect(await subjectLine(files.leaf)).toBe(`subject=C=CN, ST=湖南省, L=雨湖区, O=雨湖区人民政府, CN=${cn}`);
    expect(await javaValidate({ root, policy: EXAMPLE_TIER_OIDS[subject.tier], ...files })).toEqual({ valid: true, policyTree: true });
    // Policy processing is in force too: the same chain asked for another tier fails.
    const other = subject.tier === 't1' ? 't2' : 't1';
    const wrong = await javaValidate({ root, policy: EXAMPLE_TIER_OIDS[other], ...files });
    expect(wrong.valid).toBe(false);
  });
});

/**
 * The same check on a chain built here with pki/ alone (a root, a domain CA with the domain's name
 * constraints, a tier CA, a user leaf with an e-mail SAN and no dNSName): the common name as it was
 * (`zhangsan`) fails at the JDK, the form commonNameFor makes passes — the before and after of the fix.
 */
describe('the JDK reads a bare ASCII common name as a DNS name (the cause)', () => {
  it('refuses CN=zhangsan under a DNS subtree and accepts CN=zhangsan (user)', async () => {
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    const notAfter = new Date(now.getTime() + 30 * 86_400_000);
    const place: DistinguishedName = [{ type: 'C', value: 'CN' }, { type: 'ST', value: '湖南省' }, { type: 'L', value: '雨湖区' }];
    const links = { caIssuersUrl: 'http://pki.test/ca.crt', crlUrl: 'http://pki.test/ca.crl' };
    const key = async () => {
      const { privateKey } = await generateKeyPair('P-256');
      const signer = softwareSigner({ privateKey, algorithm: 'P-256' });
      return { signer, spki: signer.publicKeyInfo, id: keyIdentifier(signer.publicKeyInfo) };
    };
    const [rootKey, domainKey, tierKey, leafKey] = [await key(), await key(), await key(), await key()];
    const rootName = encodeName([...place.slice(0, 2), { type: 'CN', value: 'java root' }]);
    const domainName = encodeName([...place, { type: 'CN', value: 'java domain' }]);
    const tierName = encodeName([...place, { type: 'CN', value: 'java tier' }]);
    const cert = (p: { issuer: Buffer; subject: Buffer; spki: Buffer; signer: Signer; extensions: Extension[] }) =>
      buildCertificate({ serial: randomSerial(), notBefore: now, notAfter, publicKeyInfo: p.spki, ...p });
    const policy = '1.3.6.1.4.1.32473.1.1';
    const rootPem = tmp.file('j-root.pem', toPem(await cert({ issuer: rootName, subject: rootName, spki: rootKey.spki, signer: rootKey.signer, extensions: rootCaExtensions({ publicKeyInfo: rootKey.spki }) })));
    const domainPem = tmp.file('j-domain.pem', toPem(await cert({
      issuer: rootName, subject: domainName, spki: domainKey.spki, signer: rootKey.signer,
      extensions: domainCaExtensions({ publicKeyInfo: domainKey.spki, issuerKeyId: rootKey.id, policyOids: [policy], permitted: { directoryName: place, dnsSuffix: 'yuhu.xiangtan.intranet', emailSuffix: 'yuhu.xiangtan.intranet', ipRanges: [] }, links }),
    })));
    const tierPem = tmp.file('j-tier.pem', toPem(await cert({
      issuer: domainName, subject: tierName, spki: tierKey.spki, signer: domainKey.signer,
      extensions: tierCaExtensions({ publicKeyInfo: tierKey.spki, issuerKeyId: domainKey.id, policyOid: policy, links }),
    })));
    const leaf = async (cn: string) => tmp.file(`j-${cn}.pem`, toPem(await cert({
      issuer: tierName, subject: encodeName([...place, { type: 'O', value: '雨湖区人民政府' }, { type: 'CN', value: cn }]), spki: leafKey.spki, signer: tierKey.signer,
      extensions: endEntityExtensions({ profile: 'user-sign', publicKeyInfo: leafKey.spki, issuerKeyId: tierKey.id, policyOid: policy, links, email: ['zhangsan@yuhu.xiangtan.intranet'] }),
    })));
    const intermediates = [tierPem, domainPem];
    const bare = await javaValidate({ root: rootPem, policy, leaf: await leaf('zhangsan'), intermediates });
    expect(bare).toEqual({ valid: false, index: 0, reason: 'INVALID_NAME', message: 'name constraints check failed' });
    expect(commonNameFor('user', 'zhangsan')).toBe('zhangsan (user)');
    const qualified = await javaValidate({ root: rootPem, policy, leaf: await leaf(commonNameFor('user', 'zhangsan')), intermediates });
    expect(qualified).toEqual({ valid: true, policyTree: true });
  });
});
