// The ciphers of the key-management centre (issue 16), each checked against published vectors or an
// implementation other than ours: AES key wrap with padding (RFC 5649 §6), SM4 (GB/T 32907 example,
// and sm-crypto), SM2 encryption (sm-crypto both ways, C1 ‖ C3 ‖ C2), and the SM2EnvelopedKey of
// GM/T 0009-2012 §7.4 opened by openssl asn1parse + sm-crypto with the holder's signing key.
import { describe, expect, it } from 'vitest';
import smCrypto from 'sm-crypto';
import { unwrapKey, wrapKey } from '../../pki/key-wrap.ts';
import { independentKwpUnwrap } from '../helpers/kwp-independent.ts';
import { kwpUnwrap, kwpWrap, sm4UnwrapKey, sm4WrapKey, type BlockCipher } from '../../pki/sm4-key-wrap.ts';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { sm4CbcDecrypt, sm4CbcEncrypt, sm4EcbDecrypt, sm4EcbEncrypt } from '../../pki/sm4.ts';
import { decodeSm2Cipher, encodeSm2Cipher, sm2Decrypt, sm2Encrypt } from '../../pki/sm2-encryption.ts';
import { buildSm2EnvelopedKey, openSm2EnvelopedKey } from '../../pki/sm2-enveloped-key.ts';
import { sm2p256v1 } from '../../pki/sm2.ts';
import { generateKeyPair, publicKeyInfoOf } from '../../pki/key-pair.ts';
import { sm2PrivateScalarOf, sm2PublicPointOf } from '../../pki/sm2-key.ts';
import { PkiError } from '../../pki/pki-error.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { sm2PointHex } from '../helpers/sm2-independent.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const codeOf = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    return err instanceof PkiError ? err.code : String(err);
  }
  return 'no error';
};

describe('AES key wrap with padding (RFC 5649)', () => {
  const kek = hex('5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8');
  it('gives the §6 vectors for a 20-octet and a 7-octet key, and unwraps them', () => {
    const twenty = hex('c37b7e6492584340 bed1220780894115 5068f738');
    expect(wrapKey(kek, twenty).toString('hex')).toBe('138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a');
    const seven = hex('466f7250617369');
    expect(wrapKey(kek, seven).toString('hex')).toBe('afbeb0f07dfbf5419200f2ccb50bb24f');
    expect(unwrapKey(kek, hex('138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a'))).toEqual(twenty);
    expect(unwrapKey(kek, hex('afbeb0f07dfbf5419200f2ccb50bb24f'))).toEqual(seven);
  });

  it('refuses an altered blob and another key-encryption key, returning nothing', () => {
    const master = Buffer.alloc(32, 7);
    const wrapped = wrapKey(master, Buffer.from('escrowed PKCS#8 would be here'));
    const altered = Buffer.from(wrapped);
    altered[5] ^= 1;
    expect(codeOf(() => unwrapKey(master, altered))).toBe('bad-signature');
    expect(codeOf(() => unwrapKey(Buffer.alloc(32, 8), wrapped))).toBe('bad-signature');
    expect(codeOf(() => unwrapKey(master, wrapped.subarray(0, 12)))).toBe('malformed');
  });
});

/** AES-ECB on one block (Node's OpenSSL), as the block cipher under the composed KWP. */
const aesBlock = (kek: Buffer, encrypt: boolean): BlockCipher => (block) => {
  const c = encrypt ? createCipheriv(`aes-${kek.length * 8}-ecb`, kek, null) : createDecipheriv(`aes-${kek.length * 8}-ecb`, kek, null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(block), c.final()]);
};

/** The independent unwrap of test/helpers/kwp-independent.ts over sm-crypto's SM4 (not Node's OpenSSL). */
const independentSm4Unwrap = (kek: Buffer, c: Buffer): Buffer =>
  independentKwpUnwrap((b) => Buffer.from(smCrypto.sm4.decrypt(b, kek.toString('hex'), { padding: 'none', output: 'array' })), c);

