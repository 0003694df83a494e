/**
 * Issuance of end-entity certificates to registered subjects: checks the subject, tier, profile and
 * key, opens a dual-control request where the tier asks for two officers (the `issue` request kind),
 * and otherwise — or once approved — prepares the order, has the CA sign it, delivers a server-made
 * key before commit and escrows encryption keys, in the CA's one transaction.
 */
import type { KeyObject } from 'node:crypto';
import type { KeyStore } from '../../pki/keystore/keystore.ts';
import type { CertificateProfile, CertificateRecord, Repositories, RequestRecord, RotationRequestRecord, Store, SubjectRecord } from '../storage/storage.ts';
import type { EncryptionCertificateRule, TierPolicy } from '../config/tier-policy.ts';
import type { Clock } from '../clock.ts';
import { TiercaError } from '../errors.ts';
import type { CertificateIssuer } from '../ca/certificate-issuer.ts';
import type { CaDirectory } from '../ca/ca-directory.ts';
import type { Authorizer } from './authorizer.ts';
import { actorOf, runAudited } from './audited.ts';
import type { RequestContext } from './permissions.ts';
import { checkProfile, tierOf } from './issuance-policy.ts';
import type { CheckedKey, IssuableProfile, IssuancePreparer } from './issuance-preparer.ts';
import { deliverKey, sealPassphrase, unsealPassphrase, type DeliveredKey } from './key-delivery.ts';
import { completeRequest, type DualControl, type RequestKindHandler } from './dual-control.ts';
import { isEncryptionProfile } from './encryption-profiles.ts';
import { issueEncryptionHalf, wantsEncryptionHalf, type EncryptionHalf, type EncryptionPairDeps } from './encryption-pair.ts';
import { HOUR_MS } from '../../pki/time-constants.ts';

/** How long an issuance request waits for its second officer. */
export const ISSUE_REQUEST_LIFETIME_MS = 7 * 24 * HOUR_MS;

export interface IssueInput {
  subjectId: string;
  /** PEM or DER PKCS#10. */
  csr?: string | Buffer;
  /** Server-made key, delivered as PKCS#12 (under `passphrase`, else one made and returned once). */
  generate?: { algorithm?: string; passphrase?: string };
  profile?: CertificateProfile;
  days?: number;
  /**
   * The caller's idempotency key: a retry with the same id (same principal, same subject) answers
   * what the first call did — the certificate (without a server-made key, which is delivered once)
   * or the pending request — instead of issuing again.
   */
  requestId?: string;
  /** At a tier whose encryption certificate is optional: issue the encryption half too (it always comes where the tier requires it). */
  encryption?: boolean;
  /**
   * Not through the API: an enrolment protocol whose answer cannot carry a key (EST simpleenroll)
   * issues the signing certificate alone; the holder fetches the encryption half with serverkeygen.
   */
  deferEncryptionHalf?: boolean;
}

export type IssueResult =
  | {
      kind: 'issued'; certificate: CertificateRecord; chain: readonly Buffer[]; pkcs12?: Buffer; passphrase?: string; replayed?: boolean;
      /** The encryption certificate of a dual pair, with its KMC-made key delivered once (encryption-pair.ts). */
      encryption?: EncryptionHalf;
    }
  | { kind: 'pending'; request: RequestRecord };

/** What a pending `issue` request keeps: never a secret in plain (the passphrase is sealed). */
interface IssuePayload {
  /** Base64 DER of the verified CSR. */
  csr?: string;
  generate?: { algorithm: CheckedKey['keyAlgorithm'] };
  profile: IssuableProfile;
  days?: number;
  /** The requester's PKCS#12 passphrase, sealed for this request (key-delivery.ts). */
  sealedPassphrase?: string;
  /** See IssueInput.deferEncryptionHalf. */
  deferEncryptionHalf?: true;
  /** The requester asked for the encryption half where the tier makes it optional (IssueInput.encryption). */
  encryption?: true;
}

export interface IssuanceServiceDeps {
  store: Pick<Store, 'subjects' | 'certificates' | 'audit' | 'rotationRequests' | 'requests'>;
  /** Chains of replayed certificates. */
  cas: Pick<CaDirectory, 'get'>;
  tiers: ReadonlyMap<string, TierPolicy>;
  authorizer: Pick<Authorizer, 'require'>;
  preparer: IssuancePreparer;
  issuer: Pick<CertificateIssuer, 'issue'>;
  requests: Pick<DualControl, 'open'>;
  keystore: Pick<KeyStore, 'seal' | 'unseal'>;
  clock: Clock;
  random?: (n: number) => Buffer;
  /** The key-management centre of dual certificates; without it no encryption half is issued. */
  kmc?: EncryptionPairDeps['kmc'];
}

