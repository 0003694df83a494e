/**
 * The issuance rules of a tier and a domain, as pure checks. Each refusal is a specific error code,
 * so an officer (and a test) knows exactly which rule said no.
 *
 * Validity: a request above the tier's maximum is REFUSED (policy-validity), never silently clamped;
 * without `days` the tier maximum is used. The CA's own end of validity does clamp (a child never
 * outlives its parent) — that is a property of the hierarchy, not of the request.
 */
import { isIP } from 'node:net';
import type { KeyAlgorithm } from '../../pki/algorithms.ts';
import type { TierPolicy, HolderKind } from '../config/tier-policy.ts';
import type { DomainRecord, SubjectKind, CertificateProfile } from '../storage/storage.ts';
import { TiercaError } from '../errors.ts';
import { checkCsrProofOfPossession, parseCsr, type CsrProofOfPossession, type ParsedCsr } from '../../pki/csr.ts';
import { csrRefusal } from '../ca/issuance-signing.ts';
import { commonNameReadsAsHost } from '../../pki/name.ts';
import { ipsOutside, type IpRange } from '../../pki/ip-range.ts';
import { DAY_MS } from '../../pki/time-constants.ts';
import { holderKindOf, isEncryptionProfile } from './encryption-profiles.ts';

/** Leaves are back-dated a minute so that a relying party whose clock is slightly behind accepts them. */
const BACKDATE_MS = 60 * 1000;

const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function checkKeyAlgorithm(tier: TierPolicy, keyAlgorithm: KeyAlgorithm | null, described: string): KeyAlgorithm {
  if (!keyAlgorithm || !tier.keyAlgorithms.includes(keyAlgorithm)) {
    throw new TiercaError(
      'policy-key-algorithm',
      `key ${described} is not allowed at tier ${tier.id}; allowed: ${tier.keyAlgorithms.join(', ')}`,
      { detail: { tier: tier.id, algorithm: keyAlgorithm ?? described, allowed: tier.keyAlgorithms } },
    );
  }
  return keyAlgorithm;
}

/** The profiles a subject kind may hold. */
export function checkProfile(kind: SubjectKind, requested: CertificateProfile | undefined): Exclude<CertificateProfile, 'ocsp'> {
  const allowed: Record<SubjectKind, Exclude<CertificateProfile, 'ocsp'>[]> = {
    organ: ['organ', 'organ-enc'],
    device: ['device', 'device-enc'],
    user: ['user-sign', 'user-enc'],
  };
  const profile = requested ?? allowed[kind][0];
  if (!(allowed[kind] as string[]).includes(profile)) {
    throw new TiercaError('policy-profile', `a ${kind} may hold ${allowed[kind].join(' or ')} certificates, not ${profile}`, { detail: { kind, profile, allowed: allowed[kind] } });
  }
  return profile as Exclude<CertificateProfile, 'ocsp'>;
}

export function checkKeyGeneration(tier: TierPolicy, profile: CertificateProfile, serverMade: boolean): void {
  // Encryption keys are made and escrowed by the key-management centre at every tier (DESIGN.md:
  // dual certificates); the holder-only rule is about signing keys.
  if (isEncryptionProfile(profile)) {
    if (!serverMade) throw new TiercaError('policy-profile', 'encryption certificates need a server-made, escrowed key (use generate)', { detail: { profile } });
    const kind = holderKindOf(profile);
    if (tier.encryptionCertificate[kind] === 'none') {
      throw new TiercaError('policy-profile', `tier ${tier.id} issues no encryption certificates${kind === 'user' ? '' : ` to a ${kind}`}`, { detail: { tier: tier.id, kind, profile } });
    }
    return;
  }
  if (serverMade && !tier.keyGeneration.includes('server')) {
    throw new TiercaError('policy-server-keygen', `tier ${tier.id} requires keys made by the holder (send a CSR)`, { detail: { tier: tier.id } });
  }
  if (!serverMade && !tier.keyGeneration.includes('holder')) {
    throw new TiercaError('policy-server-keygen', `tier ${tier.id} requires server-made keys`, { detail: { tier: tier.id } });
  }
}

/** notBefore/notAfter for a request of `days` (default: the tier maximum for the holder kind). */
export function validityFor(p: { tier: TierPolicy; kind: HolderKind; days?: number; now: Date; caNotAfter: Date }): { notBefore: Date; notAfter: Date } {
  const max = p.tier.maxValidityDays[p.kind];
  const days = p.days ?? max;
  if (!Number.isInteger(days) || days < 1) throw new TiercaError('bad-request', 'days must be a whole number of days, at least 1');
  if (days > max) {
    throw new TiercaError('policy-validity', `${days} days is above the tier ${p.tier.id} maximum of ${max} days for a ${p.kind}`, {
      detail: { tier: p.tier.id, kind: p.kind, days, maxDays: max },
    });
  }
  const start = Math.floor(p.now.getTime() / 1000) * 1000;
  const notBefore = new Date(start - BACKDATE_MS);
  const notAfter = new Date(Math.min(start + days * DAY_MS, p.caNotAfter.getTime()));
  return { notBefore, notAfter };
}

/** True when `name` is `suffix` or a name under it. */
const underSuffix = (name: string, suffix: string): boolean => name === suffix || name.endsWith(`.${suffix}`);

