/**
 * The CPU-bound half of one issuance, plain data in and DER out: build and sign the certificate,
 * lint it against what was asked, and sign its first OCSP answer. It runs on a signing thread
 * (signing-pool.ts) or, when a signer's key is not in this process's memory, on the calling thread;
 * either way it touches no storage, so the transaction around it stays on the main thread.
 */
import { buildCertificate, serialToHex } from '../../pki/certificate.ts';
import { readCertificate } from '../../pki/certificate-reader.ts';
import { endEntityExtensions, type EndEntityProfile, type IssuerLinks } from '../../pki/profiles.ts';
import type { Signer } from '../../pki/signer.ts';
import { TiercaError } from '../errors.ts';
import { signOcspAnswer } from './ocsp-presigner.ts';

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

/** Signs `job` with the CA's and the OCSP responder's signers. */
export async function signIssuance(job: IssuanceSigningJob, signers: { ca: Signer; responder: Signer }): Promise<SignedIssuance> {
  const certificate = await buildCertificate({
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
  lint(certificate, job);
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

/**
 * Reads the signed certificate back and checks it says what the job asked: issuer, subject, key,
 * serial and validity nested inside the CA's. A mismatch is a bug, so it is an internal error.
 */
function lint(der: Buffer, job: IssuanceSigningJob): void {
  const f = readCertificate(der);
  const problems: string[] = [];
  if (!f.issuer.equals(job.issuer.name)) problems.push('issuer');
  if (!f.subject.equals(job.subject)) problems.push('subject');
  if (!f.publicKeyInfo.equals(job.publicKeyInfo)) problems.push('public key');
  if (f.serial !== serialToHex(job.serial)) problems.push('serial');
  if (f.notBefore.getTime() < job.issuer.notBefore.getTime()) problems.push('starts before its CA');
  if (f.notAfter.getTime() > job.issuer.notAfter.getTime()) problems.push('outlives its CA');
  if (f.notBefore.getTime() > f.notAfter.getTime()) problems.push('validity');
  if (problems.length) throw new TiercaError('internal', 'issued certificate failed its lint', { detail: { problems } });
}
