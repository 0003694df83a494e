/**
 * The registration authority: who may ask for what. It authorises every admin action, applies the
 * tier and domain rules to issuance, runs dual control, and hands checked orders to the CA. Every
 * action, allowed or refused, leaves an audit record.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { parseCsr, verifyCsr } from '../../pki/csr.ts';
import { encodeName, formatName, type DistinguishedName } from '../../pki/name.ts';
import { generateKeyPair, publicKeyInfoOf } from '../../pki/key-pair.ts';
import { buildPkcs12, generatePassphrase } from '../../pki/pkcs12.ts';
import { isKeyAlgorithm, type KeyAlgorithm } from '../../pki/algorithms.ts';
import { PkiError } from '../../pki/pki-error.ts';
import { reasonCode } from '../../pki/revocation-reason.ts';
import type { KeyStore } from '../../pki/keystore/keystore.ts';
import type {
  CertificateFilter, CertificateProfile, CertificateRecord, PrincipalRecord, Repositories, RequestRecord, Role, Store,
  SubjectFilter, SubjectKind, SubjectRecord,
} from '../storage/storage.ts';
import type { TiercaConfig } from '../config/load-config.ts';
import type { TierPolicy } from '../config/tier-policy.ts';
import type { Clock } from '../clock.ts';
import { appendAudit } from '../audit/audit-log.ts';
import { TiercaError } from '../errors.ts';
import type { CaDirectory, LoadedCa } from '../ca/ca-directory.ts';
import type { CertificateIssuer, IssuanceOrder } from '../ca/certificate-issuer.ts';
import type { RevocationService, StatusAction } from '../ca/revocation-service.ts';
import type { CrlPublisher, PublishedCrl } from '../ca/crl-publisher.ts';
import { Authorizer, hashToken } from './authorizer.ts';
import type { Principal, RequestContext } from './permissions.ts';
import { checkKeyAlgorithm, checkKeyGeneration, checkNames, checkProfile, validityFor } from './issuance-policy.ts';

const REQUEST_LIFETIME_MS = 7 * 24 * 3600 * 1000;

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

export interface IssueInput {
  subjectId: string;
  /** PEM or DER PKCS#10. */
  csr?: string | Buffer;
  /** Server-made key, delivered as PKCS#12. */
  generate?: { algorithm?: string; passphrase?: string };
  profile?: CertificateProfile;
  days?: number;
}

export type IssueResult =
  | { kind: 'issued'; certificate: CertificateRecord; chain: readonly Buffer[]; pkcs12?: Buffer; passphrase?: string }
  | { kind: 'pending'; request: RequestRecord };

export interface RegistrationAuthorityDeps {
  store: Store;
  config: TiercaConfig;
  cas: CaDirectory;
  issuer: CertificateIssuer;
  revocation: RevocationService;
  crls: CrlPublisher;
  keystore: KeyStore;
  clock: Clock;
  random?: (n: number) => Buffer;
}

interface PendingPayload {
  csr?: string;
  generate?: { algorithm: KeyAlgorithm };
  profile: Exclude<CertificateProfile, 'ocsp'>;
  days?: number;
}

export class RegistrationAuthority {
  readonly authorizer: Authorizer;

  constructor(private readonly deps: RegistrationAuthorityDeps) {
    this.authorizer = new Authorizer(deps.store, deps.clock);
  }

  authenticate(token: string): Promise<Principal | null> {
    return this.authorizer.authenticate(token);
  }

  // ---- CAs and topology -------------------------------------------------------------------------

  async listCas(ctx: RequestContext): Promise<LoadedCa[]> {
    await this.authorizer.require(ctx, 'ca:read', 'ca.list', null);
    return this.deps.cas.list();
  }

  async getCa(ctx: RequestContext, id: string): Promise<LoadedCa> {
    await this.authorizer.require(ctx, 'ca:read', 'ca.show', `ca:${id}`);
    const ca = this.deps.cas.get(id);
    if (!ca) throw new TiercaError('not-found', `no CA ${id}`);
    return ca;
  }

  async listDomains(ctx: RequestContext) {
    await this.authorizer.require(ctx, 'ca:read', 'domain.list', null);
    const organs = await this.deps.store.organs.list();
    return (await this.deps.store.domains.list()).map((d) => ({ ...d, organs: organs.filter((o) => o.domain === d.slug) }));
  }

