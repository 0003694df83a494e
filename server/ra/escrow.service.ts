/**
 * Recovery of escrowed encryption keys under dual control (two officers of the certificate's
 * domain): asking opens an `escrow.recover` request; the approval unseals the key and hands it out
 * once in a PKCS#12 under a passphrase made for that answer. The server keeps neither.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import type { KeyStore } from '../../pki/keystore/keystore.ts';
import type { CertificateRecord, RequestRecord, Store } from '../storage/storage.ts';
import type { Clock } from '../clock.ts';
import { appendAudit } from '../audit/audit-log.ts';
import { TiercaError } from '../errors.ts';
import type { CaDirectory } from '../ca/ca-directory.ts';
import type { Authorizer } from './authorizer.ts';
import { actorOf, runAudited } from './audited.ts';
import type { EscrowedKeyView, KeyManagementCentre } from '../kmc/key-management-centre.ts';
import type { RequestContext } from './permissions.ts';
import type { CertificateLookup } from './certificate-lookup.ts';
import { deliverKey } from './key-delivery.ts';
import { ENCRYPTION_PROFILES } from './encryption-profiles.ts';
import { completeRequest, type DualControl, type RequestKindHandler } from './dual-control.ts';
import { DAY_MS } from '../../pki/time-constants.ts';

/** How long a key recovery waits for its second officer: it is urgent, and stale approvals are dangerous. */
export const RECOVERY_REQUEST_LIFETIME_MS = DAY_MS;

/** One key of a recovered history: its certificate and the key in a PKCS#12. */
export interface RecoveredHistoryKey {
  keyId: string;
  certificate: CertificateRecord;
  chain: readonly Buffer[];
  pkcs12: Buffer;
}

/** An approved recovery of a subject's whole key history: every PKCS#12 under one passphrase, shown once. */
export interface RecoveredHistory {
  kind: 'recovered-history';
  request: RequestRecord;
  subjectId: string;
  keys: RecoveredHistoryKey[];
  passphrase: string;
}

/** An approved recovery: the key in a PKCS#12 and the passphrase made for it, shown once. */
export interface RecoveredKey {
  kind: 'recovered';
  request: RequestRecord;
  certificate: CertificateRecord;
  chain: readonly Buffer[];
  pkcs12: Buffer;
  passphrase: string;
}

export interface EscrowServiceDeps {
  store: Pick<Store, 'certificates' | 'escrow' | 'subjects' | 'audit' | 'transaction'>;
  cas: Pick<CaDirectory, 'get'>;
  authorizer: Pick<Authorizer, 'require'>;
  lookup: CertificateLookup;
  requests: Pick<DualControl, 'open'>;
  keystore: Pick<KeyStore, 'unseal'>;
  clock: Clock;
  random?: (n: number) => Buffer;
  /** The key-management centre: the keys of dual certificates' encryption halves are escrowed there. */
  kmc?: Pick<KeyManagementCentre, 'keyOfCertificate' | 'recover' | 'history' | 'rotateMaster' | 'rotationPlan'>;
}

export class EscrowService {
  constructor(private readonly deps: EscrowServiceDeps) {}

  /** The `escrow.recover` request kind. */
  get requestKind(): RequestKindHandler {
    return {
      permission: 'escrow:recover', domainScoped: true, lifetimeMs: RECOVERY_REQUEST_LIFETIME_MS,
      execute: (ctx, request) => this.recover(ctx, request),
    };
  }

  /** The `escrow.recover-history` request kind: every certified key of a subject at once. */
  get historyRequestKind(): RequestKindHandler {
    return {
      permission: 'escrow:recover', domainScoped: true, lifetimeMs: RECOVERY_REQUEST_LIFETIME_MS,
      execute: (ctx, request) => this.recoverHistory(ctx, request),
    };
  }

  /**
   * Asks for the recovery of a subject's whole encryption-key history (officer of its domain): a
   * person needs old keys to read old mail. Keys the KMC made but no certificate bound (an issuance
   * that failed after the escrow) are left out: nothing was ever encrypted to them.
   */
  async requestHistoryRecovery(ctx: RequestContext, subjectId: string, input: { reason?: string } = {}): Promise<{ kind: 'pending'; request: RequestRecord }> {
    const subject = await this.deps.store.subjects.get(subjectId);
    if (!subject) throw new TiercaError('not-found', `no subject ${subjectId}`);
    const target = `subject:${subjectId}`;
    await this.deps.authorizer.require(ctx, 'escrow:recover', 'escrow.recover-history', target, subject.domain);
    return runAudited({ audit: this.deps.store.audit, clock: this.deps.clock }, ctx, 'escrow.recover-history', target, async () => {
      const certificates = await this.escrowedCertificatesOf(subjectId);
      if (certificates.length === 0) throw new TiercaError('not-found', `subject ${subjectId} has no escrowed encryption key`);
      const request = await this.deps.requests.open(ctx, {
        kind: 'escrow.recover-history', target, subjectId, domain: subject.domain, tier: subject.tier,
        payload: { subjectId, certificates, reason: input.reason ?? null },
        auditAction: 'escrow.recover-history.request', auditDetail: { reason: input.reason ?? null, keys: certificates.length },
      });
      return { kind: 'pending', request };
    });
  }

