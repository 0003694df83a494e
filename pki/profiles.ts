/**
 * The certificate profiles of DESIGN.md as extension sets, one function per layer or end-entity kind.
 * Each takes only what varies (keys, the tier's policy OID, the issuer's URLs, names) so that the
 * CA's issuing code cannot forget an extension or get its criticality wrong.
 */
import { OID } from './algorithms.ts';
import { children, decodeOid, expectTag, readOnly } from './der-reader.ts';
import {
  ANY_POLICY,
  EKU,
  authorityInfoAccess,
  authorityKeyIdentifier,
  basicConstraints,
  certificatePolicies,
  crlDistributionPoints,
  encodedOnce,
  extendedKeyUsage,
  freshestCrl,
  keyUsage,
  nameConstraints,
  ocspNoCheck,
  subjectAltName,
  subjectKeyIdentifier,
  type Extension,
  type KeyUsageName,
} from './extensions.ts';
import { keyIdentifier } from './key-pair.ts';
import type { DistinguishedName } from './name.ts';
import { ALL_ADDRESSES, type IpRange } from './ip-range.ts';
import { PkiError } from './pki-error.ts';

/** Where relying parties find the issuer's certificate, status and CRLs (they go in AIA, CDP, freshestCRL). */
export interface IssuerLinks {
  /** URL of the issuer's certificate (DER), for AIA caIssuers. */
  caIssuersUrl: string;
  /** URL of the issuer's OCSP responder, for AIA; absent = no OCSP access description. */
  ocspUrl?: string;
  /** URL of the issuer's full CRL, for the CRL distribution point. */
  crlUrl: string;
  /** URL of the issuer's delta CRL; when set, certificates carry freshestCRL. */
  deltaCrlUrl?: string;
}

/**
 * The root CA's extensions: basicConstraints CA:true without pathLen (critical), keyUsage
 * keyCertSign + cRLSign (critical), subjectKeyIdentifier, certificatePolicies anyPolicy. No AKI: the
 * root is self-signed (RFC 5280 §4.2.1.1 allows the omission).
 */
export function rootCaExtensions(p: { publicKeyInfo: Buffer }): Extension[] {
  return [
    basicConstraints({ ca: true }),
    keyUsage(['keyCertSign', 'cRLSign']),
    subjectKeyIdentifier(keyIdentifier(p.publicKeyInfo)),
    certificatePolicies([ANY_POLICY]),
  ];
}

/**
 * A domain CA's extensions: basicConstraints CA:true pathLen 1, keyUsage keyCertSign + cRLSign, SKI,
 * AKI, critical nameConstraints (the domain's directoryName, its DNS suffix, and its e-mail suffix
 * both as `suffix` — mailboxes at the domain itself — and `.suffix` — mailboxes at its hosts, RFC
 * 5280 §4.2.1.10), the policies of every tier it serves, AIA and CDP.
 */
export function domainCaExtensions(p: {
  publicKeyInfo: Buffer;
  issuerKeyId: Buffer;
  policyOids: string[];
  /** `ipRanges`: the domain's address ranges; a family (IPv4, IPv6) without one is excluded whole (decision 0004). */
  permitted: { directoryName: DistinguishedName; dnsSuffix: string; emailSuffix: string; ipRanges: readonly IpRange[] };
  links: IssuerLinks;
}): Extension[] {
  const email = p.permitted.emailSuffix.replace(/^\./, '');
  return [
    basicConstraints({ ca: true, pathLength: 1 }),
    keyUsage(['keyCertSign', 'cRLSign']),
    subjectKeyIdentifier(keyIdentifier(p.publicKeyInfo)),
    authorityKeyIdentifier(p.issuerKeyId),
    nameConstraints({
      permittedDirectoryNames: [p.permitted.directoryName],
      permittedDns: [p.permitted.dnsSuffix],
      permittedEmail: [email, `.${email}`],
      permittedIp: p.permitted.ipRanges,
      excludedIp: ALL_ADDRESSES.filter((all) => !p.permitted.ipRanges.some((r) => r.version === all.version)),
    }),
    certificatePolicies(p.policyOids),
    ...linkExtensions(p.links, { ocsp: true, crl: true }),
  ];
}

/**
 * A tier issuing CA's extensions: basicConstraints CA:true pathLen 0, keyUsage keyCertSign + cRLSign,
 * SKI, AKI, ONLY its tier's policy (so that policy processing, RFC 5280 §6.1, refuses its leaves for
 * any other tier), AIA and CDP.
 */
export function tierCaExtensions(p: { publicKeyInfo: Buffer; issuerKeyId: Buffer; policyOid: string; links: IssuerLinks }): Extension[] {
  return [
    basicConstraints({ ca: true, pathLength: 0 }),
    keyUsage(['keyCertSign', 'cRLSign']),
    subjectKeyIdentifier(keyIdentifier(p.publicKeyInfo)),
    authorityKeyIdentifier(p.issuerKeyId),
    certificatePolicies([p.policyOid]),
    ...linkExtensions(p.links, { ocsp: true, crl: true }),
  ];
}

