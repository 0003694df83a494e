/**
 * The OCSP source (cfssl's split: signer, source, responder): turns a DER OCSPRequest into a DER
 * OCSPResponse. The common request — one SHA-1 CertID, no nonce, as RFC 5019 clients send — is served
 * from pre-signed answers held in memory (loaded from the database on a miss). Requests with a nonce,
 * several CertIDs or another hash are signed fresh by the CA's delegated responder.
 *
 * Freshness across instances: every status change appends a revocation event; each instance polls the
 * events (default every 500 ms) and drops the cached answers they name, so a revocation made anywhere
 * is answered `revoked` everywhere within about a second.
 */
import { createHash } from 'node:crypto';
import { parseOcspRequest, type CertId, type OcspRequest } from '../../pki/ocsp-request.ts';
import { buildOcspResponse, ocspErrorResponse, type CertStatus, type SingleResponseParams } from '../../pki/ocsp-response.ts';
import { PkiError } from '../../pki/pki-error.ts';
import type { Store, OcspResponseRecord } from '../storage/storage.ts';
import type { TierPolicy } from '../config/tier-policy.ts';
import type { Clock } from '../clock.ts';
import type { CaDirectory, LoadedCa } from './ca-directory.ts';
import type { ResponderPool } from './ocsp-responders.ts';
import { resignStoredAnswer } from './ocsp-presigner.ts';
import { ocspCertStatus, type StatusSource } from './status-source.ts';
import { HOUR_MS } from '../../pki/time-constants.ts';

export interface OcspAnswer {
  body: Buffer;
  /** Present for pre-signed answers, which HTTP caches may keep (RFC 5019 §6). */
  cacheable?: { thisUpdate: Date; nextUpdate: Date; etag: string; lastModified?: string; expires?: string };
}

export interface OcspSourceDeps {
  store: Store;
  cas: CaDirectory;
  responders: ResponderPool;
  tiers: ReadonlyMap<string, TierPolicy>;
  /** The status of a certificate as its CA chain and its record make it (shared with `/status`). */
  status: StatusSource;
  clock: Clock;
  /** Cached answers kept in memory at most (oldest dropped first). Default 200,000. */
  maxCached?: number;
}

interface CachedAnswer {
  der: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
  etag: string;
  /** HTTP date strings, formatted once (RFC 5019 §6.2 headers). */
  lastModified: string;
  expires: string;
  /** The answer object handed out for it, made on first use (a memo hit then allocates nothing). */
  answer?: OcspAnswer;
}

/** Request bytes (or GET path) → cache key, kept at most (oldest dropped first). */
const MAX_MEMO = 100_000;

export class OcspSource {
  private readonly cache = new Map<string, CachedAnswer>();
  /** Counts invalidations, so that an answer read while one came is not cached (rememberUnlessInvalidated). */
  private epoch = 0;
  /**
   * The common request is the same bytes again and again (each device asks about its own
   * certificate): remembering which cached answer a given request maps to skips parsing it and
   * looking up its issuer. Only single-CertID, nonce-less, SHA-1 requests are remembered — exactly
   * those whose answer depends on nothing but their bytes.
   */
  private readonly requestMemo = new Map<string, { key: string; caId: string }>();
  private lastEventSeq = 0;
  private pollTimer: NodeJS.Timeout | undefined;
  private readonly maxCached: number;

  constructor(private readonly deps: OcspSourceDeps) {
    this.maxCached = deps.maxCached ?? 200_000;
  }

  /** Starts polling revocation events so changes made by other instances reach this cache. */
  async startPolling(intervalMs = 500): Promise<void> {
    this.lastEventSeq = await this.deps.store.revocationEvents.maxSeq();
    const tick = async () => {
      try {
        await this.pollOnce();
      } catch {
        // Database unreachable: keep serving cached answers until their nextUpdate.
      }
      this.pollTimer = setTimeout(tick, intervalMs);
      this.pollTimer.unref();
    };
    this.pollTimer = setTimeout(tick, intervalMs);
    this.pollTimer.unref();
  }

  stopPolling(): void {
    if (this.pollTimer) clearTimeout(this.pollTimer);
  }

  /** Reads new revocation events and drops the cached answers they name. */
  async pollOnce(): Promise<number> {
    // A CA revoked through another instance: take its new status into the directory.
    for (const record of await this.deps.store.cas.list()) this.deps.cas.takeNewer(record);
    // An offline root's CRL and OCSP answers may have been imported (tierca root import): take up their nextUpdates.
    for (const ca of this.deps.cas.list()) if (ca.offlineWatch) await ca.offlineWatch.refresh(this.deps.store, this.deps.clock.now());
    const events = await this.deps.store.revocationEvents.since(this.lastEventSeq, 10_000);
    for (const e of events) this.cache.delete(cacheKey(e.issuerId, e.serial));
    if (events.length) this.lastEventSeq = events[events.length - 1].seq;
    return events.length;
  }

