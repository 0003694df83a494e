// The pure parts of an offline root rollover (pki/offline-root-rollover.ts): the two link
// certificates, a domain CA re-certified under a new root key, one root generation's CRL and OCSP
// answers, and the shape check of the rollover members of a response. Fixed clock.
import { describe, expect, it } from 'vitest';
import { buildCertificate } from '../../pki/certificate.ts';
import { readCertificate, verifyCertificateSignature, verifySignature } from '../../pki/certificate-reader.ts';
import { parseCrl } from '../../pki/crl-reader.ts';
import { EXTENSION_OID } from '../../pki/extensions.ts';
import { generateKeyPair, keyIdentifier, publicKeyInfoOf } from '../../pki/key-pair.ts';
import { encodeName } from '../../pki/name.ts';
import { buildRootLinks, readExtensionList, readRolloverMembers, recertifyCaCertificate, signRootStatus } from '../../pki/offline-root-rollover.ts';
import { domainCaExtensions, rootCaExtensions } from '../../pki/profiles.ts';
import { softwareSigner } from '../../pki/software-signer.ts';

const NOW = new Date('2026-12-04T10:00:00Z');
const YEAR = 365 * 86_400_000;
const ROOT_NAME = encodeName([{ type: 'C', value: 'CN' }, { type: 'O', value: '测试' }, { type: 'CN', value: 'root' }]);
let n = 1;
const serial = () => Buffer.from([n++]);

async function rootKey(notBefore: Date, years: number) {
  const { privateKey, publicKey } = await generateKeyPair('P-256');
  const publicKeyInfo = publicKeyInfoOf(publicKey);
  const signer = softwareSigner({ privateKey, algorithm: 'P-256' });
  const notAfter = new Date(notBefore.getTime() + years * YEAR);
  const certificate = await buildCertificate({ serial: serial(), issuer: ROOT_NAME, subject: ROOT_NAME, notBefore, notAfter, publicKeyInfo, extensions: rootCaExtensions({ publicKeyInfo }), signer });
  return { publicKeyInfo, signer, notBefore, notAfter, certificate };
}

describe('buildRootLinks', () => {
  it('new-with-old verifies with the old key, old-with-new with the new; self-issued, AKI of the signer, within both roots', async () => {
    const old = await rootKey(new Date(NOW.getTime() - 5 * YEAR), 20);
    const fresh = await rootKey(NOW, 20);
    const { oldWithNew, newWithOld } = await buildRootLinks({ subject: ROOT_NAME, old, new: fresh, serial });
    const nwo = readCertificate(newWithOld);
    const own = readCertificate(oldWithNew);
    expect([verifyCertificateSignature(newWithOld, old.publicKeyInfo), verifyCertificateSignature(newWithOld, fresh.publicKeyInfo)]).toEqual([true, false]);
    expect([verifyCertificateSignature(oldWithNew, fresh.publicKeyInfo), verifyCertificateSignature(oldWithNew, old.publicKeyInfo)]).toEqual([true, false]);
    expect(nwo.publicKeyInfo).toEqual(fresh.publicKeyInfo);
    expect(own.publicKeyInfo).toEqual(old.publicKeyInfo);
    expect([nwo.subject.equals(ROOT_NAME), nwo.issuer.equals(ROOT_NAME)]).toEqual([true, true]);
    expect(nwo.authorityKeyId).toEqual(keyIdentifier(old.publicKeyInfo));
    expect(own.authorityKeyId).toEqual(keyIdentifier(fresh.publicKeyInfo));
    expect([nwo.notBefore, nwo.notAfter]).toEqual([NOW, old.notAfter]);
    expect([own.notBefore, own.notAfter]).toEqual([NOW, old.notAfter]);
  });

  it('refuses two roots that are never valid at the same time', async () => {
    const old = await rootKey(new Date(NOW.getTime() - 5 * YEAR), 1);
    const fresh = await rootKey(NOW, 20);
    await expect(buildRootLinks({ subject: ROOT_NAME, old, new: fresh, serial })).rejects.toThrow('the old and the new root are never valid at the same time');
  });
});

