/**
 * Officers' side of EST (issue 18): a one-time enrolment code for one device subject (shown once,
 * kept only as SHA-256), and the codes of the officer's domains with what became of them. Each
 * action is audited under the officer.
 */
import type { Store } from '../storage/storage.ts';
import type { Clock } from '../clock.ts';
import { appendAudit } from '../audit/audit-log.ts';
import { TiercaError } from '../errors.ts';
import type { Authorizer } from './authorizer.ts';
import { actorOf, runAudited } from './audited.ts';
import type { RequestContext } from './permissions.ts';
import type { EstCodeRecord, EstStore } from '../enrol/est/est-store.ts';
import { codeHashOf } from '../enrol/est/est-server.ts';
import { DAY_MS } from '../../pki/time-constants.ts';

/** How long a code may be used, unless the officer says otherwise. */
export const DEFAULT_CODE_LIFETIME_MS = DAY_MS;
/** The longest a code may live: it is a bearer secret on its way to a device. */
export const MAX_CODE_LIFETIME_MS = 30 * DAY_MS;

export interface IssuedCode {
  id: string;
  /** The code itself: shown once, never again. */
  code: string;
  subjectId: string;
  /** The EST label (`/.well-known/est/<label>/…`): the subject's domain and tier. */
  label: string;
  expiresAt: Date;
}

export interface EstCodesServiceDeps {
  est: EstStore;
  store: Pick<Store, 'subjects' | 'audit'>;
  authorizer: Pick<Authorizer, 'require'>;
  clock: Clock;
  random: (n: number) => Buffer;
}

export class EstCodesService {
  constructor(private readonly deps: EstCodesServiceDeps) {}

  async addCode(ctx: RequestContext, input: { subjectId: string; lifetimeMs?: number }): Promise<IssuedCode> {
    const { store, est } = this.deps;
    const subject = await store.subjects.get(input.subjectId);
    if (!subject) throw new TiercaError('not-found', `no subject ${input.subjectId}`);
    const target = `subject:${subject.id}`;
    await this.deps.authorizer.require(ctx, 'est:manage', 'est.code.add', target, subject.domain);
    return runAudited({ audit: store.audit, clock: this.deps.clock }, ctx, 'est.code.add', target, async () => {
      if (subject.kind !== 'device') throw new TiercaError('policy-profile', `EST enrols devices; ${subject.id} is a ${subject.kind}`);
      if (subject.status !== 'active') throw new TiercaError('conflict', `subject ${subject.id} is revoked`);
      const lifetime = input.lifetimeMs ?? DEFAULT_CODE_LIFETIME_MS;
      if (lifetime <= 0 || lifetime > MAX_CODE_LIFETIME_MS) throw new TiercaError('bad-request', 'a code lives for at most 30 days');
      const now = this.deps.clock.now();
      const id = `estc-${this.deps.random(9).toString('base64url')}`;
      const code = this.deps.random(18).toString('base64url');
      const expiresAt = new Date(now.getTime() + lifetime);
      await est.insert({
        id, codeHash: codeHashOf(code), subjectId: subject.id, domain: subject.domain, tier: subject.tier, state: 'unused', expiresAt,
        createdBy: ctx.principal.id, createdAt: now, usedAt: null, requestId: null, issuerId: null, serial: null,
      });
      await appendAudit(store.audit, now, {
        ...actorOf(ctx), action: 'est.code.add', target, outcome: 'success', detail: { code: id, expiresAt: expiresAt.toISOString() },
      });
      return { id, code, subjectId: subject.id, label: `${subject.domain}-${subject.tier}`, expiresAt };
    });
  }

  /** The codes of the officer's domains (or of one subject), newest first, without the code. */
  async codes(ctx: RequestContext, filter: { subjectId?: string } = {}): Promise<Omit<EstCodeRecord, 'codeHash'>[]> {
    await this.deps.authorizer.require(ctx, 'est:manage', 'est.codes', null, null);
    const domains = ctx.principal.role === 'officer' ? ctx.principal.domains : undefined;
    return (await this.deps.est.list({ domains, subjectId: filter.subjectId })).map(({ codeHash: _hash, ...rest }) => rest);
  }
}
