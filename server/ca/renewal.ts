/**
 * The CA half of renewal (STYLE.md practice 3: the RA decides, the CA signs). It issues the successor
 * of a certificate from an order the rotation authority has checked — same subject, tier and profile —
 * and records the succession, in ONE transaction with the successor, its OCSP answer, the idempotency
 * record of the request id and the audit record. The old certificate is revoked with reason
 * superseded when its tier's grace period ends: in that same transaction when the grace is 0, else
 * later by {@link RenewalService.supersedeDue} (the rotation timer and `rotate run`), again one
 * transaction per certificate. So an interruption leaves the old state or the new one, never half;
 * a retry with the same request id returns what the first attempt committed.
 */
import type { KeyObject } from 'node:crypto';
import { children, readOnly } from '../../pki/der-reader.ts';
import { readCertificate, readExtensions } from '../../pki/certificate-reader.ts';
import { EXTENSION_OID } from '../../pki/extensions.ts';
import { Tag, contextConstructed } from '../../pki/der-tag.ts';
import { readGeneralNames } from '../../pki/general-names.ts';
import { REVOCATION_REASONS } from '../../pki/revocation-reason.ts';
import type { KeyStore } from '../../pki/keystore/keystore.ts';
import {
  UniqueViolationError, type CertificateRecord, type RenewalRecord, type Repositories, type Store,
} from '../storage/storage.ts';
import type { TierPolicy } from '../config/tier-policy.ts';
import { appendAudit, type AuditEvent } from '../audit/audit-log.ts';
import { TiercaError } from '../errors.ts';
import type { CaDirectory } from './ca-directory.ts';
import type { CertificateIssuer, IssuanceOrder } from './certificate-issuer.ts';
import type { Responder, ResponderPool } from './ocsp-responders.ts';
import { certStatusOf, presignOcspResponse } from './ocsp-presigner.ts';
import { nextStatus } from './revocation-service.ts';
import { DAY_MS } from '../../pki/time-constants.ts';

const SUPERSEDED = REVOCATION_REASONS.superseded;

/** Who a rotation is done for, as the audit log records it. */
export type AuditActor = Pick<AuditEvent, 'principalId' | 'role' | 'source' | 'requestId'>;

/**
 * A test-only hook: `after(step)` runs after each step of a renewal or rollover and may throw (or kill
 * the process) to prove that an interruption there leaves the old state or the new one.
 */
export interface RotationFaults<Step extends string> {
  after(step: Step): void | Promise<void>;
}

/**
 * The steps of a renewal: `prepared` (checked, nothing written), `in-transaction` (successor, OCSP
 * answer, succession and request id written but not committed), `committed`; and for a deferred
 * supersession `supersede:in-transaction`, `supersede:committed`.
 */
export type RenewalStep = 'prepared' | 'in-transaction' | 'committed' | 'supersede:in-transaction' | 'supersede:committed';

export interface RenewalServiceDeps {
  store: Store;
  cas: CaDirectory;
  issuer: CertificateIssuer;
  responders: ResponderPool;
  tiers: ReadonlyMap<string, TierPolicy>;
  keystore: KeyStore;
  /** Told after commit about a certificate revoked as superseded (OCSP cache, CRL republication). */
  onStatusChange?: (record: CertificateRecord) => void;
  faults?: RotationFaults<RenewalStep>;
}

/** What the rotation authority hands the CA: everything is decided and checked. */
export interface RenewalOrder {
  /** The certificate being replaced. */
  old: CertificateRecord;
  /** The successor's issuance order: the old subject, tier, profile and names; the current CA generation. */
  order: IssuanceOrder;
  /** Idempotency key: a second renewal with this id returns the first one's result. */
  requestId: string;
  mode: 'renew' | 'rekey';
  /** The tier's grace period; 0 revokes the old certificate in the renewal's transaction. */
  graceDays: number;
  /** A server-made key of a user encryption certificate, escrowed (sealed) with the successor. */
  escrowKey?: KeyObject;
  /** The successor keeps an escrowed key: carry the sealed key over to the successor's id. */
  carryEscrow?: boolean;
  /** Runs after signing, before anything is stored (the RA delivers a server-made key here). */
  beforeStore?: (record: CertificateRecord) => Promise<void>;
  actor: AuditActor;
}

