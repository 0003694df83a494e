// The lint that runs before the CA key signs (server/ca/certificate-lint.ts): what the builder makes
// passes, and each rule catches the TBSCertificate that breaks it — including the GM/T 0015 rules for
// SM2 keys and the encryption-certificate usages of RFC 5280 §4.2.1.12.
import { describe, expect, it } from 'vitest';
import { randomSerial, serialToHex, tbsCertificate } from '../../pki/certificate.ts';
import { generateKeyPair, keyIdentifier, publicKeyInfoOf } from '../../pki/key-pair.ts';
import { basicConstraints, certificatePolicies, extendedKeyUsage, keyUsage, EKU, EXTENSION_OID, type Extension } from '../../pki/extensions.ts';
import { encodeName } from '../../pki/name.ts';
import { endEntityExtensions, type EndEntityProfile } from '../../pki/profiles.ts';
import { signatureAlgorithmIdentifier, type KeyAlgorithm } from '../../pki/algorithms.ts';
import { lintProblems, type LintExpectation } from '../../server/ca/certificate-lint.ts';
import { DAY_MS } from '../../pki/time-constants.ts';

const NOW = new Date('2026-06-01T00:00:00Z');
const ISSUER = { name: encodeName([{ type: 'CN', value: 'yuhu-t2' }]), notBefore: new Date('2026-01-01T00:00:00Z'), notAfter: new Date('2040-01-01T00:00:00Z') };
const SUBJECT = encodeName([{ type: 'CN', value: 'zhang' }]);
const POLICY = '1.3.6.1.4.1.32473.1.2';
const LINKS = { caIssuersUrl: 'http://x/ca.crt', ocspUrl: 'http://x/ocsp', crlUrl: 'http://x/ca.crl' };

async function case_(p: { alg: KeyAlgorithm; profile: Exclude<EndEntityProfile, 'ocsp'>; days?: number; edit?: (exts: Extension[]) => Extension[] }) {
  const { publicKey } = await generateKeyPair(p.alg);
  const spki = publicKeyInfoOf(publicKey);
  const serial = randomSerial();
  const names = p.profile === 'device' || p.profile === 'device-enc' ? { dns: ['gw.yuhu.xiangtan.intranet'], ip: [], email: [] } : { dns: [], ip: [], email: ['z@yuhu.xiangtan.intranet'] };
  const built = endEntityExtensions({ profile: p.profile, publicKeyInfo: spki, issuerKeyId: keyIdentifier(spki), policyOid: POLICY, links: LINKS, ...names });
  const notAfter = new Date(NOW.getTime() + (p.days ?? 30) * DAY_MS);
  const tbs = tbsCertificate({
    serial, issuer: ISSUER.name, subject: SUBJECT, notBefore: NOW, notAfter, publicKeyInfo: spki,
    extensions: p.edit ? p.edit(built) : built, signer: { signatureAlgorithm: signatureAlgorithmIdentifier(p.alg === 'SM2' ? 'SM2' : 'P-256') },
  });
  const want: LintExpectation = {
    serialHex: serialToHex(serial), issuer: ISSUER, subject: SUBJECT, publicKeyInfo: spki, notBefore: NOW, notAfter, profile: p.profile,
    policyOid: POLICY, names, permitted: { dns: ['yuhu.xiangtan.intranet'], email: ['yuhu.xiangtan.intranet'] },
  };
  return lintProblems(tbs, want);
}

const replaceUsage = (names: Parameters<typeof keyUsage>[0]) => (exts: Extension[]) => exts.map((e) => (e.oid === EXTENSION_OID.keyUsage ? keyUsage(names) : e));

