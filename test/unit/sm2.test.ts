/**
 * SM3 and SM2 against the standards' published examples, and the SM2 signer and verifier of pki/.
 *
 * Vectors:
 * - SM3: GB/T 32905-2016 Annex A, examples 1 ("abc") and 2 ("abcd" × 16).
 * - SM2 on the recommended curve: the signature example of GM/T 0003.5-2012 Annex A.2 (= GB/T 32918.5
 *   Annex A) — identity `1234567812345678`, message "message digest", with Z_A, e, k, r and s. The
 *   same numbers are openHiTLS's SM2 self-test vector (crypto/.../cmvp SM2DSA_VECTOR) and GmSSL's
 *   sm2 sign test.
 * - SM2 on the test curve of GM/T 0003.2-2012 Annex A.2 (the 2012 text's own example) — identity
 *   `ALICE123@YAHOO.COM` — as in OpenSSL's test/sm2_internal_test.c (sm2_sig_test) and
 *   draft-shen-sm2-ecdsa-02.
 * A second implementation (sm-crypto) checks what the signer makes from keys Node generates.
 */
import { describe, expect, it } from 'vitest';
import { createHash, createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { bitString, explicit, integer, octetString, oid, sequence } from '../../pki/der.ts';
import { OID } from '../../pki/algorithms.ts';
import { generateKeyPair, publicKeyInfoOf } from '../../pki/key-pair.ts';
import { PkiError } from '../../pki/pki-error.ts';
import { SM2_DEFAULT_ID, Sm2Curve, decodeSm2Signature, encodeSm2Signature, sm2p256v1 } from '../../pki/sm2.ts';
import { sm2Signer } from '../../pki/sm2-signer.ts';
import { sm2IdentityThatVerifies, verifySm2Signature } from '../../pki/sm2-verifier.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import { SM2_SPKI_PREFIX, SM2_WITH_SM3_DER, smCryptoVerifies } from '../helpers/sm2-independent.ts';

const hex = (h: string) => Buffer.from(h.replace(/\s+/g, ''), 'hex');
const big = (h: string) => BigInt(`0x${h.replace(/\s+/g, '')}`);
const MESSAGE = Buffer.from('message digest', 'ascii');

/** GM/T 0003.5-2012 Annex A.2, recommended curve. */
const RECOMMENDED = {
  d: '3945208F 7B2144B1 3F36E38A C6D39F95 88939369 2860B51A 42FB81EF 4DF7C5B8',
  x: '09F9DF31 1E5421A1 50DD7D16 1E4BC5C6 72179FAD 1833FC07 6BB08FF3 56F35020',
  y: 'CCEA490C E26775A5 2DC6EA71 8CC1AA60 0AED05FB F35E084A 6632F607 2DA9AD13',
  za: 'B2E14C5C 79C6DF5B 85F4FE7E D8DB7A26 2B9DA7E0 7CCB0EA9 F4747B8C CDA8A4F3',
  e: 'F0B43E94 BA45ACCA ACE692ED 534382EB 17E6AB5A 19CE7B31 F4486FDF C0D28640',
  k: '59276E27 D506861A 16680F3A D9C02DCC EF3CC1FA 3CDBE4CE 6D54B80D EAC1BC21',
  r: 'F5A03B06 48D2C463 0EEAC513 E1BB81A1 5944DA38 27D5B741 43AC7EAC EEE720B3',
  s: 'B1B6AA29 DF212FD8 763182BC 0D421CA1 BB9038FD 1F7F42D4 840B69C4 85BBC1AA',
};

/** GM/T 0003.2-2012 Annex A.2, the 256-bit test curve. */
const TEST_CURVE = new Sm2Curve({
  p: big('8542D69E 4C044F18 E8B92435 BF6FF7DE 45728391 5C45517D 722EDB8B 08F1DFC3'),
  a: big('787968B4 FA32C3FD 2417842E 73BBFEFF 2F3C848B 6831D7E0 EC65228B 3937E498'),
  b: big('63E4C6D3 B23B0C84 9CF84241 484BFE48 F61D59A5 B16BA06E 6E12D1DA 27C5249A'),
  Gx: big('421DEBD6 1B62EAB6 746434EB C3CC315E 32220B3B ADD50BDC 4C4E6C14 7FEDD43D'),
  Gy: big('0680512B CBB42C07 D47349D2 153B70C4 E5D7FDFC BFA36EA1 A85841B9 E46E09A2'),
  n: big('8542D69E 4C044F18 E8B92435 BF6FF7DD 29772063 0485628D 5AE74EE7 C32E79B7'),
});
const ALICE = {
  id: Buffer.from('ALICE123@YAHOO.COM', 'ascii'),
  d: '128B2FA8 BD433C6C 068C8D80 3DFF7979 2A519A55 171B1B65 0C23661D 15897263',
  x: '0AE4C779 8AA0F119 471BEE11 825BE462 02BB79E2 A5844495 E97C04FF 4DF2548A',
  y: '7C0240F8 8F1CD4E1 6352A73C 17B7F16F 07353E53 A176D684 A9FE0C6B B798E857',
  za: 'F4A38489 E32B45B6 F876E3AC 2168CA39 2362DC8F 23459C1D 1146FC3D BFB7BC9A',
  e: 'B524F552 CD82B8B0 28476E00 5C377FB1 9A87E6FC 682D48BB 5D42E3D9 B9EFFE76',
  k: '6CB28D99 385C175C 94F94E93 4817663F C176D925 DD72B727 260DBAAE 1FB2F96F',
  r: '40F1EC59 F793D9F4 9E09DCEF 49130D41 94F79FB1 EED2CAA5 5BACDB49 C4E755D1',
  s: '6FC6DAC3 2C5D5CF1 0C77DFB2 0F7C2EB6 67A45787 2FB09EC5 6327A67E C7DEEBE7',
};

/** The published key as a Node KeyObject: PKCS#8 (RFC 5208) around an RFC 5915 ECPrivateKey. */
function publishedKey(): KeyObject {
  const point = Buffer.concat([Buffer.from([4]), hex(RECOMMENDED.x), hex(RECOMMENDED.y)]);
  const ecPrivateKey = sequence(integer(1), octetString(hex(RECOMMENDED.d)), explicit(1, bitString(point)));
  const pkcs8 = sequence(integer(0), sequence(oid(OID.ecPublicKey), oid(OID.sm2Curve)), octetString(ecPrivateKey));
  return createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
}

/** A random source that hands out the given octets in turn. */
const draws = (...values: Buffer[]) => () => {
  const next = values.shift();
  if (!next) throw new Error('no more draws');
  return next;
};

function thrown(fn: () => unknown): PkiError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PkiError);
    return err as PkiError;
  }
  throw new Error('expected a PkiError');
}