  /**
   * Revokes a CA (sysadmin). Every certificate under it then answers revoked (cACompromise) at OCSP,
   * and its parent's next CRL lists it. Revoking a CA is final.
   */
  async revokeCa(ctx: RequestContext, id: string, reasonName: string): Promise<LoadedCa> {
    await this.authorizer.require(ctx, 'ca:revoke', 'ca.revoke', `ca:${id}`);
    const reason = this.reason(reasonName);
    return this.audited(ctx, 'ca.revoke', `ca:${id}`, async () => {
      const ca = this.deps.cas.get(id);
      if (!ca) throw new TiercaError('not-found', `no CA ${id}`);
      if (ca.record.layer === 'root') throw new TiercaError('conflict', 'the root is withdrawn by replacing the trust anchor, not revoked');
      if (ca.record.status === 'revoked') return ca;
      const now = this.deps.clock.now();
      await this.deps.store.transaction(async (tx) => {
        await tx.cas.updateStatus(id, 'revoked', now, reason);
        await appendAudit(tx.audit, now, { ...actor(ctx), action: 'ca.revoke', target: `ca:${id}`, outcome: 'success', detail: { reason: reasonName } });
      });
      const updated = { ...ca, record: { ...ca.record, status: 'revoked' as const, revokedAt: now, revocationReason: reason } };
      this.deps.cas.add(updated);
      if (ca.record.parentId) await this.deps.crls.publish(ca.record.parentId);
      return updated;
    });
  }

  // ---- principals ------------------------------------------------------------------------------

  /** Creates a principal and its first token; the token is returned once and stored only hashed. */
  async addPrincipal(ctx: RequestContext, input: { name: string; role: Role; domains?: string[] }): Promise<{ principal: PrincipalRecord; token: string }> {
    await this.authorizer.require(ctx, 'principal:manage', 'principal.add', null);
    return this.audited(ctx, 'principal.add', null, async () => {
      for (const d of input.domains ?? []) {
        if (!(await this.deps.store.domains.get(d))) throw new TiercaError('bad-request', `no domain ${d}`);
      }
      if (input.role === 'officer' && !(input.domains?.length)) throw new TiercaError('bad-request', 'an officer needs at least one domain');
      const now = this.deps.clock.now();
      return this.deps.store.transaction(async (tx) => {
        const created = await createPrincipal(tx, { ...input, now, random: this.deps.random });
        await appendAudit(tx.audit, now, {
          ...actor(ctx), action: 'principal.add', target: `principal:${created.principal.id}`, outcome: 'success',
          detail: { role: input.role, domains: input.domains ?? [] },
        });
        return created;
      });
    });
  }

  // ---- subjects ---------------------------------------------------------------------------------

  async addSubject(ctx: RequestContext, input: SubjectInput): Promise<SubjectRecord> {
    await this.authorizer.require(ctx, 'subject:write', 'subject.add', null, input.domain);
    return this.audited(ctx, 'subject.add', null, async () => {
      const { store } = this.deps;
      const domain = await store.domains.get(input.domain);
      if (!domain) throw new TiercaError('not-found', `no domain ${input.domain}`);
      if (!(await store.organs.get(input.domain, input.organ))) throw new TiercaError('not-found', `no organ ${input.organ} in ${input.domain}`);
      this.tier(input.tier);
      const names = checkNames(domain, input.kind, { dns: input.dns, ips: input.ips, emails: input.emails });
      const now = this.deps.clock.now();
      const subject: SubjectRecord = {
        id: `sub-${randomUUID()}`,
        kind: input.kind,
        domain: input.domain,
        organ: input.organ,
        tier: input.tier,
        name: input.name,
        dnsNames: names.dns,
        ipAddresses: names.ips,
        emails: names.emails,
        status: 'active',
        createdBy: ctx.principal.id,
        createdAt: now,
      };
      await store.transaction(async (tx) => {
        await tx.subjects.insert(subject);
        await appendAudit(tx.audit, now, {
          ...actor(ctx), action: 'subject.add', target: `subject:${subject.id}`, outcome: 'success',
          detail: { kind: subject.kind, domain: subject.domain, tier: subject.tier, name: subject.name },
        });
      });
      return subject;
    });
  }

  async listSubjects(ctx: RequestContext, filter: SubjectFilter): Promise<SubjectRecord[]> {
    await this.authorizer.require(ctx, 'subject:read', 'subject.list', null);
    return this.deps.store.subjects.list(filter);
  }

