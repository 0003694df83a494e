/**
 * Signs the OCSP answer for one certificate ahead of time (RFC 5019 §2.2 pre-produced responses):
 * the serving path only looks answers up. Issuance, revocation, hold and release call this inside
 * their transaction, so the stored answer always matches the stored status.
 */
import { certIdFor } from '../../pki/ocsp-request.ts';
import { buildOcspResponse, type CertStatus } from '../../pki/ocsp-response.ts';
import type { CertificateRecord, OcspResponseRecord } from '../storage/storage.ts';
import type { LoadedCa } from './ca-directory.ts';
import type { Responder } from './ocsp-responders.ts';
import type { Signer } from '../../pki/signer.ts';
import { HOUR_MS } from '../../pki/time-constants.ts';


/** The OCSP certStatus of a stored certificate. A hold answers revoked with reason certificateHold (RFC 6960 §2.2). */
export function certStatusOf(cert: Pick<CertificateRecord, 'status' | 'revokedAt' | 'revocationReason'>): CertStatus {
  if (cert.status === 'good' || !cert.revokedAt) return { status: 'good' };
  return { status: 'revoked', revokedAt: cert.revokedAt, reason: cert.status === 'hold' ? 6 : cert.revocationReason };
}

export interface PresignParams {
  ca: LoadedCa;
  responder: Responder;
  serial: string;
  certStatus: CertStatus;
  now: Date;
  validityHours: number;
}

/** The thisUpdate (whole seconds) and nextUpdate of an answer signed at `now`. */
export function answerTimes(now: Date, validityHours: number): { thisUpdate: Date; nextUpdate: Date } {
  const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
  return { thisUpdate, nextUpdate: new Date(thisUpdate.getTime() + validityHours * HOUR_MS) };
}

/** What {@link signOcspAnswer} needs: plain data and a signer, so a signing thread can run it too. */
export interface OcspAnswerParams {
  issuerName: Buffer;
  issuerPublicKeyInfo: Buffer;
  serial: string;
  certStatus: CertStatus;
  thisUpdate: Date;
  nextUpdate: Date;
  responderCertificate: Buffer;
  signer: Signer;
}

/** The DER answer for one serial, with a SHA-1 CertID (what RFC 5019 clients send), signed by the responder. */
export function signOcspAnswer(p: OcspAnswerParams): Promise<Buffer> {
  const certId = certIdFor({ issuerName: p.issuerName, issuerPublicKeyInfo: p.issuerPublicKeyInfo, serial: p.serial });
  return buildOcspResponse({
    responderPublicKeyInfo: p.signer.publicKeyInfo,
    producedAt: p.thisUpdate,
    responses: [{ certId, certStatus: p.certStatus, thisUpdate: p.thisUpdate, nextUpdate: p.nextUpdate }],
    certificates: [p.responderCertificate],
    signer: p.signer,
  });
}

/** Builds and signs the answer for one serial of `ca`. */
export async function presignOcspResponse({ ca, responder, serial, certStatus, now, validityHours }: PresignParams): Promise<OcspResponseRecord> {
  const { thisUpdate, nextUpdate } = answerTimes(now, validityHours);
  const der = await signOcspAnswer({
    issuerName: ca.fields.subject,
    issuerPublicKeyInfo: ca.fields.publicKeyInfo,
    serial,
    certStatus,
    thisUpdate,
    nextUpdate,
    responderCertificate: responder.record.certificate,
    signer: responder.signer,
  });
  return { issuerId: ca.record.id, serial, der, thisUpdate, nextUpdate };
}
