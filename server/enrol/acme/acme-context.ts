/**
 * What every part of the ACME server shares: its storage, the services of the CA and RA beneath it,
 * the URLs of its resources (one directory per tier: docs/decisions/0023-acme.md) and how an ACME
 * account appears in the audit log (principal `acme:<account>`, role `acme`, with the officer who
 * bound it in the detail).
 */
import type { Logger } from 'pino';
import type { Store } from '../../storage/storage.ts';
import type { TierPolicy } from '../../config/tier-policy.ts';
import type { Clock } from '../../clock.ts';
import type { KeyStore } from '../../../pki/keystore/keystore.ts';
import type { CaDirectory } from '../../ca/ca-directory.ts';
import type { CertificateIssuer } from '../../ca/certificate-issuer.ts';
import type { RevocationService } from '../../ca/revocation-service.ts';
import type { IssuancePreparer } from '../../ra/issuance-preparer.ts';
import type { IpRange } from '../../../pki/ip-range.ts';
import { appendAudit } from '../../audit/audit-log.ts';
import type { AuditAction } from '../../ra/audit-actions.ts';
import type { AccountRecord, AcmeStore } from './acme-store.ts';
import type { ChallengeValidator } from './challenge-validation.ts';

export interface AcmeDeps {
  acme: AcmeStore;
  store: Pick<Store, 'subjects' | 'certificates' | 'domains' | 'organs' | 'audit' | 'transaction'>;
  tiers: ReadonlyMap<string, TierPolicy>;
  publicUrl: string;
  /** The ranges a name of `domain` may resolve to for validation (its ipRanges and acme.validationRanges). */
  validationRanges: (domain: string) => Promise<readonly IpRange[]>;
  ordersPerHour: number;
  cas: CaDirectory;
  preparer: IssuancePreparer;
  issuer: Pick<CertificateIssuer, 'issue'>;
  revocation: Pick<RevocationService, 'apply'>;
  keystore: Pick<KeyStore, 'seal' | 'unseal'>;
  validator: Pick<ChallengeValidator, 'validate'>;
  clock: Clock;
  random: (n: number) => Buffer;
  log?: Logger;
}

/** Who acts in one ACME request: the client's address and the request id of the HTTP layer. */
export interface AcmeRequest {
  tier: string;
  source: string | null;
  requestId: string;
}

/** The URLs of a tier's ACME resources. */
export class AcmeUrls {
  constructor(private readonly publicUrl: string) {}
  base = (tier: string): string => `${this.publicUrl}/acme/${tier}`;
  directory = (tier: string): string => `${this.base(tier)}/directory`;
  account = (tier: string, id: string): string => `${this.base(tier)}/acct/${id}`;
  order = (tier: string, id: string): string => `${this.base(tier)}/order/${id}`;
  finalize = (tier: string, id: string): string => `${this.base(tier)}/order/${id}/finalize`;
  authz = (tier: string, id: string): string => `${this.base(tier)}/authz/${id}`;
  challenge = (tier: string, id: string): string => `${this.base(tier)}/chall/${id}`;
  certificate = (tier: string, id: string): string => `${this.base(tier)}/cert/${id}`;
  /** The account id a `kid` URL names at this tier, or undefined. */
  accountIdOf(tier: string, kid: string): string | undefined {
    const prefix = `${this.base(tier)}/acct/`;
    return kid.startsWith(prefix) && /^[A-Za-z0-9_-]{1,64}$/.test(kid.slice(prefix.length)) ? kid.slice(prefix.length) : undefined;
  }
}

/** A random id of `n` octets, base64url. */
export const randomId = (random: (n: number) => Buffer, n = 16): string => random(n).toString('base64url');

/** Appends an audit record of an ACME account's action. */
export function auditAcme(
  deps: Pick<AcmeDeps, 'store' | 'clock'>, req: AcmeRequest, account: Pick<AccountRecord, 'id' | 'boundBy'> | null, action: AuditAction,
  target: string | null, outcome: 'success' | 'failure' | 'denied', detail: Record<string, unknown> = {},
): Promise<unknown> {
  return appendAudit(deps.store.audit, deps.clock.now(), {
    principalId: account ? `acme:${account.id}` : null, role: 'acme', source: req.source, requestId: req.requestId, action, target, outcome,
    detail: { ...detail, ...(account ? { boundBy: account.boundBy } : {}) },
  });
}
