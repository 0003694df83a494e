/**
 * The rotation authority: who may renew, roll over and run rotation, and under which rules. It
 * decides; the CA side (server/ca/renewal.ts, ca-rollover.ts) signs. Rules it holds:
 *
 * - A renewal keeps the subject (the old certificate's subject DN, byte for byte), the tier and the
 *   profile; the names are the subject's registered names and may not be wider than the old
 *   certificate's. The successor gets the old lifetime (at most the tier maximum) from the CURRENT
 *   generation of the issuing CA. Renewals need no second approval: nothing is newly authorised.
 * - `renew` keeps the key; `rekey` (a CSR for a new key, or a server-made key where the tier allows
 *   it) replaces it. Tiers whose keys only the holder makes rekey at every renewal, so the server
 *   cannot renew them alone: `rotate run` reports those as waiting for the holder.
 * - A device renews its own certificate, authenticated by a signature over the request body with the
 *   certificate's key ({@link RotationAuthority.renewBySignature}); officers renew in their domains.
 * - CA rollover runs under dual control (two sysadmins) through the registration authority's request
 *   mechanism; {@link RotationAuthority.executeRollover} is what an approved request calls.
 * - Every renewal, supersession, rollover, retirement and run is audited with what it replaced.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { runAudited, actorOf } from './audited.ts';
import type { Logger } from 'pino';
import { generateKeyPair, publicKeyInfoOf, keyAlgorithmOf } from '../../pki/key-pair.ts';
import { buildPkcs12, generatePassphrase } from '../../pki/pkcs12.ts';
import { isKeyAlgorithm, signatureAlgorithmIdentifier, type KeyAlgorithm } from '../../pki/algorithms.ts';
import { readCertificate, verifySignature } from '../../pki/certificate-reader.ts';
import { parseIp } from '../../pki/extensions.ts';
import type { KeyStore } from '../../pki/keystore/keystore.ts';
import type {
  CaLinkRecord, CertificateProfile, CertificateRecord, RenewalRecord, RequestRecord, Store,
} from '../storage/storage.ts';
import type { TiercaConfig } from '../config/load-config.ts';
import type { Clock } from '../clock.ts';
import { appendAudit } from '../audit/audit-log.ts';
import { TiercaError } from '../errors.ts';
import { lineageOf, type CaDirectory, type LoadedCa } from '../ca/ca-directory.ts';
import type { CertificateIssuer, IssuanceOrder } from '../ca/certificate-issuer.ts';
import type { ResponderPool } from '../ca/ocsp-responders.ts';
import type { CrlPublisher } from '../ca/crl-publisher.ts';
import { RenewalService, subjectAltNamesOf, type AuditActor, type RenewalStep, type RotationFaults } from '../ca/renewal.ts';
import { CaRollover, type RolloverOutcome, type RolloverStep } from '../ca/ca-rollover.ts';
import { RotationPlanner, graceDaysOf, serverRenewal, type DueItem, type RotationPlan } from '../ca/rotation-planner.ts';
import { Authorizer } from './authorizer.ts';
import type { Principal, RequestContext } from './permissions.ts';
import { checkKeyAlgorithm, checkKeyGeneration, checkNames, checkProfile, validityFor, verifiedCsr } from './issuance-policy.ts';
import { claimRequest, type ApprovalResult, type RegistrationAuthority } from './registration-authority.ts';

const DAY_MS = 24 * 3600 * 1000;
/** How far the `signedAt` of a device's signed renewal may be from the server's clock. */
export const SIGNATURE_MAX_SKEW_MS = 5 * 60 * 1000;
/** How long a CA rollover request waits for its second sysadmin. */
const ROLLOVER_REQUEST_LIFETIME_MS = 24 * 3600 * 1000;
/** Profiles whose key signs (digitalSignature), so it can authenticate its own renewal. */
const SIGNING_PROFILES: ReadonlySet<string> = new Set(['organ', 'device', 'user-sign']);
/** The actor of what the rotation timer does by itself. */
const TIMER_ACTOR: AuditActor = { principalId: null, role: null, source: 'rotation-timer', requestId: null };

export interface RenewInput {
  /** CA id of the certificate, when its serial is not unique across CAs. */
  issuer?: string;
  /** PKCS#10 for a new key (rekey), PEM or DER. */
  csr?: string | Buffer;
  /** A new server-made key (rekey), delivered as PKCS#12, where the tier allows server-made keys. */
  generate?: { algorithm?: string; passphrase?: string };
  /** Idempotency key; default the HTTP request id. */
  requestId?: string;
}

export interface RenewResult {
  /** The successor. */
  certificate: CertificateRecord;
  chain: readonly Buffer[];
  /** The renewed certificate as it is now (revoked already when its tier's grace is 0). */
  replaced: CertificateRecord;
  renewal: RenewalRecord;
  /** True when this request id (or, for a device, this certificate) was already renewed: nothing new was issued. */
  replayed: boolean;
  pkcs12?: Buffer;
  passphrase?: string;
}