describe('certificate lint', () => {
  it('passes what the profile builds, for P-256, RSA and SM2', async () => {
    expect(await case_({ alg: 'P-256', profile: 'device' })).toEqual([]);
    expect(await case_({ alg: 'RSA-2048', profile: 'user-enc' })).toEqual([]);
    expect(await case_({ alg: 'SM2', profile: 'user-sign' })).toEqual([]);
    expect(await case_({ alg: 'SM2', profile: 'user-enc' })).toEqual([]);
  });

  it('refuses basicConstraints on an SM2 end-entity certificate, and its absence on others (GM/T 0015)', async () => {
    expect(await case_({ alg: 'SM2', profile: 'device', edit: (e) => [basicConstraints({ ca: false }), ...e] })).toEqual(['an SM2 end-entity certificate carries basicConstraints (GM/T 0015)']);
    expect(await case_({ alg: 'P-256', profile: 'device', edit: (e) => e.filter((x) => x.oid !== EXTENSION_OID.basicConstraints) })).toEqual(['basicConstraints missing or not critical']);
  });

  it('refuses an SM2 certificate valid longer than ten years, not a P-256 one inside its CA', async () => {
    expect(await case_({ alg: 'SM2', profile: 'user-sign', days: 3651 })).toEqual(['an SM2 certificate valid longer than 3650 days (GM/T 0015)']);
    expect(await case_({ alg: 'P-256', profile: 'user-sign', days: 3651 })).toEqual([]);
  });

  it('holds encryption certificates to the usages of their key: no dataEncipherment for RSA, key agreement only for EC', async () => {
    expect(await case_({ alg: 'RSA-2048', profile: 'user-enc', edit: replaceUsage(['keyEncipherment', 'dataEncipherment']) })).toEqual(['keyUsage dataEncipherment not in profile user-enc']);
    expect(await case_({ alg: 'P-256', profile: 'user-enc', edit: replaceUsage(['keyAgreement', 'keyEncipherment']) })).toEqual(['keyUsage keyEncipherment not in profile user-enc']);
    expect(await case_({ alg: 'SM2', profile: 'user-enc', edit: replaceUsage(['keyEncipherment', 'dataEncipherment', 'keyAgreement']) })).toEqual([]);
  });

  it('passes organ-enc and device-enc as built, and refuses a device encryption key that is RSA or an EKU of another profile', async () => {
    expect(await case_({ alg: 'P-256', profile: 'organ-enc' })).toEqual([]);
    expect(await case_({ alg: 'RSA-2048', profile: 'organ-enc' })).toEqual([]);
    expect(await case_({ alg: 'SM2', profile: 'organ-enc' })).toEqual([]);
    expect(await case_({ alg: 'P-256', profile: 'device-enc' })).toEqual([]);
    expect(await case_({ alg: 'SM2', profile: 'device-enc' })).toEqual([]);
    expect(await case_({ alg: 'RSA-2048', profile: 'device-enc' })).toEqual(['a device encryption key is RSA (decision 0027)']);
    const withEku = (ekus: string[]) => (e: Extension[]) => e.map((x) => (x.oid === EXTENSION_OID.extendedKeyUsage ? extendedKeyUsage(ekus) : x));
    expect(await case_({ alg: 'P-256', profile: 'device-enc', edit: withEku([EKU.serverAuth, EKU.clientAuth, EKU.ipsecIKE]) })).toEqual(['extendedKeyUsage is not that of profile device-enc']);
    expect(await case_({ alg: 'P-256', profile: 'device-enc', edit: replaceUsage(['digitalSignature', 'keyAgreement']) })).toEqual(['keyUsage digitalSignature not in profile device-enc']);
    expect(await case_({ alg: 'P-256', profile: 'organ-enc', edit: withEku([EKU.documentSigning, EKU.emailProtection]) })).toEqual(['extendedKeyUsage is not that of profile organ-enc']);
  });

  it('names a wrong policy OID and a CA usage', async () => {
    const wrongPolicy = await case_({ alg: 'P-256', profile: 'organ', edit: (e) => e.map((x) => (x.oid === EXTENSION_OID.certificatePolicies ? certificatePolicies(['1.3.6.1.4.1.32473.1.9']) : x)) });
    expect(wrongPolicy).toEqual([`certificatePolicies is not exactly ${POLICY}`]);
    expect(await case_({ alg: 'P-256', profile: 'organ', edit: replaceUsage(['digitalSignature', 'keyCertSign']) })).toContain('keyUsage of a CA');
  });
});
