import { describe, expect, it } from 'vitest';
import { commonNameFor, commonNameReadsAsHost, decodeName, encodeName, formatName, nameAttributeOid, type DistinguishedName } from '../../pki/name.ts';
import { children, readOnly, decodeOid } from '../../pki/der-reader.ts';
import { PkiError } from '../../pki/pki-error.ts';

const ORGAN: DistinguishedName = [
  { type: 'C', value: 'CN' },
  { type: 'ST', value: '湖南省' },
  { type: 'L', value: '湘潭市' },
  { type: 'O', value: '中共湘潭市委员会' },
  { type: 'OU', value: '办公室' },
  { type: 'CN', value: '中共湘潭市委员会' },
  { type: 'serialNumber', value: '11430300006154960J' },
  { type: 'emailAddress', value: 'office@city.xiangtan.intranet' },
];

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PkiError);
    return (err as PkiError).code;
  }
  return undefined;
}

describe('encodeName', () => {
  it('encodes C alone to the exact DER bytes (PrintableString, one attribute per RDN)', () => {
    expect(encodeName([{ type: 'C', value: 'CN' }]).toString('hex')).toBe('300d310b300906035504061302434e');
  });

  it('encodes a Chinese locality as UTF8String with the exact UTF-8 octets', () => {
    // SEQUENCE { SET { SEQUENCE { 2.5.4.7, UTF8String "湘潭市" } } }
    expect(encodeName([{ type: 'L', value: '湘潭市' }]).toString('hex')).toBe('3014311230100603550407' + '0c09e6b998e6bdade5b882');
  });

  it('uses PrintableString for C and serialNumber, IA5String for emailAddress, UTF8String for the rest (RFC 5280 §4.1.2.4)', () => {
    const rdns = children(readOnly(encodeName(ORGAN), 0x30));
    const seen = rdns.map((rdn) => {
      const [atv] = children(rdn);
      const [type, value] = children(atv);
      return [decodeOid(type), value.tag];
    });
    expect(seen).toEqual([
      ['2.5.4.6', 0x13],
      ['2.5.4.8', 0x0c],
      ['2.5.4.7', 0x0c],
      ['2.5.4.10', 0x0c],
      ['2.5.4.11', 0x0c],
      ['2.5.4.3', 0x0c],
      ['2.5.4.5', 0x13],
      ['1.2.840.113549.1.9.1', 0x16],
    ]);
    expect(nameAttributeOid('emailAddress')).toBe('1.2.840.113549.1.9.1');
  });

  it('round-trips Chinese values (湖南省, 湘潭市, 中共湘潭市委员会) through decodeName', () => {
    const der = encodeName(ORGAN);
    expect(decodeName(der)).toEqual(ORGAN);
    expect(encodeName(decodeName(der)).equals(der)).toBe(true);
  });

  it('keeps characters outside the BMP (surrogate pairs) intact', () => {
    const dn: DistinguishedName = [{ type: 'CN', value: '𠀀湘' }];
    expect(decodeName(encodeName(dn))).toEqual(dn);
  });

  it('refuses values their type or RFC 5280 bounds cannot hold', () => {
    expect(codeOf(() => encodeName([{ type: 'C', value: '中国' }]))).toBe('invalid-argument');
    expect(codeOf(() => encodeName([{ type: 'C', value: 'cn' }]))).toBe('invalid-argument');
    expect(codeOf(() => encodeName([{ type: 'C', value: 'CHN' }]))).toBe('invalid-argument');
    expect(codeOf(() => encodeName([{ type: 'serialNumber', value: 'a_b' }]))).toBe('invalid-argument');
    expect(codeOf(() => encodeName([{ type: 'emailAddress', value: '张@x.cn' }]))).toBe('invalid-argument');
    expect(codeOf(() => encodeName([{ type: 'CN', value: '' }]))).toBe('invalid-argument');
    expect(codeOf(() => encodeName([{ type: 'CN', value: 'a\u0000b' }]))).toBe('invalid-argument');
    expect(codeOf(() => encodeName([{ type: 'CN', value: 'a\ud800' }]))).toBe('invalid-argument');
    expect(codeOf(() => encodeName([{ type: 'CN', value: '湘'.repeat(65) }]))).toBe('invalid-argument');
    // 64 characters (ub-common-name) are fine even though they are 192 UTF-8 octets.
    expect(codeOf(() => encodeName([{ type: 'CN', value: '湘'.repeat(64) }]))).toBeUndefined();
    expect(() => encodeName([{ type: 'CN', value: '' }])).toThrow('name attribute CN: empty value');
  });
});

