/**
 * The EST server (RFC 7030) of one tierca instance: one label per domain × tier (`yuhu-t2`: the tier
 * CA's lineage; docs/decisions/0024-est.md). `cacerts` and `csrattrs` for anyone; `simpleenroll`
 * authenticated by a one-time code an officer made for one device subject, issuing through the RA's
 * issuance service as that officer (so tier policy, domain constraints and dual control hold as for
 * the API); `simplereenroll` by the device's current certificate over mutual TLS, through the
 * devices' renewal. HTTP is the route's business (server/http/routes/est.routes.ts).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Store } from '../../storage/storage.ts';
import type { TierPolicy } from '../../config/tier-policy.ts';
import type { Clock } from '../../clock.ts';
import type { CaDirectory, LoadedCa } from '../../ca/ca-directory.ts';
import type { IssuanceService } from '../../ra/issuance.service.ts';
import type { DeviceRenewal } from '../../ra/rotation/device-signature.ts';
import type { Principal, RequestContext } from '../../ra/permissions.ts';
import { appendAudit } from '../../audit/audit-log.ts';
import { TiercaError } from '../../errors.ts';
import { parseCsr } from '../../../pki/csr.ts';
import { readCertificate } from '../../../pki/certificate-reader.ts';
import { certsOnly } from '../../../pki/pkcs7-certs.ts';
import { csrAttributes } from '../../../pki/csr-attributes.ts';
import { PkiError } from '../../../pki/pki-error.ts';
import type { EstCodeRecord, EstStore } from './est-store.ts';
import { serverKeygen, type ServerKey, type ServerKeygenDeps } from './est-serverkeygen.ts';

/** How long a device waits before asking again for an enrolment held for a second officer. */
export const EST_RETRY_AFTER_SECONDS = 600;

export interface EstDeps {
  est: EstStore;
  store: Pick<Store, 'principals' | 'certificates' | 'requests' | 'audit'>;
  tiers: ReadonlyMap<string, TierPolicy>;
  cas: Pick<CaDirectory, 'current' | 'effectiveStatus'>;
  issuance: Pick<IssuanceService, 'issue'>;
  devices: Pick<DeviceRenewal, 'renewByCertificate'>;
  /** What `/serverkeygen` needs (est-serverkeygen.ts). */
  keygen: ServerKeygenDeps;
  clock: Clock;
}

/** What simpleenroll and simplereenroll answer: the certificate, or a wait for a second officer. */
export type EnrolResult = { kind: 'issued'; certificate: Buffer } | { kind: 'pending'; retryAfter: number; request: string };

/** The SHA-256 of a code, hex: what the table keeps. */
export const codeHashOf = (code: string): string => createHash('sha256').update(code, 'utf8').digest('hex');

export class EstServer {
  constructor(readonly deps: EstDeps) {}

  /** The tier CA of a label (its current generation), or not-found. */
  private caOf(label: string): { ca: LoadedCa; tier: TierPolicy } {
    const ca = /^[a-z0-9-]{1,64}$/.test(label) ? this.deps.cas.current(label) : undefined;
    const tier = ca?.record.tier ? this.deps.tiers.get(ca.record.tier) : undefined;
    if (!ca || !tier || !ca.record.domain || this.deps.cas.effectiveStatus(ca.record.id).status !== 'active') {
      throw new TiercaError('not-found', `no EST label ${label}: a label is a tier CA, e.g. yuhu-t2`);
    }
    return { ca, tier };
  }

  /** `/cacerts` (RFC 7030 §4.1): the label's CA and every CA above it, as certs-only PKCS#7. */
  cacerts(label: string): Buffer {
    return certsOnly(this.caOf(label).ca.chain);
  }

  /** `/csrattrs` (RFC 7030 §4.5): what the tier wants in a CSR. */
  csrattrs(label: string): Buffer {
    return csrAttributes(this.caOf(label).tier.keyAlgorithms[0]);
  }

