/**
 * The lint of an end-entity TBSCertificate against its tier profile, run BEFORE the CA key signs it
 * (boulder's order: prepare, lint, sign once): what was built is read back from its DER and checked
 * against rules written here independently of the builder — issuer, subject, key, serial; validity
 * inside the issuer's; basicConstraints CA:false and keyUsage, both critical, with the profile's
 * usages and no CA usage; the profile's EKUs; exactly the tier's policy OID; every subjectAltName
 * the asked one and inside the domain's permitted subtrees. A failure is a bug upstream (the RA
 * checks all of this first), so it is an internal error, and nothing has been signed.
 */
import { children, decodeOid, readOnly, type DerElement } from '../../pki/der-reader.ts';
import { readTime } from '../../pki/der-time.ts';
import { EKU, EXTENSION_OID, parseIp } from '../../pki/extensions.ts';
import type { EndEntityProfile } from '../../pki/profiles.ts';
import { readGeneralNames } from '../../pki/general-names.ts';
import { TiercaError } from '../errors.ts';
import { keyAlgorithmOf } from '../../pki/key-pair.ts';
import { SM2_MAX_VALIDITY_DAYS } from '../../pki/profiles.ts';
import { DAY_MS } from '../../pki/time-constants.ts';

/** A leaf may not start before its issuer: the CA clamps the back-dated notBefore (validity.ts nestValidity). */
const START_TOLERANCE_MS = 0;

/** KeyUsage bit numbers (RFC 5280 §4.2.1.3). */
const KU = { digitalSignature: 0, nonRepudiation: 1, keyEncipherment: 2, dataEncipherment: 3, keyAgreement: 4, keyCertSign: 5, cRLSign: 6 } as const;
type KuName = keyof typeof KU;

/** Per profile: the usages it must carry (at least one of `anyOf`), those it may carry, and its EKUs exactly. */
const PROFILE_RULES: Record<Exclude<EndEntityProfile, 'ocsp'>, { anyOf: KuName[]; allowed: KuName[]; eku: string[] }> = {
  organ: { anyOf: ['digitalSignature'], allowed: ['digitalSignature', 'nonRepudiation'], eku: [EKU.documentSigning, EKU.emailProtection] },
  device: { anyOf: ['digitalSignature'], allowed: ['digitalSignature', 'keyEncipherment'], eku: [EKU.serverAuth, EKU.clientAuth, EKU.ipsecIKE] },
  'user-sign': { anyOf: ['digitalSignature'], allowed: ['digitalSignature', 'nonRepudiation'], eku: [EKU.clientAuth, EKU.emailProtection] },
  'user-enc': { anyOf: ['keyEncipherment', 'keyAgreement'], allowed: ['keyEncipherment', 'dataEncipherment', 'keyAgreement'], eku: [EKU.emailProtection] },
  'organ-enc': { anyOf: ['keyEncipherment', 'keyAgreement'], allowed: ['keyEncipherment', 'dataEncipherment', 'keyAgreement'], eku: [EKU.emailProtection] },
  // Decision 0027: the TLCP roles, never ipsecIKE; an RSA device encryption key is refused outright.
  'device-enc': { anyOf: ['keyEncipherment', 'keyAgreement'], allowed: ['keyEncipherment', 'dataEncipherment', 'keyAgreement'], eku: [EKU.serverAuth, EKU.clientAuth] },
};

const ENCRYPTION_PROFILES: ReadonlySet<string> = new Set(['user-enc', 'organ-enc', 'device-enc']);

/**
 * The usages an encryption certificate may carry, by its key: RSA encrypts keys, EC agrees on them
 * (RFC 5280 §4.2.1.12 for emailProtection); SM2 encrypts directly and GM/T 0015 lists all three.
 */
const ENCRYPTION_USAGES: Record<'rsa' | 'ec' | 'sm2', KuName[]> = {
  rsa: ['keyEncipherment'],
  ec: ['keyAgreement'],
  sm2: ['keyEncipherment', 'dataEncipherment', 'keyAgreement'],
};