/** A device's signed renewal request, as it came over HTTP. */
export interface SignedRenewal {
  /** The serial in the URL. */
  serial: string;
  /** The request body exactly as received: what the signature covers. */
  body: Buffer;
  /** Base64 signature over `body` by the certificate's key (`Tierca-Signature`). */
  signature: string;
  /** Base64 DER of the certificate being renewed (`Tierca-Certificate`). */
  certificate: string;
  source: string | null;
}

export type RunOutcome =
  | 'renewed' | 'already-renewed' | 'would-renew' | 'waiting-for-holder' | 'blocked' | 'superseded' | 'would-supersede' | 'rotated'
  | 'would-rotate' | 'retired' | 'would-retire' | 'needs-rollover' | 'needs-ceremony' | 'failed';

export interface RunItem {
  kind: DueItem['kind'];
  /** `certificate:<issuer>/<serial>` or `ca:<id>`. */
  target: string;
  domain: string | null;
  tier: string | null;
  dueAt: Date;
  outcome: RunOutcome;
  successor?: { issuerId: string; serial: string };
  why?: string;
  error?: { code: string; message: string };
}

export interface RunReport {
  requestId: string;
  dryRun: boolean;
  at: Date;
  items: RunItem[];
  summary: Partial<Record<RunOutcome, number>>;
  /** Renewals left for another call because of `limit`. */
  remaining: number;
}

export interface RolloverRequestResult {
  kind: 'pending';
  request: RequestRecord;
}

export interface RotationAuthorityDeps {
  store: Store;
  config: TiercaConfig;
  cas: CaDirectory;
  issuer: CertificateIssuer;
  responders: ResponderPool;
  crls: CrlPublisher;
  keystore: KeyStore;
  clock: Clock;
  /** The registration authority: its authorizer, and its dual-control requests for CA rollover. */
  ra?: RegistrationAuthority;
  /** Told after commit about each certificate revoked as superseded. */
  onStatusChange?: (record: CertificateRecord) => void;
  log?: Logger;
  random?: (n: number) => Buffer;
  /** Test-only fault injection (see RotationFaults). */
  faults?: { renewal?: RotationFaults<RenewalStep>; rollover?: RotationFaults<RolloverStep> };
}

export class RotationAuthority {
  readonly authorizer: Authorizer;
  readonly renewals: RenewalService;
  readonly rollovers: CaRollover;
  readonly planner: RotationPlanner;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> = Promise.resolve();

  constructor(private readonly deps: RotationAuthorityDeps) {
    this.authorizer = deps.ra?.authorizer ?? new Authorizer(deps.store, deps.clock);
    this.renewals = new RenewalService({
      store: deps.store, cas: deps.cas, issuer: deps.issuer, responders: deps.responders, tiers: deps.config.tiers,
      keystore: deps.keystore, onStatusChange: deps.onStatusChange, faults: deps.faults?.renewal,
    });
    this.rollovers = new CaRollover({
      store: deps.store, cas: deps.cas, keystore: deps.keystore, config: deps.config, crls: deps.crls, log: deps.log,
      random: deps.random, faults: deps.faults?.rollover,
    });
    this.planner = new RotationPlanner({ store: deps.store, cas: deps.cas, config: deps.config, rollover: this.rollovers });
    deps.ra?.registerRequestAction('ca.rollover', {
      permission: 'ca:rollover',
      domainScoped: false,
      lifetimeMs: ROLLOVER_REQUEST_LIFETIME_MS,
      execute: (ctx, request) => this.executeRolloverRequest(ctx, request),
    });
  }

  // ---- what is due ------------------------------------------------------------------------------

  /** What is due at or before now + `withinMs` (`rotate due`). */
  async due(ctx: RequestContext, q: { withinMs?: number; domain?: string; tier?: string }): Promise<RotationPlan> {
    await this.authorizer.require(ctx, 'rotation:read', 'rotation.due', null);
    this.checkFilters(q);
    return this.planner.plan({ now: this.deps.clock.now(), withinMs: q.withinMs, domain: q.domain, tier: q.tier });
  }

  // ---- renewal ------------------------------------------------------------------------------------

  /** Renews one certificate for an officer (in its domains). Devices use {@link renewBySignature}. */
  async renew(ctx: RequestContext, serial: string, input: RenewInput): Promise<RenewResult> {
    const old = await this.findCertificate(serial, input.issuer);
    const target = `certificate:${old.issuerId}/${old.serial}`;
    await this.authorizer.require(ctx, 'certificate:renew', 'certificate.renew', target, old.domain);
    if (ctx.principal.role === 'device') {
      // A device token says nothing about which certificate is the device's own: only its key does.
      await this.authorizer.auditDenial(ctx, 'certificate.renew', target, { missing: 'a signature by the certificate being renewed' });
      throw new TiercaError('forbidden', 'a device renews its own certificate with a signature by its current key (Tierca-Signature)');
    }
    return this.audited(ctx, 'certificate.renew', target, () => this.renewChecked(ctx, old, input, input.requestId ?? ctx.requestId, false));
  }