  async getSubject(ctx: RequestContext, id: string): Promise<{ subject: SubjectRecord; certificates: CertificateRecord[] }> {
    await this.authorizer.require(ctx, 'subject:read', 'subject.show', `subject:${id}`);
    const subject = await this.deps.store.subjects.get(id);
    if (!subject) throw new TiercaError('not-found', `no subject ${id}`);
    return { subject, certificates: await this.deps.store.certificates.list({ subjectId: id }) };
  }

  /** Revokes every live certificate of a subject (a person leaves, a device is lost) and retires it. */
  async revokeSubject(ctx: RequestContext, id: string, reasonName: string): Promise<string[]> {
    const subject = await this.deps.store.subjects.get(id);
    if (!subject) throw new TiercaError('not-found', `no subject ${id}`);
    await this.authorizer.require(ctx, 'certificate:revoke', 'subject.revoke', `subject:${id}`, subject.domain);
    const reason = this.reason(reasonName);
    return this.audited(ctx, 'subject.revoke', `subject:${id}`, async () => {
      const now = this.deps.clock.now();
      const certs = (await this.deps.store.certificates.list({ subjectId: id })).filter((c) => c.status !== 'revoked');
      const revoked: string[] = [];
      for (const cert of certs) {
        await this.deps.revocation.apply(cert.issuerId, cert.serial, { kind: 'revoke', reason, invalidityDate: null }, now, actor(ctx));
        revoked.push(cert.serial);
      }
      await this.deps.store.transaction(async (tx) => {
        await tx.subjects.setStatus(id, 'revoked');
        await appendAudit(tx.audit, now, { ...actor(ctx), action: 'subject.revoke', target: `subject:${id}`, outcome: 'success', detail: { revoked } });
      });
      return revoked;
    });
  }

  // ---- issuance ---------------------------------------------------------------------------------

  async issue(ctx: RequestContext, input: IssueInput): Promise<IssueResult> {
    const subject = await this.deps.store.subjects.get(input.subjectId);
    if (!subject) throw new TiercaError('not-found', `no subject ${input.subjectId}`);
    await this.authorizer.require(ctx, 'certificate:issue', 'certificate.issue', `subject:${subject.id}`, subject.domain);
    return this.audited(ctx, 'certificate.issue', `subject:${subject.id}`, async () => {
      if (subject.status !== 'active') throw new TiercaError('conflict', `subject ${subject.id} is revoked`);
      const tier = this.tier(subject.tier);
      const profile = checkProfile(subject.kind, input.profile);
      if (!!input.csr === !!input.generate) throw new TiercaError('bad-request', 'send either a CSR or generate, not both or neither');
      checkKeyGeneration(tier, profile, !!input.generate);
      const payload: PendingPayload = { profile, days: input.days };
      if (input.csr) {
        const csr = this.csrOf(input.csr);
        checkKeyAlgorithm(tier, csr.keyAlgorithm, csr.keyAlgorithm ?? 'of this type/size');
        payload.csr = csr.der.toString('base64');
      } else {
        const algorithm = input.generate!.algorithm ?? tier.keyAlgorithms[0];
        if (!isKeyAlgorithm(algorithm)) throw new TiercaError('policy-key-algorithm', `unknown key algorithm ${algorithm}`);
        checkKeyAlgorithm(tier, algorithm, algorithm);
        payload.generate = { algorithm };
      }
      const ca = this.issuingCa(subject);
      const now = this.deps.clock.now();
      validityFor({ tier, kind: subject.kind, days: input.days, now, caNotAfter: ca.record.notAfter });
      await this.checkNoLive(this.deps.store, subject, profile, now);
      if (tier.approvals > 1) return { kind: 'pending', request: await this.createRequest(ctx, subject, tier, payload, now) };
      return this.execute(ctx, subject, payload, null, input.generate?.passphrase);
    });
  }

  async listRequests(ctx: RequestContext, filter: { status?: RequestRecord['status'] }): Promise<RequestRecord[]> {
    await this.authorizer.require(ctx, 'request:read', 'request.list', null);
    const now = this.deps.clock.now();
    return (await this.deps.store.requests.list(filter)).map((r) => expired(r, now));
  }

