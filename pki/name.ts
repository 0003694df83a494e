/**
 * X.501 distinguished names as tierca uses them: a short list of attribute types, one attribute per
 * RDN, UTF-8 values (Chinese organ and area names), encoded per RFC 5280 §4.1.2.4 and Appendix A.
 */
import { oid, printableString, ia5String, utf8String, sequence, setOf } from './der.ts';
import { children, readOnly, decodeOid, expectTag, DerError, type DerElement } from './der-reader.ts';
import { PkiError } from './pki-error.ts';

export type NameAttributeType = 'C' | 'ST' | 'L' | 'O' | 'OU' | 'CN' | 'serialNumber' | 'emailAddress';

export interface NameAttribute {
  type: NameAttributeType;
  value: string;
}

/** A distinguished name in RDNSequence order (most significant first, C first), one attribute per RDN. */
export type DistinguishedName = readonly NameAttribute[];

interface AttributeSpec {
  oid: string;
  /** Upper bound in characters, RFC 5280 Appendix A.1 (ub-…). */
  max: number;
  /** String type: RFC 5280 §4.1.2.4 asks for UTF8String except where the attribute type fixes one. */
  kind: 'printable' | 'ia5' | 'utf8';
}

const ATTRIBUTES: Record<NameAttributeType, AttributeSpec> = {
  // X520countryName is PrintableString SIZE(2) (RFC 5280 Appendix A.1).
  C: { oid: '2.5.4.6', max: 2, kind: 'printable' },
  ST: { oid: '2.5.4.8', max: 128, kind: 'utf8' },
  L: { oid: '2.5.4.7', max: 128, kind: 'utf8' },
  O: { oid: '2.5.4.10', max: 64, kind: 'utf8' },
  OU: { oid: '2.5.4.11', max: 64, kind: 'utf8' },
  CN: { oid: '2.5.4.3', max: 64, kind: 'utf8' },
  // X520SerialNumber is PrintableString (RFC 5280 Appendix A.1).
  serialNumber: { oid: '2.5.4.5', max: 64, kind: 'printable' },
  // EmailAddress is IA5String SIZE (1..ub-emailaddress-length) (RFC 5280 Appendix A.1).
  emailAddress: { oid: '1.2.840.113549.1.9.1', max: 255, kind: 'ia5' },
};

const TYPE_BY_OID = new Map<string, NameAttributeType>(
  (Object.keys(ATTRIBUTES) as NameAttributeType[]).map((t) => [ATTRIBUTES[t].oid, t]),
);

/** The OID of a name attribute type. */
export function nameAttributeOid(type: NameAttributeType): string {
  return ATTRIBUTES[type].oid;
}

/** X.680 §41.4 PrintableString characters. */
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;
const ASCII = /^[\x20-\x7e]*$/;
/** C0 controls and DEL: never legitimate in a name and a classic display-spoofing tool. */
const CONTROL = /[\u0000-\u001f\u007f]/;
/** A UTF-16 surrogate without its pair: Buffer.from would silently turn it into U+FFFD. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * The DER Name (RDNSequence) of `dn`: C and serialNumber as PrintableString, emailAddress as
 * IA5String, every other attribute as UTF8String (RFC 5280 §4.1.2.4). The order is kept as given.
 *
 * @throws PkiError('invalid-argument') for an empty value, a value over its RFC 5280 upper bound,
 * characters its string type cannot hold, a country that is not two capital letters, or control
 * characters.
 */
export function encodeName(dn: DistinguishedName): Buffer {
  return sequence(...dn.map(({ type, value }) => (SHARED_TYPES.has(type) ? sharedRdn(type, value) : encodeRdn(type, value))));
}

function encodeRdn(type: NameAttributeType, value: string): Buffer {
  const spec = ATTRIBUTES[type];
  if (!spec) throw new PkiError('invalid-argument', `unknown name attribute type ${String(type)}`);
  checkValue(type, spec, value);
  const encoded = spec.kind === 'printable' ? printableString(value) : spec.kind === 'ia5' ? ia5String(value) : utf8String(value);
  return setOf(sequence(oid(spec.oid), encoded));
}

