/**
 * Which profile is the signing and which the encryption half of a holder kind's dual certificates
 * (decision 0027): `user-sign` + `user-enc`, `device` + `device-enc`, `organ` + `organ-enc`. One
 * table, so issuance, renewal, recovery and the policy checks cannot disagree about it.
 */
import type { HolderKind } from '../config/tier-policy.ts';
import type { CertificateProfile } from '../storage/storage.ts';

export type EncryptionProfile = 'user-enc' | 'device-enc' | 'organ-enc';

const PAIRS: Readonly<Record<HolderKind, { signing: CertificateProfile; encryption: EncryptionProfile }>> = {
  user: { signing: 'user-sign', encryption: 'user-enc' },
  device: { signing: 'device', encryption: 'device-enc' },
  organ: { signing: 'organ', encryption: 'organ-enc' },
};

/** Every encryption profile, whose keys only the key-management centre makes. */
export const ENCRYPTION_PROFILES: readonly EncryptionProfile[] = Object.values(PAIRS).map((p) => p.encryption);

export const signingProfileOf = (kind: HolderKind): CertificateProfile => PAIRS[kind].signing;
export const encryptionProfileOf = (kind: HolderKind): EncryptionProfile => PAIRS[kind].encryption;

export function isEncryptionProfile(profile: string): profile is EncryptionProfile {
  return (ENCRYPTION_PROFILES as readonly string[]).includes(profile);
}

/** The holder kind an encryption profile is for. */
export function holderKindOf(profile: EncryptionProfile): HolderKind {
  return (Object.keys(PAIRS) as HolderKind[]).find((k) => PAIRS[k].encryption === profile)!;
}
