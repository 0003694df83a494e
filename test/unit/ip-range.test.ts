// pki/ip-range.ts (CIDR blocks, containment), the iPAddress name-constraint encoding of
// pki/extensions.ts and the `domains[].ipRanges` configuration: exact DER, exact errors.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ALL_ADDRESSES, formatIp, ipsOutside, parseCidr, rangeContains, rangesOverlap } from '../../pki/ip-range.ts';
import { nameConstraints } from '../../pki/extensions.ts';
import { domainCaExtensions } from '../../pki/profiles.ts';
import { PkiError } from '../../pki/pki-error.ts';
import { buildConfig } from '../../server/config/load-config.ts';
import { TiercaError } from '../../server/errors.ts';
import { exampleConfigData } from '../helpers/config.ts';

const hex = (b: Buffer) => b.toString('hex');

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err instanceof PkiError || err instanceof TiercaError).toBe(true);
    return (err as Error).message;
  }
  throw new Error('did not throw');
}

describe('parseCidr', () => {
  it('parses IPv4 and IPv6 blocks into address, mask, prefix and canonical text', () => {
    const v4 = parseCidr('10.20.0.0/16');
    expect([v4.version, hex(v4.address), hex(v4.mask), v4.prefix, v4.cidr]).toEqual([4, '0a140000', 'ffff0000', 16, '10.20.0.0/16']);
    const v6 = parseCidr('FD00:20:0::/32');
    expect([v6.version, hex(v6.address), hex(v6.mask), v6.prefix, v6.cidr]).toEqual([
      6, 'fd000020000000000000000000000000', 'ffffffff000000000000000000000000', 32, 'fd00:20::/32',
    ]);
    expect(hex(parseCidr('10.20.128.0/17').mask)).toBe('ffff8000');
    expect(hex(parseCidr('0.0.0.0/0').mask)).toBe('00000000');
    expect(parseCidr('10.1.2.3/32').cidr).toBe('10.1.2.3/32');
    expect(parseCidr('2001:db8::1/128').cidr).toBe('2001:db8::1/128');
  });

  it('refuses malformed blocks with the reason', () => {
    const cases: [string, string][] = [
      ['10.20.0.0', 'the prefix length (/n) is missing'],
      ['10.20.0.0/33', 'the prefix length must be 0–32'],
      ['fd00::/129', 'the prefix length must be 0–128'],
      ['10.20.0.0/016', 'the prefix length must be 0–32'],
      ['10.20.0.0/-1', 'the prefix length must be 0–32'],
      ['10.20.0.0/', 'the prefix length must be 0–32'],
      ['10.20.1.0/16', 'host bits are set (the network is 10.20.0.0/16)'],
      ['fd00:20::1/32', 'host bits are set (the network is fd00:20::/32)'],
      ['10.256.0.0/16', 'the address is not an IPv4 or IPv6 address'],
      ['fe80::%eth0/64', 'the address is not an IPv4 or IPv6 address'],
      ['yuhu/16', 'the address is not an IPv4 or IPv6 address'],
      [' 10.0.0.0/8', 'the address is not an IPv4 or IPv6 address'],
    ];
    for (const [text, why] of cases) expect([text, messageOf(() => parseCidr(text))]).toEqual([text, `not a CIDR block ${JSON.stringify(text)}: ${why}`]);
  });
});

