/**
 * The CPU-bound half of one issuance, plain data in and DER out, in boulder's order: build the
 * TBSCertificate, lint it against the tier profile (certificate-lint.ts) BEFORE the CA key signs,
 * then sign it once, and sign its first OCSP answer. A CSR the RA only parsed has its proof of
 * possession checked first, on the same trip (one hand-over to the thread per issuance instead of
 * two: ~0.05 ms of both threads' time per certificate). It runs on a signing thread
 * (signing-pool.ts) or, when a signer's key is not in this process's memory, on the calling thread;
 * either way it touches no storage, so the transaction around it stays on the main thread.
 */
import { serialToHex, signTbsCertificate, tbsCertificate } from '../../pki/certificate.ts';
import { checkCsrProofOfPossession, type CsrProofOfPossession } from '../../pki/csr.ts';
import { PkiError } from '../../pki/pki-error.ts';
import { TiercaError } from '../errors.ts';
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
  /** DER of a CSR whose proof of possession is checked before anything is signed (IssuanceOrder.csrToVerify). */
  csr?: Buffer;
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
    ...(job.csr ? { csr: f(job.csr) } : {}),
  };
}

export interface SignedIssuance {
  certificate: Buffer;
  ocsp: Buffer;
  /** What the check of `job.csr` learnt (the SM2 identity it verified with); absent without one. */
  proofOfPossession?: CsrProofOfPossession;
}

/** The refusal of a CSR that does not parse or whose signature does not verify, saying which. */
export function csrRefusal(err: unknown): unknown {
  if (err instanceof PkiError && err.code === 'bad-signature') return new TiercaError('bad-csr-signature', err.message, { detail: { field: 'csr' } });
  if (err instanceof PkiError) return new TiercaError('malformed-input', `the CSR is not a valid PKCS#10 request: ${err.message}`, { detail: { field: 'csr' } });
  return err;
}

/**
 * Checks `job.csr`'s proof of possession (when it has one), builds the TBSCertificate, lints it, and
 * only then signs it; signs the first OCSP answer.
 */
export async function signIssuance(job: IssuanceSigningJob, signers: { ca: Signer; responder: Signer }): Promise<SignedIssuance> {
  let proofOfPossession: CsrProofOfPossession | undefined;
  if (job.csr) {
    try {
      proofOfPossession = checkCsrProofOfPossession({ der: job.csr });
    } catch (err) {
      throw csrRefusal(err);
    }
  }
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
  return { certificate, ocsp, ...(proofOfPossession ? { proofOfPossession } : {}) };
}
