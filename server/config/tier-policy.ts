/**
 * A tier's policy: what may be issued at it. Built from config (defaults from DESIGN.md) and
 * frozen at start-up; the registration authority reads it, nothing changes it at run time.
 */
import type { KeyAlgorithm, RsaPadding } from '../../pki/algorithms.ts';

export type HolderKind = 'user' | 'device' | 'organ';
export type KeyGeneration = 'holder' | 'server';
/** Whether a holder's signing certificate comes with an encryption certificate: never, when asked, always. */
export type EncryptionCertificateRule = 'none' | 'optional' | 'required';

export interface TierPolicy {
  readonly id: string;
  readonly name: string;
  /**
   * Certificate-policy OID of the tier: `tiers.<id>.policyOid` from the configuration, else
   * `<policyArc>.1.<n>` for a tier `t<n>` ({@link tierPolicyOid}). Every arc < 2^28 (pki/oid.ts).
   */
  readonly oid: string;
  /** Key algorithms end-entity certificates may carry at this tier. */
  readonly keyAlgorithms: readonly KeyAlgorithm[];
  /** Algorithm of the tier's issuing CAs. */
  readonly caAlgorithm: KeyAlgorithm;
  /** How an RSA issuing CA signs (default PKCS#1 v1.5; 'pss' = RSASSA-PSS, SHA-256). */
  readonly caRsaPadding?: RsaPadding;
  readonly maxValidityDays: Readonly<Record<HolderKind, number>>;
  /** Where keys may be made: by the holder (CSR) and/or by the server (PKCS#12). */
  readonly keyGeneration: readonly KeyGeneration[];
  /** Officers who must approve an issuance (2 = dual control). */
  readonly approvals: 1 | 2;
  /**
   * Per holder kind, whether issuance from a signing CSR also gives an encryption certificate whose
   * key the KMC makes and escrows (dual certificates, decision 0027). Config: one rule (the users';
   * devices and organs none) or `{ user, device, organ }`. Default t1 user optional, t2 and t3 user
   * required; devices and organs none.
   */
  readonly encryptionCertificate: Readonly<Record<HolderKind, EncryptionCertificateRule>>;
  /** Validity of OCSP answers and CRLs (thisUpdate → nextUpdate), hours. */
  readonly statusValidityHours: number;
  /** How long after expiry a certificate's status is still answered, days. */
  readonly archiveDays: number;
  /** Validity of delegated OCSP responder certificates, days. */
  readonly responderValidityDays: number;
  /**
   * When an end-entity certificate is due for renewal, as a fraction of its lifetime after notBefore
   * (`tierca rotate due`). Default 2/3 (server/ca/rotation-planner.ts).
   */
  readonly renewAtFraction?: number;
  /**
   * Days a renewed certificate stays good beside its successor before it is revoked with reason
   * superseded; 0 revokes it in the renewal's own transaction. Default 0 when absent.
   */
  readonly supersedeGraceDays?: number;
}

/**
 * The policy OID a tier derives from the deployment's arc: `<arc>.1.<n>` for a tier id `t<n>` (the
 * default tiers t1, t2, t3 → `.1.1`, `.1.2`, `.1.3`; `.1` keeps the rest of the arc free for other
 * uses); null for any other tier id, which must then give `policyOid` itself.
 */
export function tierPolicyOid(arc: string, tierId: string): string | null {
  const n = /^t([1-9][0-9]{0,8})$/.exec(tierId)?.[1];
  return n ? `${arc}.1.${n}` : null;
}

/**
 * DESIGN.md's default tiers, without their policy OIDs: those come from the configuration's
 * `policyArc` (or `tiers.<id>.policyOid`). Every tier admits SM2 end-entity keys (GB/T 32918, decision 0020).
 */
export const DEFAULT_TIERS: Record<string, Omit<TierPolicy, 'id' | 'oid'>> = {
  t1: {
    name: 'internal',
    keyAlgorithms: ['P-256', 'P-384', 'RSA-2048', 'RSA-3072', 'RSA-4096', 'SM2'],
    caAlgorithm: 'P-256',
    maxValidityDays: { user: 730, device: 730, organ: 1095 },
    keyGeneration: ['holder', 'server'],
    approvals: 1,
    encryptionCertificate: { user: 'optional', device: 'none', organ: 'none' },
    statusValidityHours: 24,
    archiveDays: 365,
    responderValidityDays: 7,
    renewAtFraction: 2 / 3,
    supersedeGraceDays: 7,
  },
  t2: {
    name: 'restricted',
    keyAlgorithms: ['P-256', 'P-384', 'RSA-3072', 'RSA-4096', 'SM2'],
    caAlgorithm: 'P-256',
    maxValidityDays: { user: 365, device: 365, organ: 730 },
    keyGeneration: ['holder', 'server'],
    approvals: 1,
    encryptionCertificate: { user: 'required', device: 'none', organ: 'none' },
    statusValidityHours: 4,
    archiveDays: 730,
    responderValidityDays: 3,
    renewAtFraction: 2 / 3,
    supersedeGraceDays: 3,
  },
  t3: {
    name: 'confidential',
    keyAlgorithms: ['P-384', 'SM2'],
    caAlgorithm: 'P-384',
    maxValidityDays: { user: 90, device: 180, organ: 365 },
    keyGeneration: ['holder'],
    approvals: 2,
    encryptionCertificate: { user: 'required', device: 'none', organ: 'none' },
    statusValidityHours: 1,
    archiveDays: 1825,
    responderValidityDays: 1,
    renewAtFraction: 2 / 3,
    supersedeGraceDays: 1,
  },
};

/**
 * The per-kind form of a configured `encryptionCertificate`: a single rule is the users' (what it
 * meant before devices and organs could hold dual certificates), so old configurations keep their meaning.
 */
export function encryptionCertificateByKind(
  value: EncryptionCertificateRule | Readonly<Record<HolderKind, EncryptionCertificateRule>>,
): Readonly<Record<HolderKind, EncryptionCertificateRule>> {
  return typeof value === 'string' ? { user: value, device: 'none', organ: 'none' } : { ...value };
}

/**
 * The key algorithms an encryption key of `kind` may have at `tier`: the tier's, in its order, except
 * RSA for devices — an RSA key with keyEncipherment and serverAuth would pass, in a TLS 1.2 RSA key
 * exchange, as the device's identity, and the KMC knows this key (decision 0027).
 */
export function encryptionKeyAlgorithms(tier: Pick<TierPolicy, 'keyAlgorithms'>, kind: HolderKind): KeyAlgorithm[] {
  return tier.keyAlgorithms.filter((a) => kind !== 'device' || !a.startsWith('RSA'));
}