  /** A second officer approves a pending request; when enough have approved, it is issued. */
  async approve(ctx: RequestContext, id: string): Promise<IssueResult> {
    const request = await this.deps.store.requests.get(id);
    if (!request) throw new TiercaError('not-found', `no request ${id}`);
    await this.authorizer.require(ctx, 'request:approve', 'request.approve', `request:${id}`, request.domain);
    return this.audited(ctx, 'request.approve', `request:${id}`, async () => {
      const now = this.deps.clock.now();
      const current = expired(request, now);
      if (current.status !== 'pending') throw new TiercaError('request-not-pending', `request ${id} is ${current.status}`);
      if (current.requestedBy === ctx.principal.id || current.approvals.includes(ctx.principal.id)) {
        throw new TiercaError('policy-self-approval', 'a principal may not approve its own request, nor approve twice');
      }
      const approvals = [...current.approvals, ctx.principal.id];
      if (approvals.length < current.approvalsRequired) {
        await this.deps.store.transaction(async (tx) => {
          await tx.requests.update(id, { approvals });
          await appendAudit(tx.audit, now, { ...actor(ctx), action: 'request.approve', target: `request:${id}`, outcome: 'success', detail: { approvals } });
        });
        return { kind: 'pending', request: { ...current, approvals } };
      }
      const subject = await this.deps.store.subjects.get(current.subjectId!);
      if (!subject || subject.status !== 'active') throw new TiercaError('conflict', 'the request subject is gone or revoked');
      return this.execute(ctx, subject, current.payload as unknown as PendingPayload, { ...current, approvals }, undefined);
    });
  }

  async reject(ctx: RequestContext, id: string): Promise<RequestRecord> {
    const request = await this.deps.store.requests.get(id);
    if (!request) throw new TiercaError('not-found', `no request ${id}`);
    await this.authorizer.require(ctx, 'request:approve', 'request.reject', `request:${id}`, request.domain);
    return this.audited(ctx, 'request.reject', `request:${id}`, async () => {
      const now = this.deps.clock.now();
      const current = expired(request, now);
      if (current.status !== 'pending') throw new TiercaError('request-not-pending', `request ${id} is ${current.status}`);
      await this.deps.store.transaction(async (tx) => {
        await tx.requests.update(id, { status: 'rejected' });
        await appendAudit(tx.audit, now, { ...actor(ctx), action: 'request.reject', target: `request:${id}`, outcome: 'success' });
      });
      return { ...current, status: 'rejected' };
    });
  }

  // ---- certificates -----------------------------------------------------------------------------

  async listCertificates(ctx: RequestContext, filter: CertificateFilter): Promise<CertificateRecord[]> {
    await this.authorizer.require(ctx, 'certificate:read', 'certificate.list', null);
    return this.deps.store.certificates.list(filter);
  }

  async getCertificate(ctx: RequestContext, serial: string, issuerId?: string): Promise<{ certificate: CertificateRecord; chain: readonly Buffer[] }> {
    await this.authorizer.require(ctx, 'certificate:read', 'certificate.show', `certificate:${serial}`);
    const certificate = await this.findCertificate(serial, issuerId);
    return { certificate, chain: this.deps.cas.get(certificate.issuerId)?.chain ?? [] };
  }

  async changeStatus(ctx: RequestContext, serial: string, issuerId: string | undefined, action: StatusAction): Promise<CertificateRecord> {
    const name = action.kind === 'revoke' ? 'certificate.revoke' : `certificate.${action.kind}`;
    const cert = await this.findCertificate(serial, issuerId);
    await this.authorizer.require(ctx, 'certificate:revoke', name, `certificate:${cert.issuerId}/${serial}`, cert.domain);
    return this.audited(ctx, name, `certificate:${cert.issuerId}/${serial}`, async () => {
      const result = await this.deps.revocation.apply(cert.issuerId, cert.serial, action, this.deps.clock.now(), actor(ctx));
      return result.record;
    });
  }

  /** Parses an RFC 5280 reason name into its code (400 for unknown names). */
  reason(name: string): number {
    try {
      return reasonCode(name);
    } catch {
      throw new TiercaError('bad-request', `unknown revocation reason ${name}`);
    }
  }

  // ---- CRLs -------------------------------------------------------------------------------------

  async generateCrls(ctx: RequestContext, caId?: string): Promise<PublishedCrl[]> {
    await this.authorizer.require(ctx, 'crl:generate', 'crl.generate', caId ? `ca:${caId}` : null);
    const targets = caId ? [this.deps.cas.get(caId)] : this.deps.cas.list();
    if (targets.some((t) => !t)) throw new TiercaError('not-found', `no CA ${caId}`);
    return this.audited(ctx, 'crl.generate', caId ? `ca:${caId}` : null, async () => {
      const out: PublishedCrl[] = [];
      for (const ca of targets) out.push(...(await this.deps.crls.publish(ca!.record.id)));
      await appendAudit(this.deps.store.audit, this.deps.clock.now(), {
        ...actor(ctx), action: 'crl.generate', target: caId ? `ca:${caId}` : null, outcome: 'success',
        detail: { published: out.map((c) => `${c.caId}#${c.number}`) },
      });
      return out;
    });
  }