  /**
   * The encryption certificates of a subject whose key is escrowed, oldest first: the KMC's keys and
   * those the older escrow table keeps (a `user-enc` rekeyed by a rotation before decision 0027, or
   * any encryption key of a server opened without a KMC).
   */
  private async escrowedCertificatesOf(subjectId: string): Promise<{ issuerId: string; serial: string }[]> {
    const kmcKeys = (this.deps.kmc ? await this.deps.kmc.history(subjectId) : []).filter((k) => k.issuerId && k.serial);
    const found = new Map(kmcKeys.map((k) => [`${k.issuerId}/${k.serial}`, { issuerId: k.issuerId!, serial: k.serial!, at: k.createdAt.getTime() }]));
    for (const profile of ENCRYPTION_PROFILES) {
      for (const cert of await this.deps.store.certificates.list({ subjectId, profile })) {
        const id = `${cert.issuerId}/${cert.serial}`;
        if (!found.has(id) && (await this.deps.store.escrow.get(cert.issuerId, cert.serial))) found.set(id, { issuerId: cert.issuerId, serial: cert.serial, at: cert.notBefore.getTime() });
      }
    }
    return [...found.values()].sort((a, b) => a.at - b.at).map(({ issuerId, serial }) => ({ issuerId, serial }));
  }

  /** `escrow.recover-history`, approved: each key the request named, unwrapped and delivered once. */
  private async recoverHistory(ctx: RequestContext, request: RequestRecord): Promise<RecoveredHistory> {
    const { store } = this.deps;
    const { subjectId, certificates, reason } = request.payload as { subjectId: string; certificates: { issuerId: string; serial: string }[]; reason: string | null };
    const subject = await store.subjects.get(subjectId);
    // One passphrase for the set: the first delivery makes it, the others reuse it. Every key is
    // unwrapped and checked before anything is handed out: one tampered row stops it all.
    let passphrase: string | undefined;
    const keys: RecoveredHistoryKey[] = [];
    for (const { issuerId, serial } of certificates) {
      const { cert, privateKey, kmcKeyId } = await this.unwrap(issuerId, serial);
      const chain = this.deps.cas.get(issuerId)?.chain ?? [];
      const delivered = await deliverKey({ privateKey, certificate: cert.der, chain, holderName: subject?.name ?? '', random: this.deps.random, passphrase });
      passphrase ??= delivered.passphrase;
      keys.push({ keyId: kmcKeyId ?? `escrow:${issuerId}/${serial}`, certificate: cert, chain, pkcs12: delivered.pkcs12 });
    }
    const now = this.deps.clock.now();
    const done = await store.transaction(async (tx) => {
      const closed = await completeRequest(tx, request, { subjectId, keys: keys.length });
      await appendAudit(tx.audit, now, {
        ...actorOf(ctx), action: 'escrow.recover-history', target: `subject:${subjectId}`, outcome: 'success',
        detail: { request: request.id, requestedBy: request.requestedBy, approvedBy: request.approvals, reason, escrowedKeys: keys.map((k) => k.keyId) },
      });
      return closed;
    });
    return { kind: 'recovered-history', request: done, subjectId, keys, passphrase: passphrase! };
  }