function encryptionKeyKind(spki: Buffer): 'rsa' | 'ec' | 'sm2' {
  const alg = keyAlgorithmOf(spki);
  return alg === 'SM2' ? 'sm2' : alg?.startsWith('RSA') ? 'rsa' : 'ec';
}

/** What a TBSCertificate must say (fields of an IssuanceSigningJob). */
export interface LintExpectation {
  serialHex: string;
  issuer: { name: Buffer; notBefore: Date; notAfter: Date };
  subject: Buffer;
  publicKeyInfo: Buffer;
  notBefore: Date;
  notAfter: Date;
  profile: Exclude<EndEntityProfile, 'ocsp'>;
  policyOid: string;
  names: { dns: string[]; ip: string[]; email: string[] };
  /** The domain's permitted subtrees (RFC 5280 §4.2.1.10); empty lists permit nothing of that form. */
  permitted: { dns: string[]; email: string[] };
}

/** The problems of `tbs` against `want` (empty when it passes). */
export function lintProblems(tbs: Buffer, expected: LintExpectation): string[] {
  const problems: string[] = [];
  const want = { ...expected, sm2: keyAlgorithmOf(expected.publicKeyInfo) === 'SM2' };
  const [version, serial, , issuer, validity, subject, spki, ...rest] = children(readOnly(tbs, 0x30));
  if (!version || version.tag !== 0xa0) problems.push('not a v3 certificate');
  if (serial?.content.toString('hex').replace(/^(00)+(?=.)/, '') !== want.serialHex) problems.push('serial');
  if (!issuer?.raw.equals(want.issuer.name)) problems.push('issuer');
  if (!subject?.raw.equals(want.subject)) problems.push('subject');
  if (!spki?.raw.equals(want.publicKeyInfo)) problems.push('public key');
  const [nb, na] = validity ? children(validity) : [];
  const notBefore = nb && readTime(nb);
  const notAfter = na && readTime(na);
  if (!notBefore || !notAfter || notBefore.getTime() > notAfter.getTime()) problems.push('validity');
  else {
    if (want.sm2 && notAfter.getTime() - notBefore.getTime() > SM2_MAX_VALIDITY_DAYS * DAY_MS) problems.push(`an SM2 certificate valid longer than ${SM2_MAX_VALIDITY_DAYS} days (GM/T 0015)`);
    if (notAfter.getTime() > want.issuer.notAfter.getTime()) problems.push('outlives its CA');
    if (notBefore.getTime() < want.issuer.notBefore.getTime() - START_TOLERANCE_MS) problems.push('starts before its CA');
  }
  const wrapper = rest.find((el) => el.tag === 0xa3);
  const extensions = wrapper ? readExtensionList(wrapper) : new Map<string, { critical: boolean; value: Buffer }>();
  lintExtensions(extensions, want, problems);
  return problems;
}

/** Throws `internal` (nothing signed) when `tbs` fails {@link lintProblems}. */
export function lintTbsCertificate(tbs: Buffer, want: LintExpectation): void {
  const problems = lintProblems(tbs, want);
  if (problems.length) throw new TiercaError('internal', 'the prepared certificate failed its lint; nothing was signed', { detail: { problems } });
}