/** Validates and normalises the names of a subject against its domain (RFC 5280 §4.2.1.10 semantics). */
export function checkNames(
  domain: DomainRecord,
  kind: SubjectKind,
  names: { dns?: string[]; ips?: string[]; emails?: string[] },
  ipRanges: readonly IpRange[],
  /** Whether `*.` names are allowed: only ACME, whose dns-01 challenge proves control of the zone. */
  options: { wildcards?: boolean } = {},
): { dns: string[]; ips: string[]; emails: string[] } {
  const dns = (names.dns ?? []).map((d) => d.trim().toLowerCase());
  const ips = (names.ips ?? []).map((i) => i.trim());
  const emails = (names.emails ?? []).map((e) => e.trim().toLowerCase());
  for (const name of dns) {
    // A wildcard (`*.` and at least two labels) is validated as the name under it; only ACME dns-01 proves one.
    const labels = (options.wildcards && name.startsWith('*.') && name.split('.').length >= 3 ? name.slice(2) : name).split('.');
    if (name.length > 253 || labels.some((l) => !DNS_LABEL.test(l))) {
      throw new TiercaError('bad-request', `${name} is not a valid DNS name`, { detail: { name } });
    }
    if (!underSuffix(name, domain.dnsSuffix)) {
      throw new TiercaError('policy-name-constraints', `DNS name ${name} is outside domain ${domain.slug} (${domain.dnsSuffix})`, { detail: { name, domain: domain.slug } });
    }
  }
  for (const ip of ips) {
    if (!isIP(ip)) throw new TiercaError('bad-request', `${ip} is not an IP address`, { detail: { name: ip } });
  }
  // The domain CA permits only the domain's configured ranges (iPAddress name constraints, RFC 5280
  // §4.2.1.10): refuse here, with the reason, what a relying party would refuse later.
  const outside = ipsOutside(ips, ipRanges);
  if (outside.length) {
    const allowed = ipRanges.length ? ipRanges.map((r) => r.cidr).join(', ') : 'none: the domain has no ipRanges';
    throw new TiercaError('policy-name-constraints', `IP address ${outside.join(', ')} is outside domain ${domain.slug} (${allowed})`, { detail: { name: outside, domain: domain.slug } });
  }
  for (const email of emails) {
    const at = email.lastIndexOf('@');
    const local = email.slice(0, at);
    const host = email.slice(at + 1);
    if (at < 1 || !/^[a-z0-9._%+-]+$/.test(local) || host.split('.').some((l) => !DNS_LABEL.test(l))) {
      throw new TiercaError('bad-request', `${email} is not a valid e-mail address`);
    }
    if (!underSuffix(host, domain.emailSuffix)) {
      throw new TiercaError('policy-name-constraints', `e-mail ${email} is outside domain ${domain.slug} (${domain.emailSuffix})`, { detail: { name: email, domain: domain.slug } });
    }
  }
  // Each profile carries only its own kind of name (device: DNS/IP; organ and user: e-mail).
  if (kind === 'device' && emails.length) throw new TiercaError('bad-request', 'a device carries DNS names and IP addresses, not e-mail addresses');
  if (kind !== 'device' && (dns.length || ips.length)) throw new TiercaError('bad-request', `a ${kind} carries e-mail addresses, not DNS names or IP addresses`);
  if (kind === 'device' && dns.length === 0 && ips.length === 0) {
    throw new TiercaError('bad-request', 'a device needs at least one DNS name or IP address');
  }
  if (kind === 'user' && emails.length === 0) throw new TiercaError('bad-request', 'a user needs an e-mail address');
  return { dns: [...new Set(dns)], ips: [...new Set(ips)], emails: [...new Set(emails)] };
}

/**
 * Parses a PKCS#10 request and verifies its proof of possession (with `verify`: by default here,
 * the RA passes its signing threads); a refusal says which went wrong.
 */
export async function verifiedCsr(
  input: string | Buffer, verify: (csr: ParsedCsr) => CsrProofOfPossession | Promise<CsrProofOfPossession> = checkCsrProofOfPossession,
): Promise<ParsedCsr & CsrProofOfPossession> {
  try {
    const csr = parseCsr(input);
    const { popIdentity } = await verify(csr);
    return { ...csr, popIdentity };
  } catch (err) {
    throw csrRefusal(err);
  }
}

/** Parses a PKCS#10 request without checking its signature (the signing step will: IssuanceOrder.csrToVerify). */
export function parsedCsr(input: string | Buffer): ParsedCsr {
  try {
    return parseCsr(input);
  } catch (err) {
    throw csrRefusal(err);
  }
}

/** The configured tier `id`, or `bad-request`. */
/**
 * A device's common name that reads as a qualified host name (`www.yuhu.xiangtan.intranet`) must be
 * one of its DNS names: name constraints bind only the alternative names, and a relying party that
 * falls back to the common name (the JDK does, without a DNS SAN) would take it for that host.
 * Single-label names (`vpn-gw-01`) name no host of any domain and are kept; other kinds get their
 * kind appended to such a name (pki/name.ts commonNameFor), so their CN never reads as a host.
 */
export function checkCommonName(kind: SubjectKind, name: string, dns: readonly string[]): void {
  if (kind !== 'device' || !name.includes('.') || !commonNameReadsAsHost(name)) return;
  if (!dns.includes(name.toLowerCase())) {
    throw new TiercaError('policy-name-constraints', `common name ${name} reads as a host name: it must be one of the device's DNS names (${dns.join(', ') || 'none'})`);
  }
}

export function tierOf(tiers: ReadonlyMap<string, TierPolicy>, id: string): TierPolicy {
  const tier = tiers.get(id);
  if (!tier) throw new TiercaError('bad-request', `no tier ${id}`);
  return tier;
}
