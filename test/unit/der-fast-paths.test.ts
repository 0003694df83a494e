/**
 * The issuance hot path's shortcuts give what the plain code gives: one-allocation TLVs, the OID
 * decode cache, the issuer part of CertIDs kept per issuer, the extensions a CA's leaves share, made
 * once per issuer and profile, and the RDNs names share.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { oid as encodeOid, tlv, tlvOf, toPem } from '../../pki/der.ts';
import { DerError, decodeOid, readOnly } from '../../pki/der-reader.ts';
import { encodeExtension, encodeExtensions } from '../../pki/extensions.ts';
import { endEntityExtensions } from '../../pki/profiles.ts';
import { certIdFor } from '../../pki/ocsp-request.ts';
import { subjectPublicKeyBits } from '../../pki/key-pair.ts';
import { decodeName, encodeName, type DistinguishedName } from '../../pki/name.ts';
import { PkiError } from '../../pki/pki-error.ts';

/** X.690 §8.1.3 written out plainly: short form below 128, else 0x80|n and n big-endian octets. */
function referenceTlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let length: number[];
  if (n < 0x80) length = [n];
  else {
    const octets: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) octets.unshift(v % 256);
    length = [0x80 | octets.length, ...octets];
  }
  return Buffer.concat([Buffer.from([tag, ...length]), content]);
}

describe('tlvOf', () => {
  it.each([0, 1, 127, 128, 255, 256, 65_535, 65_536, 16_777_215, 16_777_216])('encodes %i content octets as X.690 does, read back whole', (n) => {
    const content = Buffer.alloc(n, 0xab);
    if (n > 0) content[n - 1] = 0x01;
    const encoded = tlvOf(0x04, [content.subarray(0, n >> 1), content.subarray(n >> 1)]);
    expect(encoded.equals(referenceTlv(0x04, content))).toBe(true);
    expect(tlv(0x04, content).equals(encoded)).toBe(true);
    const el = readOnly(encoded, 0x04);
    expect(el.content.equals(content)).toBe(true);
  });

  it('writes no byte of a part twice nor skips one (several parts, empty ones among them)', () => {
    const parts = [Buffer.from([1, 2]), Buffer.alloc(0), Buffer.from([3]), Buffer.alloc(200, 7)];
    expect(tlvOf(0x30, parts).equals(referenceTlv(0x30, Buffer.concat(parts)))).toBe(true);
  });
});

describe('toPem', () => {
  it.each([1, 47, 48, 49, 96, 97, 1000])('wraps %i octets of DER at 64 characters (RFC 7468 §2), the lines adding up to the base64', (n) => {
    const der = Buffer.alloc(n, 0x5a);
    der[0] = n & 0xff;
    const pem = toPem(der.subarray(0), 'CERTIFICATE');
    const lines = pem.split('\n');
    expect(lines[0]).toBe('-----BEGIN CERTIFICATE-----');
    expect(lines.at(-2)).toBe('-----END CERTIFICATE-----');
    expect(lines.at(-1)).toBe('');
    const body = lines.slice(1, -2);
    expect(body.every((l) => l.length > 0 && l.length <= 64)).toBe(true);
    expect(body.slice(0, -1).every((l) => l.length === 64)).toBe(true);
    expect(body.join('')).toBe(der.toString('base64'));
  });

  it('reads only the view it is given, not the rest of its buffer', () => {
    const whole = Buffer.from('0123456789');
    expect(toPem(whole.subarray(2, 5), 'X')).toBe(`-----BEGIN X-----\n${whole.subarray(2, 5).toString('base64')}\n-----END X-----\n`);
  });
});

describe('decodeOid with its cache', () => {
  const el = (text: string) => readOnly(encodeOid(text), 0x06);

  it('decodes the same OID the same way every time, and OIDs sharing a prefix each as themselves', () => {
    for (let round = 0; round < 3; round++) {
      expect(decodeOid(el('2.5.29.17'))).toBe('2.5.29.17');
      expect(decodeOid(el('2.5.29.1'))).toBe('2.5.29.1');
      expect(decodeOid(el('2.5.29.170'))).toBe('2.5.29.170');
      expect(decodeOid(el('1.2.156.10197.1.501'))).toBe('1.2.156.10197.1.501');
    }
  });

  it('still refuses a truncated OID whose prefix was decoded before', () => {
    const good = encodeOid('1.2.840.113549.1.1.11');
    decodeOid(readOnly(good, 0x06));
    const truncated = Buffer.from([0x06, good[1] + 1, ...good.subarray(2), 0x81]);
    expect(() => decodeOid(readOnly(truncated, 0x06))).toThrow(DerError);
    expect(() => decodeOid(readOnly(truncated, 0x06))).toThrow(/truncated/);
  });

  it('decodes correctly past the cache bound (thousands of distinct OIDs)', () => {
    for (let i = 0; i < 3000; i++) expect(decodeOid(el(`1.3.6.1.4.1.${i}.${i * 7}`))).toBe(`1.3.6.1.4.1.${i}.${i * 7}`);
    expect(decodeOid(el('2.5.29.17'))).toBe('2.5.29.17');
  });
});

