/**
 * X.509 v3 certificate extensions (RFC 5280 §4.2) as DER, one builder per extension. Each returns an
 * {@link Extension} whose `value` is the extnValue contents; criticality follows RFC 5280 and the
 * profiles in DESIGN.md. Inputs are checked here, once, so that a profile can never encode an
 * extension a relying party would reject (empty lists, bad IPs, non-ASCII DNS names…).
 */
import { isIPv4, isIPv6 } from 'node:net';
import {
  boolean,
  explicit,
  implicitConstructed,
  implicitPrimitive,
  integer,
  nullValue,
  octetString,
  oid,
  sequence,
  tlv,
} from './der.ts';
import { encodeName, type DistinguishedName } from './name.ts';
import { GENERAL_NAME } from './general-names.ts';
import { PkiError } from './pki-error.ts';

/** One certificate extension. `value` is the DER of the extension's ASN.1 value (the extnValue OCTET STRING contents). */
export interface Extension {
  oid: string;
  critical: boolean;
  value: Buffer;
}

/** Extension OIDs (RFC 5280 §4.2.1, §4.2.2; RFC 6960 §4.2.2.2.1). */
export const EXTENSION_OID = {
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  nameConstraints: '2.5.29.30',
  crlDistributionPoints: '2.5.29.31',
  certificatePolicies: '2.5.29.32',
  authorityKeyIdentifier: '2.5.29.35',
  extendedKeyUsage: '2.5.29.37',
  freshestCrl: '2.5.29.46',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  ocspNoCheck: '1.3.6.1.5.5.7.48.1.5',
} as const;

/** Extended key usage purposes (RFC 5280 §4.2.1.12, RFC 4945 §5.1.3.12, RFC 9336). */
export const EKU = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  emailProtection: '1.3.6.1.5.5.7.3.4',
  ocspSigning: '1.3.6.1.5.5.7.3.9',
  /** id-kp-ipsecIKE (RFC 4945 §5.1.3.12). */
  ipsecIKE: '1.3.6.1.5.5.7.3.17',
  /** id-kp-documentSigning (RFC 9336). */
  documentSigning: '1.3.6.1.5.5.7.3.36',
} as const;

/** The special policy that matches every policy (RFC 5280 §4.2.1.4). */
export const ANY_POLICY = '2.5.29.32.0';

const AD_OCSP = '1.3.6.1.5.5.7.48.1';
const AD_CA_ISSUERS = '1.3.6.1.5.5.7.48.2';

const invalid = (message: string) => new PkiError('invalid-argument', message);

/**
 * The Extensions SEQUENCE of a certificate (without the `[3]` wrapper), in the order given.
 *
 * @throws PkiError('invalid-argument') for an empty list (`SIZE (1..MAX)`, RFC 5280 §4.1) or an
 * extension that appears twice (RFC 5280 §4.2: "MUST NOT include more than one instance").
 */
export function encodeExtensions(extensions: readonly Extension[]): Buffer {
  if (extensions.length === 0) throw invalid('Extensions must hold at least one extension (RFC 5280 §4.1)');
  const seen = new Set<string>();
  const encoded = extensions.map((ext) => {
    if (seen.has(ext.oid)) throw invalid(`extension ${ext.oid} appears twice (RFC 5280 §4.2)`);
    seen.add(ext.oid);
    return encodings.get(ext) ?? encodeExtension(ext);
  });
  return sequence(...encoded);
}

/** Encodings of the extensions {@link encodedOnce} froze. */
const encodings = new WeakMap<Extension, Buffer>();

/**
 * `ext`, frozen, with its encoding kept for {@link encodeExtensions}: for an extension that many
 * certificates share (profiles.ts keeps the ones a CA's leaves have in common). Its value Buffer
 * must not be written to afterwards.
 */
export function encodedOnce(ext: Extension): Extension {
  const frozen = Object.isFrozen(ext) ? ext : Object.freeze({ ...ext });
  if (!encodings.has(frozen)) encodings.set(frozen, encodeExtension(frozen));
  return frozen;
}

/** One Extension; `critical` is omitted when false (DER: DEFAULT values are not encoded, X.690 §11.5). */
export function encodeExtension(ext: Extension): Buffer {
  return ext.critical
    ? sequence(oid(ext.oid), boolean(true), octetString(ext.value))
    : sequence(oid(ext.oid), octetString(ext.value));
}

/**
 * basicConstraints (RFC 5280 §4.2.1.9), always critical. `pathLength` only with `ca: true`
 * ("CAs MUST NOT include the pathLenConstraint field unless the cA boolean is asserted").
 * CA:false encodes as the empty SEQUENCE, since cA is DEFAULT FALSE.
 */