export type EndEntityProfile = 'organ' | 'organ-enc' | 'device' | 'device-enc' | 'user-sign' | 'user-enc' | 'ocsp';

export const END_ENTITY_PROFILES: readonly EndEntityProfile[] = ['organ', 'organ-enc', 'device', 'device-enc', 'user-sign', 'user-enc', 'ocsp'];

/** GM/T 0015-2012: an SM2 certificate is valid for ten years at most (3,650 days, as tierca counts days). */
export const SM2_MAX_VALIDITY_DAYS = 3650;

/**
 * An end-entity certificate's extensions. Every profile has basicConstraints CA:false (critical;
 * none for SM2 keys, GM/T 0015 — see below),
 * keyUsage (critical), SKI, AKI, certificatePolicies (the tier OID), AIA caIssuers; all but `ocsp`
 * add the AIA OCSP URL, the CRL distribution point and, when `links.deltaCrlUrl` is set, freshestCRL.
 *
 * - `organ`: digitalSignature + nonRepudiation; EKU documentSigning, emailProtection; SAN e-mail if given.
 * - `device`: digitalSignature (+ keyEncipherment for RSA keys, for RSA key transport in TLS 1.2 and
 *   IKEv1); EKU serverAuth, clientAuth, ipsecIKE; SAN DNS and/or IP, at least one required.
 * - `user-sign`: digitalSignature + nonRepudiation; EKU clientAuth, emailProtection; SAN e-mail if given.
 * - `user-enc`: keyEncipherment for RSA, keyAgreement for ECDSA-curve keys — the usages RFC 5280
 *   §4.2.1.12 lists as consistent with emailProtection (no dataEncipherment, which linters flag) —
 *   keyEncipherment + dataEncipherment + keyAgreement for SM2 (SM2 encrypts directly, GB/T 32918.4,
 *   and GM/T 0015 lists all three for encryption certificates); EKU emailProtection; SAN e-mail if given.
 * - `organ-enc`: the key usages of `user-enc`; EKU emailProtection (the organ's official mail); SAN
 *   e-mail if given.
 * - `device-enc`: the key usages of `user-enc`; EKU serverAuth, clientAuth — the roles of a TLCP
 *   (GB/T 38636) peer's encryption certificate, whose peers check them as for the signing one; no
 *   ipsecIKE (IKEv2 authenticates by signature) and never digitalSignature: its key is escrowed, so
 *   it must not prove the device's identity (decision 0027); SAN DNS and/or IP as `device`.
 * - `ocsp` (delegated responder, RFC 6960 §4.2.2.2): digitalSignature; EKU ocspSigning;
 *   id-pkix-ocsp-nocheck; AIA caIssuers only — no OCSP URL and no CDP, since a nocheck responder
 *   certificate is never checked for revocation.
 *
 * @throws PkiError('invalid-argument') when `device` has neither DNS nor IP, or when a profile is
 * given names it does not carry (DNS/IP outside `device`, e-mail for `device` or `ocsp`): refusing
 * beats silently dropping what the caller asked for.
 */
