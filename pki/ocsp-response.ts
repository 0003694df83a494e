/**
 * RFC 6960 OCSP responses: the BasicOCSPResponse builder behind every answer tierca signs (fresh and
 * pre-signed, RFC 5019 §2.2), the constant error responses, and a parser for the CLI and tests.
 *
 * Why hand-made DER (der.ts) and not pkijs/asn1js: pkijs builds and signs ~1,600–2,200 OCSP
 * responses/s on this machine kind while a P-256 signature alone runs at ~36,000/s
 * (../shared/PERFORMANCE-NOTES.md): its object model, not the cryptography, would bound the
 * responder. Here a response is a few concatenations of cached constants (OIDs, status encodings,
 * the ResponderID of each key, recently encoded times) around the certificate's CertID, so the
 * signature stays the dominant cost: measured on this machine kind, parseOcspRequest plus
 * buildOcspResponse (one answer, nonce, responder certificate) ran at ~78,000/s with a no-op signer
 * and ~30,000/s with a P-256 softwareSigner and 16 answers in flight, against pkijs's ~2,000/s.
 * The output is checked by `openssl ocsp` in test/interop/ocsp.test.ts and read back by pkijs and
 * @peculiar/asn1-ocsp as second parsers there and in test/unit/ocsp-request.test.ts.
 */
import { createHash } from 'node:crypto';
import { bitString, enumerated, explicit, generalizedTime, octetString, oid, sequence, tlvOf } from './der.ts';
import { readOnly, decodeOid, DerError, expectTag, type DerElement } from './der-reader.ts';
import { readGeneralizedTime } from './der-time.ts';
import { subjectPublicKeyBits } from './key-pair.ts';
import { OCSP_NONCE_OID, elementsOf, readCertId, readExtensions, type CertId } from './ocsp-request.ts';
import { PkiError } from './pki-error.ts';
import { isReasonCode, REVOCATION_REASONS } from './revocation-reason.ts';
import type { Signer } from './signer.ts';

/** The status of one certificate (RFC 6960 §4.2.1 CertStatus). */
export type CertStatus =
  | { status: 'good' }
  | {
      status: 'revoked';
      revokedAt: Date;
      /** CRLReason (RFC 5280 §5.3.1); null/undefined and unspecified (0) are left out of the answer. */
      reason?: number | null;
    }
  | { status: 'unknown' };

/** One SingleResponse to build. */
export interface SingleResponseParams {
  /** DER CertID: the one received (CertId.raw) or one from certIdFor(). */
  certId: Buffer;
  certStatus: CertStatus;
  thisUpdate: Date;
  /** Omitted means "newer information is always available" (RFC 6960 §4.2.2.1); tierca always sets it. */
  nextUpdate?: Date;
}

/** Parameters of {@link buildOcspResponse}. */
export interface BuildOcspResponseParams {
  /** DER SubjectPublicKeyInfo of the responder; the ResponderID is byKey, SHA-1 of its key bits (RFC 6960 §4.2.1). */
  responderPublicKeyInfo: Buffer;
  producedAt: Date;
  /** At least one. */
  responses: SingleResponseParams[];
  /** The request's nonce extnValue contents, echoed verbatim (RFC 6960 §4.4.1). Default: none. */
  nonce?: Buffer | null;
  /** DER certificates to carry, normally the delegated responder's (RFC 6960 §4.2.2.2). Default: none. */
  certificates?: Buffer[];
  signer: Signer;
}

/** The responseStatus values other than successful (RFC 6960 §4.2.1; 4 is not used). */
export type OcspErrorStatus = 'malformedRequest' | 'internalError' | 'tryLater' | 'sigRequired' | 'unauthorized';

const RESPONSE_STATUS: Record<OcspErrorStatus | 'successful', number> = {
  successful: 0,
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  sigRequired: 5,
  unauthorized: 6,
};
const STATUS_BY_CODE = new Map<number, OcspErrorStatus | 'successful'>(
  (Object.entries(RESPONSE_STATUS) as [OcspErrorStatus | 'successful', number][]).map(([name, code]) => [code, name]),
);

/** id-pkix-ocsp-basic (RFC 6960 §4.2.1). */
const OCSP_BASIC_OID = '1.3.6.1.5.5.7.48.1.1';

// Constant encodings, made once.
const SUCCESSFUL = enumerated(0);
const BASIC_TYPE = oid(OCSP_BASIC_OID);
const NONCE_OID = oid(OCSP_NONCE_OID);
/** good [0] IMPLICIT NULL and unknown [2] IMPLICIT UnknownInfo (NULL). */
const GOOD = Buffer.from([0x80, 0x00]);
const UNKNOWN = Buffer.from([0x82, 0x00]);
/** revocationReason [0] EXPLICIT CRLReason, one per reason code. */
const REASONS = new Map<number, Buffer>(Object.values(REVOCATION_REASONS).map((code) => [code, explicit(0, enumerated(code))]));

