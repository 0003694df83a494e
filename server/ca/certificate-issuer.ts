/**
 * The CA half of issuance (STYLE.md practice 3: the RA decides, the CA signs), in boulder's order:
 * it takes an order the registration authority prepared and checked, reserves a serial (a fresh
 * random one; the unique (issuer, serial) key makes it one, and a clash is retried with a new one),
 * and a signing thread (signing-pool.ts) builds the TBSCertificate, lints it against the tier
 * profile, signs it once and pre-signs its first OCSP answer. `beforeStore` (key delivery) runs
 * then, before anything is written; certificate, answer and audit record are stored in one
 * transaction (a savepoint of a group commit, so concurrent issuances share one fsync).
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
  /** The domain's permitted DNS and e-mail subtrees (the domain CA's name constraints): every name is inside them. */
  permitted: { dns: string[]; email: string[] };
  notBefore: Date;
  notAfter: Date;
  requestId: string | null;
  /** SM2 CSRs: the signer identity their proof of possession verified with, recorded with the certificate. */
  popIdentity?: 'default' | 'empty' | null;
  /**
   * DER of the CSR when the RA parsed it without checking its proof of possession: the signing step
   * checks it before the CA key signs anything (issuance-signing.ts), and its SM2 identity is recorded.
   */
  csrToVerify?: Buffer;
}

/** What runs around the store of one issuance. */
export interface IssueHooks {
  /**
   * After signing, before anything is stored: the RA builds the PKCS#12 of a server-made key here, so
   * that a key it cannot deliver is never issued. A throw stores nothing.
   */
  beforeStore?: (record: CertificateRecord) => Promise<void>;
  /**
   * Inside the transaction, after the certificate's insert: the RA re-checks the subject and "one live
   * certificate per profile" here, escrows keys and closes the request. A throw stores nothing.
   */
  inTransaction?: (tx: Repositories, record: CertificateRecord) => Promise<void>;
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

  /** Signs and stores a certificate for `order` (see the module comment and {@link IssueHooks}); `audit` is written in its transaction. */
  async issue(order: IssuanceOrder, now: Date, audit: Omit<AuditEvent, 'outcome' | 'target'>, hooks: IssueHooks = {}): Promise<IssuedCertificate> {
    const { beforeStore, inTransaction } = hooks;
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
      const popIdentity = signed.proofOfPossession ? signed.proofOfPossession.popIdentity : order.popIdentity;
      const record = this.recordOf({ ...order, popIdentity }, signed.certificate, serialToHex(serial), now);
      const ocsp = { issuerId: record.issuerId, serial: record.serial, der: signed.ocsp, thisUpdate, nextUpdate };
      if (beforeStore) await beforeStore(record);
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
      permitted: order.permitted,
      ocsp: { thisUpdate, nextUpdate, responderCertificate },
      ...(order.csrToVerify ? { csr: order.csrToVerify } : {}),
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
      popIdentity: order.popIdentity ?? null,
    };
  }
}