  /**
   * `/simpleenroll` (RFC 7030 §4.2.1) with HTTP Basic: the user is the subject id, the password the
   * code. A wrong, used or expired code, or one for another subject or label, is `unauthenticated`
   * and changes nothing; a CSR outside policy leaves the code unused.
   */
  async simpleenroll(label: string, auth: { user: string; password: string } | null, csr: Buffer, source: string | null): Promise<EnrolResult> {
    const { ca } = this.caOf(label);
    const now = this.deps.clock.now();
    const code = auth ? await this.deps.est.byHash(codeHashOf(auth.password)) : undefined;
    const refuse = async (why: string): Promise<never> => {
      await appendAudit(this.deps.store.audit, now, {
        principalId: code ? `est-code:${code.id}` : null, role: 'device', source, action: 'est.enrol', target: `est:${label}`, outcome: 'denied',
        requestId: null, detail: { reason: why },
      });
      throw new TiercaError('unauthenticated', `the enrolment code is not accepted: ${why}`);
    };
    if (!auth) return refuse('send the subject id and the enrolment code with HTTP Basic');
    if (!code || !sameText(code.subjectId, auth.user)) return refuse('no such code for this subject');
    if (code.domain !== ca.record.domain || code.tier !== ca.record.tier) return refuse(`the code is for ${code.domain}-${code.tier}, not ${label}`);
    if (code.state === 'used') return refuse('the code was used already');
    if (code.state === 'pending') return this.waiting(code, csr, now, refuse);
    if (code.expiresAt.getTime() <= now.getTime()) return refuse('the code has expired');
    if (code.state === 'claimed' || !(await this.deps.est.move(code.id, 'unused', 'claimed'))) {
      throw new TiercaError('conflict', 'an enrolment with this code is under way');
    }
    try {
      const officer = await this.deps.store.principals.get(code.createdBy);
      if (!officer || officer.disabled) return await refuse('the officer who made the code is disabled');
      const principal: Principal = { id: officer.id, name: officer.name, role: officer.role, domains: officer.domains };
      const ctx: RequestContext = { principal, source: source ? `est ${source}` : 'est', requestId: `est-${code.id}` };
      checkCsr(csr);
      // The answer carries one certificate and no key: a device's encryption half, where its tier
      // gives devices one, comes from serverkeygen over mutual TLS with this certificate.
      const result = await this.deps.issuance.issue(ctx, { subjectId: code.subjectId, csr, requestId: `est-${code.id}`, deferEncryptionHalf: true });
      if (result.kind === 'pending') {
        await this.deps.est.move(code.id, 'claimed', 'pending', { requestId: result.request.id });
        await this.audit(code, source, now, 'pending', { request: result.request.id });
        return { kind: 'pending', retryAfter: EST_RETRY_AFTER_SECONDS, request: result.request.id };
      }
      await this.deps.est.move(code.id, 'claimed', 'used', { usedAt: now, issuerId: result.certificate.issuerId, serial: result.certificate.serial });
      await this.audit(code, source, now, 'success', { issuerId: result.certificate.issuerId, serial: result.certificate.serial });
      return { kind: 'issued', certificate: result.certificate.der };
    } catch (err) {
      // Nothing was issued: the code stays good for a corrected request.
      await this.deps.est.move(code.id, 'claimed', 'unused');
      throw err;
    }
  }

  /** A code whose issuance waits for a second officer: the certificate once approved (for the same key), else wait or refuse. */
  private async waiting(code: EstCodeRecord, csr: Buffer, now: Date, refuse: (why: string) => Promise<never>): Promise<EnrolResult> {
    const request = code.requestId ? await this.deps.store.requests.get(code.requestId) : undefined;
    if (!request) return refuse('its issuance request is gone');
    const expired = request.status === 'pending' && request.expiresAt.getTime() <= now.getTime();
    if (request.status === 'pending' && !expired) return { kind: 'pending', retryAfter: EST_RETRY_AFTER_SECONDS, request: request.id };
    const done = request.status === 'done' ? (request.result as { issuerId?: string; serial?: string } | null) : null;
    const cert = done?.issuerId && done.serial ? await this.deps.store.certificates.get(done.issuerId, done.serial) : undefined;
    if (!cert) return refuse(`its issuance request was ${expired ? 'expired' : request.status}`);
    checkCsr(csr);
    if (!parseCsr(csr).publicKeyInfo.equals(readCertificate(cert.der).publicKeyInfo)) {
      throw new TiercaError('conflict', 'the approved certificate is for the key of the first request: send that CSR again');
    }
    await this.deps.est.move(code.id, 'pending', 'used', { usedAt: now, issuerId: cert.issuerId, serial: cert.serial });
    return { kind: 'issued', certificate: cert.der };
  }

  /**
   * `/simplereenroll` (RFC 7030 §4.2.2): the client certificate the TLS handshake verified renews
   * itself; the CSR names the same subject (a new key is allowed, and where the tier needs one, required).
   */
  async simplereenroll(label: string, client: Buffer | null, csr: Buffer, source: string | null, requestId: string): Promise<EnrolResult> {
    const { ca } = this.caOf(label);
    if (!client) throw new TiercaError('unauthenticated', 're-enrolment needs the current certificate as the TLS client certificate');
    checkCsr(csr);
    const fields = readCertificate(client);
    if (!parseCsr(csr).subject.equals(fields.subject)) throw new TiercaError('bad-request', 'the CSR subject is not the subject of the certificate being renewed (RFC 7030 §4.2.2)');
    const issuer = this.deps.cas.current(ca.record.lineage ?? ca.record.id);
    if (!issuer || !readCertificate(issuer.chain[0]).subject.equals(fields.issuer)) {
      throw new TiercaError('forbidden', `the client certificate was not issued under ${label}`);
    }
    const renewed = await this.deps.devices.renewByCertificate({ certificate: client, csr, source, requestId });
    return { kind: 'issued', certificate: renewed.certificate.der };
  }

  /** `/serverkeygen` (RFC 7030 §4.4): a user's KMC-made encryption key over mutual TLS; see est-serverkeygen.ts. */
  async serverkeygen(label: string, client: Buffer | null, csr: Buffer, source: string | null): Promise<ServerKey> {
    this.caOf(label);
    checkCsr(csr);
    return serverKeygen(this.deps.keygen, { label, client, csr, source });
  }

  private async audit(code: EstCodeRecord, source: string | null, now: Date, outcome: 'success' | 'pending', detail: Record<string, unknown>): Promise<void> {
    await appendAudit(this.deps.store.audit, now, {
      principalId: `est-code:${code.id}`, role: 'device', source, action: 'est.enrol', target: `subject:${code.subjectId}`, outcome: 'success',
      requestId: null, detail: { ...detail, state: outcome, codeBy: code.createdBy },
    });
  }
}

/** A CSR that parses and whose signature verifies, else bad-request (the issuance checks policy). */
function checkCsr(der: Buffer): void {
  try {
    parseCsr(der);
  } catch (err) {
    if (err instanceof PkiError) throw new TiercaError('malformed-input', `the body is not a PKCS#10 request: ${err.message}`);
    throw err;
  }
}

const sameText = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};