describe('SM3 (GB/T 32905-2016 Annex A) through Node', () => {
  it('hashes "abc" and "abcd" × 16 to the published digests', () => {
    expect(createHash('sm3').update('abc').digest('hex')).toBe('66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0');
    expect(createHash('sm3').update('abcd'.repeat(16)).digest('hex')).toBe('debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732');
  });
});

describe('SM2 on the recommended curve: GM/T 0003.5-2012 Annex A.2', () => {
  const key = sm2p256v1.signingKey(big(RECOMMENDED.d));
  const published = { r: big(RECOMMENDED.r), s: big(RECOMMENDED.s) };

  it('derives the published public key, Z_A and e', () => {
    const { x, y } = key.publicPoint.toAffine();
    expect([x, y]).toEqual([big(RECOMMENDED.x), big(RECOMMENDED.y)]);
    const za = sm2p256v1.za(key.publicPoint, SM2_DEFAULT_ID);
    expect(za.toString('hex')).toBe(RECOMMENDED.za.replace(/ /g, '').toLowerCase());
    expect(sm2p256v1.digestOf(za, MESSAGE)).toBe(big(RECOMMENDED.e));
  });

  it('signs with the published k to exactly the published (r, s)', () => {
    expect(sm2p256v1.signDigest(key, big(RECOMMENDED.e), draws(hex(RECOMMENDED.k)))).toEqual(published);
  });

  it('verifies the published signature, and not a changed message, digest or signature', () => {
    expect(sm2p256v1.verifyDigest(key.publicPoint, big(RECOMMENDED.e), published)).toBe(true);
    expect(sm2p256v1.verifyDigest(key.publicPoint, big(RECOMMENDED.e) + 1n, published)).toBe(false);
    expect(sm2p256v1.verifyDigest(key.publicPoint, big(RECOMMENDED.e), { ...published, s: published.s + 1n })).toBe(false);
    const spki = publicKeyInfoOf(publishedKey());
    const signature = encodeSm2Signature(published);
    expect(verifySm2Signature({ publicKeyInfo: spki, data: MESSAGE, signature })).toBe(true);
    expect(verifySm2Signature({ publicKeyInfo: spki, data: Buffer.from('message digesT'), signature })).toBe(false);
    expect(verifySm2Signature({ publicKeyInfo: spki, data: MESSAGE, signature, id: Buffer.alloc(0) })).toBe(false);
  });

  it('the Signer over the published key, given the published k, makes the published DER signature', async () => {
    const signer = sm2Signer({ privateKey: publishedKey(), random: draws(hex(RECOMMENDED.k)) });
    const signature = await signer.sign(MESSAGE);
    expect(signature.toString('hex')).toBe(`3046022100${RECOMMENDED.r}022100${RECOMMENDED.s}`.replace(/ /g, '').toLowerCase());
    expect(signer.signatureAlgorithm).toEqual(SM2_WITH_SM3_DER);
    expect(signer.publicKeyInfo.subarray(0, SM2_SPKI_PREFIX.length)).toEqual(SM2_SPKI_PREFIX);
    expect(signer.inMemoryKey).toBeUndefined(); // an injected nonce source cannot follow the key to a thread
    expect(smCryptoVerifies({ publicKeyInfo: signer.publicKeyInfo, data: MESSAGE, signature })).toBe(true);
  });
});