describe('decodeName', () => {
  const hexName = (...atvs: string[]) => {
    const rdns = atvs.map((atv) => {
      const a = Buffer.from(atv, 'hex');
      return Buffer.concat([Buffer.from([0x31, a.length]), a]);
    });
    const body = Buffer.concat(rdns);
    return Buffer.concat([Buffer.from([0x30, body.length]), body]);
  };

  it('reads BMPString and UniversalString values', () => {
    // CN as BMPString "湘潭" (U+6E58 U+6F6D), O as UniversalString "A".
    const der = hexName('300b06035504031e046e586f6d', '300b060355040a1c0400000041');
    expect(decodeName(der)).toEqual([
      { type: 'CN', value: '湘潭' },
      { type: 'O', value: 'A' },
    ]);
  });

  it('refuses unknown attribute types instead of dropping them', () => {
    // domainComponent (0.9.2342.19200300.100.1.25) "gov"
    const der = hexName('3011060a0992268993f22c6401191603676f76');
    expect(codeOf(() => decodeName(der))).toBe('malformed');
    expect(() => decodeName(der)).toThrow('unsupported name attribute 0.9.2342.19200300.100.1.25');
  });

  it('refuses multi-valued RDNs, bad UTF-8, bad PrintableString, other string types and trailing bytes', () => {
    const twoInOne = Buffer.from('3017311530090603550406130243 4e3008060355040a0c0141'.replace(/ /g, ''), 'hex');
    expect(() => decodeName(twoInOne)).toThrow('multi-valued RDNs are not supported');
    expect(codeOf(() => decodeName(hexName('30090603550403 0c02c328'.replace(/ /g, ''))))).toBe('malformed');
    expect(codeOf(() => decodeName(hexName('30090603550406 13025f5f'.replace(/ /g, ''))))).toBe('malformed');
    // TeletexString
    expect(codeOf(() => decodeName(hexName('30090603550403 14024142'.replace(/ /g, ''))))).toBe('malformed');
    const good = encodeName([{ type: 'CN', value: 'x' }]);
    expect(codeOf(() => decodeName(Buffer.concat([good, Buffer.from([0])])))).toBe('malformed');
    expect(codeOf(() => decodeName(good.subarray(0, good.length - 1)))).toBe('malformed');
    expect(codeOf(() => decodeName(Buffer.from('3100', 'hex')))).toBe('malformed');
  });

  it('decodes the empty name', () => {
    expect(decodeName(Buffer.from('3000', 'hex'))).toEqual([]);
  });
});

describe('formatName', () => {
  it('prints attributes in RDNSequence order, comma separated', () => {
    expect(formatName(ORGAN.slice(0, 4).concat([{ type: 'CN', value: '中共湘潭市委员会' }]))).toBe(
      'C=CN, ST=湖南省, L=湘潭市, O=中共湘潭市委员会, CN=中共湘潭市委员会',
    );
  });

  it('escapes RFC 4514 special characters', () => {
    expect(formatName([{ type: 'O', value: 'A, B+C "D" <E>; F\\' }])).toBe('O=A\\, B\\+C \\"D\\" \\<E\\>\\; F\\\\');
    expect(formatName([{ type: 'CN', value: '#x ' }])).toBe('CN=\\#x\\ ');
    expect(formatName([{ type: 'CN', value: ' x' }])).toBe('CN=\\ x');
  });
});

describe('commonNameFor: names the JDK cannot read as host names (docs/decisions/0011-java-common-names.md)', () => {
  it.each([
    ['user', 'zhangsan', 'zhangsan (user)'],
    ['organ', 'yuhu-gov.seal', 'yuhu-gov.seal (organ)'],
    ['principal', 'prn-917915ab0c', 'prn-917915ab0c (principal)'],
    ['user', '10.1.2.3', '10.1.2.3 (user)'],
    ['user', 'fe80::1', 'fe80::1 (user)'],
    ['user', 'a_b', 'a_b (user)'],
    ['user', '张三', '张三'],
    ['user', 'Zhang San', 'Zhang San'],
    ['organ', '雨湖区人民政府', '雨湖区人民政府'],
    ['device', 'vpn-gw-01', 'vpn-gw-01'],
    ['device', 'gw.yuhu.xiangtan.intranet', 'gw.yuhu.xiangtan.intranet'],
  ] as const)('%s %s → %s', (kind, name, cn) => {
    expect(commonNameFor(kind, name)).toBe(cn);
    if (kind !== 'device') expect(commonNameReadsAsHost(cn)).toBe(false);
  });

  it('refuses a host-like name too long to qualify within 64 characters, rather than cutting it', () => {
    const err = (() => { try { commonNameFor('user', 'a'.repeat(60)); } catch (e) { return e as PkiError; } })()!;
    expect(err).toBeInstanceOf(PkiError);
    expect(err.code).toBe('invalid-argument');
    expect(err.message).toContain('reads as a host name and is too long to qualify');
    expect(commonNameFor('user', 'a'.repeat(57))).toHaveLength(64);
  });
});
