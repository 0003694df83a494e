/**
 * Reads X.509 v2 CRLs (RFC 5280 §5.1), full and delta, for the admin API, the CLI and tests; the
 * builder is crl.ts. Checks structure and forms, not the signature.
 */
import { children, readOnly, decodeOid, DerError, expectTag, type DerElement } from './der-reader.ts';
import { Tag } from './der-tag.ts';
import { readTime, readTimeAt } from './der-time.ts';
import { PkiError } from './pki-error.ts';
import { isReasonCode } from './revocation-reason.ts';
import { CRL_EXTENSION_OIDS, type CrlEntry } from './crl.ts';

/** A parsed CRL. */
export interface ParsedCrl {
  /** DER Name of the issuer. */
  issuer: Buffer;
  thisUpdate: Date;
  nextUpdate: Date | null;
  crlNumber: bigint | null;
  /** The deltaCRLIndicator's BaseCRLNumber, for a delta CRL; null for a full CRL. */
  baseCrlNumber: bigint | null;
  /** Entries with reason and invalidityDate set to null when absent. */
  entries: CrlEntry[];
  /** The signed TBSCertList, DER. */
  tbs: Buffer;
  /** The signature value (BIT STRING contents without the unused-bits octet). */
  signature: Buffer;
  /** DER AlgorithmIdentifier of the signature. */
  signatureAlgorithm: Buffer;
  /** keyIdentifier of the authorityKeyIdentifier extension, or null. */
  authorityKeyId?: Buffer | null;
  /** The first fullName URI of the issuingDistributionPoint extension, or null. */
  distributionPoint?: string | null;
  /** The first fullName URI of the freshestCRL extension, or null. */
  freshestCrl?: string | null;
}

const fail = (message: string): never => {
  throw new DerError(message);
};

/**
 * Parses a DER CertificateList (RFC 5280 §5.1). Checks structure, that the inner and outer signature
 * algorithms agree (§5.1.1.2) and the forms of times and numbers; it does not verify the signature
 * or judge extensions it does not know.
 *
 * @throws PkiError('malformed') for anything that is not a well-formed CRL.
 */
export function parseCrl(der: Buffer): ParsedCrl {
  try {
    return parse(der);
  } catch (err) {
    if (err instanceof PkiError && err.code === 'malformed' && !(err instanceof DerError)) throw err;
    const detail = err instanceof DerError ? err.message : 'unreadable CRL';
    throw new PkiError('malformed', `malformed CRL: ${detail}`);
  }
}