  /** Drops or replaces the cached answer of one certificate (called by this instance after a change). */
  invalidate(issuerId: string, serial: string, replacement?: OcspResponseRecord): void {
    this.epoch++;
    const key = cacheKey(issuerId, serial);
    if (replacement) this.remember(key, replacement);
    else this.cache.delete(key);
  }

  /** Answers one DER OCSPRequest. Never throws: failures become OCSP responseStatus values. */
  async respond(der: Buffer, memoKey?: string): Promise<OcspAnswer> {
    const remembered = memoKey === undefined ? undefined : this.memoized(memoKey);
    if (remembered) return remembered;
    let request: OcspRequest;
    try {
      request = parseOcspRequest(der);
    } catch (err) {
      if (err instanceof PkiError) return { body: ocspErrorResponse('malformedRequest') };
      return { body: ocspErrorResponse('internalError') };
    }
    try {
      if (request.certIds.length === 1 && !request.nonce && request.certIds[0].hashAlgorithm === 'sha1') {
        return await this.presigned(request.certIds[0], memoKey);
      }
      return await this.signFresh(request);
    } catch {
      return { body: ocspErrorResponse('tryLater') };
    }
  }

  /**
   * The answer to a request seen before (by its memo key), synchronously, when it is still cached and
   * fresh; undefined otherwise (then call {@link respond}). The HTTP handler asks here first: a hit
   * needs no promise.
   */
  memoized(memoKey: string): OcspAnswer | undefined {
    const memo = this.requestMemo.get(memoKey);
    // The CA chain's status is looked up again: under a revoked or retired CA nothing is answered from memory.
    const hit = memo && this.deps.cas.effectiveStatus(memo.caId).status === 'active' ? this.cache.get(memo.key) : undefined;
    return hit && hit.nextUpdate.getTime() > this.deps.clock.now().getTime() ? answerOf(hit) : undefined;
  }

  private issuerOf(certId: CertId): LoadedCa | undefined {
    let ca: LoadedCa | undefined;
    const keyHash = certId.issuerKeyHash.toString('hex');
    if (certId.hashAlgorithm === 'sha1') ca = this.deps.cas.findByKeyHash(keyHash);
    // Both indexes live in the directory, so CA generations added by a rollover are found at once.
    else if (certId.hashAlgorithm === 'sha256') ca = this.deps.cas.findByKeyHashSha256(keyHash);
    // Tier CAs answer through their delegated responders; an offline root, for its domain CAs, with the answers it pre-signed.
    if (!ca || (ca.record.layer !== 'tier' && !ca.offline)) return undefined;
    // SHA-1 name hashes are stored with the CA; others are computed (rare: RFC 5019 clients send SHA-1).
    if (certId.hashAlgorithm === 'sha1') return certId.issuerNameHash.toString('hex') === ca.record.nameHashSha1 ? ca : undefined;
    const nameHash = createHash(certId.hashAlgorithm).update(ca.fields.subject).digest();
    return nameHash.equals(certId.issuerNameHash) ? ca : undefined;
  }

  private async presigned(certId: CertId, memoKey?: string): Promise<OcspAnswer> {
    const ca = this.issuerOf(certId);
    if (!ca) return { body: ocspErrorResponse('unauthorized') };
    if (ca.offline) return this.fromOfflineRoot(ca, certId, memoKey);
    // Pre-signed answers say what the record said; under a revoked CA (or ancestor) the answer is signed now.
    if (this.deps.cas.effectiveStatus(ca.record.id).status !== 'active') return this.signFresh({ certIds: [certId], nonce: null, signed: false });
    const key = cacheKey(ca.record.id, certId.serial);
    const now = this.deps.clock.now();
    if (memoKey !== undefined) this.memo(memoKey, key, ca.record.id);
    const hit = this.cache.get(key);
    if (hit && hit.nextUpdate.getTime() > now.getTime()) return answerOf(hit);
    const epoch = this.epoch;
    let stored = await this.deps.store.ocspResponses.get(ca.record.id, certId.serial);
    if (!stored || stored.nextUpdate.getTime() <= now.getTime()) {
      // No answer yet, or a stale one (the refresher was late): sign one now and keep it.
      const cert = await this.deps.store.certificates.get(ca.record.id, certId.serial);
      if (!cert || !this.deps.status.withinArchive(cert, now)) {
        return this.signFresh({ certIds: [certId], nonce: null, signed: false });
      }
      const responder = await this.deps.responders.forCa(ca.record.id, now);
      stored = await resignStoredAnswer(this.deps.store, { ca, responder, serial: cert.serial, now, validityHours: (tier) => this.validityHours(tier) });
      if (!stored) return this.signFresh({ certIds: [certId], nonce: null, signed: false });
    }
    return answerOf(this.rememberUnlessInvalidated(key, stored, epoch));
  }

