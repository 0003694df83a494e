/**
 * Scheduled rotation: what is due (`rotate due`), a rotation run (`rotate run`: renew what the
 * server may, revoke superseded certificates whose grace is over, replace responders, retire old CA
 * generations; report what waits for a holder or a rollover), and the timer that does the
 * unattended part of it on every instance.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Store } from '../../storage/storage.ts';
import type { TiercaConfig } from '../../config/load-config.ts';
import type { Clock } from '../../clock.ts';
import { appendAudit } from '../../audit/audit-log.ts';
import { TiercaError } from '../../errors.ts';
import type { ResponderPool } from '../../ca/ocsp-responders.ts';
import type { AuditActor, RenewalService } from '../../ca/renewal.ts';
import type { CaRollover } from '../../ca/ca-rollover.ts';
import type { DueItem, RotationPlan, RotationPlanner } from '../../ca/rotation-planner.ts';
import type { Authorizer } from '../authorizer.ts';
import { actorOf, runAudited } from '../audited.ts';
import type { RequestContext } from '../permissions.ts';
import type { RenewalAuthority } from './renewal.service.ts';

/** The actor of what the rotation timer does by itself. */
const TIMER_ACTOR: AuditActor = { principalId: null, role: null, source: 'rotation-timer', requestId: null };

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

export interface RotationRunServiceDeps {
  store: Pick<Store, 'certificates' | 'renewals' | 'audit'>;
  config: Pick<TiercaConfig, 'tiers' | 'domains'>;
  authorizer: Pick<Authorizer, 'require'>;
  planner: Pick<RotationPlanner, 'plan'>;
  renewals: Pick<RenewalAuthority, 'renewChecked'>;
  caRenewals: Pick<RenewalService, 'supersede' | 'supersedeDue'>;
  responders: Pick<ResponderPool, 'forCa'>;
  rollovers: Pick<CaRollover, 'sync' | 'retirementCandidates' | 'retire' | 'retireDue'>;
  clock: Clock;
  log?: Logger;
}

export class RotationRunService {
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> = Promise.resolve();

  constructor(private readonly deps: RotationRunServiceDeps) {}

  /** What is due at or before now + `withinMs` (`rotate due`). */
  async due(ctx: RequestContext, q: { withinMs?: number; domain?: string; tier?: string }): Promise<RotationPlan> {
    await this.deps.authorizer.require(ctx, 'rotation:read', 'rotation.due', null);
    this.checkFilters(q);
    return this.deps.planner.plan({ now: this.deps.clock.now(), withinMs: q.withinMs, domain: q.domain, tier: q.tier });
  }

  // ---- rotation run -----------------------------------------------------------------------------

  /**
   * Does what is due now (`rotate run`): renews what the server may (keeping keys), revokes superseded
   * certificates whose grace is over, replaces responders, retires old CA generations; reports what
   * waits for a holder or for a CA rollover. `limit` caps the renewals of one call (`remaining` tells
   * how many are left); a repeated call with the same `requestId` never renews a certificate twice.
   */
  async run(ctx: RequestContext, input: { dryRun?: boolean; domain?: string; tier?: string; requestId?: string; limit?: number }): Promise<RunReport> {
    await this.deps.authorizer.require(ctx, 'rotation:run', 'rotation.run', null);
    this.checkFilters(input);
    return runAudited({ audit: this.deps.store.audit, clock: this.deps.clock }, ctx, 'rotation.run', null, async () => {
      const now = this.deps.clock.now();
      const dryRun = !!input.dryRun;
      const runId = input.requestId ?? ctx.requestId;
      const plan = await this.deps.planner.plan({ now, domain: input.domain, tier: input.tier });
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
              const renewed = await this.deps.renewals.renewChecked(ctx, old, {}, derivedRequestId(runId, base.target), false);
              items.push({ ...base, outcome: 'renewed', successor: { issuerId: renewed.certificate.issuerId, serial: renewed.certificate.serial } });
              break;
            }
            case 'supersession': {
              if (dryRun || item.dueAt.getTime() > now.getTime()) {
                items.push({ ...base, outcome: 'would-supersede', successor: item.successor });
                break;
              }
              const renewal = await this.deps.store.renewals.getByOld(item.issuerId, item.serial);
              if (renewal && !renewal.supersededAt) await this.deps.caRenewals.supersede(renewal, now, actorOf(ctx));
              items.push({ ...base, outcome: 'superseded', successor: item.successor });
              break;
            }
            case 'responder':
              if (!dryRun) await this.deps.responders.forCa(item.caId, now);
              items.push({ ...base, outcome: dryRun ? 'would-rotate' : 'rotated' });
              break;
            case 'retirement': {
              if (!dryRun) {
                const candidate = (await this.deps.rollovers.retirementCandidates()).find((c) => c.ca.record.id === item.caId);
                if (candidate) await this.deps.rollovers.retire(candidate, now, actorOf(ctx));
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

  // ---- the timer --------------------------------------------------------------------------------

  /**
   * One pass of what the server does by itself: learn CA generations other instances made, revoke
   * superseded certificates whose grace is over, retire CA generations whose certificates have all
   * expired. (CRLs and OCSP responders are kept fresh by the status scheduler.)
   */
  async tick(): Promise<void> {
    const now = this.deps.clock.now();
    await this.deps.rollovers.sync();
    await this.deps.caRenewals.supersedeDue(now, TIMER_ACTOR);
    await this.deps.rollovers.retireDue(now, TIMER_ACTOR);
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

  private checkFilters(q: { domain?: string; tier?: string }): void {
    if (q.tier && !this.deps.config.tiers.has(q.tier)) throw new TiercaError('bad-request', `no tier ${q.tier}`);
    if (q.domain && !this.deps.config.domains.some((d) => d.slug === q.domain)) throw new TiercaError('bad-request', `no domain ${q.domain}`);
  }
}

/** A run's request id for one of its renewals: stable, so a repeated run does not renew twice. */
function derivedRequestId(runId: string, target: string): string {
  return `run:${runId}:${createHash('sha256').update(target).digest('hex').slice(0, 24)}`;
}

function targetOf(item: DueItem): string {
  return item.kind === 'certificate' || item.kind === 'supersession' ? `certificate:${item.issuerId}/${item.serial}` : `ca:${item.caId}`;
}


