/**
 * X.509 v2 CRLs (RFC 5280 §5): full and delta CRLs built for the publisher (the parser, for the
 * admin API, the CLI and tests, is crl-reader.ts).
 *
 * Why hand-made DER (der.ts) and not pkijs/asn1js: a tier CA's CRL may list a million certificates
 * and must be rebuilt every few hours, in under 10 s and 1 GiB. pkijs keeps an object graph per entry
 * (a RevokedCertificate, its Time, its Extensions, each with asn1js value blocks): measured on this
 * machine kind, pkijs 4 needed 10 s and 1.1 GiB of RSS just to encode 100,000 entries (unsigned), so a
 * million would take minutes and ~10 GiB. Here each entry is written straight into large byte chunks
 * (serial octets, time digits, constant extension prefixes) and nothing of it is kept but those bytes;
 * the chunks are copied once into the buffer of the whole CertificateList, where the signer hashes
 * the TBSCertList in place: 1,000,000 entries build in about a second and ~200 MiB beyond the
 * caller's input (measurement in test/unit/crl.test.ts, bench/crl-build.ts). Entries may come from an
 * async iterable — the CRL publisher streams them from storage page by page — so that no one holds a
 * million entry objects. `openssl crl` and `openssl verify -crl_check` read the result in
 * test/interop/crl.test.ts; pkijs reads it back in test/unit/crl.test.ts.
 */
import { bitString, explicit, ia5String, integer, octetString, oid, tlvOf, x509Time, encodeLength } from './der.ts';
import { readOnly } from './der-reader.ts';
import { PkiError } from './pki-error.ts';
import { isReasonCode, REVOCATION_REASONS } from './revocation-reason.ts';
import type { Signer } from './signer.ts';

/** One revoked certificate of a CRL. */
export interface CrlEntry {
  /** Serial number, hex (any case, leading zeros allowed when building; canonical lowercase when parsed). */
  serial: string;
  /** revocationDate, truncated to whole seconds. */
  revokedAt: Date;
  /** CRLReason (RFC 5280 §5.3.1); null/undefined or unspecified (0) leave the reasonCode extension out. */
  reason?: number | null;
  /** invalidityDate entry extension (RFC 5280 §5.3.2), GeneralizedTime. */
  invalidityDate?: Date | null;
}

/** Parameters of {@link buildCrl}. */
export interface BuildCrlParams {
  /** DER Name of the issuing CA (its certificate's subject). */
  issuer: Buffer;
  /** The CA's subject key identifier, for the authorityKeyIdentifier extension (RFC 5280 §5.2.1). */
  authorityKeyId: Buffer;
  thisUpdate: Date;
  /** Must be later than thisUpdate (RFC 5280 §5.1.2.5 requires conforming CAs to include it). */
  nextUpdate: Date;
  /** cRLNumber (RFC 5280 §5.2.3), 0 ≤ n < 2^159 (at most 20 octets). */
  crlNumber: bigint;
  /** When present, a delta CRL: critical deltaCRLIndicator naming this base (RFC 5280 §5.2.4); must be below crlNumber. */
  baseCrlNumber?: bigint;
  /**
   * The revoked certificates, in the order to list them. Read once, entry by entry: may be a
   * generator, or an async iterable that reads them from storage while the CRL is written (only the
   * encoded bytes are kept, never the entries).
   */
  entries: Iterable<CrlEntry> | AsyncIterable<CrlEntry>;
  signer: Signer;
  /** URI for a critical issuingDistributionPoint fullName (RFC 5280 §5.2.5). Default: none. */
  distributionPoint?: string;
  /**
   * URI of the delta CRLs for a full CRL: a non-critical freshestCRL extension (RFC 5280 §5.2.6),
   * which tells relying parties such as `openssl verify -use_deltas` to look for a delta. Not
   * allowed in a delta CRL (§5.2.6). Default: none.
   */
  freshestCrl?: string;
}


/** OIDs of the CRL and CRL entry extensions tierca writes and reads. */
export const CRL_EXTENSION_OIDS = {
  authorityKeyIdentifier: '2.5.29.35',
  cRLNumber: '2.5.29.20',
  deltaCRLIndicator: '2.5.29.27',
  issuingDistributionPoint: '2.5.29.28',
  freshestCrl: '2.5.29.46',
  reasonCode: '2.5.29.21',
  invalidityDate: '2.5.29.24',
} as const;

