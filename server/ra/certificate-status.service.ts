/**
 * Certificates as officers and auditors see them: listing, showing one with its chain, and changing
 * one's status (revoke, hold, release) in the certificate's domain; and the public status answer
 * (`/status/{issuer}/{serial}`), which says what OCSP says (server/ca/status-source.ts).
 */
import { reasonCode } from '../../pki/revocation-reason.ts';
import type { CertificateFilter, CertificateRecord, Store } from '../storage/storage.ts';
import type { Clock } from '../clock.ts';
import { TiercaError } from '../errors.ts';
import type { CaDirectory } from '../ca/ca-directory.ts';
import type { RevocationService, StatusTransition } from '../ca/revocation-service.ts';
import type { CertificateStatus, StatusSource } from '../ca/status-source.ts';
import type { Authorizer } from './authorizer.ts';
import { actorOf, runAudited } from './audited.ts';
import type { AuditAction } from './audit-actions.ts';
import type { RequestContext } from './permissions.ts';
import { serialOrRefuse, type CertificateLookup } from './certificate-lookup.ts';

/** Parses an RFC 5280 reason name into its code (`bad-request` for unknown names). */
export function reasonOrRefuse(name: string): number {
  try {
    return reasonCode(name);
  } catch {
    throw new TiercaError('bad-request', `unknown revocation reason ${name}`);
  }
}

export interface CertificateStatusServiceDeps {
  store: Pick<Store, 'certificates' | 'audit'>;
  cas: Pick<CaDirectory, 'get'>;
  authorizer: Pick<Authorizer, 'require'>;
  lookup: CertificateLookup;
  revocation: Pick<RevocationService, 'apply'>;
  status: StatusSource;
  clock: Clock;
}

export class CertificateStatusService {
  constructor(private readonly deps: CertificateStatusServiceDeps) {}

  async list(ctx: RequestContext, filter: CertificateFilter): Promise<CertificateRecord[]> {
    await this.deps.authorizer.require(ctx, 'certificate:read', 'certificate.list', null);
    return this.deps.store.certificates.list(filter);
  }

  async get(ctx: RequestContext, serial: string, issuerId?: string): Promise<{ certificate: CertificateRecord; chain: readonly Buffer[] }> {
    await this.deps.authorizer.require(ctx, 'certificate:read', 'certificate.show', `certificate:${serial}`);
    const certificate = await this.deps.lookup.find(serial, issuerId);
    return { certificate, chain: this.deps.cas.get(certificate.issuerId)?.chain ?? [] };
  }

  /** Revokes, holds or releases a certificate (officer, in the certificate's domain). */
  async change(ctx: RequestContext, serial: string, issuerId: string | undefined, transition: StatusTransition): Promise<CertificateRecord> {
    const action: AuditAction = transition.kind === 'revoke' ? 'certificate.revoke' : transition.kind === 'hold' ? 'certificate.hold' : 'certificate.release';
    const cert = await this.deps.lookup.find(serial, issuerId);
    const target = `certificate:${cert.issuerId}/${serial}`;
    await this.deps.authorizer.require(ctx, 'certificate:revoke', action, target, cert.domain);
    return runAudited({ audit: this.deps.store.audit, clock: this.deps.clock }, ctx, action, target, async () => {
      const result = await this.deps.revocation.apply(cert.issuerId, cert.serial, transition, this.deps.clock.now(), actorOf(ctx));
      return result.record;
    });
  }

  /** The public status of (issuer, serial) now — the same answer OCSP gives. No authentication. */
  async publicStatus(issuerId: string, serialText: string): Promise<CertificateStatus> {
    const ca = this.deps.cas.get(issuerId);
    if (!ca) throw new TiercaError('not-found', `no CA ${issuerId}`);
    return this.deps.status.statusOf(ca, serialOrRefuse(serialText), this.deps.clock.now());
  }
}
