/**
 * The CA half of issuance (STYLE.md practice 3: the RA decides, the CA signs). It takes an order the
 * registration authority has already checked, builds and signs the certificate, lints it against the
 * order, pre-signs its first OCSP answer, and stores certificate, answer and audit record in one
 * transaction (a savepoint of a group commit, so concurrent issuances share one fsync). A duplicate serial (the unique (issuer, serial) key, not luck) is retried with a new one.
 */
import { createHash, randomBytes } from 'node:crypto';
import { buildCertificate, randomSerial, serialToHex } from '../../pki/certificate.ts';
import { readCertificate } from '../../pki/certificate-reader.ts';
import { endEntityExtensions, type EndEntityProfile } from '../../pki/profiles.ts';
import { keyIdentifier } from '../../pki/key-pair.ts';
import type { KeyAlgorithm } from '../../pki/algorithms.ts';
import { UniqueViolationError, type CertificateRecord, type Repositories, type Store } from '../storage/storage.ts';
import type { TierPolicy } from '../config/tier-policy.ts';
import { appendAudit, type AuditEvent } from '../audit/audit-log.ts';
import type { LoadedCa } from './ca-directory.ts';
import type { ResponderPool } from './ocsp-responders.ts';
import { presignOcspResponse } from './ocsp-presigner.ts';
import { caUrls } from './urls.ts';
import { TiercaError } from '../errors.ts';
import { GroupCommit } from '../storage/group-commit.ts';

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
  random?: (n: number) => Buffer;
}

const MAX_SERIAL_ATTEMPTS = 3;

export class CertificateIssuer {
  /** Issuances arriving together share one commit (each in its own savepoint). */
  private readonly commits: GroupCommit;

  constructor(private readonly deps: CertificateIssuerDeps) {
    this.commits = new GroupCommit(deps.store);
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
    const responder = await responders.forCa(order.ca.record.id, now);
    for (let attempt = 1; ; attempt++) {
      const serial = randomSerial(random);
      const der = await this.sign(order, serial);
      const record = this.recordOf(order, der, serialToHex(serial), now);
      const ocsp = await presignOcspResponse({
        ca: order.ca,
        responder,
        serial: record.serial,
        certStatus: { status: 'good' },
        now,
        validityHours: order.tier.statusValidityHours,
      });
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

  private async sign(order: IssuanceOrder, serial: Buffer): Promise<Buffer> {
    const { ca } = order;
    const urls = caUrls(this.deps.publicUrl, ca.record.id);
    const der = await buildCertificate({
      serial,
      issuer: ca.fields.subject,
      subject: order.subject,
      notBefore: order.notBefore,
      notAfter: order.notAfter,
      publicKeyInfo: order.publicKeyInfo,
      extensions: endEntityExtensions({
        profile: order.profile,
        publicKeyInfo: order.publicKeyInfo,
        issuerKeyId: ca.fields.subjectKeyId ?? keyIdentifier(ca.fields.publicKeyInfo),
        policyOid: order.tier.oid,
        links: { caIssuersUrl: urls.certificate, ocspUrl: urls.ocsp, crlUrl: urls.crl, deltaCrlUrl: urls.deltaCrl },
        dns: order.names.dns,
        ip: order.names.ip,
        email: order.names.email,
      }),
      signer: ca.signer,
    });
    lint(der, order, serial);
    return der;
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

/**
 * Reads the signed certificate back and checks it says what the order asked: issuer, subject, key,
 * serial and validity nested inside the CA's. A mismatch is a bug, so it is an internal error.
 */
function lint(der: Buffer, order: IssuanceOrder, serial: Buffer): void {
  const f = readCertificate(der);
  const problems: string[] = [];
  if (!f.issuer.equals(order.ca.fields.subject)) problems.push('issuer');
  if (!f.subject.equals(order.subject)) problems.push('subject');
  if (!f.publicKeyInfo.equals(order.publicKeyInfo)) problems.push('public key');
  if (f.serial !== serialToHex(serial)) problems.push('serial');
  if (f.notAfter.getTime() > order.ca.record.notAfter.getTime()) problems.push('outlives its CA');
  if (f.notBefore.getTime() > f.notAfter.getTime()) problems.push('validity');
  if (problems.length) throw new TiercaError('internal', 'issued certificate failed its lint', { detail: { problems } });
}