describe('KWP composed over a 128-bit block cipher, and over SM4 for an SM2 deployment', () => {
  it('over AES gives RFC 5649 §6\'s vectors and exactly what OpenSSL\'s id-aes256-wrap-pad gives', () => {
    const kek192 = hex('5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8');
    expect(kwpWrap(aesBlock(kek192, true), hex('c37b7e6492584340 bed1220780894115 5068f738')).toString('hex')).toBe('138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a');
    expect(kwpWrap(aesBlock(kek192, true), hex('466f7250617369')).toString('hex')).toBe('afbeb0f07dfbf5419200f2ccb50bb24f');
    const kek = randomBytes(32);
    for (const length of [1, 7, 8, 9, 16, 31, 121, 138, 1218]) {
      const plain = randomBytes(length);
      const ours = kwpWrap(aesBlock(kek, true), plain);
      expect(ours.toString('hex'), `length ${length}`).toBe(wrapKey(kek, plain).toString('hex'));
      expect(kwpUnwrap(aesBlock(kek, false), wrapKey(kek, plain))).toEqual(plain);
    }
  });

  it('over SM4 is opened by an independent unwrap on sm-crypto, and refuses an altered blob or another key', () => {
    const kek = randomBytes(16);
    for (const length of [5, 8, 32, 138, 150]) {
      const plain = randomBytes(length);
      const wrapped = sm4WrapKey(kek, plain);
      expect(wrapped.length).toBe(Math.ceil(length / 8) * 8 + 8);
      expect(independentSm4Unwrap(kek, wrapped), `length ${length}`).toEqual(plain);
      expect(sm4UnwrapKey(kek, wrapped)).toEqual(plain);
      const altered = Buffer.from(wrapped);
      altered[altered.length - 1] ^= 1;
      expect(codeOf(() => sm4UnwrapKey(kek, altered))).toBe('bad-signature');
      expect(codeOf(() => sm4UnwrapKey(randomBytes(16), wrapped))).toBe('bad-signature');
    }
    expect(codeOf(() => sm4UnwrapKey(kek, Buffer.alloc(12)))).toBe('malformed');
    expect(codeOf(() => sm4WrapKey(Buffer.alloc(32), Buffer.alloc(8)))).toBe('invalid-argument');
  });
});

describe('SM4 (GB/T 32907)', () => {
  it('gives the standard example and agrees with sm-crypto in ECB and CBC', () => {
    const k = hex('0123456789abcdeffedcba9876543210');
    expect(sm4EcbEncrypt(k, k).toString('hex')).toBe('681edf34d206965e86b3e94f536e4246');
    expect(sm4EcbDecrypt(k, hex('681edf34d206965e86b3e94f536e4246'))).toEqual(k);
    const data = Buffer.alloc(48, 0x5a);
    expect(Buffer.from(smCrypto.sm4.encrypt(data, k.toString('hex'), { padding: 'none', output: 'array' }))).toEqual(sm4EcbEncrypt(k, data));
    const iv = Buffer.alloc(16, 3);
    const cbc = sm4CbcEncrypt(k, iv, data);
    expect(Buffer.from(smCrypto.sm4.decrypt(cbc, k.toString('hex'), { padding: 'none', mode: 'cbc', iv: iv.toString('hex'), output: 'array' } as never))).toEqual(data);
    expect(sm4CbcDecrypt(k, iv, cbc)).toEqual(data);
  });
});