export class IssuanceService {
  constructor(private readonly deps: IssuanceServiceDeps) {}

  /** The `issue` request kind: t3 issuance, approved by a second officer of the subject's domain. */
  get requestKind(): RequestKindHandler {
    return {
      permission: 'certificate:issue', domainScoped: true, lifetimeMs: ISSUE_REQUEST_LIFETIME_MS,
      execute: (ctx, request) => this.executeRequest(ctx, request),
    };
  }

  /**
   * Whether a signing certificate for a holder of `kind` at tier `tierId` comes with an encryption
   * certificate (the tier's rule for the kind; `none` for an unknown tier or without a KMC, which
   * issues none). Policy as data, for clients that offer the choice (the console's issue page);
   * issuance itself decides with wantsEncryptionHalf.
   */
  encryptionRuleOf(tierId: string | null | undefined, kind: SubjectRecord['kind']): EncryptionCertificateRule {
    const tier = tierId ? this.deps.tiers.get(tierId) : undefined;
    return this.deps.kmc && tier ? tier.encryptionCertificate[kind] : 'none';
  }

  async issue(ctx: RequestContext, input: IssueInput): Promise<IssueResult> {
    const { store, authorizer } = this.deps;
    const subject = await store.subjects.get(input.subjectId);
    if (!subject) throw new TiercaError('not-found', `no subject ${input.subjectId}`, { detail: { subject: input.subjectId } });
    await authorizer.require(ctx, 'certificate:issue', 'certificate.issue', `subject:${subject.id}`, subject.domain);
    const replayKey = input.requestId ? `issue:${ctx.principal.id}:${input.requestId}` : null;
    return runAudited({ audit: store.audit, clock: this.deps.clock }, ctx, 'certificate.issue', `subject:${subject.id}`, async () => {
      if (replayKey) {
        const earlier = await this.replay(replayKey, subject.id);
        if (earlier) return earlier;
        try {
          return await this.issueOnce(ctx, subject, input, replayKey);
        } catch (err) {
          // A concurrent call with the same id won: answer what it did.
          const winner = await this.replay(replayKey, subject.id);
          if (winner) return winner;
          throw err;
        }
      }
      return this.issueOnce(ctx, subject, input, null);
    });
  }

  /**
   * What an earlier call with this idempotency key did, or undefined. A key used for another subject
   * is a conflict: the caller reused an id by mistake, and guessing which call it meant is worse.
   */
  private async replay(key: string, subjectId: string): Promise<IssueResult | undefined> {
    const { store } = this.deps;
    const done = await store.rotationRequests.get(key);
    if (!done) return undefined;
    if (done.target !== `subject:${subjectId}`) {
      throw new TiercaError('conflict', `requestId ${key.slice(key.indexOf(':', 6) + 1)} was used for ${done.target}, not subject:${subjectId}`);
    }
    let certificateOf = done.result as { issuerId?: string; serial?: string; request?: string };
    if (certificateOf.request) {
      const request = await store.requests.get(certificateOf.request);
      if (!request) throw new TiercaError('internal', `request ${certificateOf.request} of an idempotency record is gone`);
      const result = request.result as { issuerId?: string; serial?: string } | null;
      if (request.status !== 'done' || !result?.serial) return { kind: 'pending', request };
      certificateOf = result;
    }
    const certificate = await store.certificates.get(certificateOf.issuerId!, certificateOf.serial!);
    if (!certificate) throw new TiercaError('internal', `certificate ${certificateOf.issuerId}/${certificateOf.serial} of an idempotency record is gone`);
    return { kind: 'issued', certificate, chain: this.deps.cas.get(certificate.issuerId)?.chain ?? [], replayed: true };
  }