  // ---- internals --------------------------------------------------------------------------------

  private tier(id: string): TierPolicy {
    const tier = this.deps.config.tiers.get(id);
    if (!tier) throw new TiercaError('bad-request', `no tier ${id}`);
    return tier;
  }

  private issuingCa(subject: SubjectRecord): LoadedCa {
    const ca = this.deps.cas.issuingCa(subject.domain, subject.tier);
    if (!ca || ca.record.status !== 'active') {
      throw new TiercaError('ca-unavailable', `the issuing CA of ${subject.domain} ${subject.tier} is not active`);
    }
    return ca;
  }

  private csrOf(input: string | Buffer) {
    try {
      const csr = parseCsr(input);
      verifyCsr(csr);
      return csr;
    } catch (err) {
      if (err instanceof PkiError && err.code === 'bad-signature') throw new TiercaError('bad-csr-signature', err.message);
      if (err instanceof PkiError) throw new TiercaError('malformed-input', `the CSR is not a valid PKCS#10 request: ${err.message}`);
      throw err;
    }
  }

  private async findCertificate(serial: string, issuerId?: string): Promise<CertificateRecord> {
    const normalised = serial.toLowerCase().replace(/^(00)+(?=.)/, '');
    if (!/^[0-9a-f]{1,64}$/.test(normalised)) throw new TiercaError('bad-request', `${serial} is not a hex serial`);
    const found = (await this.deps.store.certificates.findBySerial(normalised)).filter((c) => !issuerId || c.issuerId === issuerId);
    if (found.length === 0) throw new TiercaError('not-found', `no certificate ${normalised}${issuerId ? ` issued by ${issuerId}` : ''}`);
    if (found.length > 1) throw new TiercaError('conflict', `serial ${normalised} exists under several issuers; name one with issuer`);
    return found[0];
  }

  private async checkNoLive(repos: Repositories, subject: SubjectRecord, profile: CertificateProfile, now: Date): Promise<void> {
    const live = await repos.certificates.findLive(subject.id, profile, now);
    if (live.length > 0) {
      throw new TiercaError('already-holds-certificate', `subject ${subject.id} already holds a valid ${profile} certificate (${live[0].serial}); renew it instead`, {
        detail: { serial: live[0].serial },
      });
    }
  }

  private async createRequest(ctx: RequestContext, subject: SubjectRecord, tier: TierPolicy, payload: PendingPayload, now: Date): Promise<RequestRecord> {
    const request: RequestRecord = {
      id: `req-${randomUUID()}`,
      action: 'issue',
      subjectId: subject.id,
      domain: subject.domain,
      tier: tier.id,
      payload: payload as unknown as Record<string, unknown>,
      requestedBy: ctx.principal.id,
      approvals: [],
      approvalsRequired: tier.approvals - 1,
      status: 'pending',
      result: null,
      createdAt: now,
      expiresAt: new Date(now.getTime() + REQUEST_LIFETIME_MS),
    };
    await this.deps.store.transaction(async (tx) => {
      await tx.requests.insert(request);
      await appendAudit(tx.audit, now, {
        ...actor(ctx), action: 'certificate.request', target: `request:${request.id}`, outcome: 'success',
        detail: { subject: subject.id, tier: tier.id, profile: payload.profile },
      });
    });
    return request;
  }

