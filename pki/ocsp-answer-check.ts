/**
 * What a relying party checks before it believes an OCSP answer (RFC 6960 §3.2), pure (the time is
 * a parameter): the responseStatus is successful (§2.3); the answer holds a SingleResponse about
 * the CertID that was asked (§4.2.2.3); it is signed by the issuing CA itself or by a responder
 * certificate the CA issued with id-kp-OCSPSigning (§4.2.2.2), valid now; the signature verifies;
 * the nonce sent comes back (§4.4.1, RFC 8954 §2.1), or none (a pre-signed answer, RFC 5019 §2.2);
 * thisUpdate is not in the future and nextUpdate not in the past (§4.2.2.1, §3.2 item 5).
 * `tierca ocsp check` uses it; devices and tests may too.
 */
import { children, decodeOid, readOnly } from './der-reader.ts';
import { Tag, contextConstructed } from './der-tag.ts';
import { octetString } from './der.ts';
import { EKU, EXTENSION_OID } from './extensions.ts';
import { keyIdentifier } from './key-pair.ts';
import { readCertId, type CertId } from './ocsp-request.ts';
import type { ParsedOcspResponse } from './ocsp-response.ts';
import { readCertificate, readExtensions, verifyCertificateSignature, verifySignature, type CertificateFields } from './certificate-reader.ts';
import { PkiError } from './pki-error.ts';
import { MINUTE_MS } from './time-constants.ts';

/** An answer that must not be believed: PkiError('untrusted-answer'); the message names the check. */
export class OcspAnswerError extends PkiError {
  constructor(message: string) {
    super('untrusted-answer', message);
    this.name = 'OcspAnswerError';
  }
}

/** Parameters of {@link checkOcspAnswer}. */
export interface CheckOcspAnswerParams {
  response: ParsedOcspResponse;
  /** The issuing CA's certificate fields. */
  issuer: CertificateFields;
  /** The DER CertID that was asked about. */
  certId: Buffer;
  /** The raw nonce octets sent, if any. Default: none sent. */
  nonce?: Buffer;
  now: Date;
  /** Clock difference tolerated on thisUpdate, nextUpdate and the responder's validity. Default 5 minutes. */
  skewMs?: number;
}

/** The outcome of {@link checkOcspAnswer}: the SingleResponse to believe and how it was vouched for. */
export interface CheckedOcspAnswer {
  single: ParsedOcspResponse['responses'][number];
  /** `issuer`: signed by the CA's own key; `delegated`: by a responder certificate the CA issued. */
  responder: 'issuer' | 'delegated';
  /** `matched` (echoed), `absent` (not echoed: a pre-signed answer), `not-sent`. */
  nonce: 'matched' | 'absent' | 'not-sent';
}

/** Clock difference tolerated by default. */
export const DEFAULT_OCSP_SKEW_MS = 5 * MINUTE_MS;

const sameCertId = (a: CertId, b: CertId): boolean =>
  a.hashAlgorithm === b.hashAlgorithm && a.serial === b.serial && a.issuerNameHash.equals(b.issuerNameHash) && a.issuerKeyHash.equals(b.issuerKeyHash);

/** The extendedKeyUsage purposes of a certificate (empty when it has none). */
function extendedKeyUsages(fields: CertificateFields): string[] {
  const ext = children(readOnly(fields.tbs, Tag.SEQUENCE)).find((el) => el.tag === contextConstructed(3));
  if (!ext) return [];
  const eku = readExtensions(ext).get(EXTENSION_OID.extendedKeyUsage);
  return eku ? children(readOnly(eku, Tag.SEQUENCE)).map(decodeOid) : [];
}

/** Whether the ResponderID (RFC 6960 §4.2.1: byKey SHA-1 of the key bits, or byName) names `cert`. */
function namedByResponderId(response: ParsedOcspResponse, cert: CertificateFields): boolean {
  return response.responderKeyHash
    ? response.responderKeyHash.equals(keyIdentifier(cert.publicKeyInfo))
    : Boolean(response.responderName?.equals(cert.subject));
}