  /**
   * A device renews its own certificate: `Tierca-Certificate` is the certificate (exactly as tierca
   * issued it, good and within its validity), `Tierca-Signature` a signature over the exact request
   * body with its key — ECDSA with SHA-256 (P-256) or SHA-384 (P-384), or RSA PKCS#1 v1.5 with
   * SHA-256 — and the body `{ serial, signedAt, requestId, csr? }` names the same serial and was signed
   * within {@link SIGNATURE_MAX_SKEW_MS} of now. Without `csr` the key is kept; when the certificate
   * was already renewed that way (e.g. by `rotate run`), the existing successor is returned.
   */
  async renewBySignature(p: SignedRenewal): Promise<RenewResult> {
    const now = this.deps.clock.now();
    const refuse = async (why: string, principalId: string | null = null): Promise<never> => {
      await appendAudit(this.deps.store.audit, now, {
        principalId, role: 'device', source: p.source, action: 'certificate.renew', target: `certificate:${p.serial}`.slice(0, 200),
        outcome: 'denied', requestId: null, detail: { reason: why, via: 'signature' },
      }).catch(() => undefined);
      throw new TiercaError('unauthenticated', `the renewal signature is not accepted: ${why}`);
    };
    let der: Buffer;
    let fields: ReturnType<typeof readCertificate>;
    try {
      der = Buffer.from(p.certificate, 'base64');
      fields = readCertificate(der);
    } catch {
      return refuse('Tierca-Certificate is not a base64 DER certificate');
    }
    const cert = (await this.deps.store.certificates.findBySerial(fields.serial)).find((c) => c.der.equals(der));
    if (!cert || !this.deps.cas.get(cert.issuerId)) return refuse('the certificate is not one tierca issued');
    const principalId = `certificate:${cert.issuerId}/${cert.serial}`;
    if (normaliseSerial(p.serial) !== cert.serial) return refuse('the certificate is not the one named in the URL', principalId);
    if (cert.status !== 'good') return refuse(`the certificate is ${cert.status}`, principalId);
    const revokedCa = this.revokedAbove(cert);
    if (revokedCa) return refuse(`its CA ${revokedCa} is revoked`, principalId);
    if (now.getTime() < cert.notBefore.getTime() || now.getTime() >= cert.notAfter.getTime()) return refuse('the certificate is not within its validity', principalId);
    if (!SIGNING_PROFILES.has(cert.profile)) return refuse(`a ${cert.profile} key does not sign`, principalId);
    const keyAlgorithm = keyAlgorithmOf(fields.publicKeyInfo);
    if (!keyAlgorithm || keyAlgorithm === 'SM2') return refuse('the key algorithm cannot sign a renewal yet', principalId);
    let verified = false;
    try {
      verified = verifySignature({
        algorithm: signatureAlgorithmIdentifier(keyAlgorithm), publicKeyInfo: fields.publicKeyInfo, data: p.body,
        signature: Buffer.from(p.signature, 'base64'), cacheKey: false,
      });
    } catch {
      verified = false;
    }
    if (!verified) return refuse('the signature does not verify with the certificate key', principalId);
    const body = await this.signedBody(p, cert, now, principalId, refuse);
    const principal: Principal = { id: principalId, name: cert.subjectDn, role: 'device', domains: cert.domain ? [cert.domain] : [] };
    // The device's request id scopes idempotency to this certificate, so one device cannot replay another's.
    const ctx: RequestContext = { principal, source: p.source, requestId: body.requestId };
    const target = `certificate:${cert.issuerId}/${cert.serial}`;
    await this.authorizer.require(ctx, 'certificate:renew', 'certificate.renew', target, cert.domain);
    return this.audited(ctx, 'certificate.renew', target, () =>
      this.renewChecked(ctx, cert, { csr: body.csr }, `${principalId}:${body.requestId}`, true),
    );
  }