  /**
   * An answer for a child of an offline root: only what the root pre-signed at its last ceremony
   * (imported from a response bundle) — nothing can be signed here. None for that serial is
   * `unauthorized`; one past its nextUpdate is `tryLater` (the next ceremony is overdue), never served.
   */
  private async fromOfflineRoot(ca: LoadedCa, certId: CertId, memoKey?: string): Promise<OcspAnswer> {
    if (certId.hashAlgorithm !== 'sha1') return { body: ocspErrorResponse('unauthorized') };
    const key = cacheKey(ca.record.id, certId.serial);
    const now = this.deps.clock.now();
    const hit = this.cache.get(key);
    if (hit && hit.nextUpdate.getTime() > now.getTime()) {
      if (memoKey !== undefined) this.memo(memoKey, key, ca.record.id);
      return answerOf(hit);
    }
    const epoch = this.epoch;
    const stored = await this.deps.store.ocspResponses.get(ca.record.id, certId.serial);
    if (!stored) return { body: ocspErrorResponse('unauthorized') };
    if (stored.nextUpdate.getTime() <= now.getTime()) return { body: ocspErrorResponse('tryLater') };
    if (memoKey !== undefined) this.memo(memoKey, key, ca.record.id);
    return answerOf(this.rememberUnlessInvalidated(key, stored, epoch));
  }

  private async signFresh(request: OcspRequest): Promise<OcspAnswer> {
    const issuers = request.certIds.map((c) => this.issuerOf(c));
    const first = issuers[0];
    // A nonce cannot be echoed without the root key: the pre-signed answer is all there is (RFC 5019 §4 allows leaving the nonce out).
    if (first?.offline && request.certIds.length === 1) return this.fromOfflineRoot(first, request.certIds[0]);
    // One response has one signer: every CertID must name the same CA that we run.
    if (!first || issuers.some((ca) => ca !== first)) return { body: ocspErrorResponse('unauthorized') };
    const now = this.deps.clock.now();
    const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + this.validityHours(first.record.tier) * HOUR_MS);
    const responses: SingleResponseParams[] = [];
    for (const certId of request.certIds) {
      responses.push({ certId: certId.raw, certStatus: await this.statusOf(first, certId.serial, now), thisUpdate, nextUpdate });
    }
    const responder = await this.deps.responders.forCa(first.record.id, now);
    const body = await buildOcspResponse({
      responderPublicKeyInfo: responder.signer.publicKeyInfo,
      producedAt: thisUpdate,
      responses,
      nonce: request.nonce,
      certificates: [responder.record.certificate],
      signer: responder.signer,
    });
    return { body };
  }

  private async statusOf(ca: LoadedCa, serial: string, now: Date): Promise<CertStatus> {
    return ocspCertStatus(await this.deps.status.statusOf(ca, serial, now));
  }

  private validityHours(tierId: string | null): number {
    return (tierId ? this.deps.tiers.get(tierId)?.statusValidityHours : undefined) ?? 1;
  }

  private memo(memoKey: string, key: string, caId: string): void {
    if (this.requestMemo.size >= MAX_MEMO) {
      const oldest = this.requestMemo.keys().next().value;
      if (oldest !== undefined) this.requestMemo.delete(oldest);
    }
    this.requestMemo.set(memoKey, { key, caId });
  }

  /**
   * {@link remember}, unless an invalidation came while `record` was being read (since `epoch`): the
   * record may then be the answer a revocation just replaced, and cached it would be served until
   * its nextUpdate. It is still answered this once — it was read before the change committed.
   */
  private rememberUnlessInvalidated(key: string, record: OcspResponseRecord, epoch: number): CachedAnswer {
    if (this.epoch === epoch) return this.remember(key, record);
    return cachedAnswerOf(record);
  }

  private remember(key: string, record: OcspResponseRecord): CachedAnswer {
    const entry = cachedAnswerOf(record);
    this.cache.delete(key);
    this.cache.set(key, entry);
    if (this.cache.size > this.maxCached) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    return entry;
  }
}

const cacheKey = (issuerId: string, serial: string): string => `${issuerId}/${serial}`;

const answerOf = (c: CachedAnswer): OcspAnswer =>
  (c.answer ??= {
    body: c.der,
    cacheable: { thisUpdate: c.thisUpdate, nextUpdate: c.nextUpdate, etag: c.etag, lastModified: c.lastModified, expires: c.expires },
  });

/** The cache entry (with its HTTP caching headers) of a stored answer. */
function cachedAnswerOf(record: OcspResponseRecord): CachedAnswer {
  return {
    der: record.der,
    thisUpdate: record.thisUpdate,
    nextUpdate: record.nextUpdate,
    etag: `"${createHash('sha1').update(record.der).digest('hex')}"`,
    lastModified: record.thisUpdate.toUTCString(),
    expires: record.nextUpdate.toUTCString(),
  };
}
