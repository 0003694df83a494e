/**
 * What ACME does with a certificate once issued: download with its chain (RFC 8555 §7.4.2),
 * revocation by the account that ordered it or by the holder of its key (§7.6), and renewal
 * information (RFC 9773; the window itself is renewal-info.ts).
 */
import { createPublicKey } from 'node:crypto';
import type { JWK } from 'jose';
import type { CertificateRecord } from '../../storage/storage.ts';
import { readCertificate, type CertificateFields } from '../../../pki/certificate-reader.ts';
import { toPem } from '../../../pki/der.ts';
import { REVOCATION_REASONS } from '../../../pki/revocation-reason.ts';
import { AcmeProblem } from './acme-problem.ts';
import { publicOnly } from './acme-jws.ts';
import { auditAcme, type AcmeDeps, type AcmeRequest } from './acme-context.ts';
import type { AccountRecord } from './acme-store.ts';
import { parseCertId, RENEWAL_INFO_RETRY_SECONDS, suggestedWindow, type SuggestedWindow } from './renewal-info.ts';

/** The reasons a subscriber may give (RFC 8555 §7.6; RFC 5280 §5.3.1): not the CA's own, not hold. */
const SUBSCRIBER_REASONS: ReadonlySet<number> = new Set([
  REVOCATION_REASONS.unspecified, REVOCATION_REASONS.keyCompromise, REVOCATION_REASONS.affiliationChanged, REVOCATION_REASONS.superseded,
  REVOCATION_REASONS.cessationOfOperation, REVOCATION_REASONS.privilegeWithdrawn,
]);

export class AcmeCertificates {
  constructor(private readonly deps: AcmeDeps) {}

  /** The certificate of an order of this account, PEM, followed by its CAs up to (not including) the root. */
  async download(account: AccountRecord, orderId: string): Promise<string> {
    const order = await this.deps.acme.order(orderId);
    if (!order || order.accountId !== account.id || order.status !== 'valid' || !order.issuerId || !order.serial) {
      throw new AcmeProblem('malformed', 'no such certificate', { status: 404 });
    }
    const record = await this.deps.store.certificates.get(order.issuerId, order.serial);
    const ca = this.deps.cas.get(order.issuerId);
    if (!record || !ca) throw new AcmeProblem('serverInternal', 'the certificate of this order is gone');
    return [record.der, ...ca.chain.slice(0, -1)].map((der) => toPem(der, 'CERTIFICATE')).join('');
  }

  /** The certificate a certID names, among the CAs of `tier`. */
  async byCertId(certId: string, tier: string): Promise<CertificateRecord | undefined> {
    const { authorityKeyId, serial } = parseCertId(certId);
    for (const ca of this.deps.cas.list()) {
      if (ca.record.tier !== tier || !ca.fields.subjectKeyId?.equals(authorityKeyId)) continue;
      const record = await this.deps.store.certificates.get(ca.record.id, serial);
      if (record) return record;
    }
    return undefined;
  }

  /**
   * revokeCert: `certificate` (base64url DER) of this tier; authorised by the account that ordered it
   * (`kid`) or by a JWS signed with the certificate's own key (`jwk`).
   */
  async revoke(req: AcmeRequest, by: { account: AccountRecord } | { jwk: JWK }, payload: unknown): Promise<void> {
    const body = payload as { certificate?: unknown; reason?: unknown } | null;
    if (!body || typeof body.certificate !== 'string' || !/^[A-Za-z0-9_-]+$/.test(body.certificate)) {
      throw new AcmeProblem('malformed', 'certificate is the base64url DER of the certificate to revoke');
    }
    const reason = body.reason ?? REVOCATION_REASONS.unspecified;
    if (typeof reason !== 'number' || !SUBSCRIBER_REASONS.has(reason)) {
      throw new AcmeProblem('badRevocationReason', `reason ${String(reason)} is not one a subscriber may give (0, 1, 3, 4, 5, 9)`);
    }
    const der = Buffer.from(body.certificate, 'base64url');
    let fields: CertificateFields;
    try {
      fields = readCertificate(der);
    } catch {
      throw new AcmeProblem('malformed', 'certificate is not a DER X.509 certificate');
    }
    const tier = 'account' in by ? by.account.tier : req.tier;
    const ca = this.deps.cas.list().find((c) => c.record.tier === tier && fields.authorityKeyId && c.fields.subjectKeyId?.equals(fields.authorityKeyId));
    const record = ca ? await this.deps.store.certificates.get(ca.record.id, fields.serial) : undefined;
    if (!ca || !record || !record.der.equals(der)) throw new AcmeProblem('malformed', 'this directory did not issue that certificate', { status: 404 });
    const order = await this.deps.acme.orderOfCertificate(record.issuerId, record.serial);
    const account = 'account' in by ? by.account : order ? (await this.deps.acme.account(order.accountId)) ?? null : null;
    if ('account' in by) {
      if (!order || order.accountId !== by.account.id) throw new AcmeProblem('unauthorized', 'the account did not order this certificate');
    } else {
      const spki = createPublicKey({ key: publicOnly(by.jwk) as JWK & Record<string, string>, format: 'jwk' }).export({ type: 'spki', format: 'der' });
      if (!spki.equals(fields.publicKeyInfo)) throw new AcmeProblem('unauthorized', 'the JWS is not signed with the key of the certificate');
    }
    if (record.status === 'revoked') throw new AcmeProblem('alreadyRevoked', 'the certificate is revoked already');
    const result = await this.deps.revocation.apply(record.issuerId, record.serial, { kind: 'revoke', reason, invalidityDate: null }, this.deps.clock.now(), {
      principalId: account ? `acme:${account.id}` : null, role: 'acme', source: req.source, requestId: req.requestId,
      detail: { via: 'account' in by ? 'acme account' : 'certificate key', ...(account ? { boundBy: account.boundBy } : {}) },
    });
    if (!result.changed) throw new AcmeProblem('alreadyRevoked', 'the certificate is revoked already');
    await auditAcme(this.deps, req, account, 'acme.revoke', `certificate:${record.issuerId}/${record.serial}`, 'success', { reason });
  }

  /** RFC 9773 renewalInfo of a certificate of this tier. */
  async renewalInfo(tier: string, certId: string): Promise<{ window: SuggestedWindow; retryAfter: number }> {
    const record = await this.byCertId(certId, tier);
    if (!record) throw new AcmeProblem('malformed', 'no certificate of this directory has that identifier', { status: 404 });
    const policy = this.deps.tiers.get(tier);
    const now = this.deps.clock.now();
    return {
      window: suggestedWindow({ notBefore: record.notBefore, notAfter: record.notAfter, renewAtFraction: policy?.renewAtFraction ?? 2 / 3, urgent: this.urgency(record), now }),
      retryAfter: RENEWAL_INFO_RETRY_SECONDS,
    };
  }

  /** Why a certificate should be replaced now: revoked, its CA chain no longer active, or its CA rolled over. */
  private urgency(record: CertificateRecord): string | null {
    if (record.status === 'revoked') return 'the certificate is revoked';
    const status = this.deps.cas.effectiveStatus(record.issuerId);
    if (status.status !== 'active') return `its CA ${status.blockedBy} is ${status.status}`;
    const current = this.deps.cas.current(record.issuerId);
    if (current && current.record.id !== record.issuerId) return `its CA has rolled over to ${current.record.id}`;
    return null;
  }
}