describe('recertifyCaCertificate', () => {
  it('keeps subject, key and profile extensions; replaces AKI, AIA and CDP; signed by the new root', async () => {
    const old = await rootKey(NOW, 20);
    const fresh = await rootKey(NOW, 20);
    const domain = { publicKeyInfo: publicKeyInfoOf((await generateKeyPair('P-384')).publicKey) };
    const subject = encodeName([{ type: 'C', value: 'CN' }, { type: 'L', value: '雨湖区' }, { type: 'CN', value: 'yuhu' }]);
    const original = await buildCertificate({
      serial: serial(), issuer: ROOT_NAME, subject, notBefore: NOW, notAfter: new Date(NOW.getTime() + 10 * YEAR), publicKeyInfo: domain.publicKeyInfo, signer: old.signer,
      extensions: domainCaExtensions({
        publicKeyInfo: domain.publicKeyInfo, issuerKeyId: keyIdentifier(old.publicKeyInfo), policyOids: ['1.3.6.1.4.1.32473.1.2'],
        permitted: { directoryName: [{ type: 'C', value: 'CN' }, { type: 'L', value: '雨湖区' }], dnsSuffix: 'yuhu.example', emailSuffix: 'yuhu.example', ipRanges: [] },
        links: { caIssuersUrl: 'http://ca.example/ca/root.crt', crlUrl: 'http://ca.example/crl/root.crl' },
      }),
    });
    const notAfter = new Date(NOW.getTime() + 9 * YEAR);
    const der = await recertifyCaCertificate({
      certificate: original, issuer: ROOT_NAME, issuerKeyId: keyIdentifier(fresh.publicKeyInfo), serial: Buffer.from([0x7f, 1]), notBefore: NOW, notAfter,
      links: { caIssuersUrl: 'http://ca.example/ca/root-g2.crt', crlUrl: 'http://ca.example/crl/root-g2.crl' }, signer: fresh.signer,
    });
    const f = readCertificate(der);
    expect([f.serial, f.subject.equals(subject), f.publicKeyInfo.equals(domain.publicKeyInfo), f.notAfter]).toEqual(['7f01', true, true, notAfter]);
    expect([verifyCertificateSignature(der, fresh.publicKeyInfo), verifyCertificateSignature(der, old.publicKeyInfo)]).toEqual([true, false]);
    expect(f.authorityKeyId).toEqual(keyIdentifier(fresh.publicKeyInfo));
    const before = readExtensionList(original);
    const after = readExtensionList(der);
    expect(after.map((e) => [e.oid, e.critical])).toEqual(before.map((e) => [e.oid, e.critical]));
    const changed = after.filter((e, i) => !e.value.equals(before[i]!.value)).map((e) => e.oid);
    expect(changed).toEqual([EXTENSION_OID.authorityKeyIdentifier, EXTENSION_OID.authorityInfoAccess, EXTENSION_OID.crlDistributionPoints]);
    expect(after.find((e) => e.oid === EXTENSION_OID.nameConstraints)!.critical).toBe(true);
    expect(after.find((e) => e.oid === EXTENSION_OID.authorityInfoAccess)!.value.toString('latin1')).toContain('http://ca.example/ca/root-g2.crt');
  });
});

describe('signRootStatus', () => {
  it('a CRL of the revoked ones and an answer for each certificate not expired, signed by that root', async () => {
    const root = await rootKey(NOW, 20);
    const later = new Date(NOW.getTime() + 90 * 86_400_000);
    const issued = [
      { ca: 'a', serial: '0a', notAfter: '2030-01-01T00:00:00Z', status: 'good' as const, revokedAt: null, reason: null },
      { ca: 'b', serial: '0b', notAfter: '2030-01-01T00:00:00Z', status: 'revoked' as const, revokedAt: '2026-12-01T00:00:00.000Z', reason: 1 },
      { ca: 'c', serial: '0c', notAfter: '2026-01-01T00:00:00Z', status: 'good' as const, revokedAt: null, reason: null },
    ];
    const { crl, ocsp } = await signRootStatus({ rootCertificate: root.certificate, signer: root.signer, issued, crlNumber: 7n, thisUpdate: NOW, nextUpdate: later });
    const parsed = parseCrl(Buffer.from(crl.der, 'base64'));
    expect(verifySignature({ algorithm: parsed.signatureAlgorithm, publicKeyInfo: root.publicKeyInfo, data: parsed.tbs, signature: parsed.signature, cacheKey: false })).toBe(true);
    expect([parsed.crlNumber, parsed.entries.map((e) => e.serial), crl.number, crl.nextUpdate]).toEqual([7n, ['0b'], '7', later.toISOString()]);
    expect(ocsp.map((o) => [o.ca, o.serial, o.nextUpdate])).toEqual([['a', '0a', later.toISOString()], ['b', '0b', later.toISOString()]]);
  });
});

describe('readRolloverMembers', () => {
  const good = { ca: 'root-g2', certificate: 'AA==', links: { oldWithNew: 'AA==', newWithOld: 'AA==' }, certificates: [{ ca: 'yuhu', certificate: 'AA==' }] };
  it('takes a response without them, and well-formed ones', () => {
    expect(readRolloverMembers({})).toEqual({ rollover: undefined, previousRoots: undefined });
    expect(readRolloverMembers({ rollover: good, previousRoots: [] }).rollover).toEqual(good);
  });
  it.each([
    [{ rollover: { ...good, ca: 'Root G2' } }, 'response bundle: rollover does not name the new root and its certificate'],
    [{ rollover: { ...good, links: { oldWithNew: 'AA==' } } }, 'response bundle: rollover lacks its two link certificates'],
    [{ rollover: { ...good, certificates: [{ ca: 'yuhu' }] } }, 'response bundle: rollover.certificates is not a list of { ca, certificate }'],
    [{ previousRoots: [{ ca: 'root', crl: { der: 'AA==' }, ocsp: [] }] }, 'response bundle: previousRoots is not a list of { ca, crl, ocsp }'],
  ])('refuses %j', (payload, message) => {
    expect(() => readRolloverMembers(payload)).toThrow(message);
  });
});
