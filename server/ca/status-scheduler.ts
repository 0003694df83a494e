/**
 * Keeps status artifacts fresh without anyone asking: a full CRL on its period (half its validity,
 * CrlPublisher.fullPeriodHours) and a delta CRL shortly after each status change (debounced), OCSP
 * responders replaced at half life, and pre-signed OCSP answers re-signed before their nextUpdate.
 */
import type { Logger } from 'pino';
import type { Store } from '../storage/storage.ts';
import type { TierPolicy } from '../config/tier-policy.ts';
import type { Clock } from '../clock.ts';
import type { CaDirectory } from './ca-directory.ts';
import type { CrlPublisher } from './crl-publisher.ts';
import type { ResponderPool } from './ocsp-responders.ts';
import { resignStoredAnswer } from './ocsp-presigner.ts';
import { HOUR_MS, MINUTE_MS } from '../../pki/time-constants.ts';
import type { OfflineRootWatch } from './offline-root-watch.ts';

export interface StatusSchedulerDeps {
  store: Store;
  cas: CaDirectory;
  crls: CrlPublisher;
  responders: ResponderPool;
  tiers: ReadonlyMap<string, TierPolicy>;
  clock: Clock;
  log: Logger;
  /** Delay between a revocation and the CRL republication it triggers. Default 1 s. */
  crlDebounceMs?: number;
}

export class StatusScheduler {
  private timer: NodeJS.Timeout | undefined;
  private lastOfflineWarning = 0;
  private readonly dirty = new Map<string, NodeJS.Timeout>();
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly deps: StatusSchedulerDeps) {}

  /** Runs one pass now, then every `intervalMs`. */
  async start(intervalMs = MINUTE_MS): Promise<void> {
    await this.runOnce();
    const tick = () => {
      this.running = this.runOnce().catch((err) => this.deps.log.error({ err }, 'status refresh failed'));
      this.running.finally(() => {
        this.timer = setTimeout(tick, intervalMs);
        this.timer.unref();
      });
    };
    this.timer = setTimeout(tick, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    for (const t of this.dirty.values()) clearTimeout(t);
    this.dirty.clear();
    await this.running.catch(() => undefined);
  }

  /**
   * A status changed under `caId`: publish a delta CRL that lists it shortly (several changes make
   * one delta); the full CRL waits for its period unless it is due anyway.
   */
  crlChanged(caId: string): void {
    if (this.dirty.has(caId)) return;
    const t = setTimeout(() => {
      this.dirty.delete(caId);
      this.deps.crls.publishChanges(caId).catch((err) => this.deps.log.error({ err, caId }, 'CRL publication failed'));
    }, this.deps.crlDebounceMs ?? 1000);
    t.unref();
    this.dirty.set(caId, t);
  }

  /** One pass: CRLs and responders of every active CA, then stale OCSP answers. */
  async runOnce(): Promise<void> {
    const { cas, crls, responders, clock } = this.deps;
    const now = clock.now();
    for (const ca of cas.list()) {
      // An offline root's CRL comes across in a response bundle (server/ca/offline-root-import.ts):
      // nothing to publish here, but say so well before it (or its OCSP answers) runs out.
      if (ca.offlineWatch) await this.watchOfflineRoot(ca.offlineWatch, now);
      if (ca.record.status !== 'active' || ca.offline) continue;
      if (await crls.fullDue(ca, now)) await crls.publish(ca.record.id);
      if (ca.record.layer === 'tier') await responders.forCa(ca.record.id, now);
    }
    await this.refreshOcsp(now);
  }

  /** Logs the offline root's warning at most once an hour (the metric and GET /ca show it always). */
  private async watchOfflineRoot(watch: OfflineRootWatch, now: Date): Promise<void> {
    const { warning, crlNextUpdate, ocspNextUpdate } = await watch.refresh(this.deps.store, now);
    if (!warning || now.getTime() - this.lastOfflineWarning < HOUR_MS) return;
    this.lastOfflineWarning = now.getTime();
    this.deps.log.warn({ crlNextUpdate, ocspNextUpdate }, warning);
  }

  /** Re-signs pre-signed answers whose nextUpdate is less than half a validity period away. */
  private async refreshOcsp(now: Date): Promise<void> {
    const { store, cas, responders, tiers } = this.deps;
    const horizon = new Date(now.getTime() + 12 * HOUR_MS);
    for (;;) {
      const stale = await store.ocspResponses.listStale(horizon, 500);
      let refreshed = 0;
      for (const answer of stale) {
        const cert = await store.certificates.get(answer.issuerId, answer.serial);
        const ca = cas.get(answer.issuerId);
        if (!cert || !ca) continue;
        const validityHours = (tier: string | null) => (tier ? tiers.get(tier)?.statusValidityHours : undefined) ?? 1;
        if (answer.nextUpdate.getTime() - now.getTime() > (validityHours(cert.tier) * HOUR_MS) / 2) continue;
        const responder = await responders.forCa(ca.record.id, now);
        // Signed from the status read under the row's lock, not from `cert` (see resignStoredAnswer).
        await resignStoredAnswer(store, { ca, responder, serial: cert.serial, now, validityHours });
        refreshed++;
      }
      if (stale.length < 500 || refreshed === 0) return;
    }
  }
}