export function basicConstraints(p: { ca: boolean; pathLength?: number }): Extension {
  if (p.pathLength !== undefined) {
    if (!p.ca) throw invalid('pathLength is only allowed with ca: true (RFC 5280 §4.2.1.9)');
    if (!Number.isInteger(p.pathLength) || p.pathLength < 0) throw invalid('pathLength must be a non-negative integer');
  }
  const parts: Buffer[] = [];
  if (p.ca) parts.push(boolean(true));
  if (p.pathLength !== undefined) parts.push(integer(p.pathLength));
  return { oid: EXTENSION_OID.basicConstraints, critical: true, value: sequence(...parts) };
}

export type KeyUsageName =
  | 'digitalSignature'
  | 'nonRepudiation'
  | 'keyEncipherment'
  | 'dataEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign';

/** Bit numbers of KeyUsage (RFC 5280 §4.2.1.3). */
const KEY_USAGE_BITS: Record<KeyUsageName, number> = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
};

/**
 * keyUsage (RFC 5280 §4.2.1.3), critical. A named-bit list in DER drops trailing zero bits and
 * states how many bits of the last octet are unused (X.690 §11.2.2), so keyCertSign + cRLSign is
 * `03 02 01 06`.
 */
export function keyUsage(usages: KeyUsageName[]): Extension {
  if (usages.length === 0) throw invalid('keyUsage needs at least one usage (RFC 5280 §4.2.1.3)');
  let bits = 0;
  for (const u of usages) {
    const bit = KEY_USAGE_BITS[u];
    if (bit === undefined) throw invalid(`unknown key usage ${String(u)}`);
    bits |= 0x80 >> bit; // bit 0 is the most significant bit of the first octet (X.690 §8.6.2.4)
  }
  let unused = 0;
  while (((bits >> unused) & 1) === 0) unused++;
  return { oid: EXTENSION_OID.keyUsage, critical: true, value: tlv(0x03, Buffer.from([unused, bits])) };
}

/** extendedKeyUsage (RFC 5280 §4.2.1.12), non-critical: a SEQUENCE OF KeyPurposeId. */
export function extendedKeyUsage(oids: string[]): Extension {
  if (oids.length === 0) throw invalid('extendedKeyUsage needs at least one purpose');
  checkUnique(oids, 'extendedKeyUsage purpose');
  return { oid: EXTENSION_OID.extendedKeyUsage, critical: false, value: sequence(...oids.map(checkedOid)) };
}

/** subjectKeyIdentifier (RFC 5280 §4.2.1.2), non-critical: an OCTET STRING. */
export function subjectKeyIdentifier(keyId: Buffer): Extension {
  if (keyId.length === 0) throw invalid('empty key identifier');
  return { oid: EXTENSION_OID.subjectKeyIdentifier, critical: false, value: octetString(keyId) };
}

/** authorityKeyIdentifier (RFC 5280 §4.2.1.1), non-critical: `SEQUENCE { [0] IMPLICIT keyIdentifier }`. */
export function authorityKeyIdentifier(keyId: Buffer): Extension {
  if (keyId.length === 0) throw invalid('empty key identifier');
  return { oid: EXTENSION_OID.authorityKeyIdentifier, critical: false, value: sequence(implicitPrimitive(0, keyId)) };
}

/**
 * subjectAltName (RFC 5280 §4.2.1.6): dNSName, iPAddress (IPv4 or IPv6 text, 4 or 16 octets) and
 * rfc822Name entries, non-critical (tierca's subjects are never empty). DNS names must be ASCII
 * (IDNs as A-labels) preferred-name syntax, or a wildcard `*.` over one (ACME dns-01); e-mail addresses must be ASCII
 * (SmtpUTF8Mailbox, RFC 9598, is not supported).
 */
export function subjectAltName(p: { dns?: string[]; ip?: string[]; email?: string[] }): Extension {
  const names = generalNames(p);
  if (names.length === 0) throw invalid('subjectAltName needs at least one name');
  return { oid: EXTENSION_OID.subjectAltName, critical: false, value: sequence(...names) };
}

function generalNames(p: { dns?: string[]; ip?: string[]; email?: string[] }): Buffer[] {
  const dns = p.dns ?? [];
  const ip = p.ip ?? [];
  const email = p.email ?? [];
  checkUnique(dns.map((d) => d.toLowerCase()), 'DNS name');
  checkUnique(ip.map((a) => parseIp(a).toString('hex')), 'IP address');
  checkUnique(email, 'e-mail address');
  return [
    ...dns.map((d) => implicitPrimitive(GENERAL_NAME.dNSName, Buffer.from(checkDnsName(d, false, true), 'ascii'))),
    ...ip.map((a) => implicitPrimitive(GENERAL_NAME.iPAddress, parseIp(a))),
    ...email.map((e) => implicitPrimitive(GENERAL_NAME.rfc822Name, Buffer.from(checkMailbox(e), 'ascii'))),
  ];
}