function parse(der: Buffer): ParsedCrl {
  const [tbs, sigAlg, sig, extra] = children(readOnly(der, 0x30));
  if (extra || !sig) fail('CertificateList has not three elements');
  expectTag(tbs, 0x30);
  expectTag(sigAlg, 0x30);
  const sigBits = expectTag(sig, 0x03).content;
  if (sigBits.length === 0 || sigBits[0] !== 0) fail('signature BIT STRING has unused bits');

  const parts = children(tbs);
  let i = 0;
  if (parts[i]?.tag === 0x02) {
    if (parts[i].content.length !== 1 || parts[i].content[0] !== 1) fail('unsupported CRL version');
    i++;
  }
  const innerAlg = expectTag(parts[i++], 0x30);
  if (!innerAlg.raw.equals(sigAlg.raw)) fail('signature algorithms of TBSCertList and CertificateList differ (RFC 5280 §5.1.1.2)');
  const issuer = expectTag(parts[i++], 0x30).raw;
  const thisUpdate = readTime(parts[i++], 'thisUpdate');
  let nextUpdate: Date | null = null;
  if (parts[i]?.tag === Tag.UTC_TIME || parts[i]?.tag === Tag.GENERALIZED_TIME) nextUpdate = readTime(parts[i++], 'nextUpdate');
  const entries: CrlEntry[] = [];
  if (parts[i]?.tag === 0x30) readEntries(parts[i++], entries);
  let crlNumber: bigint | null = null;
  let baseCrlNumber: bigint | null = null;
  let authorityKeyId: Buffer | null = null;
  let distributionPoint: string | null = null;
  let freshestCrl: string | null = null;
  if (parts[i]?.tag === 0xa0) {
    const [list, more] = children(parts[i++]);
    if (more) fail('extra element after crlExtensions');
    for (const ext of readExtensionList(expectTag(list, 0x30))) {
      switch (ext.oid) {
        case CRL_EXTENSION_OIDS.cRLNumber:
          crlNumber = readNumber(readOnly(ext.value));
          break;
        case CRL_EXTENSION_OIDS.deltaCRLIndicator:
          baseCrlNumber = readNumber(readOnly(ext.value));
          break;
        case CRL_EXTENSION_OIDS.authorityKeyIdentifier: {
          const keyId = children(readOnly(ext.value, 0x30)).find((c) => c.tag === 0x80);
          authorityKeyId = keyId ? keyId.content : null;
          break;
        }
        case CRL_EXTENSION_OIDS.issuingDistributionPoint:
          distributionPoint = readFullNameUri(readOnly(ext.value, 0x30));
          break;
        case CRL_EXTENSION_OIDS.freshestCrl: {
          const [first] = children(readOnly(ext.value, 0x30));
          freshestCrl = first ? readFullNameUri(expectTag(first, 0x30)) : null;
          break;
        }
      }
    }
  }
  if (i !== parts.length) fail('unexpected element in TBSCertList');
  return {
    issuer,
    thisUpdate,
    nextUpdate,
    crlNumber,
    baseCrlNumber,
    entries,
    tbs: tbs.raw,
    signature: sigBits.subarray(1),
    signatureAlgorithm: sigAlg.raw,
    authorityKeyId,
    distributionPoint,
    freshestCrl,
  };
}

/** The first URI of the fullName in a SEQUENCE that starts with distributionPoint [0]. */
function readFullNameUri(seq: DerElement): string | null {
  const dp = children(seq).find((c) => c.tag === 0xa0);
  const fullName = dp ? children(dp).find((c) => c.tag === 0xa0) : undefined;
  const uri = fullName ? children(fullName).find((c) => c.tag === 0x86) : undefined;
  return uri ? uri.content.toString('latin1') : null;
}

/**
 * Reads revokedCertificates without building a DerElement per TLV: a million-entry CRL parses in
 * about a second. Same DER rules as der-reader.ts (definite, minimal lengths; nothing past a parent).
 */
function readEntries(list: DerElement, out: CrlEntry[]): void {
  const buf = list.content;
  const end = buf.length;
  let o = 0;
  while (o < end) {
    header(buf, o, end, 0x30, 'CRL entry');
    const entryEnd = hEnd;
    header(buf, hStart, entryEnd, 0x02, 'userCertificate');
    const serial = serialHex(buf, hStart, hEnd);
    const timeTag = buf[hEnd];
    header(buf, hEnd, entryEnd, -1, 'revocationDate');
    const revokedAt = readTimeAt(buf, timeTag, hStart, hEnd);
    let p = hEnd;
    let reason: number | null = null;
    let invalidityDate: Date | null = null;
    if (p < entryEnd) {
      header(buf, p, entryEnd, 0x30, 'crlEntryExtensions');
      const extsEnd = hEnd;
      if (hStart === extsEnd) fail('empty crlEntryExtensions');
      p = hStart;
      let seenReason = false;
      let seenInvalidity = false;
      while (p < extsEnd) {
        header(buf, p, extsEnd, 0x30, 'Extension');
        const extEnd = hEnd;
        header(buf, hStart, extEnd, 0x06, 'extnID');
        const oidStart = hStart;
        const oidLength = hEnd - hStart;
        if (buf[hEnd] === 0x01) header(buf, hEnd, extEnd, 0x01, 'critical');
        header(buf, hEnd, extEnd, 0x04, 'extnValue');
        if (hEnd !== extEnd) fail('extra element in Extension');
        const valueStart = hStart;
        const valueEnd = hEnd;
        // id-ce-cRLReasons 2.5.29.21 and id-ce-invalidityDate 2.5.29.24: content 55 1d 15 / 55 1d 18
        if (oidLength === 3 && buf[oidStart] === 0x55 && buf[oidStart + 1] === 0x1d) {
          if (buf[oidStart + 2] === 0x15) {
            if (seenReason) fail('reasonCode appears twice');
            seenReason = true;
            header(buf, valueStart, valueEnd, 0x0a, 'CRLReason');
            if (hEnd !== valueEnd || hEnd - hStart !== 1 || !isReasonCode(buf[hStart])) fail('bad reasonCode');
            reason = buf[hStart];
          } else if (buf[oidStart + 2] === 0x18) {
            if (seenInvalidity) fail('invalidityDate appears twice');
            seenInvalidity = true;
            header(buf, valueStart, valueEnd, 0x18, 'invalidityDate');
            if (hEnd !== valueEnd) fail('bad invalidityDate');
            invalidityDate = readTimeAt(buf, Tag.GENERALIZED_TIME, hStart, hEnd);
          }
        }
        p = extEnd;
      }
    }
    if (p !== entryEnd) fail('extra element in a CRL entry');
    out.push({ serial, revokedAt, reason, invalidityDate });
    o = entryEnd;
  }
}

