/**
 * Revocation, hold and release of end-entity certificates. Each change is one transaction: the new
 * status, the re-signed OCSP answer, a revocation event (other instances poll these) and the audit
 * record commit together, so no acknowledged revocation is lost and the next OCSP answer already
 * says `revoked`. certificateHold is reversible; every other reason is final (RFC 5280 §5.3.1).
 */
import type { CertificateRecord, Repositories, Store, StatusChange } from '../storage/storage.ts';
import type { TierPolicy } from '../config/tier-policy.ts';
import { REVOCATION_REASONS } from '../../pki/revocation-reason.ts';
import { appendAudit, type AuditEvent } from '../audit/audit-log.ts';
import { TiercaError } from '../errors.ts';
import type { CaDirectory } from './ca-directory.ts';
import type { ResponderPool } from './ocsp-responders.ts';
import { presignOcspResponse, certStatusOf } from './ocsp-presigner.ts';

export type StatusAction =
  | { kind: 'revoke'; reason: number; invalidityDate: Date | null }
  | { kind: 'hold' }
  | { kind: 'release' };

export interface StatusChangeResult {
  record: CertificateRecord;
  /** False when the certificate already was in the asked state (a second revoke keeps the first). */
  changed: boolean;
}

export interface RevocationServiceDeps {
  store: Store;
  cas: CaDirectory;
  responders: ResponderPool;
  tiers: ReadonlyMap<string, TierPolicy>;
  /** Told after commit, so the local OCSP cache and the CRL publisher follow at once. */
  onStatusChange?: (record: CertificateRecord) => void;
}

const HOLD = REVOCATION_REASONS.certificateHold;

export class RevocationService {
  constructor(private readonly deps: RevocationServiceDeps) {}

  /** Applies `action` to the certificate (issuer, serial) at `now`. */
  async apply(
    issuerId: string,
    serial: string,
    action: StatusAction,
    now: Date,
    audit: Omit<AuditEvent, 'outcome' | 'target' | 'action'>,
  ): Promise<StatusChangeResult> {
    const { store, cas, responders, tiers } = this.deps;
    const ca = cas.get(issuerId);
    if (!ca) throw new TiercaError('not-found', `no CA ${issuerId}`);
    const responder = await responders.forCa(issuerId, now);
    const result = await store.transaction(async (tx) => {
      const current = await tx.certificates.get(issuerId, serial);
      if (!current) throw new TiercaError('not-found', `no certificate ${serial} issued by ${issuerId}`);
      const change = nextStatus(current, action, now);
      const actionName = action.kind === 'revoke' && action.reason === HOLD ? 'hold' : action.kind;
      if (!change) {
        await this.audit(tx, now, audit, `certificate.${actionName}`, current, { unchanged: true });
        return { record: current, changed: false };
      }
      await tx.certificates.updateStatus(issuerId, serial, change);
      const record = { ...current, ...change };
      const tier = record.tier ? tiers.get(record.tier) : undefined;
      await tx.ocspResponses.upsert(
        await presignOcspResponse({
          ca, responder, serial, certStatus: certStatusOf(record), now, validityHours: tier?.statusValidityHours ?? 1,
        }),
      );
      await tx.revocationEvents.append({ issuerId, serial, status: record.status, at: now });
      await this.audit(tx, now, audit, `certificate.${actionName}`, record, {
        status: record.status,
        reason: record.revocationReason,
      });
      return { record, changed: true };
    });
    if (result.changed) this.deps.onStatusChange?.(result.record);
    return result;
  }

  private async audit(
    tx: Repositories, now: Date, audit: Omit<AuditEvent, 'outcome' | 'target' | 'action'>, action: string,
    record: CertificateRecord, detail: Record<string, unknown>,
  ): Promise<void> {
    await appendAudit(tx.audit, now, {
      ...audit,
      action,
      outcome: 'success',
      target: `certificate:${record.issuerId}/${record.serial}`,
      detail: { ...(audit.detail ?? {}), ...detail },
    });
  }
}

/**
 * The status after `action`, or null when nothing changes. Throws for transitions that are not
 * allowed: leaving a final revocation, releasing what is not on hold.
 */
export function nextStatus(current: CertificateRecord, action: StatusAction, now: Date): StatusChange | null {
  const revokedFinal = current.status === 'revoked';
  if (action.kind === 'revoke' && action.reason === HOLD) return nextStatus(current, { kind: 'hold' }, now);
  switch (action.kind) {
    case 'revoke':
      if (revokedFinal) return null;
      return { status: 'revoked', revokedAt: now, revocationReason: action.reason, invalidityDate: action.invalidityDate };
    case 'hold':
      if (revokedFinal) throw new TiercaError('revocation-final', `certificate ${current.serial} is revoked; revocation is final`);
      if (current.status === 'hold') return null;
      return { status: 'hold', revokedAt: now, revocationReason: HOLD, invalidityDate: null };
    case 'release':
      if (revokedFinal) throw new TiercaError('revocation-final', `certificate ${current.serial} is revoked; revocation is final`);
      if (current.status !== 'hold') throw new TiercaError('conflict', `certificate ${current.serial} is not on hold`);
      return { status: 'good', revokedAt: null, revocationReason: null, invalidityDate: null };
  }
}
