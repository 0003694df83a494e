/**
 * RFC 6960 OCSP requests: a strict parser for what arrives on `POST /ocsp` and `GET /ocsp/{base64}`,
 * the CertID builder the pre-signer and the CLI use, and a request builder for `tierca ocsp check`,
 * tests and benchmarks.
 *
 * Why the hand-made DER reader (der-reader.ts) and not pkijs/asn1js: the request parser sits on the
 * hot path of every OCSP answer, and pkijs's object model costs about as much per message as the whole
 * P-256 signature many times over (pkijs builds and signs ~2,000 OCSP responses/s on this machine kind
 * against ~36,000 bare P-256 signatures/s, ../shared/PERFORMANCE-NOTES.md). The reader here walks the
 * TLVs of the request once, copies nothing and checks every tag and count, so a hostile request costs
 * no more than a valid one. pkijs stays in the tests as a second, independent parser.
 *
 * Every failure of {@link parseOcspRequest} is a PkiError('malformed'), which the OCSP route turns
 * into the `malformedRequest` responseStatus (RFC 6960 §2.3); nothing else escapes it.
 */
import { createHash } from 'node:crypto';
import { explicit, integer, nullValue, octetString, oid, sequence, tlvOf } from './der.ts';
import { readElement, readOnly, decodeOid, DerError, expectTag, type DerElement } from './der-reader.ts';
import { isConstructed, tagHex } from './der-tag.ts';
import { subjectPublicKeyBits } from './key-pair.ts';
import { PkiError } from './pki-error.ts';

/** The hash algorithms a CertID may name, and their output lengths in octets. */
export type CertIdHashAlgorithm = 'sha1' | 'sha256' | 'sha384' | 'sha512';

/** One CertID of a request (RFC 6960 §4.1.1). The Buffers are views into the parsed request, not copies. */
export interface CertId {
  hashAlgorithm: CertIdHashAlgorithm;
  /** Hash of the issuer's DER-encoded Name. */
  issuerNameHash: Buffer;
  /** Hash of the issuer's subjectPublicKey BIT STRING value (without the unused-bits octet). */
  issuerKeyHash: Buffer;
  /** Serial number as lowercase hex without leading zero octets (tierca's canonical form). */
  serial: string;
  /** The CertID SEQUENCE exactly as received, to echo in the SingleResponse (RFC 6960 §4.2.1). */
  raw: Buffer;
}

/** A parsed OCSPRequest (RFC 6960 §4.1.1). */
export interface OcspRequest {
  certIds: CertId[];
  /**
   * The nonce extension's extnValue contents, to echo verbatim in the response (RFC 6960 §4.4.1);
   * per RFC 8954/9654 this is the DER of an OCTET STRING holding the nonce. Null when absent.
   */
  nonce: Buffer | null;
  /** Whether the request carried optionalSignature (not verified: tierca does not require signed requests). */
  signed: boolean;
}

/** Limits {@link parseOcspRequest} enforces. */
export interface OcspRequestLimits {
  /** Most CertIDs accepted in one request. Default 16. */
  maxRequests?: number;
  /**
   * Longest nonce accepted, in octets. Default 128: RFC 9654 §2.1 (which obsoletes RFC 8954 and its
   * 32-octet cap) says a server MUST reject a nonce of 0 octets or of more than 128 octets with
   * malformedRequest. Pass 32 for RFC 8954 behaviour.
   */
  maxNonceLength?: number;
}

/** id-pkix-ocsp-nonce (RFC 6960 §4.4.1). */
export const OCSP_NONCE_OID = '1.3.6.1.5.5.7.48.1.2';

/** Hash OIDs of CertID.hashAlgorithm (RFC 6960 §4.1.1; RFC 5754 §2 for SHA-2). */
const HASH_OIDS: Record<CertIdHashAlgorithm, string> = {
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
};
const HASH_LENGTHS: Record<CertIdHashAlgorithm, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

