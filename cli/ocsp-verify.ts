/**
 * What `tierca ocsp check` checks before it believes an OCSP answer, as a relying party must
 * (RFC 6960 §3.2): the answer is about the certificate asked for, it is signed by the issuing CA or
 * by a responder the CA authorised (RFC 6960 §4.2.2.2: issued by the CA, EKU id-kp-OCSPSigning),
 * the signature verifies, the nonce sent comes back, and the times are current.
 *
 * Pure (time is a parameter). It belongs with pki/ocsp-response.ts in the long run; it lives here
 * while only the CLI needs it.
 */
import { children, decodeOid, readOnly } from '../pki/der-reader.ts';
import { octetString } from '../pki/der.ts';
import { EKU, EXTENSION_OID } from '../pki/extensions.ts';
import { keyIdentifier } from '../pki/key-pair.ts';
import { readCertId, type CertId } from '../pki/ocsp-request.ts';
import type { ParsedOcspResponse } from '../pki/ocsp-response.ts';
import { readCertificate, readExtensions, verifyCertificateSignature, verifySignature, type CertificateFields } from '../pki/certificate-reader.ts';

/** An answer that must not be believed; the message says which check failed. */
export class OcspVerifyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OcspVerifyError';
  }
}

export interface VerifyOcspParams {
  response: ParsedOcspResponse;
  /** The issuing CA's certificate fields. */
  issuer: CertificateFields;
  /** The DER CertID that was asked about. */
  certId: Buffer;
  /** The raw nonce octets sent, if any. */
  nonce?: Buffer;
  now: Date;
  /** Clock difference tolerated on thisUpdate, nextUpdate and the responder's validity; default 5 minutes. */
  skewMs?: number;
}

export interface VerifiedOcsp {
  single: ParsedOcspResponse['responses'][number];
  /** `issuer`: signed by the CA's own key; `delegated`: by a responder certificate the CA issued. */
  responder: 'issuer' | 'delegated';
  /** `matched` (echoed), `absent` (not echoed: a pre-signed answer), `not-sent`. */
  nonce: 'matched' | 'absent' | 'not-sent';
}

const sameCertId = (a: CertId, b: CertId): boolean =>
  a.hashAlgorithm === b.hashAlgorithm && a.serial === b.serial && a.issuerNameHash.equals(b.issuerNameHash) && a.issuerKeyHash.equals(b.issuerKeyHash);

/** The extendedKeyUsage purposes of a certificate (empty when it has none). */
function extendedKeyUsages(fields: CertificateFields): string[] {
  const ext = children(readOnly(fields.tbs, 0x30)).find((el) => el.tag === 0xa3);
  if (!ext) return [];
  const eku = readExtensions(ext).get(EXTENSION_OID.extendedKeyUsage);
  return eku ? children(readOnly(eku, 0x30)).map(decodeOid) : [];
}

/** The key that signed the answer, after checking that it may sign answers for `issuer`. */
function responderKey(response: ParsedOcspResponse, issuer: CertificateFields, now: Date, skewMs: number): { spki: Buffer; responder: VerifiedOcsp['responder'] } {
  const isIssuer = response.responderKeyHash
    ? response.responderKeyHash.equals(keyIdentifier(issuer.publicKeyInfo))
    : Boolean(response.responderName?.equals(issuer.subject));
  if (isIssuer) return { spki: issuer.publicKeyInfo, responder: 'issuer' };

  const candidates = response.certificates.map((der) => readCertificate(der));
  const cert = candidates.find((c) =>
    response.responderKeyHash ? response.responderKeyHash.equals(keyIdentifier(c.publicKeyInfo)) : Boolean(response.responderName?.equals(c.subject)),
  );
  if (!cert) throw new OcspVerifyError('the answer is signed by neither the issuing CA nor a responder certificate it carries');
  if (!cert.issuer.equals(issuer.subject) || !verifyCertificateSignature(cert.der, issuer.publicKeyInfo)) {
    throw new OcspVerifyError('the responder certificate was not issued by the issuing CA (RFC 6960 §4.2.2.2)');
  }
  if (!extendedKeyUsages(cert).includes(EKU.ocspSigning)) {
    throw new OcspVerifyError('the responder certificate lacks the id-kp-OCSPSigning extended key usage (RFC 6960 §4.2.2.2)');
  }
  if (cert.notBefore.getTime() > now.getTime() + skewMs || cert.notAfter.getTime() < now.getTime() - skewMs) {
    throw new OcspVerifyError(`the responder certificate is not valid now (${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()})`);
  }
  return { spki: cert.publicKeyInfo, responder: 'delegated' };
}

/**
 * The SingleResponse about `certId`, once the whole answer has been checked.
 *
 * @throws OcspVerifyError naming the first check that fails.
 */
export function verifyOcspResponse({ response, issuer, certId, nonce, now, skewMs = 5 * 60_000 }: VerifyOcspParams): VerifiedOcsp {
  if (response.responseStatus !== 'successful') throw new OcspVerifyError(`the responder answered ${response.responseStatus}`);
  const asked = readCertId(readOnly(certId, 0x30));
  const single = response.responses.find((r) => sameCertId(r.certId, asked));
  if (!single) throw new OcspVerifyError('the answer holds no response about this certificate');

  const { spki, responder } = responderKey(response, issuer, now, skewMs);
  let valid: boolean;
  try {
    valid = verifySignature({ algorithm: response.signatureAlgorithm!, publicKeyInfo: spki, data: response.tbsResponseData!, signature: response.signature! });
  } catch (err) {
    throw new OcspVerifyError(`the answer's signature cannot be checked: ${(err as Error).message}`);
  }
  if (!valid) throw new OcspVerifyError("the answer's signature does not verify");

  if (single.thisUpdate.getTime() > now.getTime() + skewMs) {
    throw new OcspVerifyError(`the answer's thisUpdate ${single.thisUpdate.toISOString()} is in the future`);
  }
  if (single.nextUpdate && single.nextUpdate.getTime() < now.getTime() - skewMs) {
    throw new OcspVerifyError(`the answer expired at ${single.nextUpdate.toISOString()} (nextUpdate)`);
  }

  let nonceState: VerifiedOcsp['nonce'] = 'not-sent';
  if (nonce) {
    if (!response.nonce) nonceState = 'absent';
    // The nonce extnValue holds an OCTET STRING of the nonce (RFC 8954 §2.1).
    else if (response.nonce.equals(octetString(nonce))) nonceState = 'matched';
    else throw new OcspVerifyError('the answer carries a different nonce than the request (a replayed answer?)');
  }
  return { single, responder, nonce: nonceState };
}
