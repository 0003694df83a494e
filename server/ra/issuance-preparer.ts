/**
 * The one issuance preparer: turns what was asked (a CSR, a server-made key or the key being kept;
 * the subject; the tier, profile and days) into the checked {@link IssuanceOrder} the CA signs — the
 * usable issuer, the subject DN, the validity and the names. Issuance, renewal, rekey and principal
 * certificates all prepare through here, so the rules cannot drift apart again.
 */
import type { KeyObject } from 'node:crypto';
import { encodeName, formatName, type DistinguishedName, commonNameFor } from '../../pki/name.ts';
import { generateKeyPair, publicKeyInfoOf } from '../../pki/key-pair.ts';
import { isKeyAlgorithm, type KeyAlgorithm } from '../../pki/algorithms.ts';
import type { CsrProofOfPossession, ParsedCsr } from '../../pki/csr.ts';
import type { CertificateProfile, DomainRecord, DomainRepository, OrganRepository, SubjectRecord } from '../storage/storage.ts';
import { encryptionKeyAlgorithms, type TierPolicy, type HolderKind } from '../config/tier-policy.ts';
import type { TiercaConfig } from '../config/load-config.ts';
import { TiercaError } from '../errors.ts';
import type { CaDirectory, LoadedCa } from '../ca/ca-directory.ts';
import type { IssuanceOrder } from '../ca/certificate-issuer.ts';
import { checkKeyAlgorithm, checkKeyGeneration, parsedCsr, validityFor, verifiedCsr } from './issuance-policy.ts';
import { holderKindOf, isEncryptionProfile } from './encryption-profiles.ts';

export type IssuableProfile = Exclude<CertificateProfile, 'ocsp'>;

/** What was asked for the key: a holder's CSR, or a key the server makes (PKCS#12 delivery). */
export interface KeyRequest {
  /** PEM or DER PKCS#10. */
  csr?: string | Buffer;
  generate?: { algorithm?: string };
}

/**
 * A key choice that passed the tier's rules: a verified CSR (its DER kept, so that a pending request
 * can be carried out later) or one whose signature the signing step checks (`verifyWhenSigning`), a
 * key algorithm for the server to make, or the key being kept.
 */
export type CheckedKey =
  | {
      kind: 'csr'; csrDer: Buffer; publicKeyInfo: Buffer; keyAlgorithm: KeyAlgorithm; popIdentity: CsrProofOfPossession['popIdentity'];
      /** Parsed only: the order carries the CSR to the signing step, which checks it before the CA key signs. */
      verifyWhenSigning?: true;
    }
  | { kind: 'generate'; keyAlgorithm: KeyAlgorithm }
  | { kind: 'keep'; publicKeyInfo: Buffer; keyAlgorithm: KeyAlgorithm };

/** Who the certificate names: a registered subject, a principal (admin client certificate), or the exact DER of a certificate being renewed. */
export type SubjectName =
  | { kind: 'subject'; subject: SubjectRecord }
  | { kind: 'principal'; principalId: string; domain: string }
  | { kind: 'exact'; der: Buffer; text: string };

export interface PrepareInput {
  tier: TierPolicy;
  /** The issuing domain (the tier CA is `<domain>-<tier>`). */
  domain: string;
  profile: IssuableProfile;
  holderKind: HolderKind;
  /** Days asked for; default the tier maximum for `holderKind`. Above it is refused (policy-validity). */
  days?: number;
  name: SubjectName;
  subjectId: string;
  names: { dns: string[]; ip: string[]; email: string[] };
  key: CheckedKey;
  requestId: string | null;
  now: Date;
}

/** An order ready for the CA, with the private key when the server made it (deliver it before commit). */
export interface PreparedIssuance {
  order: IssuanceOrder;
  privateKey?: KeyObject;
}