/** OID content octets (hex) → hash name, so a CertID's algorithm is found without decoding the OID. */
const HASH_BY_OID_CONTENT = new Map<string, CertIdHashAlgorithm>(
  (Object.keys(HASH_OIDS) as CertIdHashAlgorithm[]).map((h) => [oid(HASH_OIDS[h]).subarray(2).toString('hex'), h]),
);

/**
 * CertID AlgorithmIdentifiers as `openssl ocsp` writes them: with NULL parameters for SHA-1 and
 * SHA-2 alike (RFC 5754 §2 lets readers accept both forms; responders match on the OID).
 */
const CERT_ID_ALGORITHMS: Record<'sha1' | 'sha256', Buffer> = {
  sha1: sequence(oid(HASH_OIDS.sha1), nullValue()),
  sha256: sequence(oid(HASH_OIDS.sha256), nullValue()),
};

/** Serials longer than this (content octets) are refused: RFC 5280 §4.1.2.2 caps conforming serials at 20 octets. */
const MAX_SERIAL_OCTETS = 32;

const fail = (message: string): never => {
  throw new DerError(message);
};

/**
 * Parses a DER OCSPRequest (RFC 6960 §4.1.1) strictly: DER lengths only, exact element counts and
 * tags, CertID hashes of the right length, minimal non-negative serials, no duplicate extensions, no
 * unknown critical extension, 1..`maxRequests` CertIDs, a nonce of 1..`maxNonceLength` octets.
 * The optional signature is checked for shape only.
 *
 * @throws PkiError('malformed') for any problem, whatever the input — never another error type.
 */
export function parseOcspRequest(der: Buffer, limits: OcspRequestLimits = {}): OcspRequest {
  try {
    const maxRequests = limits.maxRequests ?? 16;
    const maxNonceLength = limits.maxNonceLength ?? 128;
    const input: unknown = der;
    if (!(input instanceof Uint8Array)) return fail('request is not bytes');
    const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    return parseRequest(buf, maxRequests, maxNonceLength);
  } catch (err) {
    if (err instanceof PkiError && err.code === 'malformed' && !(err instanceof DerError)) throw err;
    const detail = err instanceof DerError ? err.message : 'unreadable request';
    throw new PkiError('malformed', `malformed OCSP request: ${detail}`);
  }
}

function parseRequest(buf: Buffer, maxRequests: number, maxNonceLength: number): OcspRequest {
  // OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT Signature OPTIONAL }
  const top = readOnly(buf, 0x30);
  const outer = elementsOf(top, 2);
  const tbs = expectTag(outer[0], 0x30, 'tbsRequest');
  let signed = false;
  if (outer.length === 2) {
    checkSignature(expectTag(outer[1], 0xa0, 'optionalSignature'));
    signed = true;
  }

  // TBSRequest ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, requestorName [1] EXPLICIT
  //   GeneralName OPTIONAL, requestList SEQUENCE OF Request, requestExtensions [2] EXPLICIT Extensions OPTIONAL }
  const parts = elementsOf(tbs, 4);
  let i = 0;
  if (parts[i]?.tag === 0xa0) {
    // DER omits a DEFAULT value, but some clients write v1 explicitly; accept it, refuse any other version.
    const [version] = elementsOf(parts[i], 1, 1);
    if (version.tag !== 0x02 || version.content.length !== 1 || version.content[0] !== 0) fail('unsupported request version');
    i++;
  }
  if (parts[i]?.tag === 0xa1) {
    elementsOf(parts[i], 1, 1); // requestorName: one GeneralName, not used by tierca
    i++;
  }
  const requestList = expectTag(parts[i++], 0x30, 'requestList');
  let nonce: Buffer | null = null;
  if (i < parts.length && parts[i].tag === 0xa2) {
    for (const ext of readExtensions(parts[i++])) {
      // The nonce is the only request extension tierca acts on; others are ignored unless critical
      // (RFC 5280 §4.2: what cannot be processed must not be ignored when it is marked critical).
      if (ext.oid === OCSP_NONCE_OID) nonce = checkNonce(ext.value, maxNonceLength);
      else if (ext.critical) fail(`unsupported critical request extension ${ext.oid}`);
    }
  }
  if (i !== parts.length) fail('unexpected element in tbsRequest');

  const certIds: CertId[] = [];
  let offset = 0;
  const list = requestList.content;
  while (offset < list.length) {
    if (certIds.length === maxRequests) fail(`more than ${maxRequests} CertIDs in one request`);
    const request = readElement(list, offset);
    offset += request.raw.length;
    // Request ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
    const fields = elementsOf(expectTag(request, 0x30, 'Request'), 2);
    if (fields.length === 2) {
      for (const ext of readExtensions(expectTag(fields[1], 0xa0, 'singleRequestExtensions'))) {
        if (ext.critical) fail(`unsupported critical singleRequestExtension ${ext.oid}`);
      }
    }
    certIds.push(readCertId(fields[0]));
  }
  if (certIds.length === 0) fail('requestList is empty');
  return { certIds, nonce, signed };
}