describe('certIdFor with the issuer part kept', () => {
  const issuer = (cn: string) => {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
    return { name: tlvOf(0x30, [Buffer.from(cn)]), key };
  };

  it('hashes each issuer\'s own name and key (SHA-1 and SHA-256), computed here independently', () => {
    const a = issuer('a');
    const b = issuer('b');
    for (const hashAlgorithm of ['sha1', 'sha256'] as const) {
      for (const [who, serial] of [[a, '01'], [b, '01'], [a, '7f'], [b, '7f']] as const) {
        const id = certIdFor({ issuerName: who.name, issuerPublicKeyInfo: who.key, serial, hashAlgorithm });
        const hex = id.toString('hex');
        expect(hex).toContain(createHash(hashAlgorithm).update(who.name).digest('hex'));
        expect(hex).toContain(createHash(hashAlgorithm).update(subjectPublicKeyBits(who.key)).digest('hex'));
        expect(hex.endsWith(`0201${serial}`)).toBe(true);
      }
    }
  });
});

describe('extensions shared by the leaves of a CA', () => {
  const key = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
  const links = (ca: string) => ({ caIssuersUrl: `http://pki.test/${ca}.crt`, ocspUrl: `http://pki.test/${ca}/ocsp`, crlUrl: `http://pki.test/${ca}.crl` });
  const leaf = (ca: string, keyId: number, policyOid: string, publicKeyInfo = key()) =>
    endEntityExtensions({ profile: 'device', publicKeyInfo, issuerKeyId: Buffer.alloc(20, keyId), policyOid, links: links(ca), dns: [`d${keyId}.test`] });
  const byOid = (exts: { oid: string; value: Buffer }[]) => new Map(exts.map((e) => [e.oid, e.value.toString('hex')]));

  it('each issuer, tier and profile gets its own AKI, policy and URLs, however the calls interleave', () => {
    const a1 = byOid(leaf('a', 1, '1.2.3.1'));
    const b2 = byOid(leaf('b', 2, '1.2.3.2'));
    const a1again = byOid(leaf('a', 1, '1.2.3.1'));
    expect(a1.get('2.5.29.35')).toContain('01'.repeat(20));
    expect(b2.get('2.5.29.35')).toContain('02'.repeat(20));
    expect(Buffer.from(a1.get('1.3.6.1.5.5.7.1.1')!, 'hex').toString('latin1')).toContain('http://pki.test/a/ocsp');
    expect(Buffer.from(b2.get('1.3.6.1.5.5.7.1.1')!, 'hex').toString('latin1')).toContain('http://pki.test/b/ocsp');
    expect(a1.get('2.5.29.32')).toContain(encodeOid('1.2.3.1').toString('hex'));
    expect(b2.get('2.5.29.32')).toContain(encodeOid('1.2.3.2').toString('hex'));
    // Only SKI and SAN are the leaf's own.
    for (const oid of ['2.5.29.19', '2.5.29.15', '2.5.29.37', '2.5.29.35', '2.5.29.32', '1.3.6.1.5.5.7.1.1', '2.5.29.31']) expect(a1again.get(oid)).toBe(a1.get(oid));
    expect(a1again.get('2.5.29.14')).not.toBe(a1.get('2.5.29.14'));
  });

  it('the shared ones are frozen and encode, from their kept encoding, as a fresh copy encodes', () => {
    const exts = leaf('c', 3, '1.2.3.3');
    const shared = exts.filter((e) => Object.isFrozen(e)).map((e) => e.oid);
    expect(shared).toEqual(['2.5.29.19', '2.5.29.15', '2.5.29.37', '2.5.29.35', '2.5.29.32', '1.3.6.1.5.5.7.1.1', '2.5.29.31']);
    const fresh = exts.map((e) => ({ oid: e.oid, critical: e.critical, value: Buffer.from(e.value) }));
    expect(encodeExtensions(exts).equals(encodeExtensions(fresh))).toBe(true);
    for (const e of exts) expect(encodeExtension(e).equals(encodeExtension({ ...e }))).toBe(true);
    expect(() => { (exts[0] as { critical: boolean }).critical = false; }).toThrow(TypeError);
  });
});

describe('encodeName with the shared RDNs kept', () => {
  const dn = (o: string, cn: string): DistinguishedName => [
    { type: 'C', value: 'CN' }, { type: 'ST', value: '湖南省' }, { type: 'L', value: '雨湖区' }, { type: 'O', value: o }, { type: 'CN', value: cn },
  ];

  it('encodes every name as itself, whichever names came before, and reads back', () => {
    const names = [dn('雨湖区人民法院', 'a'), dn('雨湖区人民法院', 'b'), dn('岳塘区人民法院', 'a'), dn('雨湖区人民法院', 'a')];
    const encoded = names.map(encodeName);
    names.forEach((n, i) => expect(decodeName(encoded[i])).toEqual(n));
    expect(encoded[0].equals(encoded[3])).toBe(true);
    expect(encoded[0].equals(encoded[1])).toBe(false);
    expect(encoded[0].equals(encoded[2])).toBe(false);
  });

  it('refuses a bad shared value every time (a refusal is never kept)', () => {
    for (let i = 0; i < 3; i++) {
      expect(() => encodeName([{ type: 'C', value: 'cn' }])).toThrow(PkiError);
      expect(() => encodeName([{ type: 'O', value: 'a\u0001b' }])).toThrow(/control character/);
    }
  });

  it('still encodes correctly past the bound (thousands of distinct organs)', () => {
    for (let i = 0; i < 2500; i++) expect(decodeName(encodeName(dn(`organ ${i}`, 'x')))[3]).toEqual({ type: 'O', value: `organ ${i}` });
  });
});
