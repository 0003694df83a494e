/**
 * What is due for rotation (`tierca rotate due`): end-entity certificates past their tier's renewal
 * point, renewed certificates whose grace period ends, OCSP responder certificates past half life,
 * CAs that can no longer give a full lifetime to what they issue, and superseded CA generations whose
 * last certificate has expired. Read-only: the rotation authority acts on the plan.
 */
import type { CertificateRecord, Store, SubjectRecord } from '../storage/storage.ts';
import type { TierPolicy } from '../config/tier-policy.ts';
import type { TiercaConfig } from '../config/load-config.ts';
import { isKeyAlgorithm } from '../../pki/algorithms.ts';
import { lineageOf, type CaDirectory, type LoadedCa } from './ca-directory.ts';
import type { CaRollover } from './ca-rollover.ts';
import { DAY_MS } from '../../pki/time-constants.ts';

const YEAR_MS = 365.25 * DAY_MS;
const PAGE = 1000;

/** The renewal point of a tier without `renewAtFraction`: two thirds of the lifetime. */
export const DEFAULT_RENEW_AT_FRACTION = 2 / 3;

/** When a certificate is due for renewal: notBefore + fraction × lifetime (whole seconds). */
export function renewalPointOf(cert: Pick<CertificateRecord, 'notBefore' | 'notAfter'>, tier: TierPolicy | undefined): Date {
  const fraction = tier?.renewAtFraction ?? DEFAULT_RENEW_AT_FRACTION;
  const life = cert.notAfter.getTime() - cert.notBefore.getTime();
  return new Date(Math.floor((cert.notBefore.getTime() + fraction * life) / 1000) * 1000);
}

/** The tier's grace period in days (0 when it sets none). */
export const graceDaysOf = (tier: TierPolicy | undefined): number => tier?.supersedeGraceDays ?? 0;

/**
 * Whether the server may renew a certificate of this tier without its holder — that is, keeping the
 * key. A tier whose keys are made by the holder only also wants a fresh key at each renewal (rekey),
 * which only the holder can make; so does a key algorithm the tier no longer allows.
 */
export function serverRenewal(tier: TierPolicy, keyAlgorithm: string): { ok: true } | { ok: false; why: string } {
  if (!tier.keyGeneration.includes('server')) return { ok: false, why: `tier ${tier.id} rekeys at renewal: the holder sends a CSR for a new key` };
  if (!isKeyAlgorithm(keyAlgorithm) || !tier.keyAlgorithms.includes(keyAlgorithm)) {
    return { ok: false, why: `key ${keyAlgorithm} is no longer allowed at tier ${tier.id}: the holder sends a CSR for a new key` };
  }
  return { ok: true };
}

/** How long before its end a CA is due: the longest validity it gives to what it issues. */
export function caReserveMs(ca: LoadedCa, config: TiercaConfig): number {
  if (ca.record.layer === 'root') return config.domainCa.validityYears * YEAR_MS;
  if (ca.record.layer === 'domain') return config.tierCa.validityYears * YEAR_MS;
  const tier = config.tiers.get(ca.record.tier!);
  return tier ? Math.max(...Object.values(tier.maxValidityDays)) * DAY_MS : 0;
}

export interface DueCertificate {
  kind: 'certificate';
  issuerId: string;
  serial: string;
  subjectId: string | null;
  domain: string | null;
  tier: string | null;
  profile: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  /** The renewal point. */
  dueAt: Date;
  /** `renew`: the server renews it (same key); `wait-for-holder`: the holder must send a CSR; `blocked`: cannot be renewed. */
  action: Extract<DueAction, 'renew' | 'wait-for-holder' | 'blocked'>;
  why?: string;
}

export interface DueSupersession {
  kind: 'supersession';
  issuerId: string;
  serial: string;
  domain: string | null;
  tier: string | null;
  successor: { issuerId: string; serial: string };
  /** The end of the grace period. */
  dueAt: Date;
  action: Extract<DueAction, 'revoke-superseded'>;
}

export interface DueResponder {
  kind: 'responder';
  caId: string;
  domain: string | null;
  tier: string | null;
  /** The current responder certificate's end, or null when there is none. */
  notAfter: Date | null;
  /** Half its life: the pool replaces it then. */
  dueAt: Date;
  action: Extract<DueAction, 'automatic'>;
}