/**
 * Reads one CertID (RFC 6960 §4.1.1). Exported for the response parser.
 *
 * @throws DerError on any structural problem; callers add what they were reading to the message.
 */
export function readCertId(el: DerElement | undefined): CertId {
  // CertID ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash OCTET STRING,
  //   issuerKeyHash OCTET STRING, serialNumber CertificateSerialNumber }
  const certId = expectTag(el, 0x30, 'CertID');
  const fields = elementsOf(certId, 4, 4);
  const algParts = elementsOf(expectTag(fields[0], 0x30, 'hashAlgorithm'), 2, 1);
  const algOid = expectTag(algParts[0], 0x06, 'hash algorithm OID');
  const hashAlgorithm = HASH_BY_OID_CONTENT.get(algOid.content.toString('hex'));
  if (!hashAlgorithm) fail('unsupported CertID hash algorithm');
  // RFC 5754 §2: parameters absent or NULL.
  if (algParts.length === 2 && (algParts[1].tag !== 0x05 || algParts[1].content.length !== 0)) fail('bad hash algorithm parameters');
  const length = HASH_LENGTHS[hashAlgorithm!];
  const issuerNameHash = expectTag(fields[1], 0x04, 'issuerNameHash').content;
  const issuerKeyHash = expectTag(fields[2], 0x04, 'issuerKeyHash').content;
  if (issuerNameHash.length !== length || issuerKeyHash.length !== length) fail(`CertID hash is not ${length} octets long`);
  return { hashAlgorithm: hashAlgorithm!, issuerNameHash, issuerKeyHash, serial: readSerial(fields[3]), raw: certId.raw };
}

/** A CertificateSerialNumber as canonical hex: non-negative, minimally encoded (X.690 §8.3.2), at most 32 octets. */
function readSerial(el: DerElement): string {
  const c = expectTag(el, 0x02, 'serialNumber').content;
  if (c.length === 0) fail('empty serialNumber');
  if (c.length > 1 && ((c[0] === 0 && c[1] < 0x80) || (c[0] === 0xff && c[1] >= 0x80))) fail('serialNumber is not minimally encoded');
  if (c[0] & 0x80) fail('negative serialNumber');
  if (c.length > MAX_SERIAL_OCTETS + 1) fail('serialNumber too long');
  const magnitude = c.length > 1 && c[0] === 0 ? c.subarray(1) : c;
  return magnitude.toString('hex');
}