const invalid = (message: string): PkiError => new PkiError('invalid-argument', message);

/** version v2 (RFC 5280 §5.1.2.1: v2 because the CRL has extensions). */
const VERSION_2 = integer(1);
const CRITICAL = Buffer.from([0x01, 0x01, 0xff]);

/**
 * Entry extension encodings, fixed but for the value (RFC 5280 §5.3.1, §5.3.2):
 * Extension ::= SEQUENCE { extnID, extnValue OCTET STRING }, non-critical.
 */
const REASON_EXTENSIONS: Buffer[] = [];
for (const code of Object.values(REVOCATION_REASONS)) {
  // 30 0a 06 03 55 1d 15 04 03 0a 01 <code>
  REASON_EXTENSIONS[code] = tlvOf(0x30, [oid(CRL_EXTENSION_OIDS.reasonCode), octetString(Buffer.from([0x0a, 0x01, code]))]);
}
/** `30 18 06 03 55 1d 18 04 11 18 0f`, then the 15 GeneralizedTime characters. */
const INVALIDITY_PREFIX = Buffer.concat([Buffer.from([0x30, 0x18]), oid(CRL_EXTENSION_OIDS.invalidityDate), Buffer.from([0x04, 0x11, 0x18, 0x0f])]);

/**
 * Builds and signs a DER CertificateList (RFC 5280 §5.1): v2; thisUpdate, nextUpdate and each
 * revocationDate as UTCTime through 2049 and GeneralizedTime from 2050 (§5.1.2.4–§5.1.2.6), whole
 * seconds; revokedCertificates left out when there are none (§5.1.2.6); crlExtensions
 * authorityKeyIdentifier and cRLNumber (non-critical, §5.2.1, §5.2.3), then deltaCRLIndicator
 * (critical, §5.2.4) for a delta CRL, issuingDistributionPoint (critical, §5.2.5) and freshestCRL
 * (non-critical, full CRLs only, §5.2.6) when asked.
 * Entries carry reasonCode unless the reason is unspecified or absent (§5.3.1 SHOULD) and
 * invalidityDate as GeneralizedTime (§5.3.2).
 *
 * Uniqueness of serials is the caller's (the certificate store keys them by issuer and serial).
 *
 * @throws PkiError('invalid-argument') for bad dates, numbers, serials or reasons, and for
 * removeFromCRL (8) in a full CRL (§5.3.1: it only appears in delta CRLs).
 */
export async function buildCrl(p: BuildCrlParams): Promise<Buffer> {
  const thisUpdate = checkedMs(p.thisUpdate, 'thisUpdate');
  const nextUpdate = checkedMs(p.nextUpdate, 'nextUpdate');
  if (Math.floor(nextUpdate / 1000) <= Math.floor(thisUpdate / 1000)) throw invalid('nextUpdate must be later than thisUpdate');
  const crlNumber = checkedNumber(p.crlNumber, 'crlNumber');
  const delta = p.baseCrlNumber !== undefined;
  if (delta && checkedNumber(p.baseCrlNumber!, 'baseCrlNumber') >= crlNumber) {
    throw invalid('a delta CRL must number above its base CRL (RFC 5280 §5.2.4)');
  }
  try {
    readOnly(p.issuer, 0x30);
  } catch {
    throw invalid('issuer must be a DER Name');
  }
  if (!p.authorityKeyId || p.authorityKeyId.length === 0) throw invalid('authorityKeyId is required (RFC 5280 §5.2.1)');

  const crlExtensions = [
    // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT KeyIdentifier }
    extension(CRL_EXTENSION_OIDS.authorityKeyIdentifier, false, tlvOf(0x30, [tlvOf(0x80, [p.authorityKeyId])])),
    extension(CRL_EXTENSION_OIDS.cRLNumber, false, integer(crlNumber)),
  ];
  if (delta) crlExtensions.push(extension(CRL_EXTENSION_OIDS.deltaCRLIndicator, true, integer(p.baseCrlNumber!)));
  if (p.distributionPoint !== undefined) {
    // IssuingDistributionPoint ::= SEQUENCE { distributionPoint [0] DistributionPointName OPTIONAL, … }
    crlExtensions.push(extension(CRL_EXTENSION_OIDS.issuingDistributionPoint, true, tlvOf(0x30, [fullNameUri(p.distributionPoint, 'distributionPoint')])));
  }
  if (p.freshestCrl !== undefined) {
    if (delta) throw invalid('freshestCrl must not appear in a delta CRL (RFC 5280 §5.2.6)');
    // FreshestCRL ::= CRLDistributionPoints ::= SEQUENCE OF DistributionPoint { distributionPoint [0] … }
    crlExtensions.push(extension(CRL_EXTENSION_OIDS.freshestCrl, false, tlvOf(0x30, [tlvOf(0x30, [fullNameUri(p.freshestCrl, 'freshestCrl')])])));
  }

  // Entries last, once everything else is known to be right: they are the expensive part.
  const writer = new EntryWriter(delta);
  if (isAsyncIterable(p.entries)) {
    for await (const entry of p.entries) writer.write(entry);
  } else {
    for (const entry of p.entries) writer.write(entry);
  }
  const revoked = writer.count > 0 ? writer.finish() : [];

  // TBSCertList ::= SEQUENCE { version, signature, issuer, thisUpdate, nextUpdate,
  //   revokedCertificates SEQUENCE OF SEQUENCE {…} OPTIONAL, crlExtensions [0] EXPLICIT Extensions OPTIONAL }
  const tbsParts = [
    VERSION_2,
    p.signer.signatureAlgorithm,
    p.issuer,
    x509Time(new Date(thisUpdate)),
    x509Time(new Date(nextUpdate)),
    ...revoked,
    explicit(0, tlvOf(0x30, crlExtensions)),
  ];
  revoked.length = 0;
  return signedList(tbsParts, p.signer);
}