/** certificatePolicies (RFC 5280 §4.2.1.4), non-critical: PolicyInformation without qualifiers. */
export function certificatePolicies(policyOids: string[]): Extension {
  if (policyOids.length === 0) throw invalid('certificatePolicies needs at least one policy');
  // "A certificate policy OID MUST NOT appear more than once" (RFC 5280 §4.2.1.4).
  checkUnique(policyOids, 'policy');
  return {
    oid: EXTENSION_OID.certificatePolicies,
    critical: false,
    value: sequence(...policyOids.map((p) => sequence(checkedOid(p)))),
  };
}

/** An iPAddress name-constraint base (RFC 5280 §4.2.1.10): a network address and its mask, same length (4 or 16 octets). */
export interface IpSubtree {
  readonly address: Buffer;
  readonly mask: Buffer;
}

/**
 * nameConstraints (RFC 5280 §4.2.1.10), critical ("Conforming CAs MUST mark this extension as
 * critical"). DNS bases are domain suffixes (`yuhu.example` permits the host and everything under
 * it); e-mail bases follow §4.2.1.10's rfc822Name forms: `example` permits mailboxes at that host,
 * `.example` mailboxes at any host under it, `a@example` one mailbox. iPAddress bases are the
 * address followed by the mask: 8 octets for IPv4, 32 for IPv6. `excludedIp` goes into
 * excludedSubtrees (e.g. `0.0.0.0/0` and `::/0` to forbid every IP SAN). Each GeneralSubtree omits
 * `minimum` (DEFAULT 0, X.690 §11.5) and `maximum` (MUST be absent). At least one subtree is required:
 * an empty NameConstraints MUST NOT be issued.
 */
export function nameConstraints(p: {
  permittedDns?: string[];
  permittedEmail?: string[];
  permittedDirectoryNames?: DistinguishedName[];
  permittedIp?: readonly IpSubtree[];
  excludedIp?: readonly IpSubtree[];
}): Extension {
  const permitted = [
    ...(p.permittedDns ?? []).map((d) => implicitPrimitive(GENERAL_NAME.dNSName, Buffer.from(checkDnsName(d, true), 'ascii'))),
    ...(p.permittedEmail ?? []).map((e) => implicitPrimitive(1, Buffer.from(checkEmailConstraint(e), 'ascii'))),
    // directoryName is [4] of a CHOICE (Name), so the tag is explicit (X.680 §31.2.7).
    ...(p.permittedDirectoryNames ?? []).map((dn) => explicit(4, encodeName(dn))),
    ...(p.permittedIp ?? []).map(ipSubtree),
  ].map((base) => sequence(base));
  const excluded = (p.excludedIp ?? []).map((r) => sequence(ipSubtree(r)));
  if (permitted.length + excluded.length === 0) throw invalid('nameConstraints needs at least one subtree');
  const fields: Buffer[] = [];
  // permittedSubtrees [0] and excludedSubtrees [1] are IMPLICIT GeneralSubtrees (RFC 5280 Appendix A.2).
  if (permitted.length) fields.push(implicitConstructed(0, permitted));
  if (excluded.length) fields.push(implicitConstructed(1, excluded));
  return { oid: EXTENSION_OID.nameConstraints, critical: true, value: sequence(...fields) };
}

/** iPAddress [7] IMPLICIT OCTET STRING: address || mask (RFC 5280 §4.2.1.10). */
function ipSubtree(r: IpSubtree): Buffer {
  if (!(r.address.length === 4 || r.address.length === 16) || r.mask.length !== r.address.length) {
    throw invalid('an iPAddress constraint is a 4- or 16-octet address with a mask of the same length');
  }
  return implicitPrimitive(7, Buffer.concat([r.address, r.mask]));
}

/**
 * authorityInfoAccess (RFC 5280 §4.2.2.1), non-critical: an OCSP access description (RFC 6960)
 * and/or a caIssuers URI where the issuer's certificate is published (DER, `application/pkix-cert`).
 */
export function authorityInfoAccess(p: { caIssuers?: string; ocsp?: string }): Extension {
  const descriptions: Buffer[] = [];
  if (p.ocsp !== undefined) descriptions.push(sequence(oid(AD_OCSP), uri(p.ocsp)));
  if (p.caIssuers !== undefined) descriptions.push(sequence(oid(AD_CA_ISSUERS), uri(p.caIssuers)));
  if (descriptions.length === 0) throw invalid('authorityInfoAccess needs caIssuers or ocsp');
  return { oid: EXTENSION_OID.authorityInfoAccess, critical: false, value: sequence(...descriptions) };
}