const ERROR_RESPONSES = new Map<OcspErrorStatus, Buffer>(
  (['malformedRequest', 'internalError', 'tryLater', 'sigRequired', 'unauthorized'] as const).map((s) => [
    s,
    sequence(enumerated(RESPONSE_STATUS[s])),
  ]),
);

/**
 * The OCSPResponse for a failure: just the responseStatus, no responseBytes (RFC 6960 §4.2.1), e.g.
 * `30 03 0a 01 01` for malformedRequest. The same Buffer is returned on every call: do not modify it.
 */
export function ocspErrorResponse(status: OcspErrorStatus): Buffer {
  const der = ERROR_RESPONSES.get(status);
  if (!der) throw new PkiError('invalid-argument', `unknown OCSP responseStatus ${JSON.stringify(status)}`);
  return der;
}

/** ResponderID byKey [2] EXPLICIT KeyHash per responder key (keyed by the SPKI Buffer the caller holds). */
const responderIds = new WeakMap<Buffer, Buffer>();

function responderIdByKey(spki: Buffer): Buffer {
  let id = responderIds.get(spki);
  if (!id) {
    // KeyHash ::= OCTET STRING -- SHA-1 hash of responder's public key (excluding the tag, length and unused-bits octet)
    id = explicit(2, octetString(createHash('sha1').update(subjectPublicKeyBits(spki)).digest()));
    responderIds.set(spki, id);
  }
  return id;
}

/**
 * GeneralizedTime encodings of recent instants. A responder signs many answers with the same
 * producedAt/thisUpdate/nextUpdate second, so most calls hit; the map is cleared when it grows.
 */
const timeCache = new Map<number, Buffer>();

function time(date: Date, what: string): Buffer {
  const ms = date instanceof Date ? date.getTime() : NaN;
  if (!Number.isFinite(ms)) throw new PkiError('invalid-argument', `${what} is not a valid date`);
  const second = Math.floor(ms / 1000);
  let encoded = timeCache.get(second);
  if (!encoded) {
    if (timeCache.size >= 4096) timeCache.clear();
    // RFC 6960 §4.2.2.1 / RFC 5280 §4.1.2.5.2: GeneralizedTime, Zulu, whole seconds.
    encoded = generalizedTime(date);
    timeCache.set(second, encoded);
  }
  return encoded;
}

function certStatusDer(s: CertStatus): Buffer {
  switch (s?.status) {
    case 'good':
      return GOOD;
    case 'unknown':
      return UNKNOWN;
    case 'revoked': {
      // revoked [1] IMPLICIT RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime,
      //   revocationReason [0] EXPLICIT CRLReason OPTIONAL }
      const revocationTime = time(s.revokedAt, 'revokedAt');
      const reason = s.reason;
      if (reason === null || reason === undefined || reason === REVOCATION_REASONS.unspecified) {
        // Left out, as a CRL entry leaves out reasonCode for unspecified (RFC 5280 §5.3.1), so that
        // OCSP and the CRL say the same thing.
        return tlvOf(0xa1, [revocationTime]);
      }
      if (!isReasonCode(reason) || reason === REVOCATION_REASONS.removeFromCRL) {
        // removeFromCRL only exists in delta CRLs (RFC 5280 §5.3.1); a released hold answers good.
        throw new PkiError('invalid-argument', `revocation reason ${String(reason)} cannot appear in an OCSP answer`);
      }
      return tlvOf(0xa1, [revocationTime, REASONS.get(reason)!]);
    }
    default:
      throw new PkiError('invalid-argument', `unknown certStatus ${JSON.stringify((s as { status?: unknown })?.status)}`);
  }
}

/**
 * A signed DER OCSPResponse (RFC 6960 §4.2.1): responseStatus successful, responseBytes of type
 * id-pkix-ocsp-basic. ResponseData v1 (version omitted), ResponderID byKey, times as whole-second
 * GeneralizedTime, one SingleResponse per entry in order, the nonce echoed in responseExtensions
 * when given, the certificates in `certs`.
 *
 * @throws PkiError('invalid-argument') for no responses, an invalid date, an unknown status or a
 * reason code that is not a CRLReason (or is removeFromCRL).
 */