/** Room left before the TBSCertList for the CertificateList's tag and length (a length up to 2^32 - 1). */
const OUTER_HEADER_ROOM = 6;
/**
 * Room left after it for signatureAlgorithm and the signature BIT STRING: far more than the largest
 * signature tierca makes (RSA-4096, 512 octets); a larger one falls back to concatenation.
 */
const SIGNATURE_ROOM = 4096;

/**
 * CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue BIT STRING }, made
 * in one allocation: the TBSCertList is written into the middle of a buffer with room on both sides,
 * signed there, and the header, algorithm and signature are written around it. A CRL of a million
 * entries is ~50 MB, so concatenating the TBSCertList and then the CertificateList (as tlvOf would)
 * held three copies at the peak — the chunks, the TBS and the result — where this holds two (the
 * chunks, released part by part, and the result). `tbsParts` is emptied as it is copied.
 */
async function signedList(tbsParts: Buffer[], signer: Signer): Promise<Buffer> {
  let contentLength = 0;
  for (const part of tbsParts) contentLength += part.length;
  const tbsHeader = Buffer.concat([Buffer.from([0x30]), encodeLength(contentLength)]);
  const tbsLength = tbsHeader.length + contentLength;
  const out = Buffer.allocUnsafe(OUTER_HEADER_ROOM + tbsLength + SIGNATURE_ROOM);
  let o = OUTER_HEADER_ROOM;
  o += tbsHeader.copy(out, o);
  for (let i = 0; i < tbsParts.length; i++) {
    o += tbsParts[i].copy(out, o);
    tbsParts[i] = EMPTY; // the 1 MiB entry chunks can go while the rest is copied
  }
  const tbs = out.subarray(OUTER_HEADER_ROOM, o);
  const signatureValue = bitString(await signer.sign(tbs));
  const algorithm = signer.signatureAlgorithm;
  if (algorithm.length + signatureValue.length > SIGNATURE_ROOM) {
    return tlvOf(0x30, [tbs, algorithm, signatureValue]); // a signature larger than any tierca makes today
  }
  o += algorithm.copy(out, o);
  o += signatureValue.copy(out, o);
  const header = Buffer.concat([Buffer.from([0x30]), encodeLength(o - OUTER_HEADER_ROOM)]);
  const start = OUTER_HEADER_ROOM - header.length;
  header.copy(out, start);
  return out.subarray(start, o);
}

const EMPTY = Buffer.alloc(0);

function isAsyncIterable<T>(x: Iterable<T> | AsyncIterable<T>): x is AsyncIterable<T> {
  return typeof (x as AsyncIterable<T>)[Symbol.asyncIterator] === 'function';
}

