/**
 * The CPU-bound half of one issuance, plain data in and DER out, in boulder's order: build the
 * TBSCertificate, lint it against the tier profile (certificate-lint.ts) BEFORE the CA key signs,
 * then sign it once, and sign its first OCSP answer. It runs on a signing thread
 * (signing-pool.ts) or, when a signer's key is not in this process's memory, on the calling thread;
 * either way it touches no storage, so the transaction around it stays on the main thread.
 */
import { serialToHex, signTbsCertificate, tbsCertificate } from '../../pki/certificate.ts';
import { endEntityExtensions, type EndEntityProfile, type IssuerLinks } from '../../pki/profiles.ts';
import type { Signer } from '../../pki/signer.ts';
import { signOcspAnswer } from './ocsp-presigner.ts';
import { lintTbsCertificate } from './certificate-lint.ts';

/** Everything one certificate and its first OCSP answer are made from (structured-clone safe). */
export interface IssuanceSigningJob {
  serial: Buffer;
  /** The issuing CA: its subject (the certificate's issuer), key, key identifier and validity. */
  issuer: { name: Buffer; publicKeyInfo: Buffer; keyId: Buffer; notBefore: Date; notAfter: Date };
  subject: Buffer;
  publicKeyInfo: Buffer;
  notBefore: Date;
  notAfter: Date;
  profile: Exclude<EndEntityProfile, 'ocsp'>;
  policyOid: string;
  links: IssuerLinks;
  names: { dns: string[]; ip: string[]; email: string[] };
  /** The domain's permitted DNS and e-mail subtrees, which every name must be inside. */
  permitted: { dns: string[]; email: string[] };
  /** The first answer: good, valid from thisUpdate to nextUpdate, carrying the responder's certificate. */
  ocsp: { thisUpdate: Date; nextUpdate: Date; responderCertificate: Buffer };
}

/**
 * `job` with `f` applied to each of its byte fields: the one list of them, for the two sides of the
 * thread hand-over (signing-pool.ts sends tight copies, signing-worker.ts turns them back into Buffers).
 */
export function mapJobBytes(job: IssuanceSigningJob, f: (bytes: Uint8Array) => Buffer): IssuanceSigningJob {
  return {
    ...job,
    serial: f(job.serial),
    issuer: { ...job.issuer, name: f(job.issuer.name), publicKeyInfo: f(job.issuer.publicKeyInfo), keyId: f(job.issuer.keyId) },
    subject: f(job.subject),
    publicKeyInfo: f(job.publicKeyInfo),
    ocsp: { ...job.ocsp, responderCertificate: f(job.ocsp.responderCertificate) },
  };
}

export interface SignedIssuance {
  certificate: Buffer;
  ocsp: Buffer;
}

/** Builds `job`'s TBSCertificate, lints it, and only then signs it; signs the first OCSP answer. */
export async function signIssuance(job: IssuanceSigningJob, signers: { ca: Signer; responder: Signer }): Promise<SignedIssuance> {
  const tbs = tbsCertificate({
    serial: job.serial,
    issuer: job.issuer.name,
    subject: job.subject,
    notBefore: job.notBefore,
    notAfter: job.notAfter,
    publicKeyInfo: job.publicKeyInfo,
    extensions: endEntityExtensions({
      profile: job.profile,
      publicKeyInfo: job.publicKeyInfo,
      issuerKeyId: job.issuer.keyId,
      policyOid: job.policyOid,
      links: job.links,
      dns: job.names.dns,
      ip: job.names.ip,
      email: job.names.email,
    }),
    signer: signers.ca,
  });
  lintTbsCertificate(tbs, {
    serialHex: serialToHex(job.serial), issuer: job.issuer, subject: job.subject, publicKeyInfo: job.publicKeyInfo,
    notBefore: job.notBefore, notAfter: job.notAfter, profile: job.profile, policyOid: job.policyOid, names: job.names, permitted: job.permitted,
  });
  const certificate = await signTbsCertificate(tbs, signers.ca);
  const ocsp = await signOcspAnswer({
    issuerName: job.issuer.name,
    issuerPublicKeyInfo: job.issuer.publicKeyInfo,
    serial: serialToHex(job.serial),
    certStatus: { status: 'good' },
    thisUpdate: job.ocsp.thisUpdate,
    nextUpdate: job.ocsp.nextUpdate,
    responderCertificate: job.ocsp.responderCertificate,
    signer: signers.responder,
  });
  return { certificate, ocsp };
}
