import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  ANY_POLICY,
  EKU,
  authorityInfoAccess,
  authorityKeyIdentifier,
  basicConstraints,
  certificatePolicies,
  crlDistributionPoints,
  encodeExtension,
  encodeExtensions,
  extendedKeyUsage,
  freshestCrl,
  keyUsage,
  nameConstraints,
  ocspNoCheck,
  parseIp,
  subjectAltName,
  subjectKeyIdentifier,
  type KeyUsageName,
} from '../../pki/extensions.ts';
import { randomSerial, serialToHex, tbsCertificate } from '../../pki/certificate.ts';
import { integer } from '../../pki/der.ts';
import { endEntityExtensions, type EndEntityProfile } from '../../pki/profiles.ts';
import { PkiError } from '../../pki/pki-error.ts';
import { readGeneralNames } from '../../pki/general-names.ts';

const hex = (b: Buffer) => b.toString('hex');

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PkiError);
    return (err as PkiError).code;
  }
  return undefined;
}

describe('keyUsage', () => {
  // X.690 §11.2.2: trailing zero bits are removed and the first octet counts the unused bits.
  const cases: [KeyUsageName[], string][] = [
    [['keyCertSign', 'cRLSign'], '03020106'],
    [['digitalSignature'], '03020780'],
    [['digitalSignature', 'nonRepudiation'], '030206c0'],
    [['digitalSignature', 'keyEncipherment'], '030205a0'],
    [['keyEncipherment', 'dataEncipherment'], '03020430'],
    [['keyAgreement'], '03020308'],
    [['cRLSign'], '03020102'],
    [['keyEncipherment', 'dataEncipherment', 'keyAgreement'], '03020338'],
  ];
  for (const [usages, der] of cases) {
    it(`${usages.join('+')} is ${der}`, () => {
      const ext = keyUsage(usages);
      expect(hex(ext.value)).toBe(der);
      expect(ext.oid).toBe('2.5.29.15');
      expect(ext.critical).toBe(true);
    });
  }

  it('refuses an empty usage list', () => {
    expect(codeOf(() => keyUsage([]))).toBe('invalid-argument');
  });
});

describe('basicConstraints', () => {
  it('encodes CA:false as the empty SEQUENCE, CA:true and pathLen exactly, always critical', () => {
    expect(hex(basicConstraints({ ca: false }).value)).toBe('3000');
    expect(hex(basicConstraints({ ca: true }).value)).toBe('30030101ff');
    expect(hex(basicConstraints({ ca: true, pathLength: 0 }).value)).toBe('30060101ff020100');
    expect(hex(basicConstraints({ ca: true, pathLength: 1 }).value)).toBe('30060101ff020101');
    expect(basicConstraints({ ca: false }).critical).toBe(true);
  });

  it('refuses pathLength without CA or negative', () => {
    expect(codeOf(() => basicConstraints({ ca: false, pathLength: 0 }))).toBe('invalid-argument');
    expect(codeOf(() => basicConstraints({ ca: true, pathLength: -1 }))).toBe('invalid-argument');
  });
});

describe('encodeExtension(s)', () => {
  it('omits critical when false and writes TRUE when critical (X.690 §11.5)', () => {
    expect(hex(encodeExtension(ocspNoCheck()))).toBe('300f06092b060105050730010504020500');
    expect(hex(encodeExtension(basicConstraints({ ca: false })))).toBe('300c0603551d130101ff04023000');
  });

  it('wraps the list in one SEQUENCE and refuses duplicates and the empty list', () => {
    const two = encodeExtensions([basicConstraints({ ca: false }), ocspNoCheck()]);
    expect(hex(two)).toBe('301f' + '300c0603551d130101ff04023000' + '300f06092b060105050730010504020500');
    expect(codeOf(() => encodeExtensions([]))).toBe('invalid-argument');
    expect(codeOf(() => encodeExtensions([ocspNoCheck(), ocspNoCheck()]))).toBe('invalid-argument');
  });
});