export interface RenewalOutcome {
  /** The successor. */
  record: CertificateRecord;
  chain: readonly Buffer[];
  renewal: RenewalRecord;
  /** True when this request id had already completed: nothing new was issued. */
  replayed: boolean;
}

export class RenewalService {
  constructor(private readonly deps: RenewalServiceDeps) {}

  /** The renewal a request id already completed, or undefined. Throws `conflict` if the id was used for something else. */
  async replay(requestId: string, old?: Pick<CertificateRecord, 'issuerId' | 'serial'>): Promise<RenewalOutcome | undefined> {
    const { store, cas } = this.deps;
    const done = await store.rotationRequests.get(requestId);
    if (!done) return undefined;
    const target = old ? `certificate:${old.issuerId}/${old.serial}` : undefined;
    if (done.kind !== 'renew' || (target && done.target !== target)) {
      throw new TiercaError('conflict', `request id ${requestId} was already used for ${done.kind} of ${done.target}`);
    }
    const { issuerId, serial } = done.result as { issuerId: string; serial: string };
    const record = await store.certificates.get(issuerId, serial);
    const renewal = await store.renewals.getByNew(issuerId, serial);
    if (!record || !renewal) throw new TiercaError('internal', `rotation request ${requestId} names a missing certificate ${issuerId}/${serial}`);
    return { record, chain: cas.get(issuerId)?.chain ?? [], renewal, replayed: true };
  }

  /** Issues the successor of `o.old` (see the module comment). */
  async renew(o: RenewalOrder, now: Date): Promise<RenewalOutcome> {
    const { store, issuer, keystore, faults } = this.deps;
    const earlier = await this.replay(o.requestId, o.old);
    if (earlier) return earlier;
    const supersedeAt = new Date(Math.floor((now.getTime() + o.graceDays * DAY_MS) / 1000) * 1000);
    const supersedeNow = supersedeAt.getTime() <= now.getTime();
    // Signing an OCSP answer may make a responder, in its own transaction: do it before ours.
    const responder = supersedeNow ? await this.responderFor(o.old.issuerId, now) : undefined;
    await faults?.after('prepared');
    // Filled in by the transaction callback.
    const made: { renewal?: RenewalRecord; superseded: CertificateRecord | null } = { superseded: null };
    const oldName = `${o.old.issuerId}/${o.old.serial}`;
    try {
      const issued = await issuer.issue(
        o.order,
        now,
        {
          ...o.actor,
          action: 'certificate.renew',
          detail: { replaced: oldName, mode: o.mode, supersedeAt: supersedeAt.toISOString(), renewalRequest: o.requestId },
        },
        { beforeStore: o.beforeStore, inTransaction: async (tx, record) => {
          // The subject is read under its row lock: a subject revoked meanwhile gets no successor.
          const subject = await tx.subjects.lock(o.order.subjectId, 'share');
          if (!subject || subject.status !== 'active') throw new TiercaError('conflict', `subject ${o.order.subjectId} is revoked`);
          const current = await tx.certificates.get(o.old.issuerId, o.old.serial);
          if (!current || current.status !== 'good' || current.notAfter.getTime() <= now.getTime()) {
            throw new TiercaError('conflict', `certificate ${oldName} is no longer good; it cannot be renewed`);
          }
          const renewal: RenewalRecord = {
            oldIssuerId: o.old.issuerId,
            oldSerial: o.old.serial,
            newIssuerId: record.issuerId,
            newSerial: record.serial,
            requestId: o.requestId,
            mode: o.mode,
            requestedBy: o.actor.principalId,
            supersedeAt,
            supersededAt: null,
            createdAt: now,
          };
          try {
            await tx.renewals.insert(renewal);
            await tx.rotationRequests.insert({
              id: o.requestId,
              kind: 'renew',
              target: `certificate:${oldName}`,
              principalId: o.actor.principalId,
              result: { issuerId: record.issuerId, serial: record.serial, replaced: oldName },
              createdAt: now,
            });
          } catch (err) {
            // Not a serial clash (the issuer would retry those): someone renewed it, or the id is taken.
            if (err instanceof UniqueViolationError) throw new TiercaError('conflict', `certificate ${oldName} was renewed meanwhile (or request id ${o.requestId} is taken)`);
            throw err;
          }
          await this.escrow(tx, o, record, now, keystore);
          if (supersedeNow) {
            made.superseded = await this.supersedeInTx(tx, renewal, now, responder, o.actor);
            renewal.supersededAt = now;
          }
          made.renewal = renewal;
          await faults?.after('in-transaction');
        } },
      );
      await faults?.after('committed');
      if (made.superseded) this.deps.onStatusChange?.(made.superseded);
      return { record: issued.record, chain: issued.chain, renewal: made.renewal!, replayed: false };
    } catch (err) {
      // Two requests with the same id at once: the one that lost returns the winner's result.
      if (err instanceof TiercaError && err.code === 'conflict') {
        const winner = await this.replay(o.requestId, o.old).catch(() => undefined);
        if (winner) return winner;
        const successor = await store.renewals.getByOld(o.old.issuerId, o.old.serial);
        if (successor) {
          throw new TiercaError('conflict', `certificate ${oldName} was already renewed by ${successor.newIssuerId}/${successor.newSerial}`, {
            detail: { successor: { issuerId: successor.newIssuerId, serial: successor.newSerial } },
          });
        }
      }
      throw err;
    }
  }