export async function buildOcspResponse(p: BuildOcspResponseParams): Promise<Buffer> {
  if (!p.responses || p.responses.length === 0) throw new PkiError('invalid-argument', 'an OCSP response needs at least one SingleResponse');
  const single: Buffer[] = [];
  for (const r of p.responses) {
    if (!Buffer.isBuffer(r.certId) || r.certId[0] !== 0x30) throw new PkiError('invalid-argument', 'certId must be a DER CertID');
    // SingleResponse ::= SEQUENCE { certID, certStatus, thisUpdate GeneralizedTime,
    //   nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL, singleExtensions [1] EXPLICIT Extensions OPTIONAL }
    const parts = [r.certId, certStatusDer(r.certStatus), time(r.thisUpdate, 'thisUpdate')];
    if (r.nextUpdate !== undefined) {
      if (r.nextUpdate.getTime() < r.thisUpdate.getTime()) throw new PkiError('invalid-argument', 'nextUpdate is before thisUpdate');
      parts.push(tlvOf(0xa0, [time(r.nextUpdate, 'nextUpdate')]));
    }
    single.push(tlvOf(0x30, parts));
  }
  // ResponseData ::= SEQUENCE { version [0] EXPLICIT DEFAULT v1, responderID, producedAt,
  //   responses SEQUENCE OF SingleResponse, responseExtensions [1] EXPLICIT Extensions OPTIONAL }
  const dataParts = [responderIdByKey(p.responderPublicKeyInfo), time(p.producedAt, 'producedAt'), tlvOf(0x30, single)];
  if (p.nonce !== undefined && p.nonce !== null) {
    if (p.nonce.length === 0) throw new PkiError('invalid-argument', 'an empty nonce cannot be echoed (RFC 8954 §2.1)');
    dataParts.push(tlvOf(0xa1, [tlvOf(0x30, [tlvOf(0x30, [NONCE_OID, octetString(p.nonce)])])]));
  }
  const tbsResponseData = tlvOf(0x30, dataParts);
  const signature = await p.signer.sign(tbsResponseData);
  // BasicOCSPResponse ::= SEQUENCE { tbsResponseData, signatureAlgorithm, signature BIT STRING,
  //   certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
  const basicParts = [tbsResponseData, p.signer.signatureAlgorithm, bitString(signature)];
  if (p.certificates && p.certificates.length > 0) basicParts.push(tlvOf(0xa0, [tlvOf(0x30, p.certificates)]));
  const basic = tlvOf(0x30, basicParts);
  // OCSPResponse ::= SEQUENCE { responseStatus, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }
  // ResponseBytes ::= SEQUENCE { responseType OBJECT IDENTIFIER, response OCTET STRING }
  return tlvOf(0x30, [SUCCESSFUL, tlvOf(0xa0, [tlvOf(0x30, [BASIC_TYPE, octetString(basic)])])]);
}

/** A parsed OCSPResponse. */
export interface ParsedOcspResponse {
  responseStatus: OcspErrorStatus | 'successful';
  producedAt?: Date;
  /** The nonce extnValue contents, or null when the response has none (successful responses only). */
  nonce?: Buffer | null;
  responses: { certId: CertId; certStatus: CertStatus; thisUpdate: Date; nextUpdate?: Date }[];
  /** Certificates carried in `certs`, DER. */
  certificates: Buffer[];
  /** The signed ResponseData, DER. */
  tbsResponseData?: Buffer;
  /** DER AlgorithmIdentifier of the signature. */
  signatureAlgorithm?: Buffer;
  /** The signature value (BIT STRING contents without the unused-bits octet). */
  signature?: Buffer;
  /** SHA-1 of the responder key bits when the ResponderID is byKey. */
  responderKeyHash?: Buffer | null;
  /** DER Name of the responder when the ResponderID is byName. */
  responderName?: Buffer | null;
}

const fail = (message: string): never => {
  throw new DerError(message);
};

/**
 * Parses a DER OCSPResponse (RFC 6960 §4.2.1) of type id-pkix-ocsp-basic. The signature is not
 * verified: callers check it against the responder key (tests use `openssl ocsp`).
 *
 * @throws PkiError('malformed') for anything that is not a well-formed OCSPResponse.
 */
export function parseOcspResponse(der: Buffer): ParsedOcspResponse {
  try {
    return parseResponse(der);
  } catch (err) {
    if (err instanceof PkiError && err.code === 'malformed' && !(err instanceof DerError)) throw err;
    throw new PkiError('malformed', `malformed OCSP response: ${err instanceof DerError ? err.message : 'unreadable'}`);
  }
}