/**
 * `[0] DistributionPointName { fullName [0] GeneralNames { uniformResourceIdentifier [6] IA5String } }`
 * (RFC 5280 §4.2.1.13); the CHOICE makes the outer [0] explicit, GeneralNames' [0] is implicit.
 */
function fullNameUri(uri: string, what: string): Buffer {
  if (typeof uri !== 'string' || !/^[\x21-\x7e]+$/.test(uri)) throw invalid(`${what} must be an ASCII URI (IA5String)`);
  const name = ia5String(uri);
  name[0] = 0x86;
  return tlvOf(0xa0, [tlvOf(0xa0, [name])]);
}

function extension(extOid: string, critical: boolean, value: Buffer): Buffer {
  return critical ? tlvOf(0x30, [oid(extOid), CRITICAL, octetString(value)]) : tlvOf(0x30, [oid(extOid), octetString(value)]);
}

function checkedMs(date: Date, what: string): number {
  const ms = date instanceof Date ? date.getTime() : NaN;
  if (!Number.isFinite(ms)) throw invalid(`${what} is not a valid date`);
  const year = new Date(ms).getUTCFullYear();
  if (year < 1950 || year > 9999) throw invalid(`${what} is outside 1950–9999`);
  return ms;
}

function checkedNumber(n: bigint, what: string): bigint {
  if (typeof n !== 'bigint' || n < 0n) throw invalid(`${what} must be a non-negative bigint`);
  if (n >= 1n << 159n) throw invalid(`${what} is longer than 20 octets (RFC 5280 §5.2.3)`);
  return n;
}

const CHUNK_SIZE = 1 << 20;
/** Longest encoded entry: header 2, serial 2+21, GeneralizedTime 17, extensions 2+12+26. */
const MAX_ENTRY = 82;
const HEX_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX_VALUE[48 + i] = i;
for (let i = 0; i < 6; i++) HEX_VALUE[97 + i] = HEX_VALUE[65 + i] = 10 + i;

/**
 * Writes revokedCertificates entries into 1 MiB chunks: no Buffer per entry, no string formatting of
 * times, and the encoding of the previous revocationDate reused when the next one falls in the same
 * second (bulk revocations share their instant).
 */
class EntryWriter {
  private chunk = Buffer.allocUnsafe(CHUNK_SIZE);
  private offset = 0;
  private readonly done: Buffer[] = [];
  private total = 0;
  count = 0;
  private lastSecond = NaN;
  private readonly lastTime = Buffer.alloc(17);
  private lastTimeLength = 0;

  constructor(private readonly delta: boolean) {}

  write(e: CrlEntry): void {
    if (this.offset + MAX_ENTRY > this.chunk.length) this.flush();
    const buf = this.chunk;
    const start = this.offset;
    // SEQUENCE header: the whole entry is under 128 octets, so one length octet, filled in below.
    let o = start + 2;

    // userCertificate CertificateSerialNumber (RFC 5280 §4.1.2.2): positive INTEGER, minimal octets.
    const serial = e?.serial;
    if (typeof serial !== 'string') throw invalid(`entry ${this.count}: serial must be a hex string`);
    let first = 0;
    while (first < serial.length - 1 && serial.charCodeAt(first) === 48) first++;
    const digits = serial.length - first;
    if (digits === 0 || digits > 40) throw invalid(`entry ${this.count}: serial must be 1 to 40 significant hex digits (20 octets)`);
    const octets = (digits + 1) >> 1;
    let high = hexAt(serial, first, this.count);
    if (digits % 2 === 0) high = (high << 4) | hexAt(serial, first + 1, this.count);
    const pad = high >= 0x80 ? 1 : 0;
    buf[o++] = 0x02;
    buf[o++] = octets + pad;
    if (pad) buf[o++] = 0;
    buf[o++] = high;
    for (let i = first + (digits % 2 === 0 ? 2 : 1); i < serial.length; i += 2) {
      buf[o++] = (hexAt(serial, i, this.count) << 4) | hexAt(serial, i + 1, this.count);
    }

    // revocationDate Time
    o = this.writeTime(buf, o, e.revokedAt, 'revokedAt');

    // crlEntryExtensions
    const reason = e.reason;
    const hasReason = reason !== null && reason !== undefined && reason !== REVOCATION_REASONS.unspecified;
    if (hasReason) {
      if (!isReasonCode(reason)) throw invalid(`entry ${this.count}: unknown revocation reason ${String(reason)}`);
      if (reason === REVOCATION_REASONS.removeFromCRL && !this.delta) {
        throw invalid(`entry ${this.count}: removeFromCRL only appears in delta CRLs (RFC 5280 §5.3.1)`);
      }
    }
    const invalidity = e.invalidityDate;
    const hasInvalidity = invalidity !== null && invalidity !== undefined;
    if (hasReason || hasInvalidity) {
      buf[o++] = 0x30;
      buf[o++] = (hasReason ? 12 : 0) + (hasInvalidity ? 26 : 0);
      if (hasReason) {
        REASON_EXTENSIONS[reason].copy(buf, o);
        o += 12;
      }
      if (hasInvalidity) {
        INVALIDITY_PREFIX.copy(buf, o);
        o += INVALIDITY_PREFIX.length;
        checkedMs(invalidity, `entry ${this.count}: invalidityDate`);
        o = writeDigits(buf, o, invalidity, true);
      }
    }

    buf[start] = 0x30;
    buf[start + 1] = o - start - 2;
    this.offset = o;
    this.count++;
  }