describe('SM2 on the test curve: GM/T 0003.2-2012 Annex A.2 (identity ALICE123@YAHOO.COM)', () => {
  const key = TEST_CURVE.signingKey(big(ALICE.d));

  it('derives the published public key, Z_A and e, signs with k to (r, s), and verifies it', () => {
    const { x, y } = key.publicPoint.toAffine();
    expect([x, y]).toEqual([big(ALICE.x), big(ALICE.y)]);
    const za = TEST_CURVE.za(key.publicPoint, ALICE.id);
    expect(za).toEqual(hex(ALICE.za));
    const e = TEST_CURVE.digestOf(za, MESSAGE);
    expect(e).toBe(big(ALICE.e));
    const signature = TEST_CURVE.signDigest(key, e, draws(hex(ALICE.k)));
    expect(signature).toEqual({ r: big(ALICE.r), s: big(ALICE.s) });
    expect(TEST_CURVE.verifyDigest(key.publicPoint, e, signature)).toBe(true);
    expect(TEST_CURVE.verifyDigest(key.publicPoint, TEST_CURVE.digestOf(TEST_CURVE.za(key.publicPoint), MESSAGE), signature)).toBe(false);
  });
});

describe('the SM2 signer', () => {
  it('draws k again when a draw is 0 or not below n (GB/T 32918.2 §6.1 A3)', () => {
    const key = sm2p256v1.signingKey(big(RECOMMENDED.d));
    const n = sm2p256v1.params.n;
    const random = draws(Buffer.alloc(32), sm2p256v1.octets(n), hex(RECOMMENDED.k));
    expect(sm2p256v1.signDigest(key, big(RECOMMENDED.e), random)).toEqual({ r: big(RECOMMENDED.r), s: big(RECOMMENDED.s) });
    expect(thrown(() => sm2p256v1.signDigest(key, 1n, () => Buffer.alloc(32))).message).toBe('the random source gave no usable SM2 nonce in 64 draws');
  });

  it('softwareSigner signs SM2 with the standard identity: sm-crypto verifies it with 1234567812345678, not with the empty identity', async () => {
    const { privateKey } = await generateKeyPair('SM2');
    const signer = softwareSigner({ privateKey, algorithm: 'SM2' });
    expect(signer.inMemoryKey).toEqual({ privateKey, algorithm: 'SM2', rsaPadding: 'pkcs1' });
    const data = Buffer.from('tbs bytes of some certificate');
    const signature = await signer.sign(data);
    expect(decodeSm2Signature(signature)).not.toBeNull();
    expect(smCryptoVerifies({ publicKeyInfo: signer.publicKeyInfo, data, signature })).toBe(true);
    expect(smCryptoVerifies({ publicKeyInfo: signer.publicKeyInfo, data, signature, userId: '' })).toBe(false);
    expect(sm2IdentityThatVerifies({ publicKeyInfo: signer.publicKeyInfo, data, signature })).toBe('default');
    // The signer a signing thread rebuilds from inMemoryKey signs the same way.
    const rebuilt = softwareSigner(signer.inMemoryKey!);
    expect(rebuilt.publicKeyInfo).toEqual(signer.publicKeyInfo);
    expect(verifySm2Signature({ publicKeyInfo: signer.publicKeyInfo, data, signature: await rebuilt.sign(data) })).toBe(true);
  });

  it('an identity given to sm2Signer is the one hashed, and is named by the verifier', async () => {
    const { privateKey } = await generateKeyPair('SM2');
    const empty = sm2Signer({ privateKey, id: Buffer.alloc(0) });
    expect(empty.inMemoryKey).toBeUndefined();
    const data = Buffer.from('x');
    const signature = await empty.sign(data);
    expect(smCryptoVerifies({ publicKeyInfo: empty.publicKeyInfo, data, signature, userId: '' })).toBe(true);
    expect(sm2IdentityThatVerifies({ publicKeyInfo: empty.publicKeyInfo, data, signature })).toBe('empty');
    const alice = await sm2Signer({ privateKey, id: ALICE.id }).sign(data);
    expect(sm2IdentityThatVerifies({ publicKeyInfo: empty.publicKeyInfo, data, signature: alice })).toBeNull();
    expect(verifySm2Signature({ publicKeyInfo: empty.publicKeyInfo, data, signature: alice, id: ALICE.id })).toBe(true);
  });

  it('signs with the EC form of an SM2 key too (as generated, before any PKCS#8 round trip)', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'SM2' });
    const signer = sm2Signer({ privateKey });
    const signature = await signer.sign(MESSAGE);
    expect(smCryptoVerifies({ publicKeyInfo: signer.publicKeyInfo, data: MESSAGE, signature })).toBe(true);
  });

  it('refuses keys that are not SM2, SM2 keys under another algorithm, and over-long identities', async () => {
    const { privateKey: p256 } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect([thrown(() => sm2Signer({ privateKey: p256 })).code, thrown(() => sm2Signer({ privateKey: p256 })).message]).toEqual([
      'unsupported-algorithm',
      'the key is not an SM2 key',
    ]);
    const { privateKey: sm2 } = await generateKeyPair('SM2');
    const wrong = thrown(() => softwareSigner({ privateKey: sm2, algorithm: 'P-256' }));
    expect([wrong.code, wrong.message]).toEqual(['unsupported-algorithm', 'an SM2 key cannot sign as P-256']);
    const long = thrown(() => sm2Signer({ privateKey: sm2, id: Buffer.alloc(8192, 0x41) }));
    expect([long.code, long.message]).toEqual(['invalid-argument', 'an SM2 signer identity is at most 8191 octets']);
  });

  it('generateKeyPair gives Node\'s SM2 form of the key (never the EC form that Node signs ECDSA with)', async () => {
    const { privateKey, publicKey } = await generateKeyPair('SM2');
    expect(privateKey.asymmetricKeyType).toBeUndefined(); // the EC form reports 'ec'
    expect(publicKeyInfoOf(publicKey).subarray(0, SM2_SPKI_PREFIX.length)).toEqual(SM2_SPKI_PREFIX);
  });
});

