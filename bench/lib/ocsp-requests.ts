/**
 * OCSP requests as RFC 5019 clients send them — one SHA-1 CertID, no nonce — built with
 * pki/ocsp-request.ts, written as request files for bench/wrk/rotate.lua (one request a line:
 * "POST <hex DER>" or "GET <path>").
 */
import { writeFileSync } from 'node:fs';
import { buildOcspRequest, certIdFor } from '../../pki/ocsp-request.ts';
import { readCertificate } from '../../pki/certificate-reader.ts';

/** One DER OCSPRequest per serial, for certificates issued by `issuerDer`. */
export function ocspRequestsFor(issuerDer: Buffer, serials: readonly string[]): Buffer[] {
  const issuer = readCertificate(issuerDer);
  return serials.map((serial) => buildOcspRequest({ certIds: [certIdFor({ issuerName: issuer.subject, issuerPublicKeyInfo: issuer.publicKeyInfo, serial })] }));
}

/** The GET path of a request under `prefix` (RFC 6960 Appendix A.1: url-encoded base64 after the responder URL). */
export const ocspGetPath = (prefix: string, der: Buffer): string => `${prefix}${encodeURIComponent(der.toString('base64'))}`;

/** Writes the POST and GET request files; returns their paths. */
export function writeRequestFiles(base: string, requests: readonly Buffer[], getPrefix: string): { post: string; get: string } {
  const post = `${base}-post.txt`;
  const get = `${base}-get.txt`;
  writeFileSync(post, requests.map((r) => `POST ${r.toString('hex')}\n`).join(''));
  writeFileSync(get, requests.map((r) => `GET ${ocspGetPath(getPrefix, r)}\n`).join(''));
  return { post, get };
}
