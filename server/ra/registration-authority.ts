/**
 * The registration authority of one instance as its clients (the HTTP layer, benchmarks) see it:
 * one service per concern, wired by the composition root (server/services.ts). Nothing here decides
 * anything; each service does, behind the same authorizer.
 */
import type { DomainAdminService } from './domain-admin.service.ts';
import type { AuditCheckpoints } from '../audit/audit-checkpoints.ts';
import type { Authorizer } from './authorizer.ts';
import type { CaAdminService } from './ca-admin.service.ts';
import type { PrincipalService } from './principal.service.ts';
import type { SubjectService } from './subject.service.ts';
import type { IssuanceService } from './issuance.service.ts';
import type { DualControl } from './dual-control.ts';
import type { EscrowService } from './escrow.service.ts';
import type { AuditQueryService } from './audit-query.service.ts';
import type { CertificateStatusService } from './certificate-status.service.ts';
import type { KeystoreStatusService } from './keystore-status.service.ts';
import type { AcmeBindingService } from './acme-binding.service.ts';
import type { EstCodesService } from './est-codes.service.ts';
import type { KeyManagementCentre } from '../kmc/key-management-centre.ts';

export interface RegistrationAuthority {
  /** Authentication and role × permission × domain checks (every service checks through it). */
  readonly authorizer: Authorizer;
  /** CAs, domains, CA revocation, CRLs. */
  readonly cas: CaAdminService;
  /** New domains under dual control (`domain.add`). */
  readonly domains: DomainAdminService;
  readonly principals: PrincipalService;
  readonly subjects: SubjectService;
  readonly issuance: IssuanceService;
  /** Dual-control requests: list, approve, reject. */
  readonly requests: DualControl;
  readonly escrow: EscrowService;
  /** The audit log for auditors. */
  readonly audit: AuditQueryService;
  /** Certificates: list, show, revoke/hold/release, public status. */
  readonly certificates: CertificateStatusService;
  /** Signed audit checkpoints; bootstrap starts their timer. */
  readonly checkpoints: AuditCheckpoints;
  /** Where the CA keys are held, and whether each can sign now. */
  readonly keystore: KeystoreStatusService;
  /** ACME account-binding keys, accounts and orders, for officers. */
  readonly acme: AcmeBindingService;
  /** EST enrolment codes, for officers. */
  readonly est: EstCodesService;
  /** The key-management centre the issuance and recovery use (renewal moves a kept key's binding). */
  readonly kmc: KeyManagementCentre;
}
