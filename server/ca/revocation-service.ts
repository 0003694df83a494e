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
import type { CaDirectory, LoadedCa } from './ca-directory.ts';
import type { Responder, ResponderPool } from './ocsp-responders.ts';
import { presignOcspResponse, certStatusOf } from './ocsp-presigner.ts';

/** A change of a certificate's status: revoke (with a reason; certificateHold means hold), hold, release. */
export type StatusTransition =
  | { kind: 'revoke'; reason: number; invalidityDate: Date | null }
  | { kind: 'hold' }
  | { kind: 'release' };

export interface StatusChangeResult {
  record: CertificateRecord;
  /** False when the certificate already was in the asked state (a second revoke keeps the first). */
  changed: boolean;
}

/** A status change made ready by {@link RevocationService.prepare}. */
export interface PreparedRevocation {
  /** Changes one certificate inside `tx`: new status, re-signed OCSP answer, revocation event, audit record. */
  apply(
    tx: Repositories, issuerId: string, serial: string, action: StatusTransition, audit: Omit<AuditEvent, 'outcome' | 'target' | 'action'>,
  ): Promise<StatusChangeResult>;
  /** Tells the OCSP cache and the CRL publisher, once the transaction has committed. */
  committed(records: readonly CertificateRecord[]): void;
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

  /** Applies `action` to the certificate (issuer, serial) at `now`, in a transaction of its own. */
  async apply(
    issuerId: string,
    serial: string,
    action: StatusTransition,
    now: Date,
    audit: Omit<AuditEvent, 'outcome' | 'target' | 'action'>,
  ): Promise<StatusChangeResult> {
    const prepared = await this.prepare([issuerId], now);
    const result = await this.deps.store.transaction((tx) => prepared.apply(tx, issuerId, serial, action, audit));
    if (result.changed) this.deps.onStatusChange?.(result.record);
    return result;
  }

  /**
   * What changing the status of certificates of `issuerIds` needs outside a transaction (each CA's
   * responder, which may be made in a transaction of its own): returns `apply`, which changes one
   * certificate inside the caller's transaction, and `committed`, to call after that commits.
   */
  async prepare(issuerIds: readonly string[], now: Date): Promise<PreparedRevocation> {
    const { cas, responders, tiers } = this.deps;
    const ready = new Map<string, { ca: LoadedCa; responder: Responder }>();
    for (const issuerId of new Set(issuerIds)) {
      const ca = cas.get(issuerId);
      if (!ca) throw new TiercaError('not-found', `no CA ${issuerId}`);
      ready.set(issuerId, { ca, responder: await responders.forCa(issuerId, now) });
    }
    return {
      apply: async (tx, issuerId, serial, action, audit) => {
        const signer = ready.get(issuerId);
        // A certificate from a CA not prepared for (a rollover meanwhile): the caller may simply try again.
        if (!signer) throw new TiercaError('unavailable', `certificate ${issuerId}/${serial} appeared under a CA not prepared for; try again`);
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
            ...signer, serial, certStatus: certStatusOf(record), now, validityHours: tier?.statusValidityHours ?? 1,
          }),
        );
        await tx.revocationEvents.append({ issuerId, serial, status: record.status, at: now });
        await this.audit(tx, now, audit, `certificate.${actionName}`, record, { status: record.status, reason: record.revocationReason });
        return { record, changed: true };
      },
      committed: (records) => {
        for (const r of records) this.deps.onStatusChange?.(r);
      },
    };
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
export function nextStatus(current: CertificateRecord, action: StatusTransition, now: Date): StatusChange | null {
  const revokedFinal = current.status === 'revoked';
  if (action.kind === 'revoke' && action.reason === HOLD) return nextStatus(current, { kind: 'hold' }, now);
  switch (action.kind) {
    case 'revoke':
      if (revokedFinal) return null;
      return { status: 'revoked', revokedAt: now, revocationReason: action.reason, invalidityDate: action.invalidityDate };
    case 'hold':
      if (revokedFinal) throw new TiercaError('revocation-final', `certificate ${current.serial} is revoked; revocation is final`, { detail: { serial: current.serial } });
      if (current.status === 'hold') return null;
      return { status: 'hold', revokedAt: now, revocationReason: HOLD, invalidityDate: null };
    case 'release':
      if (revokedFinal) throw new TiercaError('revocation-final', `certificate ${current.serial} is revoked; revocation is final`, { detail: { serial: current.serial } });
      if (current.status !== 'hold') throw new TiercaError('conflict', `certificate ${current.serial} is not on hold`);
      return { status: 'good', revokedAt: null, revocationReason: null, invalidityDate: null };
  }
}