describe('identifiers, policies, EKU', () => {
  it('encodes SKI and AKI exactly', () => {
    const id = Buffer.from('0102030405060708090a0b0c0d0e0f1011121314', 'hex');
    expect(hex(subjectKeyIdentifier(id).value)).toBe('0414' + hex(id));
    expect(hex(authorityKeyIdentifier(id).value)).toBe('30168014' + hex(id));
    expect(subjectKeyIdentifier(id).critical).toBe(false);
    expect(authorityKeyIdentifier(id).oid).toBe('2.5.29.35');
  });

  it('has the RFC OIDs for EKUs and anyPolicy', () => {
    expect(EKU).toEqual({
      serverAuth: '1.3.6.1.5.5.7.3.1',
      clientAuth: '1.3.6.1.5.5.7.3.2',
      emailProtection: '1.3.6.1.5.5.7.3.4',
      ocspSigning: '1.3.6.1.5.5.7.3.9',
      ipsecIKE: '1.3.6.1.5.5.7.3.17',
      documentSigning: '1.3.6.1.5.5.7.3.36',
    });
    expect(ANY_POLICY).toBe('2.5.29.32.0');
  });

  it('encodes EKU and certificatePolicies as SEQUENCE OF, non-critical', () => {
    const eku = extendedKeyUsage([EKU.serverAuth, EKU.ocspSigning]);
    expect(hex(eku.value)).toBe('3014' + '06082b06010505070301' + '06082b06010505070309');
    expect(eku.critical).toBe(false);
    expect(hex(certificatePolicies([ANY_POLICY]).value)).toBe('300830060604551d2000');
    expect(codeOf(() => certificatePolicies(['1.2.3', '1.2.3']))).toBe('invalid-argument');
    expect(codeOf(() => certificatePolicies(['not.an.oid']))).toBe('invalid-argument');
    expect(codeOf(() => extendedKeyUsage([]))).toBe('invalid-argument');
  });
});

describe('subjectAltName', () => {
  it('encodes DNS [2], IP [7] (4 and 16 octets) and e-mail [1] exactly', () => {
    const san = subjectAltName({ dns: ['a.b'], ip: ['10.0.0.1', '2001:db8::1'], email: ['x@a.b'] });
    expect(hex(san.value)).toBe(
      '3024' + '8203612e62' + '87040a000001' + '871020010db8000000000000000000000001' + '81057840612e62',
    );
    expect(san.oid).toBe('2.5.29.17');
    expect(san.critical).toBe(false);
  });

  it('parses IPv6 text forms', () => {
    expect(hex(parseIp('::'))).toBe('0'.repeat(32));
    expect(hex(parseIp('::1'))).toBe('0'.repeat(30) + '01');
    expect(hex(parseIp('::ffff:192.168.1.2'))).toBe('00000000000000000000ffffc0a80102');
    expect(hex(parseIp('1:2:3:4:5:6:7:8'))).toBe('00010002000300040005000600070008');
    expect(hex(parseIp('fe80::1:2'))).toBe('fe800000000000000000000000010002');
    expect(hex(parseIp('255.0.10.1'))).toBe('ff000a01');
  });

  it('refuses bad names, duplicates and the empty SAN', () => {
    for (const bad of ['1.2.3', '1.2.3.256', 'fe80::1%eth0', '::g', 'localhost']) {
      expect(codeOf(() => subjectAltName({ ip: [bad] })), bad).toBe('invalid-argument');
    }
    for (const bad of ['*.b', 'a.*.b', '**.a.b', '*a.b.c', 'a..b', '-a.b', 'a_b.c', '湘潭.cn', 'a.b.', '']) {
      expect(codeOf(() => subjectAltName({ dns: [bad] })), bad).toBe('invalid-argument');
    }
    // A whole leftmost `*` label over two or more labels is a wildcard (ACME dns-01 proves those).
    expect(() => subjectAltName({ dns: ['*.a.b'] })).not.toThrow();
    for (const bad of ['a.b', '@a.b', 'x@', '张@a.b', 'x y@a.b']) {
      expect(codeOf(() => subjectAltName({ email: [bad] })), bad).toBe('invalid-argument');
    }
    expect(codeOf(() => subjectAltName({ dns: ['A.b', 'a.B'] }))).toBe('invalid-argument');
    expect(codeOf(() => subjectAltName({ ip: ['::1', '0:0::1'] }))).toBe('invalid-argument');
    expect(codeOf(() => subjectAltName({}))).toBe('invalid-argument');
  });
});

