/**
 * The one answer to "what is the status of certificate (issuer, serial) now?", which OCSP
 * (ocsp-source.ts) and the JSON `/status` route both give. A certificate is as its record says,
 * unless its CA or a CA above it is revoked or retired (CaDirectory.effectiveStatus): then it answers
 * revoked, whatever its record says (RFC 5280 §5.3.1 cACompromise, or the CA's own reason).
 * Past its archive period (the tier's `archiveDays` after notAfter) a certificate is unknown.
 */
import type { CertStatus } from '../../pki/ocsp-response.ts';
import { REVOCATION_REASONS } from '../../pki/revocation-reason.ts';
import type { CertificateRecord, CertificateRepository } from '../storage/storage.ts';
import type { TierPolicy } from '../config/tier-policy.ts';
import type { CaDirectory, LoadedCa } from './ca-directory.ts';
import { DAY_MS } from '../../pki/time-constants.ts';

/** Archive period of certificates whose tier is no longer configured. */
const DEFAULT_ARCHIVE_DAYS = 365;

/** A certificate's status as relying parties are told it. */
export interface CertificateStatus {
  /** The issuing CA asked about. */
  readonly ca: LoadedCa;
  readonly serial: string;
  /** The record, when the serial is one this CA issued and it is within its archive period. */
  readonly certificate: CertificateRecord | undefined;
  /** `hold` is a revocation with reason certificateHold that may be released (RFC 5280 §5.3.1). */
  readonly status: 'good' | 'revoked' | 'hold' | 'unknown';
  readonly revokedAt: Date | null;
  /** CRLReason code, or null. */
  readonly reason: number | null;
  /** The CA whose revocation or retirement made this certificate revoked (itself not revoked). */
  readonly revokedWithCa?: string;
}

export interface StatusSourceDeps {
  certificates: Pick<CertificateRepository, 'get'>;
  cas: CaDirectory;
  tiers: ReadonlyMap<string, TierPolicy>;
}

export class StatusSource {
  constructor(private readonly deps: StatusSourceDeps) {}

  /** The status of `serial` (canonical hex) issued by `ca`, at `now`. */
  async statusOf(ca: LoadedCa, serial: string, now: Date): Promise<CertificateStatus> {
    const found = await this.deps.certificates.get(ca.record.id, serial);
    const certificate = found && this.withinArchive(found, now) ? found : undefined;
    const chain = this.deps.cas.effectiveStatus(ca.record.id);
    if (chain.status !== 'active') {
      return {
        ca, serial, certificate, status: 'revoked', revokedAt: chain.revokedAt ?? ca.record.notBefore, reason: chain.reason,
        revokedWithCa: chain.blockedBy,
      };
    }
    if (!certificate) return { ca, serial, certificate, status: 'unknown', revokedAt: null, reason: null };
    return {
      ca, serial, certificate, status: certificate.status, revokedAt: certificate.revokedAt,
      reason: certificate.status === 'hold' ? REVOCATION_REASONS.certificateHold : certificate.revocationReason,
    };
  }

  /** Whether a certificate is still answered for: its notAfter plus its tier's archive period is ahead of `now`. */
  withinArchive(cert: Pick<CertificateRecord, 'notAfter' | 'tier'>, now: Date): boolean {
    const tier = cert.tier ? this.deps.tiers.get(cert.tier) : undefined;
    return cert.notAfter.getTime() + (tier?.archiveDays ?? DEFAULT_ARCHIVE_DAYS) * DAY_MS > now.getTime();
  }
}

/** The RFC 6960 §4.2.1 CertStatus of a status: good, revoked (hold included, reason certificateHold) or unknown. */
export function ocspCertStatus(s: Pick<CertificateStatus, 'status' | 'revokedAt' | 'reason'>): CertStatus {
  if (s.status === 'unknown') return { status: 'unknown' };
  if (s.status === 'good' || !s.revokedAt) return { status: 'good' };
  return { status: 'revoked', revokedAt: s.revokedAt, reason: s.reason };
}