  /** The escrowed private key of a certificate: from the older escrow table or from the KMC (a tampered row gives nothing). */
  private async unwrap(issuerId: string, serial: string): Promise<{ cert: CertificateRecord; privateKey: KeyObject; kmcKeyId?: string }> {
    const { store, keystore } = this.deps;
    const cert = await store.certificates.get(issuerId, serial);
    const sealed = await store.escrow.get(issuerId, serial);
    const kmcKey = sealed ? undefined : await this.deps.kmc?.keyOfCertificate(issuerId, serial);
    if (!cert || (!sealed && !kmcKey)) throw new TiercaError('not-found', `no escrowed key for ${issuerId}/${serial}`);
    if (kmcKey) return { cert, privateKey: await this.deps.kmc!.recover(kmcKey.id), kmcKeyId: kmcKey.id };
    const pkcs8 = keystore.unseal(sealed!, `escrow:${issuerId}/${serial}`);
    try {
      return { cert, privateKey: createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }) };
    } finally {
      pkcs8.fill(0);
    }
  }

  /** Asks for the recovery of an escrowed key (officer, in the certificate's domain): opens the request. */
  async requestRecovery(ctx: RequestContext, issuerId: string, serial: string, input: { reason?: string } = {}): Promise<{ kind: 'pending'; request: RequestRecord }> {
    const cert = await this.deps.lookup.find(serial, issuerId);
    const target = `certificate:${cert.issuerId}/${cert.serial}`;
    await this.deps.authorizer.require(ctx, 'escrow:recover', 'escrow.recover', target, cert.domain);
    return runAudited({ audit: this.deps.store.audit, clock: this.deps.clock }, ctx, 'escrow.recover', target, async () => {
      if (!(await this.deps.store.escrow.get(cert.issuerId, cert.serial)) && !(await this.deps.kmc?.keyOfCertificate(cert.issuerId, cert.serial))) {
        throw new TiercaError('not-found', `no escrowed key for ${cert.issuerId}/${cert.serial}`);
      }
      const request = await this.deps.requests.open(ctx, {
        kind: 'escrow.recover', target, subjectId: cert.subjectId, domain: cert.domain, tier: cert.tier,
        payload: { issuerId: cert.issuerId, serial: cert.serial, reason: input.reason ?? null },
        auditAction: 'escrow.recover.request', auditDetail: { reason: input.reason ?? null },
      });
      return { kind: 'pending', request };
    });
  }

  /** `escrow.recover`, approved: the key is unsealed (bound to `escrow:<issuer>/<serial>`) and delivered once. */
  private async recover(ctx: RequestContext, request: RequestRecord): Promise<RecoveredKey> {
    const { store } = this.deps;
    const { issuerId, serial } = request.payload as { issuerId: string; serial: string };
    const { cert, privateKey, kmcKeyId } = await this.unwrap(issuerId, serial);
    const subject = cert.subjectId ? await store.subjects.get(cert.subjectId) : undefined;
    const chain = this.deps.cas.get(issuerId)?.chain ?? [];
    const { pkcs12, passphrase } = await deliverKey({ privateKey, certificate: cert.der, chain, holderName: subject?.name ?? '', random: this.deps.random });
    const now = this.deps.clock.now();
    const done = await store.transaction(async (tx) => {
      const closed = await completeRequest(tx, request, { issuerId, serial });
      await appendAudit(tx.audit, now, {
        ...actorOf(ctx), action: 'escrow.recover', target: `certificate:${issuerId}/${serial}`, outcome: 'success',
        detail: {
          request: request.id, requestedBy: request.requestedBy, approvedBy: request.approvals, subject: cert.subjectId, reason: (request.payload as { reason?: string }).reason ?? null,
          ...(kmcKeyId ? { escrowedKey: kmcKeyId } : {}),
        },
      });
      return closed;
    });
    return { kind: 'recovered', request: done, certificate: cert, chain, pkcs12, passphrase: passphrase! };
  }

  /** A subject's escrowed encryption keys, oldest first, without secrets (officers of its domain). */
  async keyHistory(ctx: RequestContext, subjectId: string): Promise<EscrowedKeyView[]> {
    const subject = await this.deps.store.subjects.get(subjectId);
    if (!subject) throw new TiercaError('not-found', `no subject ${subjectId}`);
    await this.deps.authorizer.require(ctx, 'escrow:recover', 'escrow.history', `subject:${subjectId}`, subject.domain);
    return this.deps.kmc ? this.deps.kmc.history(subjectId) : [];
  }

  /**
   * Re-wraps every escrowed key under a new KMC master key (sysadmin); resumable, audited with the
   * count. Without `execute` it only says what it would do, as `rotate run` does.
   */
  async rotateMaster(ctx: RequestContext, execute: boolean): Promise<{ masterKeyId: string; rewrapped: number } | { dryRun: true; masterKeyId: string | null; keys: number }> {
    await this.deps.authorizer.require(ctx, 'kmc:manage', 'kmc.rotate-master', 'kmc');
    const { kmc } = this.deps;
    if (!kmc) throw new TiercaError('conflict', 'this server has no key-management centre');
    if (!execute) return { dryRun: true, ...(await kmc.rotationPlan()) };
    return runAudited({ audit: this.deps.store.audit, clock: this.deps.clock }, ctx, 'kmc.rotate-master', 'kmc', async () => {
      const done = await kmc.rotateMaster();
      await appendAudit(this.deps.store.audit, this.deps.clock.now(), { ...actorOf(ctx), action: 'kmc.rotate-master', target: 'kmc', outcome: 'success', detail: done });
      return done;
    });
  }
}