  /** Issues a checked payload now: builds the order, signs, stores, escrows, delivers. */
  private async execute(ctx: RequestContext, subject: SubjectRecord, payload: PendingPayload, request: RequestRecord | null, passphrase: string | undefined): Promise<IssueResult> {
    const { store, keystore } = this.deps;
    const tier = this.tier(subject.tier);
    const ca = this.issuingCa(subject);
    const now = this.deps.clock.now();
    const { notBefore, notAfter } = validityFor({ tier, kind: subject.kind, days: payload.days, now, caNotAfter: ca.record.notAfter });
    let publicKeyInfo: Buffer;
    let keyAlgorithm: KeyAlgorithm;
    let privateKey: KeyObject | undefined;
    if (payload.csr) {
      const csr = this.csrOf(Buffer.from(payload.csr, 'base64'));
      keyAlgorithm = checkKeyAlgorithm(tier, csr.keyAlgorithm, csr.keyAlgorithm ?? 'of this type/size');
      publicKeyInfo = csr.publicKeyInfo;
    } else {
      keyAlgorithm = payload.generate!.algorithm;
      privateKey = (await generateKeyPair(keyAlgorithm)).privateKey;
      publicKeyInfo = publicKeyInfoOf(privateKey);
    }
    const organ = await store.organs.get(subject.domain, subject.organ);
    const domain = await store.domains.get(subject.domain);
    const dn: DistinguishedName = [
      { type: 'C', value: this.deps.config.country },
      { type: 'ST', value: this.deps.config.province },
      { type: 'L', value: domain?.locality ?? subject.domain },
      { type: 'O', value: organ?.name ?? subject.organ },
      { type: 'CN', value: subject.name },
    ];
    const order: IssuanceOrder = {
      ca, tier, profile: payload.profile, subject: encodeName(dn), subjectDn: formatName(dn), subjectId: subject.id,
      domain: subject.domain, publicKeyInfo, keyAlgorithm,
      names: { dns: subject.dnsNames, ip: subject.ipAddresses, email: subject.emails },
      notBefore, notAfter, requestId: request?.id ?? null,
    };
    const issued = await this.deps.issuer.issue(order, now, { ...actor(ctx), action: 'certificate.issue', detail: request ? { request: request.id } : {} }, async (tx, record) => {
      // Re-checked inside the transaction: two concurrent issuances for one subject cannot both land.
      const live = await tx.certificates.findLive(subject.id, payload.profile, now);
      if (live.some((c) => c.serial !== record.serial || c.issuerId !== record.issuerId)) {
        throw new TiercaError('already-holds-certificate', `subject ${subject.id} already holds a valid ${payload.profile} certificate`);
      }
      if (privateKey && payload.profile === 'user-enc') {
        const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
        await tx.escrow.insert(record.issuerId, record.serial, keystore.seal(pkcs8, `escrow:${record.issuerId}/${record.serial}`), now);
      }
      if (request) {
        await tx.requests.update(request.id, {
          approvals: request.approvals, status: 'done', result: { issuerId: record.issuerId, serial: record.serial },
        });
      }
    });
    if (!privateKey) return { kind: 'issued', certificate: issued.record, chain: issued.chain };
    const pass = passphrase ?? generatePassphrase(this.deps.random);
    const pkcs12 = await buildPkcs12({
      privateKey, certificate: issued.record.der, chain: [...issued.chain], passphrase: pass, friendlyName: subject.name,
    });
    return { kind: 'issued', certificate: issued.record, chain: issued.chain, pkcs12, passphrase: passphrase ? undefined : pass };
  }

  /** Runs `fn`; a refusal or failure is audited (outside any rolled-back transaction) and re-thrown. */
  private async audited<T>(ctx: RequestContext, action: string, target: string | null, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const code = err instanceof TiercaError ? err.code : 'internal';
      await appendAudit(this.deps.store.audit, this.deps.clock.now(), {
        ...actor(ctx), action, target, outcome: code === 'forbidden' ? 'denied' : 'failure', detail: { error: code },
      }).catch(() => undefined);
      throw err;
    }
  }
}

function actor(ctx: RequestContext) {
  return { principalId: ctx.principal.id, role: ctx.principal.role, source: ctx.source, requestId: ctx.requestId };
}

function expired(r: RequestRecord, now: Date): RequestRecord {
  return r.status === 'pending' && r.expiresAt.getTime() <= now.getTime() ? { ...r, status: 'expired' } : r;
}

/** Makes a principal and a token for it inside `tx`. Tokens: 32 random bytes, base64url; stored hashed. */
export async function createPrincipal(
  tx: Repositories,
  p: { name: string; role: Role; domains?: string[]; now: Date; random?: (n: number) => Buffer },
): Promise<{ principal: PrincipalRecord; token: string }> {
  const random = p.random ?? randomBytes;
  const principal: PrincipalRecord = {
    id: `prn-${random(8).toString('hex')}`,
    name: p.name,
    role: p.role,
    domains: p.domains ?? [],
    disabled: false,
    createdAt: p.now,
  };
  const token = `tca_${random(32).toString('base64url')}`;
  await tx.principals.insert(principal);
  await tx.tokens.insert({ id: `tok-${random(8).toString('hex')}`, principalId: principal.id, tokenHash: hashToken(token), createdAt: p.now });
  return { principal, token };
}