describe('nameConstraints', () => {
  it('encodes permitted DNS, e-mail and directoryName subtrees, critical', () => {
    const nc = nameConstraints({
      permittedDns: ['a.b'],
      permittedEmail: ['a.b', '.a.b'],
      permittedDirectoryNames: [[{ type: 'C', value: 'CN' }]],
    });
    // [0] { {[2] "a.b"} {[1] "a.b"} {[1] ".a.b"} {[4] { Name C=CN }} }
    expect(hex(nc.value)).toBe(
      '302b' + 'a029' + '30058203612e62' + '30058103612e62' + '300681042e612e62' + '3011a40f300d310b300906035504061302434e',
    );
    expect(nc.critical).toBe(true);
    expect(nc.oid).toBe('2.5.29.30');
    expect(codeOf(() => nameConstraints({}))).toBe('invalid-argument');
  });
});

describe('AIA, CDP, freshestCRL, ocspNoCheck', () => {
  it('encodes AIA with OCSP first then caIssuers as [6] URIs', () => {
    const aia = authorityInfoAccess({ ocsp: 'http://o', caIssuers: 'http://c' });
    expect(hex(aia.value)).toBe(
      '302c' + '3014' + '06082b06010505073001' + '8608' + hex(Buffer.from('http://o')) +
        '3014' + '06082b06010505073002' + '8608' + hex(Buffer.from('http://c')),
    );
    expect(aia.oid).toBe('1.3.6.1.5.5.7.1.1');
    expect(codeOf(() => authorityInfoAccess({}))).toBe('invalid-argument');
    expect(codeOf(() => authorityInfoAccess({ ocsp: 'ftp://x' }))).toBe('invalid-argument');
    expect(codeOf(() => authorityInfoAccess({ ocsp: 'http://湘潭/' }))).toBe('invalid-argument');
  });

  it('encodes one DistributionPoint with the URLs as fullName, for CDP and freshestCRL', () => {
    const url = hex(Buffer.from('http://c'));
    const expected = '3010300ea00ca00a8608' + url;
    expect(hex(crlDistributionPoints(['http://c']).value)).toBe(expected);
    expect(crlDistributionPoints(['http://c']).oid).toBe('2.5.29.31');
    expect(hex(freshestCrl(['http://c']).value)).toBe(expected);
    expect(freshestCrl(['http://c']).oid).toBe('2.5.29.46');
    expect(freshestCrl(['http://c']).critical).toBe(false);
    expect(codeOf(() => crlDistributionPoints([]))).toBe('invalid-argument');
  });

  it('ocspNoCheck is id-pkix-ocsp-nocheck with a NULL value', () => {
    expect(ocspNoCheck()).toEqual({ oid: '1.3.6.1.5.5.7.48.1.5', critical: false, value: Buffer.from('0500', 'hex') });
  });
});

describe('serial numbers', () => {
  it('randomSerial is 16 octets, positive, non-zero and encodes in at most 16 INTEGER octets over many draws', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const serial = randomSerial();
      expect(serial.length).toBe(16);
      expect(serial[0] & 0x80).toBe(0);
      const der = integer(serial);
      expect(der[0]).toBe(0x02);
      expect(der[2] & 0x80).toBe(0); // positive two's complement
      expect(der[1]).toBeLessThanOrEqual(16);
      seen.add(serialToHex(serial));
    }
    expect(seen.size).toBe(5000);
  });

  it('INTEGER stays positive for magnitudes with the top bit set, over many random draws', () => {
    for (let i = 0; i < 2000; i++) {
      const magnitude = randomBytes(1 + (i % 20));
      magnitude[0] |= 0x80;
      const der = integer(magnitude);
      expect(der[2]).toBe(0); // a sign octet was added
      expect(der.subarray(3).equals(magnitude)).toBe(true);
    }
  });

  it('clears the top bit of an injected all-0xff draw and never starts with a zero octet', () => {
    const ff = randomSerial((n) => Buffer.alloc(n, 0xff));
    expect(hex(ff)).toBe('7f' + 'ff'.repeat(15));
    expect(hex(integer(ff))).toBe('0210' + '7f' + 'ff'.repeat(15));
    const zero = randomSerial((n) => Buffer.alloc(n, 0));
    expect(hex(zero)).toBe('01' + '00'.repeat(15));
    expect(hex(integer(zero))).toBe('0210' + '01' + '00'.repeat(15));
    const small = randomSerial((n) => Buffer.concat([Buffer.alloc(1), Buffer.alloc(n - 1, 0x80)]));
    expect(hex(small)).toBe('01' + '80'.repeat(15));
    expect(codeOf(() => randomSerial(() => Buffer.alloc(8)))).toBe('invalid-argument');
  });

  it('serialToHex is lowercase hex without leading zero octets', () => {
    expect(serialToHex(Buffer.from('0000abCD01', 'hex'))).toBe('abcd01');
    expect(serialToHex(Buffer.from('00', 'hex'))).toBe('00');
    expect(serialToHex(Buffer.from('7f', 'hex'))).toBe('7f');
  });

  it('tbsCertificate refuses zero and over-long serials and inverted validity', () => {
    const base = {
      issuer: Buffer.from('3000', 'hex'),
      subject: Buffer.from('3000', 'hex'),
      notBefore: new Date('2026-01-01T00:00:00Z'),
      notAfter: new Date('2027-01-01T00:00:00Z'),
      publicKeyInfo: Buffer.from('3000', 'hex'),
      extensions: [],
      signer: { signatureAlgorithm: Buffer.from('300a06082a8648ce3d040302', 'hex') },
    };
    expect(codeOf(() => tbsCertificate({ ...base, serial: Buffer.alloc(4) }))).toBe('invalid-argument');
    expect(codeOf(() => tbsCertificate({ ...base, serial: Buffer.alloc(20, 0xff) }))).toBe('invalid-argument');
    expect(codeOf(() => tbsCertificate({ ...base, serial: Buffer.alloc(20, 0x7f) }))).toBeUndefined();
    expect(codeOf(() => tbsCertificate({ ...base, serial: Buffer.from([1]), notAfter: new Date('2025-01-01Z') }))).toBe(
      'invalid-argument',
    );
    expect(codeOf(() => tbsCertificate({ ...base, serial: Buffer.from([1]), issuer: Buffer.from('30', 'hex') }))).toBe(
      'invalid-argument',
    );
  });
});