describe('rangeContains, rangesOverlap, ipsOutside', () => {
  const v4 = parseCidr('10.20.0.0/16');
  const v6 = parseCidr('fd00:20::/32');
  it('contains exactly the block, never across families', () => {
    expect(['10.20.0.0', '10.20.255.255', '10.20.7.1'].map((ip) => rangeContains(v4, ip))).toEqual([true, true, true]);
    expect(['10.21.0.0', '10.19.255.255', '8.8.8.8', '0.0.0.0'].map((ip) => rangeContains(v4, ip))).toEqual([false, false, false, false]);
    expect(['fd00:20::1', 'fd00:20:ffff::1'].map((ip) => rangeContains(v6, ip))).toEqual([true, true]);
    expect(['fd00:21::1', '::', '::ffff:10.20.0.1'].map((ip) => rangeContains(v6, ip))).toEqual([false, false, false]);
    // An IPv4-mapped IPv6 address is a 16-octet name: an IPv4 range does not hold it (RFC 5280 §4.2.1.10).
    expect(rangeContains(v4, '::ffff:10.20.0.1')).toBe(false);
  });

  it('overlap: nested blocks overlap, disjoint or other-family blocks do not', () => {
    expect(rangesOverlap(parseCidr('10.0.0.0/8'), v4)).toBe(true);
    expect(rangesOverlap(v4, parseCidr('10.0.0.0/8'))).toBe(true);
    expect(rangesOverlap(v4, parseCidr('10.21.0.0/16'))).toBe(false);
    expect(rangesOverlap(v4, v6)).toBe(false);
  });

  it('ipsOutside lists what the RA must refuse; no ranges = every address outside; junk is outside', () => {
    expect(ipsOutside(['10.20.0.1', 'fd00:20::5', '8.8.8.8', '::', '0.0.0.0', 'not-an-ip'], [v4, v6])).toEqual(['8.8.8.8', '::', '0.0.0.0', 'not-an-ip']);
    expect(ipsOutside(['10.20.0.1'], [])).toEqual(['10.20.0.1']);
    expect(ipsOutside([], [])).toEqual([]);
  });

  it('formats IPv6 the RFC 5952 way', () => {
    expect(formatIp(parseCidr('::/0').address)).toBe('::');
    expect(formatIp(Buffer.from('20010db8000000010000000000000001', 'hex'))).toBe('2001:db8:0:1::1');
    expect(formatIp(Buffer.from('20010db8000100010001000100010001', 'hex'))).toBe('2001:db8:1:1:1:1:1:1');
    expect(ALL_ADDRESSES.map((r) => r.cidr)).toEqual(['0.0.0.0/0', '::/0']);
  });
});

describe('nameConstraints with iPAddress subtrees', () => {
  it('writes address || mask (8 octets IPv4, 32 IPv6) as [7] in permittedSubtrees, and excludedSubtrees as [1]', () => {
    const nc = nameConstraints({ permittedIp: [parseCidr('10.20.0.0/16'), parseCidr('fd00:20::/32')], excludedIp: [] });
    // [0] { {[7] 0a140000 ffff0000} {[7] fd000020…0 ffffffff…0} }
    expect(hex(nc.value)).toBe('3032' + 'a030' + '300a8708' + '0a140000ffff0000' + '30228720' + 'fd000020' + '00'.repeat(12) + 'ffffffff' + '00'.repeat(12));
    const none = nameConstraints({ permittedDns: ['a.b'], excludedIp: ALL_ADDRESSES });
    // [0] { {[2] "a.b"} } [1] { {[7] 0…0 (8)} {[7] 0…0 (32)} }
    expect(hex(none.value)).toBe('303b' + 'a007' + '30058203612e62' + 'a130' + '300a8708' + '00'.repeat(8) + '30228720' + '00'.repeat(32));
    expect(messageOf(() => nameConstraints({ permittedIp: [{ address: Buffer.alloc(4), mask: Buffer.alloc(16) }] })))
      .toBe('an iPAddress constraint is a 4- or 16-octet address with a mask of the same length');
    expect(messageOf(() => nameConstraints({ excludedIp: [] }))).toBe('nameConstraints needs at least one subtree');
  });

  it('a domain CA excludes the whole family it has no range for', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const publicKeyInfo = publicKey.export({ type: 'spki', format: 'der' });
    const base = { publicKeyInfo, issuerKeyId: Buffer.alloc(20, 1), policyOids: ['1.2.3'], links: { caIssuersUrl: 'http://x/c.crt', crlUrl: 'http://x/c.crl' } };
    const permitted = { directoryName: [{ type: 'C' as const, value: 'CN' }], dnsSuffix: 'a.b', emailSuffix: 'a.b' };
    const ncOf = (ipRanges: string[]) =>
      hex(domainCaExtensions({ ...base, permitted: { ...permitted, ipRanges: ipRanges.map(parseCidr) } }).find((e) => e.oid === '2.5.29.30')!.value);
    const expected = (ranges: string[], excluded: string[]) => hex(nameConstraints({
      permittedDirectoryNames: [permitted.directoryName], permittedDns: ['a.b'], permittedEmail: ['a.b', '.a.b'],
      permittedIp: ranges.map(parseCidr), excludedIp: excluded.map(parseCidr),
    }).value);
    expect(ncOf(['10.20.0.0/16', 'fd00:20::/32'])).toBe(expected(['10.20.0.0/16', 'fd00:20::/32'], []));
    expect(ncOf(['10.20.0.0/16'])).toBe(expected(['10.20.0.0/16'], ['::/0']));
    expect(ncOf(['fd00:20::/32'])).toBe(expected(['fd00:20::/32'], ['0.0.0.0/0']));
    expect(ncOf([])).toBe(expected([], ['0.0.0.0/0', '::/0']));
  });
});