describe('the SM2 verifier reads signatures strictly', () => {
  const key = publishedKey();
  const spki = publicKeyInfoOf(key);
  const good = encodeSm2Signature({ r: big(RECOMMENDED.r), s: big(RECOMMENDED.s) });
  const n = sm2p256v1.params.n;
  const cases: Array<[string, Buffer]> = [
    ['r ‖ s without DER', Buffer.concat([hex(RECOMMENDED.r), hex(RECOMMENDED.s)])],
    ['trailing octet', Buffer.concat([good, Buffer.from([0])])],
    ['non-minimal r (two leading zero octets)', sequence(hex(`02220000${RECOMMENDED.r}`), integer(big(RECOMMENDED.s)))],
    ['negative s (no sign octet before 0xB1)', sequence(integer(big(RECOMMENDED.r)), hex(`0220${RECOMMENDED.s}`))],
    ['r = 0', encodeSm2Signature({ r: 0n, s: big(RECOMMENDED.s) })],
    ['s = n', encodeSm2Signature({ r: big(RECOMMENDED.r), s: n })],
    ['three integers', sequence(integer(1), integer(2), integer(3))],
  ];
  for (const [name, signature] of cases) {
    it(`refuses ${name}`, () => {
      expect(verifySm2Signature({ publicKeyInfo: spki, data: MESSAGE, signature })).toBe(false);
    });
  }

  it('returns false for a key that is not SM2 and throws malformed for a point off the curve', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect(verifySm2Signature({ publicKeyInfo: publicKeyInfoOf(publicKey), data: MESSAGE, signature: good })).toBe(false);
    const offCurve = Buffer.from(spki);
    offCurve[offCurve.length - 1] ^= 1;
    const err = thrown(() => verifySm2Signature({ publicKeyInfo: offCurve, data: MESSAGE, signature: good }));
    expect([err.code, err.message]).toEqual(['malformed', 'malformed public key: not a point of the SM2 curve']);
  });
});