/**
 * RDNs that many names share — the deployment's C and ST, a domain's L, an organ's O, an OU — encoded
 * once: every issuance builds its subject's name, and only the CN is its own. Only values that
 * checked and encoded are kept (a refusal throws before), bounded; the Buffers are never written to.
 */
const SHARED_TYPES: ReadonlySet<NameAttributeType> = new Set(['C', 'ST', 'L', 'O', 'OU']);
const sharedRdns = new Map<string, Buffer>();
const SHARED_RDNS_MAX = 1024;

function sharedRdn(type: NameAttributeType, value: string): Buffer {
  const key = `${type}\u0000${value}`;
  let rdn = sharedRdns.get(key);
  if (!rdn) {
    rdn = encodeRdn(type, value);
    if (sharedRdns.size >= SHARED_RDNS_MAX) sharedRdns.clear();
    sharedRdns.set(key, rdn);
  }
  return rdn;
}

function checkValue(type: NameAttributeType, spec: AttributeSpec, value: string): void {
  const bad = (why: string) => new PkiError('invalid-argument', `name attribute ${type}: ${why}`);
  if (typeof value !== 'string' || value.length === 0) throw bad('empty value');
  if ([...value].length > spec.max) throw bad(`longer than ${spec.max} characters (RFC 5280 Appendix A)`);
  if (CONTROL.test(value)) throw bad('control character');
  if (spec.kind === 'printable' && !PRINTABLE.test(value)) throw bad('not a PrintableString');
  if (spec.kind === 'ia5' && !ASCII.test(value)) throw bad('not ASCII');
  if (type === 'C' && !/^[A-Z]{2}$/.test(value)) throw bad('not an ISO 3166 two-letter code');
  if (LONE_SURROGATE.test(value)) throw bad('lone surrogate');
}

/**
 * The distinguished name in a DER Name, in RDNSequence order.
 *
 * Only the attribute types of {@link NameAttributeType} are understood. A name holding any other
 * attribute type, a multi-valued RDN or a string type other than UTF8String, PrintableString,
 * IA5String, BMPString or UniversalString is refused with PkiError('malformed') rather than decoded
 * partially: a caller that checks a name against policy must never see a silently shortened one.
 */
export function decodeName(der: Buffer): DistinguishedName {
  try {
    const rdns = children(readOnly(der, 0x30));
    return rdns.map((rdn) => {
      const attrs = children(expectTag(rdn, 0x31, 'RelativeDistinguishedName'));
      if (attrs.length !== 1) throw new PkiError('malformed', 'multi-valued RDNs are not supported');
      const [typeEl, valueEl, extra] = children(expectTag(attrs[0], 0x30, 'AttributeTypeAndValue'));
      if (!valueEl || extra) throw new DerError('AttributeTypeAndValue must have a type and one value');
      const attrOid = decodeOid(typeEl);
      const type = TYPE_BY_OID.get(attrOid);
      if (!type) throw new PkiError('malformed', `unsupported name attribute ${attrOid}`);
      return { type, value: decodeDirectoryString(valueEl) };
    });
  } catch (err) {
    if (err instanceof PkiError && !(err instanceof DerError)) throw err;
    throw new PkiError('malformed', `malformed Name: ${(err as Error).message}`);
  }
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
const utf16beDecoder = new TextDecoder('utf-16be', { fatal: true });

function decodeDirectoryString(el: DerElement): string {
  switch (el.tag) {
    case 0x0c: // UTF8String
      return utf8Decoder.decode(el.content);
    case 0x13: {
      // PrintableString
      const s = el.content.toString('latin1');
      if (!PRINTABLE.test(s)) throw new PkiError('malformed', 'invalid PrintableString');
      return s;
    }
    case 0x16: {
      // IA5String
      const s = el.content.toString('latin1');
      if (!/^[\x00-\x7f]*$/.test(s)) throw new PkiError('malformed', 'invalid IA5String');
      return s;
    }
    case 0x1e: // BMPString: UCS-2 big-endian
      if (el.content.length % 2) throw new PkiError('malformed', 'invalid BMPString');
      return utf16beDecoder.decode(el.content);
    case 0x1c: {
      // UniversalString: UCS-4 big-endian
      if (el.content.length % 4) throw new PkiError('malformed', 'invalid UniversalString');
      let s = '';
      for (let i = 0; i < el.content.length; i += 4) {
        const cp = el.content.readUInt32BE(i);
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) throw new PkiError('malformed', 'invalid UniversalString');
        s += String.fromCodePoint(cp);
      }
      return s;
    }
    default:
      throw new PkiError('malformed', `unsupported string type 0x${el.tag.toString(16)} in Name`);
  }
}

