/**
 * Subjects — the organs, devices and users certificates are issued to: registering one with its
 * names checked against its domain, listing, showing, and revoking one with all its certificates.
 */
import { randomUUID } from 'node:crypto';
import type { CertificateRecord, Store, SubjectFilter, SubjectKind, SubjectRecord } from '../storage/storage.ts';
import type { TierPolicy } from '../config/tier-policy.ts';
import type { Clock } from '../clock.ts';
import { appendAudit } from '../audit/audit-log.ts';
import { TiercaError } from '../errors.ts';
import type { RevocationService } from '../ca/revocation-service.ts';
import type { CaDirectory } from '../ca/ca-directory.ts';
import type { Authorizer } from './authorizer.ts';
import { actorOf, runAudited } from './audited.ts';
import type { RequestContext } from './permissions.ts';
import { checkCommonName, checkNames, tierOf } from './issuance-policy.ts';
import type { IpRange } from '../../pki/ip-range.ts';
import { reasonOrRefuse } from './certificate-status.service.ts';

export interface SubjectInput {
  kind: SubjectKind;
  domain: string;
  organ: string;
  tier: string;
  name: string;
  dns?: string[];
  ips?: string[];
  emails?: string[];
}

export interface SubjectServiceDeps {
  store: Pick<Store, 'subjects' | 'domains' | 'organs' | 'certificates' | 'audit' | 'transaction'>;
  tiers: ReadonlyMap<string, TierPolicy>;
  authorizer: Pick<Authorizer, 'require'>;
  revocation: Pick<RevocationService, 'prepare'>;
  cas: Pick<CaDirectory, 'issuingCa'>;
  /** The IP ranges a domain's devices may carry (config `domains[].ipRanges`). */
  ipRanges: (domain: string) => Promise<readonly IpRange[]>;
  clock: Clock;
}

export class SubjectService {
  constructor(private readonly deps: SubjectServiceDeps) {}

  async add(ctx: RequestContext, input: SubjectInput): Promise<SubjectRecord> {
    const { store } = this.deps;
    await this.deps.authorizer.require(ctx, 'subject:write', 'subject.add', `domain:${input.domain}`, input.domain);
    return runAudited({ audit: store.audit, clock: this.deps.clock }, ctx, 'subject.add', null, async () => {
      const domain = await store.domains.get(input.domain);
      if (!domain) throw new TiercaError('not-found', `no domain ${input.domain}`);
      if (!(await store.organs.get(input.domain, input.organ))) throw new TiercaError('not-found', `no organ ${input.organ} in ${input.domain}`);
      tierOf(this.deps.tiers, input.tier);
      const names = checkNames(domain, input.kind, { dns: input.dns, ips: input.ips, emails: input.emails }, await this.deps.ipRanges(input.domain));
      checkCommonName(input.kind, input.name, names.dns);
      const now = this.deps.clock.now();
      const subject: SubjectRecord = {
        id: `sub-${randomUUID()}`, kind: input.kind, domain: input.domain, organ: input.organ, tier: input.tier, name: input.name,
        dnsNames: names.dns, ipAddresses: names.ips, emails: names.emails, status: 'active', createdBy: ctx.principal.id, createdAt: now,
      };
      await store.transaction(async (tx) => {
        await tx.subjects.insert(subject);
        await appendAudit(tx.audit, now, {
          ...actorOf(ctx), action: 'subject.add', target: `subject:${subject.id}`, outcome: 'success',
          detail: { kind: subject.kind, domain: subject.domain, tier: subject.tier, name: subject.name },
        });
      });
      return subject;
    });
  }

  async list(ctx: RequestContext, filter: SubjectFilter): Promise<SubjectRecord[]> {
    await this.deps.authorizer.require(ctx, 'subject:read', 'subject.list', null);
    return this.deps.store.subjects.list(filter);
  }

  async get(ctx: RequestContext, id: string): Promise<{ subject: SubjectRecord; certificates: CertificateRecord[] }> {
    await this.deps.authorizer.require(ctx, 'subject:read', 'subject.show', `subject:${id}`);
    const subject = await this.deps.store.subjects.get(id);
    if (!subject) throw new TiercaError('not-found', `no subject ${id}`);
    return { subject, certificates: await this.deps.store.certificates.list({ subjectId: id }) };
  }

  /**
   * Revokes a subject (a person leaves, a device is lost) and every certificate it holds that is not
   * revoked yet, in ONE transaction that holds the subject's row lock: an issuance racing it either
   * committed before (and its certificate is listed and revoked here) or finds the subject revoked
   * inside its own transaction (issuance.service.ts). So once this answers, no certificate of the
   * subject is good. Returns the serials revoked.
   */
  async revoke(ctx: RequestContext, id: string, reasonName: string): Promise<string[]> {
    const { store } = this.deps;
    const subject = await store.subjects.get(id);
    if (!subject) throw new TiercaError('not-found', `no subject ${id}`);
    await this.deps.authorizer.require(ctx, 'certificate:revoke', 'subject.revoke', `subject:${id}`, subject.domain);
    const reason = reasonOrRefuse(reasonName);
    return runAudited({ audit: store.audit, clock: this.deps.clock }, ctx, 'subject.revoke', `subject:${id}`, async () => {
      const now = this.deps.clock.now();
      // The CAs whose certificates may need revoking: those of what the subject holds now, and its
      // current issuing CA (the only one a racing issuance can use). Their responders are made ready
      // outside the transaction.
      const held = await store.certificates.list({ subjectId: id });
      const current = this.deps.cas.issuingCa(subject.domain, subject.tier);
      const prepared = await this.deps.revocation.prepare(
        [...held.filter((c) => c.status !== 'revoked').map((c) => c.issuerId), ...(current && current.record.status === 'active' ? [current.record.id] : [])],
        now,
      );
      const changed: CertificateRecord[] = [];
      const revoked = await store.transaction(async (tx) => {
        const locked = await tx.subjects.lock(id, 'update');
        if (!locked) throw new TiercaError('not-found', `no subject ${id}`);
        const serials: string[] = [];
        for (const cert of await tx.certificates.list({ subjectId: id })) {
          if (cert.status === 'revoked') continue;
          const result = await prepared.apply(tx, cert.issuerId, cert.serial, { kind: 'revoke', reason, invalidityDate: null }, actorOf(ctx));
          if (result.changed) changed.push(result.record);
          serials.push(cert.serial);
        }
        await tx.subjects.setStatus(id, 'revoked');
        await appendAudit(tx.audit, now, { ...actorOf(ctx), action: 'subject.revoke', target: `subject:${id}`, outcome: 'success', detail: { revoked: serials } });
        return serials;
      });
      prepared.committed(changed);
      return revoked;
    });
  }
}