  private async issueOnce(ctx: RequestContext, subject: SubjectRecord, input: IssueInput, replayKey: string | null): Promise<IssueResult> {
    const { store, preparer } = this.deps;
    if (subject.status !== 'active') throw new TiercaError('conflict', `subject ${subject.id} is revoked`, { detail: { subject: subject.id, status: subject.status } });
    const tier = tierOf(this.deps.tiers, subject.tier);
    const profile = checkProfile(subject.kind, input.profile);
    // Signed right away (one officer): the signing step checks the CSR's signature, on the trip that signs.
    const key = await preparer.checkKey(tier, profile, input, { verifyWhenSigning: tier.approvals === 1 });
    const now = this.deps.clock.now();
    preparer.issuerAndValidity({ tier, domain: subject.domain, holderKind: subject.kind, days: input.days, now });
    // Refused before anything is made. A CSR at a one-officer tier makes nothing before the
    // transaction (the certificate is signed in memory), whose own check (execute) refuses alike:
    // there the check is made once, inside, instead of twice. A server-made key (a KMC key is stored)
    // or a request to open is checked here first.
    if (tier.approvals > 1 || key.kind !== 'csr') await checkNoLive(store, subject, profile, now);
    const passphrase = input.generate?.passphrase;
    if (tier.approvals > 1) {
      const request = await this.openRequest(ctx, subject, tier, profile, key, input.days, passphrase, input.deferEncryptionHalf, input.encryption);
      // Not in the request's own transaction: a retry racing this line may open a second request,
      // which waits (and expires) like any unapproved one; it can never issue a second certificate
      // while the first holds the subject (already-holds-certificate).
      if (replayKey) await store.rotationRequests.insert(replayRecord(replayKey, ctx, subject, { request: request.id }, this.deps.clock.now()));
      return { kind: 'pending', request };
    }
    return this.execute(ctx, subject, tier, profile, key, input.days, null, passphrase, replayKey, input.deferEncryptionHalf ? 'defer' : input.encryption);
  }

  /** `issue` requests, once approved: the checked payload is issued now (the CSR verified again, when it is signed). */
  private async executeRequest(ctx: RequestContext, request: RequestRecord): Promise<IssueResult> {
    const subject = request.subjectId ? await this.deps.store.subjects.get(request.subjectId) : undefined;
    if (!subject || subject.status !== 'active') throw new TiercaError('conflict', 'the request subject is gone or revoked');
    const payload = request.payload as unknown as IssuePayload;
    const tier = tierOf(this.deps.tiers, subject.tier);
    const asked = payload.csr ? { csr: Buffer.from(payload.csr, 'base64') } : { generate: payload.generate };
    const key = await this.deps.preparer.checkKey(tier, payload.profile, asked, { verifyWhenSigning: true });
    const passphrase = payload.sealedPassphrase ? unsealPassphrase(this.deps.keystore, request.id, payload.sealedPassphrase) : undefined;
    return this.execute(ctx, subject, tier, payload.profile, key, payload.days, request, passphrase, null, payload.deferEncryptionHalf ? 'defer' : payload.encryption);
  }

  private openRequest(
    ctx: RequestContext, subject: SubjectRecord, tier: TierPolicy, profile: IssuableProfile, key: CheckedKey, days: number | undefined,
    passphrase: string | undefined, deferEncryptionHalf: boolean | undefined, encryption: boolean | undefined,
  ): Promise<RequestRecord> {
    return this.deps.requests.open(ctx, {
      kind: 'issue', target: `subject:${subject.id}`, subjectId: subject.id, domain: subject.domain, tier: tier.id,
      payload: (requestId) => {
        const payload: IssuePayload = {
          profile, days, ...(deferEncryptionHalf ? { deferEncryptionHalf: true as const } : {}), ...(encryption === true ? { encryption: true as const } : {}),
        };
        if (key.kind === 'csr') payload.csr = key.csrDer.toString('base64');
        else payload.generate = { algorithm: key.keyAlgorithm };
        if (passphrase && key.kind === 'generate') payload.sealedPassphrase = sealPassphrase(this.deps.keystore, requestId, passphrase);
        return payload as unknown as Record<string, unknown>;
      },
      approvalsRequired: tier.approvals - 1,
      auditAction: 'certificate.request', auditDetail: { subject: subject.id, tier: tier.id, profile },
    });
  }