/** RFC 4514 §2.4 characters that need a backslash anywhere in a displayed attribute value. */
const SPECIAL = new Set([',', '+', '"', '\\', '<', '>', ';']);

/**
 * A one-line display of a name in RDNSequence order, the way `openssl x509 -nameopt utf8,sep_comma_plus_space`
 * prints it: `C=CN, ST=湖南省, L=湘潭市, O=…, CN=…`. Characters special in RFC 4514 (`,+"\<>;`, a
 * leading `#` or space, a trailing space) are backslash-escaped so that the text stays unambiguous.
 */
export function formatName(dn: DistinguishedName): string {
  return dn.map(({ type, value }) => `${type}=${escapeValue(value)}`).join(', ');
}

function escapeValue(value: string): string {
  const chars = [...value];
  return chars
    .map((c, i) => {
      const edge = (i === 0 && (c === '#' || c === ' ')) || (i === chars.length - 1 && c === ' ');
      return SPECIAL.has(c) || edge ? `\\${c}` : c;
    })
    .join('');
}

/**
 * True when a relying party may read `value`, a certificate's common name, as a host name or an IP
 * address. When a certificate's subjectAltName holds no dNSName, the JDK's name-constraint check
 * (sun.security.x509.NameConstraintsExtension.verify) takes the most specific CN as a DNSName if it
 * parses as one — ASCII letters, digits and hyphens, labels between dots: `zhangsan` and
 * `prn-917915ab` do — or as an iPAddress if it is an IP literal, and checks it against the CAs' DNS
 * and IP subtrees; OpenSSL (NAME_CONSTRAINTS_check_CN) does the same for a dotted name, `_` allowed.
 * This is a deliberate superset of both: any value made only of ASCII letters, digits and `-._:%[]`.
 */
export function commonNameReadsAsHost(value: string): boolean {
  return /^[A-Za-z0-9._:%[\]-]+$/.test(value);
}

/** The kinds of holder whose certificates carry a common name: the RA's subjects and its principals. */
export type CommonNameHolder = 'organ' | 'device' | 'user' | 'principal';

/**
 * The common name to write for a holder named `name`. A device's name is kept as it is: a device's
 * CN is a host claim, and name constraints must keep checking it (a device whose SAN holds only an IP
 * address and whose CN is a host name outside its domain fails at the JDK, as it should). For an
 * organ, a user or a principal, a name that a relying party could read as a host name
 * ({@link commonNameReadsAsHost}) gets its kind after a space — `zhangsan (user)`,
 * `prn-917915ab… (principal)` — since no host name and no IP literal holds a space, so the JDK's and
 * OpenSSL's CN fallback skip it and the domain CA's DNS subtree cannot refuse a person or an organ
 * (docs/decisions/0011-java-common-names.md). Any other name (`张三`, `Zhang San`) is kept.
 *
 * @throws PkiError('invalid-argument') when the qualified name would exceed ub-common-name, 64
 * characters (RFC 5280 Appendix A.1): cutting a name short is worse than saying so.
 */
export function commonNameFor(kind: CommonNameHolder, name: string): string {
  if (kind === 'device' || !commonNameReadsAsHost(name)) return name;
  const qualified = `${name} (${kind})`;
  if ([...qualified].length > ATTRIBUTES.CN.max) {
    throw new PkiError('invalid-argument', `common name ${name} reads as a host name and is too long to qualify as "${qualified}" (RFC 5280 Appendix A: 64 characters)`);
  }
  return qualified;
}