function checkNonce(value: Buffer, maxNonceLength: number): Buffer {
  // RFC 8954/9654 §2.1: extnValue holds an OCTET STRING with the nonce. Clients that predate RFC 8954
  // put the bare nonce in extnValue; their length is the whole value. Either way it is echoed verbatim.
  let length = value.length;
  if (value.length >= 2 && value[0] === 0x04) {
    try {
      length = readOnly(value, 0x04).content.length;
    } catch {
      // not a wrapped nonce: a bare legacy nonce
    }
  }
  if (length === 0) fail('empty nonce');
  if (length > maxNonceLength) fail(`nonce longer than ${maxNonceLength} octets`);
  return value;
}

/** Signature ::= SEQUENCE { signatureAlgorithm, signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL } */
function checkSignature(wrapper: DerElement): void {
  const [signature] = elementsOf(wrapper, 1, 1);
  const parts = elementsOf(expectTag(signature, 0x30, 'Signature'), 3, 2);
  elementsOf(expectTag(parts[0], 0x30, 'signatureAlgorithm'), 2, 1);
  const bits = expectTag(parts[1], 0x03, 'signature');
  if (bits.content.length < 1) fail('empty signature BIT STRING');
  if (parts.length === 3) {
    const [certs] = elementsOf(expectTag(parts[2], 0xa0, 'certs'), 1, 1);
    for (const cert of elementsOf(expectTag(certs, 0x30, 'certs'), 64)) expectTag(cert, 0x30, 'Certificate');
  }
}

/** One parsed extension (RFC 5280 §4.1). */
export interface ParsedExtension {
  oid: string;
  critical: boolean;
  /** extnValue contents. */
  value: Buffer;
}

/**
 * Reads `[n] EXPLICIT Extensions` (Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension): each with a
 * DER BOOLEAN if critical is present, no OID twice (RFC 5280 §4.2). Exported for the response parser.
 */
export function readExtensions(wrapper: DerElement): ParsedExtension[] {
  const [list] = elementsOf(wrapper, 1, 1);
  const items = elementsOf(expectTag(list, 0x30, 'Extensions'), 64, 1);
  const out: ParsedExtension[] = [];
  for (const item of items) {
    const parts = elementsOf(expectTag(item, 0x30, 'Extension'), 3, 2);
    const extOid = decodeOid(expectTag(parts[0], 0x06, 'extnID'));
    let critical = false;
    if (parts.length === 3) {
      const flag = expectTag(parts[1], 0x01, 'critical').content;
      if (flag.length !== 1 || (flag[0] !== 0 && flag[0] !== 0xff)) fail('critical is not a DER BOOLEAN');
      critical = flag[0] === 0xff;
    }
    const value = expectTag(parts[parts.length - 1], 0x04, 'extnValue').content;
    if (out.some((e) => e.oid === extOid)) fail(`extension ${extOid} appears twice`);
    out.push({ oid: extOid, critical, value });
  }
  return out;
}

/**
 * The children of a constructed element, refusing more than `max` (so a flood of tiny elements costs
 * nothing) and fewer than `min`.
 */
export function elementsOf(el: DerElement, max: number, min = 0): DerElement[] {
  if (!isConstructed(el.tag)) fail(`tag ${tagHex(el.tag)} is not constructed`);
  const out: DerElement[] = [];
  let offset = 0;
  while (offset < el.content.length) {
    if (out.length === max) fail(`more than ${max} elements in tag 0x${el.tag.toString(16)}`);
    const child = readElement(el.content, offset);
    out.push(child);
    offset += child.raw.length;
  }
  if (out.length < min) fail(`fewer than ${min} elements in tag 0x${el.tag.toString(16)}`);
  return out;
}


/** Parameters of {@link certIdFor}. */
export interface CertIdParams {
  /** DER Name of the issuer (the issuer certificate's subject). */
  issuerName: Buffer;
  /** DER SubjectPublicKeyInfo of the issuer. */
  issuerPublicKeyInfo: Buffer;
  /** Serial number, hex (any case, leading zeros allowed). */
  serial: string;
  /** Hash for issuerNameHash and issuerKeyHash. Default 'sha1', what RFC 5019 §2.1.1 clients send. */
  hashAlgorithm?: 'sha1' | 'sha256';
}

