/**
 * The CA half of issuance (STYLE.md practice 3: the RA decides, the CA signs). It takes an order the
 * registration authority has already checked; a signing thread (signing-pool.ts) builds, signs and
 * lints the certificate and pre-signs its first OCSP answer; this stores certificate, answer and
 * audit record in one transaction (a savepoint of a group commit, so concurrent issuances share one
 * fsync). A duplicate serial (the unique (issuer, serial) key, not luck) is retried with a new one.
 */
import { createHash, randomBytes } from 'node:crypto';
import { randomSerial, serialToHex } from '../../pki/certificate.ts';
import type { EndEntityProfile } from '../../pki/profiles.ts';
import { keyIdentifier } from '../../pki/key-pair.ts';
import type { KeyAlgorithm } from '../../pki/algorithms.ts';
import { UniqueViolationError, type CertificateRecord, type Repositories, type Store } from '../storage/storage.ts';
import type { TierPolicy } from '../config/tier-policy.ts';
import { appendAudit, type AuditEvent } from '../audit/audit-log.ts';
import type { LoadedCa } from './ca-directory.ts';
import type { ResponderPool } from './ocsp-responders.ts';
import { answerTimes } from './ocsp-presigner.ts';
import { caUrls } from './urls.ts';
import { GroupCommit } from '../storage/group-commit.ts';
import { SigningPool } from './signing-pool.ts';
import { nestValidity } from './validity.ts';
import type { IssuanceSigningJob } from './issuance-signing.ts';

/** What the RA hands the CA: everything is already decided and checked. */
export interface IssuanceOrder {
  ca: LoadedCa;
  tier: TierPolicy;
  profile: Exclude<EndEntityProfile, 'ocsp'>;
  /** DER Name, built by the RA from the registered subject (never from the CSR). */
  subject: Buffer;
  subjectDn: string;
  subjectId: string;
  domain: string;
  publicKeyInfo: Buffer;
  keyAlgorithm: KeyAlgorithm;
  names: { dns: string[]; ip: string[]; email: string[] };
  notBefore: Date;
  notAfter: Date;
  requestId: string | null;
}

export interface IssuedCertificate {
  record: CertificateRecord;
  chain: readonly Buffer[];
}

export interface CertificateIssuerDeps {
  store: Store;
  responders: ResponderPool;
  publicUrl: string;
  /** Where certificates are built and signed; default: on the calling thread. */
  signing?: SigningPool;
  random?: (n: number) => Buffer;
}

const MAX_SERIAL_ATTEMPTS = 3;

export class CertificateIssuer {
  /** Issuances arriving together share one commit (each in its own savepoint). */
  private readonly commits: GroupCommit;
  private readonly signing: SigningPool;

  constructor(private readonly deps: CertificateIssuerDeps) {
    this.commits = new GroupCommit(deps.store);
    this.signing = deps.signing ?? new SigningPool(0);
  }

  /**
   * Signs and stores a certificate for `order`. `inTransaction` runs inside the same transaction after
   * the insert (the RA uses it to re-check "one live certificate per profile" and to mark a request done);
   * `audit` is written in that transaction too.
   */
  async issue(
    order: IssuanceOrder,
    now: Date,
    audit: Omit<AuditEvent, 'outcome' | 'target'>,
    inTransaction?: (tx: Repositories, record: CertificateRecord) => Promise<void>,
  ): Promise<IssuedCertificate> {
    const { responders, random = randomBytes } = this.deps;
    // Within the CA's validity (validity.ts): a fresh CA's first leaves lose the RA's back-dating.
    order = { ...order, ...nestValidity(order, order.ca.record) };
    const responder = await responders.forCa(order.ca.record.id, now);
    const { thisUpdate, nextUpdate } = answerTimes(now, order.tier.statusValidityHours);
    for (let attempt = 1; ; attempt++) {
      const serial = randomSerial(random);
      const signed = await this.signing.signIssuance(this.jobOf(order, serial, responder.record.certificate, thisUpdate, nextUpdate), {
        ca: order.ca.signer,
        responder: responder.signer,
      });
      const record = this.recordOf(order, signed.certificate, serialToHex(serial), now);
      const ocsp = { issuerId: record.issuerId, serial: record.serial, der: signed.ocsp, thisUpdate, nextUpdate };
      try {
        await this.commits.run(async (tx) => {
          await tx.certificates.insert(record);
          await tx.ocspResponses.upsert(ocsp);
          if (inTransaction) await inTransaction(tx, record);
          await appendAudit(tx.audit, now, {
            ...audit,
            outcome: 'success',
            target: `certificate:${record.issuerId}/${record.serial}`,
            detail: { ...(audit.detail ?? {}), profile: record.profile, subject: record.subjectDn, notAfter: record.notAfter.toISOString() },
          });
        });
        return { record, chain: order.ca.chain };
      } catch (err) {
        if (err instanceof UniqueViolationError && attempt < MAX_SERIAL_ATTEMPTS) continue;
        throw err;
      }
    }
  }

  private jobOf(order: IssuanceOrder, serial: Buffer, responderCertificate: Buffer, thisUpdate: Date, nextUpdate: Date): IssuanceSigningJob {
    const { ca } = order;
    const urls = caUrls(this.deps.publicUrl, ca.record.id);
    return {
      serial,
      issuer: {
        name: ca.fields.subject,
        publicKeyInfo: ca.fields.publicKeyInfo,
        keyId: ca.fields.subjectKeyId ?? keyIdentifier(ca.fields.publicKeyInfo),
        notBefore: ca.record.notBefore,
        notAfter: ca.record.notAfter,
      },
      subject: order.subject,
      publicKeyInfo: order.publicKeyInfo,
      notBefore: order.notBefore,
      notAfter: order.notAfter,
      profile: order.profile,
      policyOid: order.tier.oid,
      links: { caIssuersUrl: urls.certificate, ocspUrl: urls.ocsp, crlUrl: urls.crl, deltaCrlUrl: urls.deltaCrl },
      names: order.names,
      ocsp: { thisUpdate, nextUpdate, responderCertificate },
    };
  }

  private recordOf(order: IssuanceOrder, der: Buffer, serial: string, now: Date): CertificateRecord {
    return {
      issuerId: order.ca.record.id,
      serial,
      subjectId: order.subjectId,
      profile: order.profile,
      tier: order.tier.id,
      domain: order.domain,
      subjectDn: order.subjectDn,
      notBefore: order.notBefore,
      notAfter: order.notAfter,
      status: 'good',
      revokedAt: null,
      revocationReason: null,
      invalidityDate: null,
      fingerprint: createHash('sha256').update(der).digest('hex'),
      der,
      keyAlgorithm: order.keyAlgorithm,
      requestId: order.requestId,
      createdAt: now,
    };
  }
}
