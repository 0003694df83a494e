/**
 * GeneralName (RFC 5280 §4.2.1.6) as tierca writes and reads it: the CHOICE's IMPLICIT tag numbers
 * of the forms tierca issues, and the one reader of a GeneralNames SEQUENCE (a subjectAltName's
 * value). The builder (extensions.ts) and every reader (the lint, renewal) take the numbers from here.
 */
import { children, readOnly } from './der-reader.ts';
import { Tag, contextPrimitive } from './der-tag.ts';

/** The GeneralName alternatives tierca writes (names in subjectAltName and name constraints; URIs in CRL DPs and AIA), by context tag number. */
export const GENERAL_NAME = { rfc822Name: 1, dNSName: 2, uniformResourceIdentifier: 6, iPAddress: 7 } as const;

const EMAIL = contextPrimitive(GENERAL_NAME.rfc822Name);
const DNS = contextPrimitive(GENERAL_NAME.dNSName);
const IP = contextPrimitive(GENERAL_NAME.iPAddress);

/** The names of a GeneralNames value: IA5 text as written (latin1), IP addresses as octets; other forms counted. */
export interface GeneralNamesRead {
  dns: string[];
  ip: Buffer[];
  email: string[];
  /** How many entries were of another form (otherName, directoryName, URI, …). */
  other: number;
}

/** Reads the DER of a GeneralNames SEQUENCE; throws DerError when it is not one. */
export function readGeneralNames(der: Buffer): GeneralNamesRead {
  const out: GeneralNamesRead = { dns: [], ip: [], email: [], other: 0 };
  for (const name of children(readOnly(der, Tag.SEQUENCE))) {
    if (name.tag === EMAIL) out.email.push(name.content.toString('latin1'));
    else if (name.tag === DNS) out.dns.push(name.content.toString('latin1'));
    else if (name.tag === IP) out.ip.push(Buffer.from(name.content));
    else out.other++;
  }
  return out;
}