export function endEntityExtensions(p: {
  profile: EndEntityProfile;
  publicKeyInfo: Buffer;
  issuerKeyId: Buffer;
  policyOid: string;
  links: IssuerLinks;
  dns?: string[];
  ip?: string[];
  email?: string[];
}): Extension[] {
  const dns = p.dns ?? [];
  const ip = p.ip ?? [];
  const email = p.email ?? [];
  const key = keyKind(p.publicKeyInfo);
  const refuse = (message: string) => new PkiError('invalid-argument', message);
  const device = p.profile === 'device' || p.profile === 'device-enc';
  if (!device && (dns.length || ip.length)) throw refuse(`profile ${p.profile} carries no DNS or IP names`);
  if ((device || p.profile === 'ocsp') && email.length) throw refuse(`profile ${p.profile} carries no e-mail addresses`);
  // RFC 5280 §4.2.1.12: keyEncipherment for RSA, keyAgreement for EC; SM2 encrypts directly (GB/T
  // 32918.4) and GM/T 0015 lists all three for encryption certificates.
  const encryptionUsages: KeyUsageName[] =
    key === 'rsa' ? ['keyEncipherment'] : key === 'sm2' ? ['keyEncipherment', 'dataEncipherment', 'keyAgreement'] : ['keyAgreement'];

  let usages: KeyUsageName[];
  let ekus: string[];
  let san: Extension | undefined;
  switch (p.profile) {
    case 'organ':
      usages = ['digitalSignature', 'nonRepudiation'];
      ekus = [EKU.documentSigning, EKU.emailProtection];
      if (email.length) san = subjectAltName({ email });
      break;
    case 'device':
      if (dns.length === 0 && ip.length === 0) throw refuse('a device certificate needs at least one DNS name or IP address');
      usages = key === 'rsa' ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature'];
      ekus = [EKU.serverAuth, EKU.clientAuth, EKU.ipsecIKE];
      san = subjectAltName({ dns, ip });
      break;
    case 'user-sign':
      usages = ['digitalSignature', 'nonRepudiation'];
      ekus = [EKU.clientAuth, EKU.emailProtection];
      if (email.length) san = subjectAltName({ email });
      break;
    case 'user-enc':
    case 'organ-enc':
      usages = encryptionUsages;
      ekus = [EKU.emailProtection];
      if (email.length) san = subjectAltName({ email });
      break;
    case 'device-enc':
      if (dns.length === 0 && ip.length === 0) throw refuse('a device certificate needs at least one DNS name or IP address');
      usages = encryptionUsages;
      ekus = [EKU.serverAuth, EKU.clientAuth];
      san = subjectAltName({ dns, ip });
      break;
    case 'ocsp':
      usages = ['digitalSignature'];
      ekus = [EKU.ocspSigning];
      break;
    default:
      throw refuse(`unknown end-entity profile ${String(p.profile)}`);
  }
  const isOcsp = p.profile === 'ocsp';
  const { links } = p;
  const shared = sharedOf(
    `${p.profile}|${key}|${p.issuerKeyId.toString('hex')}|${p.policyOid}|${links.caIssuersUrl}|${links.ocspUrl ?? ''}|${links.crlUrl}|${links.deltaCrlUrl ?? ''}`,
    () => ({
      // GM/T 0015-2012: an SM2 end-entity certificate carries no basicConstraints — the stricter
      // verifiers of Chinese relying parties refuse the empty CA:FALSE sequence, and RFC 5280 §4.2.1.9
      // lets an end-entity certificate omit the extension (cA then defaults to FALSE).
      head: [...(key === 'sm2' ? [] : [basicConstraints({ ca: false })]), keyUsage(usages), extendedKeyUsage(ekus)],
      authority: authorityKeyIdentifier(p.issuerKeyId),
      tail: [certificatePolicies([p.policyOid]), ...linkExtensions(links, { ocsp: !isOcsp, crl: !isOcsp }), ...(isOcsp ? [ocspNoCheck()] : [])],
    }),
  );
  return [...shared.head, subjectKeyIdentifier(keyIdentifier(p.publicKeyInfo)), shared.authority, ...(san ? [san] : []), ...shared.tail];
}

/** The extensions of an end-entity certificate that only its issuer, profile, key kind and tier decide, in their order around SKI and SAN. */
interface SharedExtensions {
  head: readonly Extension[];
  authority: Extension;
  tail: readonly Extension[];
}

/**
 * Shared extensions by what decides them, made and encoded once (issuance builds them for every
 * certificate of a CA: ~40 µs of a signing thread's ~0.3 ms of JavaScript per certificate). Frozen,
 * so that a cached encoding cannot go stale.
 */
const sharedExtensions = new Map<string, SharedExtensions>();
const SHARED_EXTENSIONS_MAX = 256;

function sharedOf(key: string, make: () => SharedExtensions): SharedExtensions {
  let shared = sharedExtensions.get(key);
  if (!shared) {
    const made = make();
    shared = Object.freeze({ head: Object.freeze(made.head.map(encodedOnce)), authority: encodedOnce(made.authority), tail: Object.freeze(made.tail.map(encodedOnce)) });
    if (sharedExtensions.size >= SHARED_EXTENSIONS_MAX) sharedExtensions.clear();
    sharedExtensions.set(key, shared);
  }
  return shared;
}

/** AIA (caIssuers, and OCSP when wanted and known), CDP and freshestCRL (when a delta CRL URL is known). */
function linkExtensions(links: IssuerLinks, want: { ocsp: boolean; crl: boolean }): Extension[] {
  const out = [
    authorityInfoAccess({ caIssuers: links.caIssuersUrl, ocsp: want.ocsp ? links.ocspUrl : undefined }),
  ];
  if (want.crl) {
    out.push(crlDistributionPoints([links.crlUrl]));
    if (links.deltaCrlUrl) out.push(freshestCrl([links.deltaCrlUrl]));
  }
  return out;
}

/**
 * 'rsa', 'sm2' or 'ec' (another named curve) for the key of a SubjectPublicKeyInfo, from its
 * AlgorithmIdentifier (Node's KeyObject does not report a type for SM2 keys read from DER).
 */
function keyKind(spki: Buffer): 'rsa' | 'sm2' | 'ec' {
  let algOid: string;
  let params: string | undefined;
  try {
    const [algId] = children(readOnly(spki, 0x30));
    const [algEl, paramsEl] = children(expectTag(algId, 0x30, 'AlgorithmIdentifier'));
    algOid = decodeOid(algEl);
    params = paramsEl?.tag === 0x06 ? decodeOid(paramsEl) : undefined;
  } catch {
    throw new PkiError('invalid-argument', 'publicKeyInfo is not a readable SubjectPublicKeyInfo');
  }
  if (algOid === OID.rsaEncryption || algOid === OID.rsaPss) return 'rsa';
  if (algOid === OID.ecPublicKey) return params === OID.sm2Curve ? 'sm2' : 'ec';
  throw new PkiError('invalid-argument', `unsupported public key algorithm ${algOid}`);
}