  /** Issues now: prepare, sign, deliver the key (before commit), store with escrow and the request closed. */
  private async execute(
    ctx: RequestContext, subject: SubjectRecord, tier: TierPolicy, profile: IssuableProfile, key: CheckedKey, days: number | undefined,
    request: RequestRecord | null, passphrase: string | undefined, replayKey: string | null = null, encryption?: boolean | 'defer',
  ): Promise<IssueResult> {
    const { keystore, kmc } = this.deps;
    const now = this.deps.clock.now();
    // A server-made encryption key is the KMC's to make and escrow (GM/T 0034), as for the
    // encryption half of a dual pair: it joins the subject's key history and recovers with it.
    const kmcKey = kmc && isEncryptionProfile(profile) && key.kind === 'generate'
      ? await kmc.generate({ subjectId: subject.id, algorithm: key.keyAlgorithm })
      : undefined;
    const prepared = await this.deps.preparer.prepare({
      tier, domain: subject.domain, profile, holderKind: subject.kind, days, name: { kind: 'subject', subject }, subjectId: subject.id,
      names: { dns: subject.dnsNames, ip: subject.ipAddresses, email: subject.emails },
      key: kmcKey ? { kind: 'keep', publicKeyInfo: kmcKey.publicKeyInfo, keyAlgorithm: key.keyAlgorithm } : key, requestId: request?.id ?? null, now,
    });
    const { order } = prepared;
    const privateKey = kmcKey?.privateKey ?? prepared.privateKey;
    let delivered: DeliveredKey | undefined;
    const issued = await this.deps.issuer.issue(order, now, { ...actorOf(ctx), action: 'certificate.issue', detail: request ? { request: request.id } : {} }, {
      beforeStore: async (record) => {
        if (privateKey) delivered = await deliverKey({ privateKey, certificate: record.der, chain: order.ca.chain, holderName: subject.name, passphrase, random: this.deps.random });
      },
      inTransaction: async (tx, record) => {
        // Re-checked inside the transaction: a subject revoked meanwhile gets nothing, and of two
        // concurrent issuances for one subject only one lands.
        await checkSubjectStillActive(tx, subject.id);
        const live = await tx.certificates.findLive(subject.id, profile, now);
        const other = live.find((c) => c.serial !== record.serial || c.issuerId !== record.issuerId);
        if (other) throw alreadyHolds(subject, profile, other);
        // Without a KMC (a server opened without one), the older escrow table keeps the key.
        if (privateKey && isEncryptionProfile(profile) && !kmcKey) await escrow(tx, keystore, record, privateKey, now);
        if (request) await completeRequest(tx, request, { issuerId: record.issuerId, serial: record.serial });
        if (replayKey) await tx.rotationRequests.insert(replayRecord(replayKey, ctx, subject, { issuerId: record.issuerId, serial: record.serial }, now));
      },
    });
    if (kmcKey) await kmc!.bind(kmcKey.keyId, issued.record.issuerId, issued.record.serial);
    const half = kmc && encryption !== 'defer' && wantsEncryptionHalf(tier, subject, profile, encryption)
      ? await issueEncryptionHalf({ kmc, preparer: this.deps.preparer, issuer: this.deps.issuer, random: this.deps.random }, ctx, {
        tier, subject, signing: issued.record, requestId: request?.id ?? null, now,
      })
      : undefined;
    return { kind: 'issued', certificate: issued.record, chain: issued.chain, ...delivered, ...(half ? { encryption: half } : {}) };
  }
}

/** The idempotency record of a first issuance (kept in `rotation_requests`, kind 'issue'). */
function replayRecord(id: string, ctx: RequestContext, subject: SubjectRecord, result: Record<string, unknown>, now: Date): RotationRequestRecord {
  return { id, kind: 'issue', target: `subject:${subject.id}`, principalId: ctx.principal.id, result, createdAt: now };
}

/** Refuses (`already-holds-certificate`) when the subject holds a live certificate of `profile`. */
async function checkNoLive(repos: Pick<Repositories, 'certificates'>, subject: SubjectRecord, profile: CertificateProfile, now: Date): Promise<void> {
  const live = await repos.certificates.findLive(subject.id, profile, now);
  if (live.length > 0) throw alreadyHolds(subject, profile, live[0]);
}

function alreadyHolds(subject: SubjectRecord, profile: CertificateProfile, live: CertificateRecord): TiercaError {
  return new TiercaError('already-holds-certificate', `subject ${subject.id} already holds a valid ${profile} certificate (${live.serial}); renew it instead`, {
    detail: { subject: subject.id, profile, serial: live.serial },
  });
}

/**
 * Inside an issuance's transaction: the subject is still active, read under its row lock (see
 * SubjectRepository.lock), so a concurrent subject revocation either sees this certificate or made
 * this issuance fail here.
 */
export async function checkSubjectStillActive(tx: Pick<Repositories, 'subjects'>, subjectId: string): Promise<void> {
  const status = await tx.subjects.lockStatus(subjectId, 'share');
  if (status !== 'active') throw new TiercaError('conflict', `subject ${subjectId} is revoked`);
}

/** Escrows a server-made encryption key, sealed and bound to `escrow:<issuer>/<serial>`. */
async function escrow(tx: Pick<Repositories, 'escrow'>, keystore: Pick<KeyStore, 'seal'>, record: CertificateRecord, privateKey: KeyObject, now: Date): Promise<void> {
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  try {
    await tx.escrow.insert(record.issuerId, record.serial, keystore.seal(pkcs8, `escrow:${record.issuerId}/${record.serial}`), now);
  } finally {
    pkcs8.fill(0);
  }
}
