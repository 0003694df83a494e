/**
 * IP address ranges (CIDR blocks) as a domain's configuration gives them: parsed once, written into
 * the domain CA as iPAddress name constraints (RFC 5280 §4.2.1.10), and used by the registration
 * authority to refuse IP SANs outside the domain before anything is signed.
 */
import { parseIp } from './extensions.ts';
import { PkiError } from './pki-error.ts';

/** An IPv4 or IPv6 network: `address` (4 or 16 octets, host bits zero) and its `mask` of the same length. */
export interface IpRange {
  readonly version: 4 | 6;
  readonly address: Buffer;
  readonly mask: Buffer;
  readonly prefix: number;
  /** The canonical text, e.g. `10.20.0.0/16`, `fd00:20::/32`. */
  readonly cidr: string;
}

/**
 * Parses a CIDR block such as `10.20.0.0/16` or `fd00:20::/32`. The prefix length is required (0–32
 * for IPv4, 0–128 for IPv6, decimal without leading zeros) and the address must be the network
 * address — no host bits set — so that a typo like `10.20.1.0/16` fails at boot instead of silently
 * widening or narrowing the range. Zone ids (`%eth0`) are refused.
 *
 * @throws PkiError('invalid-argument') naming the block and what is wrong with it.
 */
export function parseCidr(text: string): IpRange {
  const bad = (why: string) => new PkiError('invalid-argument', `not a CIDR block ${JSON.stringify(text)}: ${why}`);
  if (typeof text !== 'string') throw bad('not a string');
  const slash = text.indexOf('/');
  if (slash < 0) throw bad('the prefix length (/n) is missing');
  const addressText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  let address: Buffer;
  try {
    address = parseIp(addressText);
  } catch {
    throw bad('the address is not an IPv4 or IPv6 address');
  }
  const version = address.length === 4 ? 4 : 6;
  const bits = address.length * 8;
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText) || Number(prefixText) > bits) throw bad(`the prefix length must be 0–${bits}`);
  const prefix = Number(prefixText);
  const mask = maskOf(address.length, prefix);
  for (let i = 0; i < address.length; i++) {
    if ((address[i] & ~mask[i] & 0xff) !== 0) throw bad(`host bits are set (the network is ${formatIp(and(address, mask))}/${prefix})`);
  }
  return { version, address, mask, prefix, cidr: `${formatIp(address)}/${prefix}` };
}

/** Whether `ip` (4 or 16 octets, or text) lies in `range`. An IPv4 address is never in an IPv6 range or back (RFC 5280 §4.2.1.10 compares like with like). */
export function rangeContains(range: IpRange, ip: Buffer | string): boolean {
  const octets = typeof ip === 'string' ? parseIp(ip) : ip;
  if (octets.length !== range.address.length) return false;
  for (let i = 0; i < octets.length; i++) if ((octets[i] & range.mask[i]) !== range.address[i]) return false;
  return true;
}

/** Whether two ranges share an address: CIDR blocks of one family either nest or are disjoint. */
export function rangesOverlap(a: IpRange, b: IpRange): boolean {
  if (a.version !== b.version) return false;
  return a.prefix <= b.prefix ? rangeContains(a, b.address) : rangeContains(b, a.address);
}

/**
 * The IP SANs of `ips` (text) that lie in none of `ranges` — what the RA must refuse; empty when all
 * are inside. A domain with no ranges permits no IP address at all (its CA excludes every address).
 * An address that does not parse is returned as outside too, so a caller never lets it through.
 */
export function ipsOutside(ips: readonly string[], ranges: readonly IpRange[]): string[] {
  return ips.filter((ip) => {
    let octets: Buffer;
    try {
      octets = parseIp(ip);
    } catch {
      return true;
    }
    return !ranges.some((r) => rangeContains(r, octets));
  });
}

/** `0.0.0.0/0` and `::/0`: every address. A domain without ranges excludes these in its CA (decision 0004). */
export const ALL_ADDRESSES: readonly IpRange[] = Object.freeze([parseCidr('0.0.0.0/0'), parseCidr('::/0')]);

function maskOf(length: number, prefix: number): Buffer {
  const mask = Buffer.alloc(length);
  for (let i = 0; i < length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    mask[i] = bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff;
  }
  return mask;
}

function and(a: Buffer, b: Buffer): Buffer {
  return Buffer.from(a.map((x, i) => x & b[i]));
}

/** Text form of 4 or 16 octets; IPv6 in RFC 5952 form (lowercase, longest run of ≥ 2 zero words as `::`). */
export function formatIp(octets: Buffer): string {
  if (octets.length === 4) return [...octets].join('.');
  const words = Array.from({ length: 8 }, (_, i) => octets.readUInt16BE(i * 2));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