  /**
   * Revokes (reason superseded) every renewed certificate whose grace period has ended at `now`; one
   * transaction each. Safe to run on several instances at once: each certificate is done once.
   */
  async supersedeDue(now: Date, actor: AuditActor, limit = 500): Promise<RenewalRecord[]> {
    const done: RenewalRecord[] = [];
    for (const renewal of await this.deps.store.renewals.listPendingSupersession(now, limit)) {
      await this.supersede(renewal, now, actor);
      done.push({ ...renewal, supersededAt: now });
    }
    return done;
  }

  /** Ends the grace of one renewal now (see {@link supersedeDue}); returns the revoked record, or null. */
  async supersede(renewal: RenewalRecord, now: Date, actor: AuditActor): Promise<CertificateRecord | null> {
    const { store, faults } = this.deps;
    const responder = await this.responderFor(renewal.oldIssuerId, now);
    const changed = await store.transaction(async (tx) => {
      const result = await this.supersedeInTx(tx, renewal, now, responder, actor);
      await faults?.after('supersede:in-transaction');
      return result;
    });
    await faults?.after('supersede:committed');
    if (changed) this.deps.onStatusChange?.(changed);
    return changed;
  }

  /**
   * Inside `tx`: marks the succession done and, when the old certificate is still good (or on hold)
   * and unexpired, revokes it with reason superseded — new status, re-signed OCSP answer, revocation
   * event for other instances, audit record. Returns the revoked record, or null when nothing changed.
   */
  private async supersedeInTx(
    tx: Repositories, renewal: RenewalRecord, now: Date, responder: Responder | undefined, actor: AuditActor,
  ): Promise<CertificateRecord | null> {
    const { cas, tiers } = this.deps;
    // First, so that of two instances doing this at once only one goes on (row lock on PostgreSQL).
    if (!(await tx.renewals.markSuperseded(renewal.oldIssuerId, renewal.oldSerial, now))) return null;
    const current = await tx.certificates.get(renewal.oldIssuerId, renewal.oldSerial);
    // An expired certificate needs no revocation: nobody accepts it any more.
    if (!current || current.notAfter.getTime() <= now.getTime()) return null;
    const change = nextStatus(current, { kind: 'revoke', reason: SUPERSEDED, invalidityDate: null }, now);
    if (!change) return null;
    const ca = cas.get(current.issuerId);
    if (!ca || !responder) throw new TiercaError('internal', `CA ${current.issuerId} of a superseded certificate is not loaded`);
    await tx.certificates.updateStatus(current.issuerId, current.serial, change);
    const record = { ...current, ...change };
    const tier = record.tier ? tiers.get(record.tier) : undefined;
    await tx.ocspResponses.upsert(
      await presignOcspResponse({
        ca, responder, serial: record.serial, certStatus: certStatusOf(record), now, validityHours: tier?.statusValidityHours ?? 1,
      }),
    );
    await tx.revocationEvents.append({ issuerId: record.issuerId, serial: record.serial, status: record.status, at: now });
    await appendAudit(tx.audit, now, {
      ...actor,
      action: 'certificate.revoke',
      outcome: 'success',
      target: `certificate:${record.issuerId}/${record.serial}`,
      detail: {
        status: record.status,
        reason: SUPERSEDED,
        supersededBy: `${renewal.newIssuerId}/${renewal.newSerial}`,
        renewalRequest: renewal.requestId,
      },
    });
    return record;
  }