/** The key that signed the answer, after checking that it may sign answers for `issuer` (RFC 6960 §4.2.2.2). */
function responderKey(response: ParsedOcspResponse, issuer: CertificateFields, now: Date, skewMs: number): { spki: Buffer; responder: CheckedOcspAnswer['responder'] } {
  if (namedByResponderId(response, issuer)) return { spki: issuer.publicKeyInfo, responder: 'issuer' };

  let cert: CertificateFields | undefined;
  try {
    cert = response.certificates.map((der) => readCertificate(der)).find((c) => namedByResponderId(response, c));
  } catch (err) {
    throw new OcspAnswerError(`a certificate in the answer is unreadable: ${(err as Error).message}`);
  }
  if (!cert) throw new OcspAnswerError('the answer is signed by neither the issuing CA nor a responder certificate it carries');
  let issuedByCa = false;
  try {
    issuedByCa = cert.issuer.equals(issuer.subject) && verifyCertificateSignature(cert.der, issuer.publicKeyInfo);
  } catch {
    // an algorithm that cannot be verified here: not shown to be issued by the CA
  }
  if (!issuedByCa) throw new OcspAnswerError('the responder certificate was not issued by the issuing CA (RFC 6960 §4.2.2.2)');
  if (!extendedKeyUsages(cert).includes(EKU.ocspSigning)) {
    throw new OcspAnswerError('the responder certificate lacks the id-kp-OCSPSigning extended key usage (RFC 6960 §4.2.2.2)');
  }
  if (cert.notBefore.getTime() > now.getTime() + skewMs || cert.notAfter.getTime() < now.getTime() - skewMs) {
    throw new OcspAnswerError(`the responder certificate is not valid now (${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()})`);
  }
  return { spki: cert.publicKeyInfo, responder: 'delegated' };
}

/**
 * The SingleResponse about `certId`, once the whole answer has passed every check of RFC 6960 §3.2
 * listed at the top of this file, in that order.
 *
 * @throws OcspAnswerError (PkiError 'untrusted-answer') naming the first check that fails;
 * PkiError('malformed') for a `certId` that is not a DER CertID.
 */
export function checkOcspAnswer({ response, issuer, certId, nonce, now, skewMs = DEFAULT_OCSP_SKEW_MS }: CheckOcspAnswerParams): CheckedOcspAnswer {
  if (response.responseStatus !== 'successful') throw new OcspAnswerError(`the responder answered ${response.responseStatus}`);
  const asked = readCertId(readOnly(certId, Tag.SEQUENCE));
  const single = response.responses.find((r) => sameCertId(r.certId, asked));
  if (!single) throw new OcspAnswerError('the answer holds no response about this certificate');

  const { spki, responder } = responderKey(response, issuer, now, skewMs);
  let valid: boolean;
  try {
    valid = verifySignature({ algorithm: response.signatureAlgorithm!, publicKeyInfo: spki, data: response.tbsResponseData!, signature: response.signature! });
  } catch (err) {
    throw new OcspAnswerError(`the answer's signature cannot be checked: ${(err as Error).message}`);
  }
  if (!valid) throw new OcspAnswerError("the answer's signature does not verify");

  if (single.thisUpdate.getTime() > now.getTime() + skewMs) {
    throw new OcspAnswerError(`the answer's thisUpdate ${single.thisUpdate.toISOString()} is in the future`);
  }
  if (single.nextUpdate && single.nextUpdate.getTime() < now.getTime() - skewMs) {
    throw new OcspAnswerError(`the answer expired at ${single.nextUpdate.toISOString()} (nextUpdate)`);
  }

  let nonceState: CheckedOcspAnswer['nonce'] = 'not-sent';
  if (nonce) {
    if (!response.nonce) nonceState = 'absent';
    // The nonce extnValue holds an OCTET STRING of the nonce (RFC 8954 §2.1).
    else if (response.nonce.equals(octetString(nonce))) nonceState = 'matched';
    else throw new OcspAnswerError('the answer carries a different nonce than the request (a replayed answer?)');
  }
  return { single, responder, nonce: nonceState };
}