function lintExtensions(ext: Map<string, { critical: boolean; value: Buffer }>, want: LintExpectation & { sm2: boolean }, problems: string[]): void {
  const bc = ext.get(EXTENSION_OID.basicConstraints);
  // BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, … }: CA:false is the empty SEQUENCE in DER.
  // An SM2 end-entity certificate carries none (GM/T 0015; RFC 5280 lets an end entity omit it).
  if (want.sm2) {
    if (bc) problems.push('an SM2 end-entity certificate carries basicConstraints (GM/T 0015)');
  } else if (!bc || !bc.critical) problems.push('basicConstraints missing or not critical');
  else if (children(readOnly(bc.value, 0x30)).some((el) => el.tag === 0x01 && el.content[0] !== 0)) problems.push('basicConstraints says CA');

  const rules = PROFILE_RULES[want.profile];
  const ku = ext.get(EXTENSION_OID.keyUsage);
  if (!ku || !ku.critical) problems.push('keyUsage missing or not critical');
  else {
    const usages = keyUsages(readOnly(ku.value, 0x03));
    if (usages.has('keyCertSign') || usages.has('cRLSign')) problems.push('keyUsage of a CA');
    if (!rules.anyOf.some((u) => usages.has(u))) problems.push(`keyUsage lacks ${rules.anyOf.join(' or ')}`);
    const encryption = ENCRYPTION_PROFILES.has(want.profile);
    if (want.profile === 'device-enc' && encryptionKeyKind(want.publicKeyInfo) === 'rsa') problems.push('a device encryption key is RSA (decision 0027)');
    const allowed = encryption ? ENCRYPTION_USAGES[encryptionKeyKind(want.publicKeyInfo)] : rules.allowed;
    const extra = [...usages].filter((u) => !allowed.includes(u));
    if (extra.length) problems.push(`keyUsage ${extra.join(', ')} not in profile ${want.profile}`);
  }

  const eku = ext.get(EXTENSION_OID.extendedKeyUsage);
  const ekus = eku ? children(readOnly(eku.value, 0x30)).map(decodeOid) : [];
  if (ekus.length !== rules.eku.length || rules.eku.some((o) => !ekus.includes(o))) problems.push(`extendedKeyUsage is not that of profile ${want.profile}`);

  const policies = ext.get(EXTENSION_OID.certificatePolicies);
  const oids = policies ? children(readOnly(policies.value, 0x30)).map((info) => decodeOid(children(info)[0])) : [];
  if (oids.length !== 1 || oids[0] !== want.policyOid) problems.push(`certificatePolicies is not exactly ${want.policyOid}`);

  const san = ext.get(EXTENSION_OID.subjectAltName);
  const names = san ? readGeneralNames(san.value) : { dns: [], ip: [], email: [], other: 0 };
  if (names.other) problems.push('subjectAltName holds a name form tierca does not issue');
  if (!sameSet(names.dns, want.names.dns) || !sameSet(names.email, want.names.email)) problems.push('subjectAltName is not the asked names');
  if (names.ip.length !== want.names.ip.length || want.names.ip.some((ip) => !names.ip.some((b) => b.equals(parseIp(ip))))) problems.push('subjectAltName IPs are not the asked ones');
  const outside = [
    ...names.dns.filter((d) => !want.permitted.dns.some((s) => under(d.toLowerCase(), s))),
    ...names.email.filter((e) => !want.permitted.email.some((s) => under(e.slice(e.lastIndexOf('@') + 1).toLowerCase(), s))),
  ];
  if (outside.length) problems.push(`names outside the domain's constraints: ${outside.join(', ')}`);
  if ((want.profile === 'device' || want.profile === 'device-enc') && names.dns.length + names.ip.length === 0) problems.push('a device certificate without a DNS name or IP');
}

/** DNS name `name` is `suffix` or under it (RFC 5280 §4.2.1.10: a dNSName constraint matches subdomains). */
const under = (name: string, suffix: string): boolean => name === suffix || name.endsWith(`.${suffix}`);

const sameSet = (a: string[], b: string[]): boolean => a.length === b.length && b.every((x) => a.includes(x));

function keyUsages(bits: DerElement): Set<KuName> {
  const out = new Set<KuName>();
  const bytes = bits.content.subarray(1);
  for (const [name, bit] of Object.entries(KU) as [KuName, number][]) {
    if (bit >> 3 < bytes.length && bytes[bit >> 3] & (0x80 >> (bit & 7))) out.add(name);
  }
  return out;
}

/** The extensions of `[3] EXPLICIT Extensions` with their critical flags (RFC 5280 §4.1). */
function readExtensionList(wrapper: DerElement): Map<string, { critical: boolean; value: Buffer }> {
  const out = new Map<string, { critical: boolean; value: Buffer }>();
  for (const ext of children(children(wrapper)[0])) {
    const parts = children(ext);
    const critical = parts.length === 3 && parts[1].tag === 0x01 && parts[1].content[0] !== 0;
    out.set(decodeOid(parts[0]), { critical, value: parts[parts.length - 1].content });
  }
  return out;
}