// Result registers of header(): content start and end of the TLV just read.
let hStart = 0;
let hEnd = 0;

/** Reads the TLV header at `o` (which must end by `limit`), checks its tag unless `tag` is -1, sets hStart/hEnd. */
function header(buf: Buffer, o: number, limit: number, tag: number, what: string): void {
  if (o + 2 > limit) fail(`truncated ${what}`);
  if (tag !== -1 && buf[o] !== tag) fail(`${what}: expected tag 0x${tag.toString(16)}, found 0x${buf[o].toString(16)}`);
  let length = buf[o + 1];
  let start = o + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 4) fail(`${what}: bad DER length`);
    if (start + n > limit) fail(`truncated ${what}`);
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[start + i];
    if (length < 0x80 || buf[start] === 0) fail(`${what}: non-minimal DER length`);
    start += n;
  }
  if (start + length > limit) fail(`truncated ${what}`);
  hStart = start;
  hEnd = start + length;
}

function serialHex(buf: Buffer, start: number, end: number): string {
  const length = end - start;
  if (length === 0) fail('empty serial number');
  if (length > 1 && buf[start] === 0 && buf[start + 1] < 0x80) fail('serial number is not minimally encoded');
  // Negative serials exist in the wild (RFC 5280 §4.1.2.2 asks users to cope); tierca never issues them.
  if (buf[start] & 0x80) fail('negative serial number');
  return buf.toString('hex', length > 1 && buf[start] === 0 ? start + 1 : start, end);
}

function readNumber(el: DerElement): bigint {
  const c = expectTag(el, 0x02).content;
  if (c.length === 0 || c.length > 21 || c[0] & 0x80) fail('bad CRL number');
  return BigInt(`0x${c.toString('hex')}`);
}

interface RawExtension {
  oid: string;
  critical: boolean;
  value: Buffer;
}

function readExtensionList(list: DerElement): RawExtension[] {
  const out: RawExtension[] = [];
  for (const item of children(list)) {
    const parts = children(expectTag(item, 0x30));
    if (parts.length < 2 || parts.length > 3) fail('bad Extension');
    const extOid = decodeOid(expectTag(parts[0], 0x06));
    const critical = parts.length === 3 && expectTag(parts[1], 0x01).content[0] === 0xff;
    if (out.some((e) => e.oid === extOid)) fail(`extension ${extOid} appears twice (RFC 5280 §4.2)`);
    out.push({ oid: extOid, critical, value: expectTag(parts[parts.length - 1], 0x04).content });
  }
  return out;
}
