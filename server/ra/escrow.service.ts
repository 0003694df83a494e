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
import { completeRequest, type DualControl, type RequestKindHandler } from './dual-control.ts';
import { DAY_MS } from '../../pki/time-constants.ts';

/** How long a key recovery waits for its second officer: it is urgent, and stale approvals are dangerous. */
export const RECOVERY_REQUEST_LIFETIME_MS = DAY_MS;

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
    const { store, keystore } = this.deps;
    const { issuerId, serial } = request.payload as { issuerId: string; serial: string };
    const cert = await store.certificates.get(issuerId, serial);
    const sealed = await store.escrow.get(issuerId, serial);
    const kmcKey = sealed ? undefined : await this.deps.kmc?.keyOfCertificate(issuerId, serial);
    if (!cert || (!sealed && !kmcKey)) throw new TiercaError('not-found', `no escrowed key for ${issuerId}/${serial}`);
    let privateKey: KeyObject;
    if (sealed) {
      const pkcs8 = keystore.unseal(sealed, `escrow:${issuerId}/${serial}`);
      try {
        privateKey = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
      } finally {
        pkcs8.fill(0);
      }
    } else {
      // A dual certificate's encryption key, escrowed by the KMC (a tampered row gives nothing back).
      privateKey = await this.deps.kmc!.recover(kmcKey!.id);
    }
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
          ...(kmcKey ? { escrowedKey: kmcKey.id } : {}),
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