export interface DueCa {
  kind: 'ca';
  caId: string;
  lineage: string;
  layer: string;
  domain: string | null;
  tier: string | null;
  notAfter: Date;
  /** From then on it cannot give a full lifetime to what it issues. */
  dueAt: Date;
  /** `rollover` by a sysadmin (tierca ca rollover); `ceremony` for the root. */
  action: Extract<DueAction, 'rollover' | 'ceremony'>;
}

export interface DueRetirement {
  kind: 'retirement';
  caId: string;
  lineage: string;
  domain: string | null;
  tier: string | null;
  /** When the last certificate it issued expires (or expired). */
  dueAt: Date;
  action: Extract<DueAction, 'retire'>;
}

/**
 * What is to be done about a due item (its `action` field in `rotate due` answers): a renewal by the
 * server, a wait for the holder's CSR, a block, the end of a grace period, a responder replaced by
 * itself, a CA rollover or root ceremony, a retirement. (Not an audit action nor a request kind.)
 */
export type DueAction =
  | 'renew' | 'wait-for-holder' | 'blocked' | 'revoke-superseded' | 'automatic' | 'rollover' | 'ceremony' | 'retire';

export type DueItem = DueCertificate | DueSupersession | DueResponder | DueCa | DueRetirement;

export interface RotationPlan {
  now: Date;
  /** now + within: everything due at or before this is listed. */
  horizon: Date;
  items: DueItem[];
}

export interface RotationPlannerDeps {
  store: Store;
  cas: CaDirectory;
  config: TiercaConfig;
  rollover: CaRollover;
}

export class RotationPlanner {
  constructor(private readonly deps: RotationPlannerDeps) {}

  /** Everything due at or before `now + withinMs`, optionally for one domain and/or tier, sorted by due time. */
  async plan(p: { now: Date; withinMs?: number; domain?: string; tier?: string }): Promise<RotationPlan> {
    const horizon = new Date(p.now.getTime() + (p.withinMs ?? 0));
    const items: DueItem[] = [
      ...(await this.certificates(p.now, horizon, p.domain, p.tier)),
      ...(await this.supersessions(horizon, p.domain, p.tier)),
      ...(await this.responders(p.now, horizon, p.domain, p.tier)),
      ...this.cas(horizon, p.domain, p.tier),
      ...(await this.retirements(p.now, horizon, p.domain, p.tier)),
    ];
    items.sort((a, b) => a.dueAt.getTime() - b.dueAt.getTime());
    return { now: p.now, horizon, items };
  }

  private async certificates(now: Date, horizon: Date, domain?: string, tierId?: string): Promise<DueCertificate[]> {
    const { store, config } = this.deps;
    const out: DueCertificate[] = [];
    const subjects = new Map<string, SubjectRecord | undefined>();
    for (const tier of config.tiers.values()) {
      if (tierId && tier.id !== tierId) continue;
      // Due ⇔ notAfter − (1 − f)·lifetime ≤ horizon; lifetimes are at most the tier's maximum, which
      // bounds the notAfter window the database has to look at.
      const longest = Math.max(...Object.values(tier.maxValidityDays)) * DAY_MS;
      const fraction = tier.renewAtFraction ?? DEFAULT_RENEW_AT_FRACTION;
      const notAfterBefore = new Date(horizon.getTime() + (1 - fraction) * longest + DAY_MS);
      for (let offset = 0; ; offset += PAGE) {
        const page = await store.renewals.listRenewable({ domain, tier: tier.id, notAfterAfter: now, notAfterBefore, limit: PAGE, offset });
        for (const cert of page) {
          const dueAt = renewalPointOf(cert, tier);
          if (dueAt.getTime() > horizon.getTime()) continue;
          let action: DueCertificate['action'] = 'renew';
          let why: string | undefined;
          const subject = cert.subjectId ? await cached(subjects, cert.subjectId, () => store.subjects.get(cert.subjectId!)) : undefined;
          const server = serverRenewal(tier, cert.keyAlgorithm);
          const chain = this.deps.cas.effectiveStatus(cert.issuerId);
          const issuing = this.deps.cas.issuingCa(cert.domain ?? '', tier.id);
          if (!subject && cert.subjectId && (await store.principals.get(cert.subjectId))) {
            action = 'blocked';
            why = 'the client certificate of an admin principal: issue a new one (tierca principal certificate)';
          } else if (!subject || subject.status !== 'active') {
            action = 'blocked';
            why = `subject ${cert.subjectId ?? '-'} is ${subject ? subject.status : 'missing'}`;
          } else if (chain.status !== 'active') {
            action = 'blocked';
            why = `its CA ${chain.blockedBy} is ${chain.status}`;
          } else if (!issuing || this.deps.cas.effectiveStatus(issuing.record.id).status !== 'active') {
            action = 'blocked';
            why = `the issuing CA of ${cert.domain} ${tier.id} is not active`;
          } else if (!server.ok) {
            action = 'wait-for-holder';
            why = server.why;
          }
          out.push({
            kind: 'certificate', issuerId: cert.issuerId, serial: cert.serial, subjectId: cert.subjectId, domain: cert.domain,
            tier: cert.tier, profile: cert.profile, subject: cert.subjectDn, notBefore: cert.notBefore, notAfter: cert.notAfter,
            dueAt, action, ...(why ? { why } : {}),
          });
        }
        if (page.length < PAGE) break;
      }
    }
    return out;
  }