describe('domains[].ipRanges in the configuration', () => {
  const withRanges = (ranges: Record<string, unknown>) => {
    const data = exampleConfigData();
    for (const d of data.domains) if (d.slug in ranges) d.ipRanges = ranges[d.slug];
    return data;
  };

  it('the example config gives every domain an IPv4 /16 and a unique-local IPv6 /32, canonical', () => {
    const config = buildConfig(exampleConfigData());
    expect(config.domains.map((d) => [d.slug, d.ipRanges])).toEqual([
      ['xiangtan', ['10.20.0.0/16', 'fd00:20::/32']],
      ['yuhu', ['10.21.0.0/16', 'fd00:21::/32']],
      ['yuetang', ['10.22.0.0/16', 'fd00:22::/32']],
      ['xiangtan-county', ['10.23.0.0/16', 'fd00:23::/32']],
      ['xiangxiang', ['10.24.0.0/16', 'fd00:24::/32']],
      ['shaoshan', ['10.25.0.0/16', 'fd00:25::/32']],
    ]);
    const data = exampleConfigData();
    delete data.domains[1].ipRanges;
    data.domains[2].ipRanges = ['FD00:22:0:0::/32'];
    const c = buildConfig(data);
    expect([c.domains[1].ipRanges, c.domains[2].ipRanges]).toEqual([[], ['fd00:22::/32']]);
  });

  it('refuses a malformed block, a block given twice and blocks of two domains that overlap, naming the key path', () => {
    expect(messageOf(() => buildConfig(withRanges({ yuhu: ['10.21.0.0/16', '10.21.1.0/8'] }))))
      .toBe('invalid configuration: domains.1.ipRanges.1: not a CIDR block "10.21.1.0/8": host bits are set (the network is 10.0.0.0/8)');
    expect(messageOf(() => buildConfig(withRanges({ yuhu: ['10.21.0.0'] }))))
      .toBe('invalid configuration: domains.1.ipRanges.0: not a CIDR block "10.21.0.0": the prefix length (/n) is missing');
    expect(messageOf(() => buildConfig(withRanges({ yuhu: '10.21.0.0/16' }))))
      .toBe('invalid configuration: domains.1.ipRanges: Invalid input: expected array, received string');
    expect(messageOf(() => buildConfig(withRanges({ yuhu: ['10.21.0.0/16', '10.21.0.0/16'] }))))
      .toBe('invalid configuration: domains.1.ipRanges.1: 10.21.0.0/16 overlaps 10.21.0.0/16 of this domain');
    expect(messageOf(() => buildConfig(withRanges({ yuhu: ['10.20.5.0/24'] }))))
      .toBe('invalid configuration: domains.1.ipRanges.0: 10.20.5.0/24 overlaps 10.20.0.0/16 of xiangtan');
    expect(messageOf(() => buildConfig(withRanges({ shaoshan: ['fd00::/16'] }))))
      .toBe('invalid configuration: domains.5.ipRanges.0: fd00::/16 overlaps fd00:20::/32 of xiangtan');
  });
});