export interface IssuancePreparerDeps {
  config: Pick<TiercaConfig, 'country' | 'province' | 'organisation'>;
  cas: Pick<CaDirectory, 'usableIssuer'>;
  domains: Pick<DomainRepository, 'get'>;
  organs: Pick<OrganRepository, 'get'>;
  /** Verifies a CSR's proof of possession (e.g. on a signing thread); default on the calling thread. */
  verifyCsr?: (csr: ParsedCsr) => CsrProofOfPossession | Promise<CsrProofOfPossession>;
}

/** OU of every principal certificate: it names an operator of tierca, not a subject of the intranet. */
export const PRINCIPAL_OU = 'tierca principal';

/** The parts of a subject DN that are not fixed by the deployment (C and ST are). */
export interface DnParts {
  locality: string;
  organisation: string;
  organisationalUnit?: string;
  commonName: string;
}

/**
 * THE subject DN of every certificate tierca issues (renewals keep the old one byte for byte):
 * C and ST of the deployment, L the domain's locality, O the organ (or the deployment's organisation
 * for principals), OU for principals, CN the subject's name. Built from the registered subject,
 * never from a CSR.
 */
export function subjectDistinguishedName(config: Pick<TiercaConfig, 'country' | 'province'>, parts: DnParts): DistinguishedName {
  return [
    { type: 'C', value: config.country },
    { type: 'ST', value: config.province },
    { type: 'L', value: parts.locality },
    { type: 'O', value: parts.organisation },
    ...(parts.organisationalUnit ? [{ type: 'OU' as const, value: parts.organisationalUnit }] : []),
    { type: 'CN', value: parts.commonName },
  ];
}

export class IssuancePreparer {
  /** Domains and organs are written once by the ceremony and never change: read once per instance. */
  private readonly domainRecords = new Map<string, DomainRecord>();
  private readonly organNames = new Map<string, string>();

  constructor(private readonly deps: IssuancePreparerDeps) {}

  /** The parsed CSR once its proof of possession verified, with the SM2 identity it verified with. */
  csr(input: string | Buffer): Promise<ParsedCsr & CsrProofOfPossession> {
    return verifiedCsr(input, this.deps.verifyCsr);
  }

  /**
   * Checks what was asked for the key against the tier and profile: exactly one of a CSR (verified,
   * its algorithm allowed) and generate (server-made keys allowed, the algorithm allowed; default
   * the tier's first). Nothing is made yet. With `verifyWhenSigning` (an issuance signed right away,
   * whose order goes to the signing step: {@link prepare}) a CSR is only parsed here; the signing step
   * checks its proof of possession before the CA key signs, on the same trip to the signing thread.
   */
  async checkKey(tier: TierPolicy, profile: IssuableProfile, asked: KeyRequest, options: { verifyWhenSigning?: boolean } = {}): Promise<CheckedKey> {
    if (!!asked.csr === !!asked.generate) throw new TiercaError('bad-request', 'send either a CSR or generate, not both or neither');
    checkKeyGeneration(tier, profile, !!asked.generate);
    if (asked.csr && options.verifyWhenSigning) {
      const csr = parsedCsr(asked.csr);
      const keyAlgorithm = checkKeyAlgorithm(tier, csr.keyAlgorithm, csr.keyAlgorithm ?? 'of this type/size');
      return { kind: 'csr', csrDer: csr.der, publicKeyInfo: csr.publicKeyInfo, keyAlgorithm, popIdentity: null, verifyWhenSigning: true };
    }
    if (asked.csr) {
      const csr = await this.csr(asked.csr);
      const keyAlgorithm = checkKeyAlgorithm(tier, csr.keyAlgorithm, csr.keyAlgorithm ?? 'of this type/size');
      return { kind: 'csr', csrDer: csr.der, publicKeyInfo: csr.publicKeyInfo, keyAlgorithm, popIdentity: csr.popIdentity };
    }
    // An encryption key takes the algorithms its kind may have (no RSA for a device, decision 0027).
    const allowed = isEncryptionProfile(profile) ? { ...tier, keyAlgorithms: encryptionKeyAlgorithms(tier, holderKindOf(profile)) } : tier;
    const algorithm = asked.generate!.algorithm ?? allowed.keyAlgorithms[0];
    if (!isKeyAlgorithm(algorithm)) throw new TiercaError('policy-key-algorithm', `unknown key algorithm ${algorithm}`, { detail: { algorithm } });
    return { kind: 'generate', keyAlgorithm: checkKeyAlgorithm(allowed, algorithm, `${algorithm}${allowed === tier ? '' : ` (for ${profile})`}`) };
  }

