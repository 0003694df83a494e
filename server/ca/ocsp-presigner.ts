/**
 * Signs the OCSP answer for one certificate ahead of time (RFC 5019 §2.2 pre-produced responses):
 * the serving path only looks answers up. Issuance, revocation, hold and release call this inside
 * their transaction, so the stored answer always matches the stored status; an answer re-signed
 * later (its nextUpdate near) goes through {@link resignStoredAnswer}, which keeps that true.
 */
import { certIdFor } from '../../pki/ocsp-request.ts';
import { buildOcspResponse, type CertStatus } from '../../pki/ocsp-response.ts';
import type { CertificateRecord, OcspResponseRecord, Store } from '../storage/storage.ts';
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

export interface ResignParams {
  ca: LoadedCa;
  /** Fetched beforehand (ResponderPool.forCa): making a responder opens a transaction of its own. */
  responder: Responder;
  serial: string;
  now: Date;
  validityHours: (tier: string | null) => number;
}

/**
 * Signs a fresh answer for one certificate of `ca` from its status as stored now, and stores it, in
 * one transaction holding the certificate's row (CertificateRepository.lockShared): a revocation
 * either commits first and is what the answer says, or waits and then stores its own answer over
 * this one. Read outside such a transaction, a status could be `good` when read and the answer
 * stored over the revoked one of a revocation committed in between — a revocation lost until the
 * next refresh. Returns the stored answer, or undefined when there is no such certificate.
 */
export function resignStoredAnswer(store: Pick<Store, 'transaction'>, p: ResignParams): Promise<OcspResponseRecord | undefined> {
  return store.transaction(async (tx) => {
    const cert = await tx.certificates.lockShared(p.ca.record.id, p.serial);
    if (!cert) return undefined;
    const answer = await presignOcspResponse({
      ca: p.ca, responder: p.responder, serial: cert.serial, certStatus: certStatusOf(cert), now: p.now, validityHours: p.validityHours(cert.tier),
    });
    await tx.ocspResponses.upsert(answer);
    return answer;
  });
}
