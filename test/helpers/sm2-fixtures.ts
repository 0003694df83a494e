/**
 * SM2 fixtures for the interop tests: an SM2 root and tier CA (each key also signing with the empty
 * identity, for the twins that must fail), and the openssl 3.0 checks with the standard identity —
 * `asn1parse -strparse` to cut out the signed bytes, `pkeyutl -verify -rawin -digest sm3 -pkeyopt
 * distid:1234567812345678` over them.
 */
import { expect } from 'vitest';
import { buildCertificate, randomSerial } from '../../pki/certificate.ts';
import { toPem } from '../../pki/der.ts';
import { generateKeyPair, keyIdentifier } from '../../pki/key-pair.ts';
import { encodeName } from '../../pki/name.ts';
import { rootCaExtensions, tierCaExtensions } from '../../pki/profiles.ts';
import type { Signer } from '../../pki/signer.ts';
import { sm2Signer } from '../../pki/sm2-signer.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import { openssl, type TempDir } from './openssl.ts';

/** The fixed clock of the SM2 tests; openssl verifies at NOW + 1 day with -attime. */
export const NOW = new Date('2026-06-01T08:00:00Z');
export const AT = String(NOW.getTime() / 1000 + 86_400);
export const DAY = 86_400_000;
/** OpenSSL's option for the GM/T 0009-2012 §10 default identity. */
export const DISTID = 'distid:1234567812345678';
export const POLICY = '1.3.6.1.4.1.32473.1.2';
export const LINKS = { caIssuersUrl: 'http://pki.xt.gov.intranet/ca/t2.crt', ocspUrl: 'http://pki.xt.gov.intranet/ocsp', crlUrl: 'http://pki.xt.gov.intranet/crl/t2.crl' };

export interface Sm2Ca {
  name: Buffer;
  signer: Signer;
  /** The same key signing with the empty identity. */
  emptySigner: Signer;
  der: Buffer;
  /** The same certificate signed by its issuer with the empty identity. */
  twin: Buffer;
}

export const VERIFIED = '0 Signature Verified Successfully';
export const NOT_VERIFIED = '1 Signature Verification Failure';

/** The signed bytes and the signature value of a SIGNED{…} structure, cut out by `openssl asn1parse -strparse`. */
export async function cutByOpenssl(dir: TempDir, der: Buffer, name: string): Promise<{ tbs: Buffer; signature: Buffer }> {
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
export async function pkeyutlVerify(dir: TempDir, name: string, issuerSpki: Buffer): Promise<string> {
  const pub = dir.file(`${name}.issuer-pub.pem`, toPem(issuerSpki, 'PUBLIC KEY'));
  const r = await openssl(['pkeyutl', '-verify', '-rawin', '-digest', 'sm3', '-pkeyopt', DISTID, '-pubin', '-inkey', pub, '-in', dir.file(`${name}.tbs`), '-sigfile', dir.file(`${name}.sig`)]);
  return `${r.code} ${(r.stdout + r.stderr).split('\n')[0]}`;
}

/** Validity and names of a test certificate. */
export function certParams(p: { issuer: Pick<Sm2Ca, 'name'> | null; name: Buffer; publicKeyInfo: Buffer; extensions: ReturnType<typeof rootCaExtensions>; serial?: Buffer }) {
  return {
    serial: p.serial ?? randomSerial(),
    issuer: p.issuer?.name ?? p.name,
    subject: p.name,
    notBefore: new Date(NOW.getTime() - 3_600_000),
    notAfter: new Date(NOW.getTime() + 365 * DAY),
    publicKeyInfo: p.publicKeyInfo,
    extensions: p.extensions,
  };
}

async function sm2Keys(): Promise<Pick<Sm2Ca, 'signer' | 'emptySigner'>> {
  const { privateKey } = await generateKeyPair('SM2');
  return { signer: softwareSigner({ privateKey, algorithm: 'SM2' }), emptySigner: sm2Signer({ privateKey, id: Buffer.alloc(0) }) };
}

/** An SM2 root CA and an SM2 tier CA under it (Xiangtan names), each with its empty-identity twin. */
export async function sm2Hierarchy(): Promise<{ root: Sm2Ca; tier: Sm2Ca }> {
  const rootKeys = await sm2Keys();
  const rootName = encodeName([{ type: 'C', value: 'CN' }, { type: 'O', value: '湘潭市电子政务内网' }, { type: 'CN', value: '湘潭市国密根CA' }]);
  const rootParams = certParams({ issuer: null, name: rootName, publicKeyInfo: rootKeys.signer.publicKeyInfo, extensions: rootCaExtensions({ publicKeyInfo: rootKeys.signer.publicKeyInfo }) });
  const root: Sm2Ca = {
    name: rootName,
    ...rootKeys,
    der: await buildCertificate({ ...rootParams, signer: rootKeys.signer }),
    twin: await buildCertificate({ ...rootParams, signer: rootKeys.emptySigner }),
  };
  const tierKeys = await sm2Keys();
  const tierName = encodeName([{ type: 'C', value: 'CN' }, { type: 'O', value: '湘潭市电子政务内网' }, { type: 'CN', value: '雨湖区受限级国密CA' }]);
  const tierParams = certParams({
    issuer: root,
    name: tierName,
    publicKeyInfo: tierKeys.signer.publicKeyInfo,
    extensions: tierCaExtensions({ publicKeyInfo: tierKeys.signer.publicKeyInfo, issuerKeyId: keyIdentifier(root.signer.publicKeyInfo), policyOid: POLICY, links: LINKS }),
  });
  const tier: Sm2Ca = {
    name: tierName,
    ...tierKeys,
    der: await buildCertificate({ ...tierParams, signer: root.signer }),
    twin: await buildCertificate({ ...tierParams, signer: root.emptySigner }),
  };
  return { root, tier };
}