function parseResponse(der: Buffer): ParsedOcspResponse {
  const [statusEl, bytesEl] = elementsOf(readOnly(der, 0x30), 2, 1);
  if (statusEl.tag !== 0x0a || statusEl.content.length !== 1) fail('bad responseStatus');
  const responseStatus = STATUS_BY_CODE.get(statusEl.content[0]);
  if (!responseStatus) return fail(`unknown responseStatus ${statusEl.content[0]}`);
  if (responseStatus !== 'successful') {
    if (bytesEl) fail('an unsuccessful response carries no responseBytes');
    return { responseStatus, responses: [], certificates: [] };
  }
  if (!bytesEl || bytesEl.tag !== 0xa0) return fail('missing responseBytes');
  const [responseBytes] = elementsOf(bytesEl, 1, 1);
  const [typeEl, octets] = elementsOf(expectTag(responseBytes, 0x30), 2, 2);
  if (decodeOid(expectTag(typeEl, 0x06)) !== OCSP_BASIC_OID) fail('responseType is not id-pkix-ocsp-basic');
  const basic = readOnly(expectTag(octets, 0x04).content, 0x30);
  const [tbs, sigAlg, sig, certsEl] = elementsOf(basic, 4, 3);
  expectTag(tbs, 0x30);
  expectTag(sigAlg, 0x30);
  const sigBits = expectTag(sig, 0x03).content;
  if (sigBits.length === 0 || sigBits[0] !== 0) fail('signature BIT STRING has unused bits');
  const certificates: Buffer[] = [];
  if (certsEl) {
    const [list] = elementsOf(expectTag(certsEl, 0xa0), 1, 1);
    for (const c of elementsOf(expectTag(list, 0x30), 1024)) certificates.push(expectTag(c, 0x30).raw);
  }

  const parts = elementsOf(tbs, 5, 3);
  let i = 0;
  if (parts[i].tag === 0xa0) {
    const [version] = elementsOf(parts[i], 1, 1);
    if (version.tag !== 0x02 || version.content.length !== 1 || version.content[0] !== 0) fail('unsupported ResponseData version');
    i++;
  }
  const responderEl = parts[i++];
  let responderKeyHash: Buffer | null = null;
  let responderName: Buffer | null = null;
  if (responderEl?.tag === 0xa1) {
    responderName = expectTag(elementsOf(responderEl, 1, 1)[0], 0x30).raw;
  } else if (responderEl?.tag === 0xa2) {
    responderKeyHash = expectTag(elementsOf(responderEl, 1, 1)[0], 0x04).content;
  } else {
    fail('bad responderID');
  }
  const producedAt = readGeneralizedTime(parts[i++], 'producedAt');
  const list = expectTag(parts[i++], 0x30);
  let nonce: Buffer | null = null;
  if (i < parts.length) {
    for (const ext of readExtensions(expectTag(parts[i++], 0xa1))) if (ext.oid === OCSP_NONCE_OID) nonce = ext.value;
  }
  if (i !== parts.length) fail('unexpected element in ResponseData');

  const responses: ParsedOcspResponse['responses'] = [];
  for (const single of elementsOf(list, 4096)) {
    const f = elementsOf(expectTag(single, 0x30), 5, 3);
    const certId = readCertId(f[0]);
    const certStatus = readCertStatus(f[1]);
    const thisUpdate = readGeneralizedTime(f[2], 'thisUpdate');
    let j = 3;
    let nextUpdate: Date | undefined;
    if (f[j]?.tag === 0xa0) nextUpdate = readGeneralizedTime(elementsOf(f[j++], 1, 1)[0], 'nextUpdate');
    if (f[j]?.tag === 0xa1) readExtensions(f[j++]);
    if (j !== f.length) fail('unexpected element in SingleResponse');
    responses.push(nextUpdate ? { certId, certStatus, thisUpdate, nextUpdate } : { certId, certStatus, thisUpdate });
  }
  return {
    responseStatus,
    producedAt,
    nonce,
    responses,
    certificates,
    tbsResponseData: tbs.raw,
    signatureAlgorithm: sigAlg.raw,
    signature: sigBits.subarray(1),
    responderKeyHash,
    responderName,
  };
}

function readCertStatus(el: DerElement | undefined): CertStatus {
  if (!el) return fail('missing certStatus');
  if (el.tag === 0x80 && el.content.length === 0) return { status: 'good' };
  if (el.tag === 0x82 && el.content.length === 0) return { status: 'unknown' };
  if (el.tag !== 0xa1) return fail('bad certStatus');
  const [timeEl, reasonEl] = elementsOf(el, 2, 1);
  const revokedAt = readGeneralizedTime(timeEl, 'revocationTime');
  if (!reasonEl) return { status: 'revoked', revokedAt, reason: null };
  const [enumEl] = elementsOf(expectTag(reasonEl, 0xa0), 1, 1);
  if (enumEl.tag !== 0x0a || enumEl.content.length !== 1 || !isReasonCode(enumEl.content[0])) fail('bad revocationReason');
  return { status: 'revoked', revokedAt, reason: enumEl.content[0] };
}