  private async supersessions(horizon: Date, domain?: string, tier?: string): Promise<DueSupersession[]> {
    const { store } = this.deps;
    const out: DueSupersession[] = [];
    for (const r of await store.renewals.listPendingSupersession(horizon, 10_000)) {
      const old = await store.certificates.get(r.oldIssuerId, r.oldSerial);
      if (!old || (domain && old.domain !== domain) || (tier && old.tier !== tier)) continue;
      out.push({
        kind: 'supersession', issuerId: r.oldIssuerId, serial: r.oldSerial, domain: old.domain, tier: old.tier,
        successor: { issuerId: r.newIssuerId, serial: r.newSerial }, dueAt: r.supersedeAt, action: 'revoke-superseded',
      });
    }
    return out;
  }

  private async responders(now: Date, horizon: Date, domain?: string, tier?: string): Promise<DueResponder[]> {
    const out: DueResponder[] = [];
    for (const ca of this.deps.cas.list()) {
      if (ca.record.layer !== 'tier' || ca.record.status !== 'active' || !matches(ca, domain, tier)) continue;
      const current = await this.deps.store.responders.current(ca.record.id, now);
      const dueAt = current ? new Date((current.notBefore.getTime() + current.notAfter.getTime()) / 2) : now;
      if (dueAt.getTime() > horizon.getTime()) continue;
      out.push({ kind: 'responder', caId: ca.record.id, domain: ca.record.domain, tier: ca.record.tier, notAfter: current?.notAfter ?? null, dueAt, action: 'automatic' });
    }
    return out;
  }

  private cas(horizon: Date, domain?: string, tier?: string): DueCa[] {
    const out: DueCa[] = [];
    for (const ca of this.deps.cas.list()) {
      if (ca.record.successorId || ca.record.status !== 'active' || !matches(ca, domain, tier)) continue;
      const dueAt = new Date(ca.record.notAfter.getTime() - caReserveMs(ca, this.deps.config));
      if (dueAt.getTime() > horizon.getTime()) continue;
      out.push({
        kind: 'ca', caId: ca.record.id, lineage: lineageOf(ca.record), layer: ca.record.layer, domain: ca.record.domain,
        tier: ca.record.tier, notAfter: ca.record.notAfter, dueAt, action: ca.record.layer === 'root' ? 'ceremony' : 'rollover',
      });
    }
    return out;
  }

  private async retirements(now: Date, horizon: Date, domain?: string, tier?: string): Promise<DueRetirement[]> {
    const out: DueRetirement[] = [];
    for (const { ca, lastExpiry } of await this.deps.rollover.retirementCandidates()) {
      if (!matches(ca, domain, tier)) continue;
      const dueAt = lastExpiry && lastExpiry.getTime() > now.getTime() ? lastExpiry : now;
      if (dueAt.getTime() > horizon.getTime()) continue;
      out.push({ kind: 'retirement', caId: ca.record.id, lineage: lineageOf(ca.record), domain: ca.record.domain, tier: ca.record.tier, dueAt, action: 'retire' });
    }
    return out;
  }
}

/** Whether a CA falls under the filters: a domain filter keeps that domain's CAs, a tier filter only tier CAs of that tier. */
function matches(ca: LoadedCa, domain?: string, tier?: string): boolean {
  if (domain && ca.record.domain !== domain) return false;
  if (tier && ca.record.tier !== tier) return false;
  return true;
}

async function cached<K, V>(map: Map<K, V>, key: K, load: () => Promise<V>): Promise<V> {
  if (map.has(key)) return map.get(key)!;
  const value = await load();
  map.set(key, value);
  return value;
}