/**
 * cRLDistributionPoints (RFC 5280 §4.2.1.13), non-critical. The URLs are alternative locations of the
 * same full CRL, so they go in ONE DistributionPoint as several fullName URIs; a second
 * DistributionPoint would announce a different (partitioned) CRL.
 */
export function crlDistributionPoints(urls: string[]): Extension {
  return { oid: EXTENSION_OID.crlDistributionPoints, critical: false, value: distributionPoints(urls) };
}

/** freshestCRL (RFC 5280 §4.2.1.15): where delta CRLs are found; same syntax as CDP, MUST be non-critical. */
export function freshestCrl(urls: string[]): Extension {
  return { oid: EXTENSION_OID.freshestCrl, critical: false, value: distributionPoints(urls) };
}

function distributionPoints(urls: string[]): Buffer {
  if (urls.length === 0) throw invalid('a distribution point needs at least one URL');
  checkUnique(urls, 'URL');
  // DistributionPoint { distributionPoint [0] DistributionPointName } — [0] of a CHOICE is explicit;
  // DistributionPointName { fullName [0] IMPLICIT GeneralNames }.
  return sequence(sequence(explicit(0, implicitConstructed(0, urls.map(uri)))));
}

/** id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1), non-critical, value NULL. */
export function ocspNoCheck(): Extension {
  return { oid: EXTENSION_OID.ocspNoCheck, critical: false, value: nullValue() };
}

// --- checks shared by the builders ---------------------------------------------------------------

const DOTTED_OID = /^[0-2](\.(0|[1-9][0-9]*))+$/;

function checkedOid(dotted: string): Buffer {
  if (!DOTTED_OID.test(dotted)) throw invalid(`not an OID: ${dotted}`);
  return oid(dotted);
}

function checkUnique(values: readonly string[], what: string): void {
  const seen = new Set<string>();
  for (const v of values) {
    if (seen.has(v)) throw invalid(`${what} ${v} given twice`);
    seen.add(v);
  }
}

/** RFC 1034 §3.5 preferred name syntax as RFC 5280 §4.2.1.6 requires for dNSName; letters, digits, hyphens. */
const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/** A DNS name (or, with `constraint`, a DNS constraint, which may start with a dot). */
function checkDnsName(name: string, constraint: boolean, wildcard = false): string {
  // A wildcard is a whole leftmost label `*` over at least two labels (RFC 6125 §6.4.3; CA/B BR 7.1.4.2).
  const bare = constraint && name.startsWith('.') ? name.slice(1) : wildcard && name.startsWith('*.') && name.split('.').length >= 3 ? name.slice(2) : name;
  if (bare.length === 0 || bare.length > 253 || !bare.split('.').every((l) => LABEL.test(l))) {
    throw invalid(`not a DNS name: ${JSON.stringify(name)}`);
  }
  return name;
}

const LOCAL_PART = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$/;

function checkMailbox(address: string): string {
  const at = address.lastIndexOf('@');
  if (at <= 0 || !LOCAL_PART.test(address.slice(0, at))) throw invalid(`not an e-mail address: ${JSON.stringify(address)}`);
  checkDnsName(address.slice(at + 1), false);
  return address;
}

function checkEmailConstraint(base: string): string {
  if (base.includes('@')) return checkMailbox(base);
  checkDnsName(base, true);
  return base;
}

function uri(url: string): Buffer {
  // uniformResourceIdentifier [6] IA5String; RFC 5280 §4.2.2.1/§4.2.1.13 expect http (or ldap) URIs.
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid(`not a URL: ${JSON.stringify(url)}`);
  }
  if (!/^[\x21-\x7e]+$/.test(url) || !['http:', 'https:', 'ldap:'].includes(parsed.protocol)) {
    throw invalid(`not an ASCII http, https or ldap URL: ${JSON.stringify(url)}`);
  }
  return implicitPrimitive(6, Buffer.from(url, 'ascii'));
}

/** The 4- or 16-octet form of an IPv4 or IPv6 address in text (RFC 5280 §4.2.1.6 iPAddress). */
export function parseIp(text: string): Buffer {
  if (isIPv4(text)) return Buffer.from(text.split('.').map(Number));
  if (!isIPv6(text) || text.includes('%')) throw invalid(`not an IP address: ${JSON.stringify(text)}`);
  let head = text;
  let v4: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    // Embedded IPv4 in the last 32 bits (RFC 4291 §2.2 form 3).
    v4 = text.slice(lastColon + 1).split('.').map(Number);
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const words = (s: string) => (s === '' ? [] : s.split(':').map((w) => parseInt(w, 16)));
  const l = words(left);
  const r = right === undefined ? [] : words(right);
  const all = right === undefined ? l : [...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r];
  const out = Buffer.alloc(16);
  all.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  if (v4.length) Buffer.from(v4).copy(out, 12);
  return out;
}