describe('SM2 encryption (GB/T 32918.4, C1 ‖ C3 ‖ C2)', () => {
  it('is decrypted by sm-crypto, and decrypts what sm-crypto encrypts', async () => {
    const { privateKey } = await generateKeyPair('SM2');
    const spki = publicKeyInfoOf(privateKey);
    const d = sm2PrivateScalarOf(privateKey);
    const dHex = d.toString(16).padStart(64, '0');
    const message = Buffer.from('a fresh SM4 key!', 'ascii');
    const ours = sm2Encrypt(sm2p256v1, sm2PublicPointOf(spki)!, message);
    expect(Buffer.from(smCrypto.sm2.doDecrypt(ours.subarray(1).toString('hex'), dHex, 1, { output: 'array' }))).toEqual(message);
    const theirs = Buffer.concat([Buffer.from([4]), hex(smCrypto.sm2.doEncrypt(message, sm2PointHex(spki), 1))]);
    expect(sm2Decrypt(sm2p256v1, d, theirs)).toEqual(message);
    // The DER SM2Cipher form round-trips; an altered C3 or C2 is refused.
    expect(decodeSm2Cipher(sm2p256v1, encodeSm2Cipher(sm2p256v1, ours))).toEqual(ours);
    const altered = Buffer.from(ours);
    altered[altered.length - 1] ^= 1;
    expect(codeOf(() => sm2Decrypt(sm2p256v1, d, altered))).toBe('bad-signature');
  });
});

describe('SM2EnvelopedKey (GM/T 0009-2012 §7.4)', () => {
  it('opens, with openssl asn1parse and sm-crypto, to the escrowed key under the holder signing key', async () => {
    const signing = await generateKeyPair('SM2');
    const encryption = await generateKeyPair('SM2');
    const envelope = buildSm2EnvelopedKey({ privateKey: encryption.privateKey, recipientPublicKeyInfo: publicKeyInfoOf(signing.privateKey) });
    const dir = new TempDir();
    try {
      const parsed = await openssl(['asn1parse', '-inform', 'DER', '-in', dir.file('env.der', envelope)]);
      expect(parsed.code).toBe(0);
      expect(parsed.stdout).toMatch(/prim: OBJECT +:sm4-ecb/); // openssl names GM/T 0006's SM4-ECB OID
      // SM2Cipher: x and y INTEGERs, then HASH and CipherText OCTET STRINGs (depth 2); then the two BIT STRINGs (depth 1).
      const lines = parsed.stdout.split('\n');
      const prim = (kind: string, depth: number) => lines.filter((l) => l.includes(`d=${depth}`) && l.includes(`prim: ${kind}`));
      const [x, y] = prim('INTEGER', 2).map((l) => l.split(':').at(-1)!.padStart(64, '0'));
      const [hash, body] = prim('OCTET STRING', 2).map((l) => l.split('[HEX DUMP]:')[1].trim().toLowerCase());
      const dSigning = sm2PrivateScalarOf(signing.privateKey).toString(16).padStart(64, '0');
      const symKey = Buffer.from(smCrypto.sm2.doDecrypt(x + y + hash + body, dSigning, 1, { output: 'array' }));
      expect(symKey).toHaveLength(16);
      const bits = prim('BIT STRING', 1);
      expect(bits).toHaveLength(2);
      const encryptedScalar = envelope.subarray(envelope.length - 32);
      const scalar = Buffer.from(smCrypto.sm4.decrypt(encryptedScalar, symKey.toString('hex'), { padding: 'none', output: 'array' }));
      expect(scalar.toString('hex')).toBe(sm2PrivateScalarOf(encryption.privateKey).toString(16).padStart(64, '0'));
      expect(smCrypto.sm2.getPublicKeyFromPrivateKey(scalar.toString('hex'))).toBe(sm2PointHex(publicKeyInfoOf(encryption.privateKey)));
    } finally {
      dir.cleanup();
    }
    // Our own opener agrees, and refuses an envelope for someone else's key.
    const opened = openSm2EnvelopedKey(envelope, signing.privateKey);
    expect(BigInt(`0x${opened.privateScalar.toString('hex')}`)).toBe(sm2PrivateScalarOf(encryption.privateKey));
    const other = await generateKeyPair('SM2');
    expect(codeOf(() => openSm2EnvelopedKey(envelope, other.privateKey))).toBe('bad-signature');
  });
});