  /**
   * The body of a signed renewal, checked: `{ serial, signedAt, requestId, csr? }` and nothing else, the
   * serial of the certificate, signed within {@link SIGNATURE_MAX_SKEW_MS}. A malformed body (the
   * signature was good: the holder sent it) is audited as a failure before it is refused.
   */
  private async signedBody(
    p: SignedRenewal, cert: CertificateRecord, now: Date, principalId: string, refuse: (why: string, principalId: string | null) => Promise<never>,
  ): Promise<{ requestId: string; csr?: string }> {
    const invalid = async (code: 'bad-request' | 'malformed-input', message: string): Promise<never> => {
      await appendAudit(this.deps.store.audit, now, {
        principalId, role: 'device', source: p.source, action: 'certificate.renew', target: principalId, outcome: 'failure',
        requestId: null, detail: { error: code, via: 'signature' },
      }).catch(() => undefined);
      throw new TiercaError(code, message);
    };
    let body: { serial?: unknown; signedAt?: unknown; requestId?: unknown; csr?: unknown };
    try {
      body = JSON.parse(p.body.toString('utf8')) as typeof body;
    } catch {
      return invalid('malformed-input', 'the request body is not valid JSON');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return invalid('bad-request', 'the request body must be a JSON object');
    const extra = Object.keys(body).filter((k) => !['serial', 'signedAt', 'requestId', 'csr'].includes(k));
    if (extra.length) return invalid('bad-request', `invalid request: unknown field ${extra.join(', ')}`);
    if (typeof body.serial !== 'string' || normaliseSerial(body.serial) !== cert.serial) return refuse('the signed body names another serial', principalId);
    const signedAt = typeof body.signedAt === 'string' ? Date.parse(body.signedAt) : NaN;
    if (!Number.isFinite(signedAt) || Math.abs(signedAt - now.getTime()) > SIGNATURE_MAX_SKEW_MS) {
      return refuse(`signedAt must be within ${SIGNATURE_MAX_SKEW_MS / 60_000} minutes of the server's time`, principalId);
    }
    if (typeof body.requestId !== 'string' || !/^[\w.:-]{8,64}$/.test(body.requestId)) {
      return invalid('bad-request', 'invalid request: requestId must be 8 to 64 letters, digits, or . _ : -');
    }
    if (body.csr !== undefined && (typeof body.csr !== 'string' || body.csr.length > 32 * 1024)) {
      return invalid('bad-request', 'invalid request: csr must be a PEM or base64 DER string');
    }
    return { requestId: body.requestId, ...(body.csr !== undefined ? { csr: body.csr as string } : {}) };
  }

  /**
   * The renewal itself, once the caller is authorised for `old` (see the module comment for the rules).
   * `device`: the certificate's own holder asks; a keep-key request for an already renewed certificate
   * then returns the successor instead of refusing.
   */
  private async renewChecked(ctx: RequestContext, old: CertificateRecord, input: RenewInput, requestId: string, device: boolean): Promise<RenewResult> {
    const { store, config, cas } = this.deps;
    const now = this.deps.clock.now();
    const name = `${old.issuerId}/${old.serial}`;
    const earlier = await this.renewals.replay(requestId, old);
    if (earlier) return this.result(earlier.record, earlier.chain, earlier.renewal, true);
    if (old.profile === 'ocsp') throw new TiercaError('bad-request', 'OCSP responder certificates are rotated by the server itself');
    const keepKey = !input.csr && !input.generate;
    const successor = await store.renewals.getByOld(old.issuerId, old.serial);
    if (successor) {
      if (device && keepKey) {
        const record = await store.certificates.get(successor.newIssuerId, successor.newSerial);
        if (record) return this.result(record, cas.get(record.issuerId)?.chain ?? [], successor, true);
      }
      throw new TiercaError('conflict', `certificate ${name} was already renewed by ${successor.newIssuerId}/${successor.newSerial}; renew that one`, {
        detail: { successor: { issuerId: successor.newIssuerId, serial: successor.newSerial } },
      });
    }
    if (old.status === 'hold') throw new TiercaError('conflict', `certificate ${name} is on hold; release it before renewing`);
    const revokedCa = this.revokedAbove(old);
    // A revoked CA makes every certificate under it revoked (cACompromise): its keys are suspect too.
    if (revokedCa) throw new TiercaError('revocation-final', `certificate ${name} is revoked with its CA ${revokedCa}; issue a new certificate instead`);
    if (old.status !== 'good') throw new TiercaError('revocation-final', `certificate ${name} is revoked; issue a new certificate instead`);
    if (old.notAfter.getTime() <= now.getTime()) throw new TiercaError('conflict', `certificate ${name} has expired; issue a new certificate instead`);

    const subject = old.subjectId ? await store.subjects.get(old.subjectId) : undefined;
    if (!subject) {
      const principal = old.subjectId ? await store.principals.get(old.subjectId) : undefined;
      throw new TiercaError('conflict', principal
        ? `certificate ${name} is the client certificate of principal ${principal.id}: issue a new one (tierca principal certificate)`
        : `certificate ${name} belongs to no registered subject; it cannot be renewed`);
    }
    if (subject.status !== 'active') throw new TiercaError('conflict', `subject ${subject.id} is revoked`);
    // The tier and profile are the old certificate's: a renewal never moves a holder to another tier.
    if (!old.tier || subject.tier !== old.tier) throw new TiercaError('conflict', `certificate ${name} is of tier ${old.tier ?? '-'} but its subject of ${subject.tier}`);
    const tier = config.tiers.get(old.tier);
    if (!tier) throw new TiercaError('conflict', `tier ${old.tier} is no longer configured`);
    const profile = checkProfile(subject.kind, old.profile as Exclude<CertificateProfile, 'ocsp'>);
    const domain = await store.domains.get(subject.domain);
    if (!domain) throw new TiercaError('conflict', `domain ${subject.domain} is gone`);
    const names = checkNames(domain, subject.kind, { dns: subject.dnsNames, ips: subject.ipAddresses, emails: subject.emails });
    checkNotWider(old, names);

    if (input.csr && input.generate) throw new TiercaError('bad-request', 'send a CSR or generate, not both');
    const oldFields = readCertificate(old.der);
    let publicKeyInfo: Buffer;
    let keyAlgorithm: KeyAlgorithm;
    let privateKey: KeyObject | undefined;
    let mode: 'renew' | 'rekey' = 'rekey';
    if (input.csr) {
      checkKeyGeneration(tier, profile, false);
      const csr = await csrOf(input.csr);
      keyAlgorithm = checkKeyAlgorithm(tier, csr.keyAlgorithm, csr.keyAlgorithm ?? 'of this type/size');
      publicKeyInfo = csr.publicKeyInfo;
      if (publicKeyInfo.equals(oldFields.publicKeyInfo)) {
        const server = serverRenewal(tier, old.keyAlgorithm);
        if (!server.ok) throw new TiercaError('policy-rekey-required', `${server.why}; this CSR is for the same key`);
        mode = 'renew';
      }
    } else if (input.generate) {
      checkKeyGeneration(tier, profile, true);
      const algorithm = input.generate.algorithm ?? tier.keyAlgorithms[0];
      if (!isKeyAlgorithm(algorithm)) throw new TiercaError('policy-key-algorithm', `unknown key algorithm ${algorithm}`);
      keyAlgorithm = checkKeyAlgorithm(tier, algorithm, algorithm);
      privateKey = (await generateKeyPair(keyAlgorithm)).privateKey;
      publicKeyInfo = publicKeyInfoOf(privateKey);
    } else {
      const server = serverRenewal(tier, old.keyAlgorithm);
      if (!server.ok) throw new TiercaError('policy-rekey-required', server.why);
      keyAlgorithm = old.keyAlgorithm as KeyAlgorithm;
      publicKeyInfo = oldFields.publicKeyInfo;
      mode = 'renew';
    }

    const ca = cas.issuingCa(subject.domain, tier.id);
    if (!ca || ca.record.status !== 'active') throw new TiercaError('ca-unavailable', `the issuing CA of ${subject.domain} ${tier.id} is not active`);
    // The successor lives as long as the old one did (at most the tier maximum); its CA may cut it shorter.
    const oldDays = Math.max(1, Math.round((old.notAfter.getTime() - old.notBefore.getTime()) / DAY_MS));
    const days = Math.min(oldDays, tier.maxValidityDays[subject.kind]);
    const { notBefore, notAfter } = validityFor({ tier, kind: subject.kind, days, now, caNotAfter: ca.record.notAfter });
    const order: IssuanceOrder = {
      ca, tier, profile, subject: oldFields.subject, subjectDn: old.subjectDn, subjectId: subject.id, domain: subject.domain,
      publicKeyInfo, keyAlgorithm, names: { dns: names.dns, ip: names.ips, email: names.emails }, notBefore, notAfter, requestId: null,
    };
    const outcome = await this.renewals.renew({
      old, order, requestId, mode, graceDays: graceDaysOf(tier),
      escrowKey: profile === 'user-enc' ? privateKey : undefined,
      carryEscrow: profile === 'user-enc' && mode === 'renew',
      actor: actorOf(ctx),
    }, now);
    const result = await this.result(outcome.record, outcome.chain, outcome.renewal, outcome.replayed);
    if (privateKey && !outcome.replayed) {
      const pass = input.generate?.passphrase ?? generatePassphrase(this.deps.random);
      result.pkcs12 = await buildPkcs12({ privateKey, certificate: outcome.record.der, chain: [...outcome.chain], passphrase: pass, friendlyName: friendly(subject.name) });
      if (!input.generate?.passphrase) result.passphrase = pass;
    }
    return result;
  }

  // ---- rotation run -----------------------------------------------------------------------------

  /**
   * Does what is due now (`rotate run`): renews what the server may (keeping keys), revokes superseded
   * certificates whose grace is over, replaces responders, retires old CA generations; reports what
   * waits for a holder or for a CA rollover. `limit` caps the renewals of one call (`remaining` tells
   * how many are left); a repeated call with the same `requestId` never renews a certificate twice.
   */
  async run(ctx: RequestContext, input: { dryRun?: boolean; domain?: string; tier?: string; requestId?: string; limit?: number }): Promise<RunReport> {
    await this.authorizer.require(ctx, 'rotation:run', 'rotation.run', null);
    this.checkFilters(input);
    return this.audited(ctx, 'rotation.run', null, async () => {
      const now = this.deps.clock.now();
      const dryRun = !!input.dryRun;
      const runId = input.requestId ?? ctx.requestId;
      const plan = await this.planner.plan({ now, domain: input.domain, tier: input.tier });
      const items: RunItem[] = [];
      let budget = input.limit ?? Number.POSITIVE_INFINITY;
      let remaining = 0;
      for (const item of plan.items) {
        const base = { kind: item.kind, target: targetOf(item), domain: item.domain, tier: item.tier, dueAt: item.dueAt };
        try {
          switch (item.kind) {
            case 'certificate': {
              if (item.action !== 'renew') {
                items.push({ ...base, outcome: item.action === 'wait-for-holder' ? 'waiting-for-holder' : 'blocked', why: item.why });
                break;
              }
              if (dryRun) {
                items.push({ ...base, outcome: 'would-renew' });
                break;
              }
              if (budget <= 0) {
                remaining++;
                break;
              }
              budget--;
              const old = await this.deps.store.certificates.get(item.issuerId, item.serial);
              if (!old) throw new TiercaError('not-found', `certificate ${item.issuerId}/${item.serial} is gone`);
              const renewed = await this.renewChecked(ctx, old, {}, derivedRequestId(runId, base.target), false);
              items.push({ ...base, outcome: 'renewed', successor: { issuerId: renewed.certificate.issuerId, serial: renewed.certificate.serial } });
              break;
            }
            case 'supersession': {
              if (dryRun || item.dueAt.getTime() > now.getTime()) {
                items.push({ ...base, outcome: 'would-supersede', successor: item.successor });
                break;
              }
              const renewal = await this.deps.store.renewals.getByOld(item.issuerId, item.serial);
              if (renewal && !renewal.supersededAt) await this.renewals.supersede(renewal, now, actorOf(ctx));
              items.push({ ...base, outcome: 'superseded', successor: item.successor });
              break;
            }
            case 'responder':
              if (!dryRun) await this.deps.responders.forCa(item.caId, now);
              items.push({ ...base, outcome: dryRun ? 'would-rotate' : 'rotated' });
              break;
            case 'retirement': {
              if (!dryRun) {
                const candidate = (await this.rollovers.retirementCandidates()).find((c) => c.ca.record.id === item.caId);
                if (candidate) await this.rollovers.retire(candidate, now, actorOf(ctx));
              }
              items.push({ ...base, outcome: dryRun ? 'would-retire' : 'retired' });
              break;
            }
            case 'ca':
              items.push({ ...base, outcome: item.action === 'ceremony' ? 'needs-ceremony' : 'needs-rollover' });
              break;
          }
        } catch (err) {
          // Another run (or the holder) renewed it meanwhile: not a failure.
          const successor = err instanceof TiercaError ? (err.options.detail?.successor as RunItem['successor']) : undefined;
          if (successor) {
            items.push({ ...base, outcome: 'already-renewed', successor });
            continue;
          }
          const code = err instanceof TiercaError ? err.code : 'internal';
          const message = err instanceof TiercaError ? err.message : 'internal error';
          if (!(err instanceof TiercaError)) this.deps.log?.error({ err, target: base.target }, 'rotation item failed');
          items.push({ ...base, outcome: 'failed', error: { code, message } });
        }
      }
      const summary: Partial<Record<RunOutcome, number>> = {};
      for (const item of items) summary[item.outcome] = (summary[item.outcome] ?? 0) + 1;
      await appendAudit(this.deps.store.audit, this.deps.clock.now(), {
        ...actorOf(ctx), action: 'rotation.run', target: null, outcome: 'success',
        detail: { dryRun, run: runId, domain: input.domain ?? null, tier: input.tier ?? null, summary, remaining },
      });
      return { requestId: runId, dryRun, at: now, items, summary, remaining };
    });
  }

  // ---- CA rollover ------------------------------------------------------------------------------

  /**
   * Asks for a CA key rollover (sysadmin). It runs under dual control: this opens a `ca.rollover`
   * request that a second sysadmin approves (`POST /requests/{id}/approve`), which carries it out
   * through {@link executeRollover}. The root is rolled over only as a ceremony (`ceremony: true`).
   */
  async requestRollover(ctx: RequestContext, caName: string, input: { ceremony?: boolean } = {}): Promise<RolloverRequestResult> {
    const target = `ca:${caName}`;
    await this.authorizer.require(ctx, 'ca:rollover', 'ca.rollover', target);
    return this.audited(ctx, 'ca.rollover', target, async () => {
      const ra = this.deps.ra;
      if (!ra) throw new TiercaError('unavailable', 'CA rollover needs the registration authority for its second approval');
      const ca = this.rolloverTarget(caName, input.ceremony);
      const lineage = lineageOf(ca.record);
      const now = this.deps.clock.now();
      const open = (await this.deps.store.requests.list({ status: 'pending' }))
        .find((r) => r.action === 'ca.rollover' && r.payload.ca === lineage && r.expiresAt.getTime() > now.getTime());
      if (open) {
        throw new TiercaError('conflict', `request ${open.id} to roll CA ${lineage} over is already waiting for a second sysadmin`, { detail: { request: open.id } });
      }
      const request = await ra.requestApproval(ctx, {
        action: 'ca.rollover', target: `ca:${lineage}`, domain: ca.record.domain, tier: ca.record.tier,
        payload: { ca: lineage, ceremony: !!input.ceremony, current: ca.record.id },
        auditDetail: { current: ca.record.id, layer: ca.record.layer, ceremony: !!input.ceremony },
      });
      return { kind: 'pending', request };
    });
  }

  /**
   * THE SEAM for dual control: carries out a CA rollover now, as `ctx`. An approved `ca.rollover`
   * request calls it with the request (closed in the rollover's own transaction); without an approval
   * it is a single sysadmin's act (for tools and tests that do not need the second approver). The
   * request id makes it idempotent.
   */
  async executeRollover(ctx: RequestContext, p: { caName: string; requestId: string; ceremony?: boolean; approval?: RequestRecord }): Promise<RolloverOutcome> {
    const target = `ca:${p.caName}`;
    await this.authorizer.require(ctx, 'ca:rollover', 'ca.rollover', target);
    const earlier = await this.rollovers.replay(p.requestId, p.caName);
    if (earlier) return earlier;
    this.rolloverTarget(p.caName, p.ceremony);
    const approval = p.approval;
    return this.rollovers.rollover({
      caName: p.caName,
      requestId: p.requestId,
      now: this.deps.clock.now(),
      actor: actorOf(ctx),
      auditDetail: approval ? { request: approval.id, requestedBy: approval.requestedBy, approvedBy: approval.approvals } : {},
      inTransaction: approval
        ? async (tx, result) => {
            await claimRequest(tx, approval);
            await tx.requests.update(approval.id, { approvals: approval.approvals, status: 'done', result });
          }
        : undefined,
    });
  }

  /** The link certificates of a CA (public: relying parties fetch them). */
  links(caName: string): Promise<CaLinkRecord[]> {
    return this.rollovers.links(caName);
  }

  /** The link certificates of a CA for an admin (`GET /api/v1/cas/{id}/links`). */
  async listLinks(ctx: RequestContext, caName: string): Promise<CaLinkRecord[]> {
    await this.authorizer.require(ctx, 'ca:read', 'ca.links', `ca:${caName}`);
    if (!this.deps.cas.get(caName) && !this.deps.cas.current(caName)) throw new TiercaError('not-found', `no CA ${caName}`);
    return this.rollovers.links(caName);
  }

  /** `ca.rollover` requests, once approved. */
  private async executeRolloverRequest(ctx: RequestContext, request: RequestRecord): Promise<ApprovalResult> {
    const { ca, ceremony } = request.payload as { ca: string; ceremony?: boolean };
    const outcome = await this.executeRollover(ctx, { caName: ca, requestId: request.id, ceremony, approval: request });
    const result = { previous: outcome.previous.record.id, current: outcome.current.record.id, links: outcome.links.map((l) => l.id) };
    return { kind: 'done', request: { ...request, status: 'done', result }, result };
  }

  // ---- the timer --------------------------------------------------------------------------------

  /**
   * One pass of what the server does by itself: learn CA generations other instances made, revoke
   * superseded certificates whose grace is over, retire CA generations whose certificates have all
   * expired. (CRLs and OCSP responders are kept fresh by the status scheduler.)
   */
  async tick(): Promise<void> {
    const now = this.deps.clock.now();
    await this.rollovers.sync();
    await this.renewals.supersedeDue(now, TIMER_ACTOR);
    await this.rollovers.retireDue(now, TIMER_ACTOR);
  }

  /** Runs {@link tick} every `intervalMs` (default 10 s); errors are logged, never thrown. */
  start(intervalMs = 10_000): void {
    const loop = () => {
      this.ticking = this.tick().catch((err) => this.deps.log?.error({ err }, 'rotation pass failed'));
      void this.ticking.finally(() => {
        if (!this.timer) return;
        this.timer = setTimeout(loop, intervalMs);
        this.timer.unref();
      });
    };
    this.timer = setTimeout(loop, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    const t = this.timer;
    this.timer = undefined;
    if (t) clearTimeout(t);
    await this.ticking.catch(() => undefined);
  }

  // ---- internals --------------------------------------------------------------------------------

  private rolloverTarget(caName: string, ceremony: boolean | undefined): LoadedCa {
    const ca = this.deps.cas.current(caName);
    if (!ca) throw new TiercaError('not-found', `no CA ${caName}`);
    if (ca.record.layer === 'root' && !ceremony) {
      throw new TiercaError('bad-request', 'rolling the root over replaces the trust anchor: it is done as a key ceremony (ceremony: true, tierca ca rollover root --ceremony)');
    }
    if (ca.record.status !== 'active') throw new TiercaError('conflict', `CA ${ca.record.id} is ${ca.record.status}`);
    return ca;
  }

  /** The first revoked CA on the certificate's chain (its issuer generation and every CA above it), if any. */
  private revokedAbove(cert: CertificateRecord): string | undefined {
    let id: string | null = cert.issuerId;
    for (let depth = 0; id && depth < 8; depth++) {
      const ca = this.deps.cas.get(id);
      if (!ca) return id;
      if (ca.record.status === 'revoked') return ca.record.id;
      id = ca.record.parentId;
    }
    return undefined;
  }

  private checkFilters(q: { domain?: string; tier?: string }): void {
    if (q.tier && !this.deps.config.tiers.has(q.tier)) throw new TiercaError('bad-request', `no tier ${q.tier}`);
    if (q.domain && !this.deps.config.domains.some((d) => d.slug === q.domain)) throw new TiercaError('bad-request', `no domain ${q.domain}`);
  }

  private async result(record: CertificateRecord, chain: readonly Buffer[], renewal: RenewalRecord, replayed: boolean): Promise<RenewResult> {
    const replaced = await this.deps.store.certificates.get(renewal.oldIssuerId, renewal.oldSerial);
    if (!replaced) throw new TiercaError('internal', `renewed certificate ${renewal.oldIssuerId}/${renewal.oldSerial} is missing`);
    return { certificate: record, chain, replaced, renewal, replayed };
  }

  private async findCertificate(serial: string, issuerId?: string): Promise<CertificateRecord> {
    const normalised = normaliseSerial(serial);
    if (!/^[0-9a-f]{1,64}$/.test(normalised)) throw new TiercaError('bad-request', `${serial} is not a hex serial`);
    const found = (await this.deps.store.certificates.findBySerial(normalised)).filter((c) => !issuerId || c.issuerId === issuerId);
    if (found.length === 0) throw new TiercaError('not-found', `no certificate ${normalised}${issuerId ? ` issued by ${issuerId}` : ''}`);
    if (found.length > 1) throw new TiercaError('conflict', `serial ${normalised} exists under several issuers; name one with issuer`);
    return found[0];
  }

  /** Runs `fn`; a refusal or failure is audited once (outside any rolled-back transaction) and re-thrown. */
  private audited<T>(ctx: RequestContext, action: string, target: string | null, fn: () => Promise<T>): Promise<T> {
    return runAudited({ audit: this.deps.store.audit, clock: this.deps.clock }, ctx, action, target, fn);
  }

}

/** Refuses a successor whose names are not all in the old certificate (RFC 5280 §4.2.1.6 subjectAltName). */
function checkNotWider(old: CertificateRecord, names: { dns: string[]; ips: string[]; emails: string[] }): void {
  const had = subjectAltNamesOf(old.der);
  const wider = [
    ...names.dns.filter((d) => !had.dns.includes(d)),
    ...names.emails.filter((e) => !had.email.includes(e)),
    ...names.ips.filter((ip) => !had.ip.some((b) => b.equals(parseIp(ip)))),
  ];
  if (wider.length) {
    throw new TiercaError('policy-name-constraints', `a renewal may not widen the names: ${wider.join(', ')} not in the certificate being renewed`, {
      detail: { added: wider },
    });
  }
}

const csrOf = verifiedCsr;

const normaliseSerial = (serial: string): string => serial.toLowerCase().replace(/[:\s]/g, '').replace(/^(00)+(?=.)/, '');

/** A run's request id for one of its renewals: stable, so a repeated run does not renew twice. */
function derivedRequestId(runId: string, target: string): string {
  return `run:${runId}:${createHash('sha256').update(target).digest('hex').slice(0, 24)}`;
}

function targetOf(item: DueItem): string {
  return item.kind === 'certificate' || item.kind === 'supersession' ? `certificate:${item.issuerId}/${item.serial}` : `ca:${item.caId}`;
}


/** A PKCS#12 friendlyName is a BMPString: names outside the Basic Multilingual Plane are left out. */
const friendly = (name: string): string | undefined => (/[\ud800-\udfff]/.test(name) ? undefined : name);