  /** The responder of an issuer that still signs, or undefined (a retired generation signs nothing). */
  private async responderFor(issuerId: string, now: Date): Promise<Responder | undefined> {
    const ca = this.deps.cas.get(issuerId);
    if (!ca || ca.record.status === 'retired') return undefined;
    return this.deps.responders.forCa(issuerId, now);
  }

  /** Escrows the successor's key: a new server-made key, or the old one carried over (re-sealed to the new id). */
  private async escrow(tx: Repositories, o: RenewalOrder, record: CertificateRecord, now: Date, keystore: KeyStore): Promise<void> {
    const aad = `escrow:${record.issuerId}/${record.serial}`;
    if (o.escrowKey) {
      const pkcs8 = o.escrowKey.export({ type: 'pkcs8', format: 'der' });
      try {
        await tx.escrow.insert(record.issuerId, record.serial, keystore.seal(pkcs8, aad), now);
      } finally {
        pkcs8.fill(0);
      }
    } else if (o.carryEscrow) {
      const sealed = await tx.escrow.get(o.old.issuerId, o.old.serial);
      if (!sealed) throw new TiercaError('conflict', `certificate ${o.old.issuerId}/${o.old.serial} has no escrowed key to carry over; renew with a new key`);
      const pkcs8 = keystore.unseal(sealed, `escrow:${o.old.issuerId}/${o.old.serial}`);
      try {
        await tx.escrow.insert(record.issuerId, record.serial, keystore.seal(pkcs8, aad), now);
      } finally {
        pkcs8.fill(0);
      }
    }
  }
}

/**
 * The subjectAltName entries of a DER certificate (RFC 5280 §4.2.1.6): DNS names, IP addresses as
 * octets (4 or 16) and e-mail addresses. Other name forms are returned as `other` so that a check
 * "renewal may not widen the names" cannot overlook them.
 */
export function subjectAltNamesOf(der: Buffer): { dns: string[]; ip: Buffer[]; email: string[]; other: number } {
  const out = { dns: [] as string[], ip: [] as Buffer[], email: [] as string[], other: 0 };
  const tbs = children(readOnly(readCertificate(der).tbs, Tag.SEQUENCE));
  const wrapper = tbs.find((el) => el.tag === contextConstructed(3)); // [3] extensions
  const value = wrapper ? readExtensions(wrapper).get(EXTENSION_OID.subjectAltName) : undefined;
  if (!value) return out;
  const names = readGeneralNames(value);
  // Compared case-insensitively: DNS labels and mail domains are.
  out.dns.push(...names.dns.map((d) => d.toLowerCase()));
  out.email.push(...names.email.map((e) => e.toLowerCase()));
  out.ip.push(...names.ip);
  out.other = names.other;
  return out;
}
