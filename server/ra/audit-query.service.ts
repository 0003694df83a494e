/**
 * The audit log for auditors: reading records, exporting a range, verifying the hash chain and
 * signed checkpoints, listing checkpoints and signing one now. Every read that matters is audited.
 */
import type { AuditCheckpointRecord, AuditRecord, Store } from '../storage/storage.ts';
import type { Clock } from '../clock.ts';
import { appendAudit } from '../audit/audit-log.ts';
import type { AuditCheckpoints, AuditAnchor, AuditVerification } from '../audit/audit-checkpoints.ts';
import type { Authorizer } from './authorizer.ts';
import { actorOf, runAudited } from './audited.ts';
import type { RequestContext } from './permissions.ts';

/** Audit log queries (`GET /api/v1/audit`). Without `since` or `afterSeq`, the newest `limit` records. */
export interface AuditQuery {
  since?: Date;
  until?: Date;
  actor?: string;
  action?: string;
  /** Records after this seq, oldest first (paging). */
  afterSeq?: number;
  limit: number;
}

const EXPORT_PAGE = 1000;

export interface AuditQueryServiceDeps {
  store: Pick<Store, 'audit'>;
  checkpoints: Pick<AuditCheckpoints, 'verify' | 'publicKeys' | 'list' | 'checkpoint'>;
  authorizer: Pick<Authorizer, 'require'>;
  clock: Clock;
}

export class AuditQueryService {
  constructor(private readonly deps: AuditQueryServiceDeps) {}

  /** Audit records: from `since`/`afterSeq` oldest first, else the newest `limit`; in seq order. */
  async records(ctx: RequestContext, q: AuditQuery): Promise<AuditRecord[]> {
    await this.deps.authorizer.require(ctx, 'audit:read', 'audit.read', null);
    const { audit } = this.deps.store;
    const filter = { until: q.until, actor: q.actor, action: q.action };
    if (q.since !== undefined || q.afterSeq !== undefined) {
      return audit.list({ ...filter, since: q.since, fromSeq: q.afterSeq === undefined ? undefined : q.afterSeq + 1, limit: q.limit });
    }
    // The newest `limit` matching records: look back over a widening window of seqs.
    const last = await audit.last();
    if (!last) return [];
    for (let window = Math.max(q.limit * 4, 1000); ; window *= 4) {
      const fromSeq = Math.max(1, last.seq - window + 1);
      const rows = await audit.list({ ...filter, fromSeq });
      if (rows.length >= q.limit || fromSeq === 1) return rows.slice(-q.limit);
    }
  }

  /** The records of `[from, to)` (both optional) for export, paged from the database as they are read. The export is audited. */
  async export(ctx: RequestContext, range: { from?: Date; to?: Date }): Promise<AsyncIterable<AuditRecord>> {
    await this.deps.authorizer.require(ctx, 'audit:read', 'audit.export', null);
    const { audit } = this.deps.store;
    await appendAudit(audit, this.deps.clock.now(), {
      ...actorOf(ctx), action: 'audit.export', target: null, outcome: 'success',
      detail: { from: range.from?.toISOString() ?? null, to: range.to?.toISOString() ?? null },
    });
    return {
      async *[Symbol.asyncIterator]() {
        for (let fromSeq = 1; ;) {
          const page = await audit.list({ fromSeq, since: range.from, until: range.to, limit: EXPORT_PAGE });
          yield* page;
          if (page.length < EXPORT_PAGE) return;
          fromSeq = page[page.length - 1].seq + 1;
        }
      },
    };
  }

  /** Recomputes the whole chain and every checkpoint (see AuditCheckpoints.verify); the run is audited. */
  async verify(ctx: RequestContext, options: { anchor?: AuditAnchor } = {}): Promise<AuditVerification> {
    await this.deps.authorizer.require(ctx, 'audit:read', 'audit.verify', null);
    const result = await this.deps.checkpoints.verify(options);
    await appendAudit(this.deps.store.audit, this.deps.clock.now(), {
      ...actorOf(ctx), action: 'audit.verify', target: null, outcome: 'success',
      detail: { ok: result.ok, checked: result.checked, checkpoints: result.checkpoints, ...(result.firstBad ? { firstBad: result.firstBad } : {}) },
    });
    return result;
  }

  /** The audit keys and every checkpoint, for checking them outside tierca. */
  async checkpointList(ctx: RequestContext): Promise<{ keys: Awaited<ReturnType<AuditCheckpoints['publicKeys']>>; checkpoints: AuditCheckpointRecord[] }> {
    await this.deps.authorizer.require(ctx, 'audit:read', 'audit.checkpoints', null);
    return { keys: await this.deps.checkpoints.publicKeys(), checkpoints: await this.deps.checkpoints.list() };
  }

  /** Signs a checkpoint now, over the record of this very request (auditor). */
  async checkpoint(ctx: RequestContext): Promise<AuditCheckpointRecord> {
    await this.deps.authorizer.require(ctx, 'audit:checkpoint', 'audit.checkpoint', null);
    return runAudited({ audit: this.deps.store.audit, clock: this.deps.clock }, ctx, 'audit.checkpoint', null, async () => {
      const record = await appendAudit(this.deps.store.audit, this.deps.clock.now(), {
        ...actorOf(ctx), action: 'audit.checkpoint', target: null, outcome: 'success',
      });
      return this.deps.checkpoints.checkpoint(record);
    });
  }
}