describe('end-entity profiles (pki/profiles.ts)', () => {
  const links = { caIssuersUrl: 'http://x/ca.crt', ocspUrl: 'http://x/ocsp', crlUrl: 'http://x/ca.crl' };
  const spkiOf = (namedCurve: string) => generateKeyPairSync('ec', { namedCurve }).publicKey.export({ type: 'spki', format: 'der' });
  const ec = spkiOf('prime256v1');
  const sm2 = spkiOf('SM2');
  const base = { issuerKeyId: Buffer.alloc(20, 1), policyOid: '1.2.3.4', links };
  const byOid = (exts: { oid: string; value: Buffer }[]) => new Map(exts.map((e) => [e.oid, hex(e.value)]));

  it('user-enc: keyAgreement for P-256, keyEncipherment+dataEncipherment+keyAgreement for SM2', () => {
    expect(byOid(endEntityExtensions({ ...base, profile: 'user-enc', publicKeyInfo: ec })).get('2.5.29.15')).toBe('03020308');
    expect(byOid(endEntityExtensions({ ...base, profile: 'user-enc', publicKeyInfo: sm2 })).get('2.5.29.15')).toBe('03020338');
    expect(byOid(endEntityExtensions({ ...base, profile: 'device', publicKeyInfo: sm2, dns: ['a.b'] })).get('2.5.29.15')).toBe('03020780');
  });

  it('organ-enc and device-enc (decision 0027): the usages of the key as user-enc; EKU emailProtection, or serverAuth + clientAuth for a device', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' });
    const organ = (publicKeyInfo: Buffer) => byOid(endEntityExtensions({ ...base, profile: 'organ-enc', publicKeyInfo, email: ['office@yuhu.xiangtan.intranet'] }));
    const device = (publicKeyInfo: Buffer) => byOid(endEntityExtensions({ ...base, profile: 'device-enc', publicKeyInfo, dns: ['gw.yuhu.xiangtan.intranet'], ip: ['10.21.0.1'] }));
    expect([organ(ec).get('2.5.29.15'), organ(sm2).get('2.5.29.15'), organ(rsa).get('2.5.29.15')]).toEqual(['03020308', '03020338', '03020520']);
    expect([device(ec).get('2.5.29.15'), device(sm2).get('2.5.29.15')]).toEqual(['03020308', '03020338']);
    expect(organ(ec).get('2.5.29.37')).toBe('300a06082b06010505070304');
    expect(device(ec).get('2.5.29.37')).toBe('301406082b0601050507030106082b06010505070302');
    expect(device(ec).get('2.5.29.17')).toBe(hex(subjectAltName({ dns: ['gw.yuhu.xiangtan.intranet'], ip: ['10.21.0.1'] }).value));
    expect(codeOf(() => endEntityExtensions({ ...base, profile: 'device-enc', publicKeyInfo: ec }))).toBe('invalid-argument');
    expect(codeOf(() => endEntityExtensions({ ...base, profile: 'device-enc', publicKeyInfo: ec, email: ['a@b.c'], dns: ['a.b'] }))).toBe('invalid-argument');
    expect(codeOf(() => endEntityExtensions({ ...base, profile: 'organ-enc', publicKeyInfo: ec, dns: ['a.b'] }))).toBe('invalid-argument');
  });

  it('lists the extensions of each profile in order; freshestCRL only with a delta CRL URL; ocsp without OCSP URL and CDP', () => {
    const oids = (profile: EndEntityProfile, extra: object = {}) =>
      endEntityExtensions({ ...base, profile, publicKeyInfo: ec, ...extra }).map((e) => e.oid);
    const head = ['2.5.29.19', '2.5.29.15', '2.5.29.37', '2.5.29.14', '2.5.29.35'];
    expect(oids('organ')).toEqual([...head, '2.5.29.32', '1.3.6.1.5.5.7.1.1', '2.5.29.31']);
    expect(oids('user-sign', { email: ['a@b.c'], links: { ...links, deltaCrlUrl: 'http://x/d.crl' } })).toEqual([
      ...head, '2.5.29.17', '2.5.29.32', '1.3.6.1.5.5.7.1.1', '2.5.29.31', '2.5.29.46',
    ]);
    expect(oids('ocsp', { links: { ...links, deltaCrlUrl: 'http://x/d.crl' } })).toEqual([
      ...head, '2.5.29.32', '1.3.6.1.5.5.7.1.1', '1.3.6.1.5.5.7.48.1.5',
    ]);
    const aia = endEntityExtensions({ ...base, profile: 'ocsp', publicKeyInfo: ec }).find((e) => e.oid === '1.3.6.1.5.5.7.1.1')!;
    expect(hex(aia.value)).toBe(hex(authorityInfoAccess({ caIssuers: 'http://x/ca.crt' }).value));
  });

  it('refuses a device without names and names a profile does not carry', () => {
    expect(codeOf(() => endEntityExtensions({ ...base, profile: 'device', publicKeyInfo: ec }))).toBe('invalid-argument');
    expect(codeOf(() => endEntityExtensions({ ...base, profile: 'device', publicKeyInfo: ec, dns: [], ip: [] }))).toBe('invalid-argument');
    expect(codeOf(() => endEntityExtensions({ ...base, profile: 'organ', publicKeyInfo: ec, dns: ['a.b'] }))).toBe('invalid-argument');
    expect(codeOf(() => endEntityExtensions({ ...base, profile: 'device', publicKeyInfo: ec, ip: ['10.0.0.1'], email: ['a@b.c'] }))).toBe('invalid-argument');
    expect(codeOf(() => endEntityExtensions({ ...base, profile: 'ocsp', publicKeyInfo: ec, email: ['a@b.c'] }))).toBe('invalid-argument');
    expect(codeOf(() => endEntityExtensions({ ...base, profile: 'organ', publicKeyInfo: Buffer.from('3000', 'hex') }))).toBe('invalid-argument');
  });
});

describe('readGeneralNames', () => {
  it('reads back what subjectAltName wrote, and counts other forms', () => {
    const ext = subjectAltName({ dns: ['Gw1.yuhu.xiangtan.intranet'], ip: ['10.1.2.3', '2001:db8::1'], email: ['a@yuhu.xiangtan.intranet'] });
    const names = readGeneralNames(ext.value);
    expect(names).toEqual({
      dns: ['Gw1.yuhu.xiangtan.intranet'], email: ['a@yuhu.xiangtan.intranet'],
      ip: [Buffer.from([10, 1, 2, 3]), Buffer.from('20010db8000000000000000000000001', 'hex')], other: 0,
    });
    // A URI [6] and an otherName [0] (constructed) are other forms.
    const withOthers = Buffer.concat([Buffer.from([0x30, 0x09]), Buffer.from([0x86, 0x03]), Buffer.from('x:y'), Buffer.from([0xa0, 0x02, 0x05, 0x00])]);
    expect(readGeneralNames(withOthers)).toEqual({ dns: [], ip: [], email: [], other: 2 });
    expect(() => readGeneralNames(Buffer.from([0x31, 0x00]))).toThrow();
  });
});