  private writeTime(buf: Buffer, o: number, date: Date, what: string): number {
    const ms = date instanceof Date ? date.getTime() : NaN;
    const second = Math.floor(ms / 1000);
    if (second === this.lastSecond) {
      this.lastTime.copy(buf, o, 0, this.lastTimeLength);
      return o + this.lastTimeLength;
    }
    if (!Number.isFinite(ms)) throw invalid(`entry ${this.count}: ${what} is not a valid date`);
    const year = date.getUTCFullYear();
    if (year < 1950 || year > 9999) throw invalid(`entry ${this.count}: ${what} is outside 1950–9999`);
    const generalized = year >= 2050; // RFC 5280 §5.1.2.6: UTCTime through 2049
    const start = o;
    buf[o++] = generalized ? 0x18 : 0x17;
    buf[o++] = generalized ? 15 : 13;
    o = writeDigits(buf, o, date, generalized);
    this.lastSecond = second;
    this.lastTimeLength = o - start;
    buf.copy(this.lastTime, 0, start, o);
    return o;
  }

  private flush(): void {
    this.done.push(this.chunk.subarray(0, this.offset));
    this.total += this.offset;
    this.chunk = Buffer.allocUnsafe(CHUNK_SIZE);
    this.offset = 0;
  }

  /**
   * The revokedCertificates SEQUENCE header followed by the chunks, handed over: the writer lets go
   * of them, so that they can be freed one by one as they are copied into the CRL.
   */
  finish(): Buffer[] {
    const chunks = [...this.done, this.chunk.subarray(0, this.offset)];
    const total = this.total + this.offset;
    this.done.length = 0;
    this.chunk = EMPTY;
    this.offset = 0;
    this.total = 0;
    return [Buffer.concat([Buffer.from([0x30]), encodeLength(total)]), ...chunks];
  }
}

function hexAt(s: string, i: number, entry: number): number {
  const c = s.charCodeAt(i);
  const v = c < 128 ? HEX_VALUE[c] : -1;
  if (v < 0) throw invalid(`entry ${entry}: serial ${JSON.stringify(s)} is not hex`);
  return v;
}

/** `[YY]YYMMDDHHMMSSZ` as ASCII digits, whole seconds (RFC 5280 §4.1.2.5.1, §4.1.2.5.2). */
function writeDigits(buf: Buffer, o: number, d: Date, fourDigitYear: boolean): number {
  const year = d.getUTCFullYear();
  if (fourDigitYear) {
    o = two(buf, o, Math.floor(year / 100));
  }
  o = two(buf, o, year % 100);
  o = two(buf, o, d.getUTCMonth() + 1);
  o = two(buf, o, d.getUTCDate());
  o = two(buf, o, d.getUTCHours());
  o = two(buf, o, d.getUTCMinutes());
  o = two(buf, o, d.getUTCSeconds());
  buf[o++] = 0x5a; // 'Z'
  return o;
}

function two(buf: Buffer, o: number, n: number): number {
  buf[o] = 48 + Math.floor(n / 10);
  buf[o + 1] = 48 + (n % 10);
  return o + 2;
}