/**
 * The DER CertID (RFC 6960 §4.1.1) of a certificate: issuerNameHash over the issuer's DER Name,
 * issuerKeyHash over the issuer's subjectPublicKey BIT STRING value, the serial as an INTEGER.
 *
 * @throws PkiError('invalid-argument') for a serial that is not hex.
 */
export function certIdFor({ issuerName, issuerPublicKeyInfo, serial, hashAlgorithm = 'sha1' }: CertIdParams): Buffer {
  const algorithm = CERT_ID_ALGORITHMS[hashAlgorithm];
  if (!algorithm) throw new PkiError('invalid-argument', `unsupported CertID hash ${String(hashAlgorithm)}`);
  return tlvOf(0x30, [issuerPartOf(hashAlgorithm, algorithm, issuerName, issuerPublicKeyInfo), serialInteger(serial)]);
}

/**
 * The issuer's part of a CertID (hashAlgorithm, issuerNameHash, issuerKeyHash), kept for the last few
 * issuers: every answer a CA's responder signs repeats it, and it costs two hashes and a key parse.
 */
const issuerParts = new Map<string, Buffer>();
const ISSUER_PARTS_MAX = 64;

function issuerPartOf(hashAlgorithm: string, algorithm: Buffer, issuerName: Buffer, issuerPublicKeyInfo: Buffer): Buffer {
  const key = `${hashAlgorithm}:${issuerName.toString('latin1')}:${issuerPublicKeyInfo.toString('latin1')}`;
  let part = issuerParts.get(key);
  if (!part) {
    const nameHash = createHash(hashAlgorithm).update(issuerName).digest();
    const keyHash = createHash(hashAlgorithm).update(subjectPublicKeyBits(issuerPublicKeyInfo)).digest();
    part = Buffer.concat([algorithm, octetString(nameHash), octetString(keyHash)]);
    if (issuerParts.size >= ISSUER_PARTS_MAX) issuerParts.clear();
    issuerParts.set(key, part);
  }
  return part;
}

/** INTEGER of a hex serial. */
export function serialInteger(serial: string): Buffer {
  if (typeof serial !== 'string' || !/^[0-9a-fA-F]{1,64}$/.test(serial)) {
    throw new PkiError('invalid-argument', `serial must be 1 to 64 hex digits, got ${JSON.stringify(serial)}`);
  }
  return integer(Buffer.from(serial.length % 2 ? `0${serial}` : serial, 'hex'));
}

/** Parameters of {@link buildOcspRequest}. */
export interface BuildOcspRequestParams {
  /** DER CertIDs (from {@link certIdFor}), in order. */
  certIds: Buffer[];
  /** Raw nonce octets; wrapped in an OCTET STRING as RFC 8954 §2.1 asks. Default: no nonce. */
  nonce?: Buffer;
}

/**
 * An unsigned DER OCSPRequest (RFC 6960 §4.1.1), version omitted (DEFAULT v1), with the nonce
 * extension when a nonce is given.
 *
 * @throws PkiError('invalid-argument') for no CertIDs or an empty nonce.
 */
export function buildOcspRequest({ certIds, nonce }: BuildOcspRequestParams): Buffer {
  if (certIds.length === 0) throw new PkiError('invalid-argument', 'an OCSP request needs at least one CertID');
  const requestList = tlvOf(0x30, certIds.map((id) => sequence(id)));
  const tbsParts: Buffer[] = [requestList];
  if (nonce !== undefined) {
    if (nonce.length === 0) throw new PkiError('invalid-argument', 'a nonce holds at least one octet (RFC 8954 §2.1)');
    tbsParts.push(explicit(2, sequence(sequence(oid(OCSP_NONCE_OID), octetString(octetString(nonce))))));
  }
  return sequence(tlvOf(0x30, tbsParts));
}