  /** The issuer and validity an issuance would get now: refuses an unusable CA or too many days before anything is made. */
  issuerAndValidity(p: Pick<PrepareInput, 'tier' | 'domain' | 'holderKind' | 'days' | 'now'>): { ca: LoadedCa; notBefore: Date; notAfter: Date } {
    const ca = this.deps.cas.usableIssuer(p.domain, p.tier.id);
    const validity = validityFor({ tier: p.tier, kind: p.holderKind, days: p.days, now: p.now, caNotAfter: ca.record.notAfter });
    return { ca, ...validity };
  }

  /** The order for `p`; a server-made key is made here (and returned, to be delivered before commit). */
  async prepare(p: PrepareInput): Promise<PreparedIssuance> {
    const { ca, notBefore, notAfter } = this.issuerAndValidity(p);
    const { der: subject, text: subjectDn } = await this.subjectName(p.name);
    let privateKey: KeyObject | undefined;
    let publicKeyInfo: Buffer;
    if (p.key.kind === 'generate') {
      privateKey = (await generateKeyPair(p.key.keyAlgorithm)).privateKey;
      publicKeyInfo = publicKeyInfoOf(privateKey);
    } else {
      publicKeyInfo = p.key.publicKeyInfo;
    }
    const domain = await this.domain(p.domain);
    const order: IssuanceOrder = {
      ca, tier: p.tier, profile: p.profile, subject, subjectDn, subjectId: p.subjectId, domain: p.domain,
      publicKeyInfo, keyAlgorithm: p.key.keyAlgorithm, names: p.names, notBefore, notAfter, requestId: p.requestId,
      popIdentity: p.key.kind === 'csr' ? p.key.popIdentity : null,
      ...(p.key.kind === 'csr' && p.key.verifyWhenSigning ? { csrToVerify: p.key.csrDer } : {}),
      permitted: { dns: domain ? [domain.dnsSuffix] : [], email: domain ? [domain.emailSuffix] : [] },
    };
    return { order, privateKey };
  }

  private async subjectName(name: SubjectName): Promise<{ der: Buffer; text: string }> {
    if (name.kind === 'exact') return { der: name.der, text: name.text };
    let dn: DistinguishedName;
    if (name.kind === 'subject') {
      const { domain: domainSlug, organ: organSlug } = name.subject;
      const locality = (await this.domain(domainSlug))?.locality ?? domainSlug;
      const organisation = (await this.organName(domainSlug, organSlug)) ?? organSlug;
      dn = subjectDistinguishedName(this.deps.config, { locality, organisation, commonName: commonNameFor(name.subject.kind, name.subject.name) });
    } else {
      const domain = await this.domain(name.domain);
      dn = subjectDistinguishedName(this.deps.config, {
        locality: domain?.locality ?? name.domain, organisation: this.deps.config.organisation, organisationalUnit: PRINCIPAL_OU, commonName: commonNameFor('principal', name.principalId),
      });
    }
    return { der: encodeName(dn), text: formatName(dn) };
  }

  private async domain(slug: string): Promise<DomainRecord | undefined> {
    const cached = this.domainRecords.get(slug);
    if (cached) return cached;
    const domain = await this.deps.domains.get(slug);
    if (domain) this.domainRecords.set(slug, domain);
    return domain;
  }

  private async organName(domain: string, slug: string): Promise<string | undefined> {
    const key = `${domain}/${slug}`;
    const cached = this.organNames.get(key);
    if (cached) return cached;
    const organ = await this.deps.organs.get(domain, slug);
    if (organ) this.organNames.set(key, organ.name);
    return organ?.name;
  }
}
