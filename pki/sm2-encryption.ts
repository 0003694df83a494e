/**
 * SM2 public-key encryption (GB/T 32918.4-2016 §6–7, = GM/T 0003.4-2012) with SM3, ciphertext
 * C = C1 ‖ C3 ‖ C2 (the 2016 order), and its DER form SM2Cipher (GM/T 0009-2012 §7.2).
 *
 * As in ./sm2.ts, the curve arithmetic is @noble/curves' (its constant-time `Point.multiply` for
 * [k]G, [k]P_B and [d_B]C1, its point validation); this file composes it with Node's SM3 in the
 * standard's step order. Used to encrypt an SM4 key to a holder's SM2 key (./sm2-enveloped-key.ts).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { WeierstrassPoint } from '@noble/curves/abstract/weierstrass.js';
import { integer, octetString, sequence } from './der.ts';
import { children, expectTag, readOnly } from './der-reader.ts';
import { PkiError } from './pki-error.ts';
import type { Sm2Curve } from './sm2.ts';

/** Octets of SM3's output, and so of C3. */
const C3_LENGTH = 32;

/** KDF(Z, klen) of GB/T 32918.4 §5.4.3: SM3(Z ‖ ct) for ct = 1, 2, … (32-bit big-endian), cut to `length` octets. */
export function sm2Kdf(z: Buffer, length: number): Buffer {
  const blocks: Buffer[] = [];
  const counter = Buffer.alloc(4);
  for (let ct = 1; blocks.length * C3_LENGTH < length; ct++) {
    counter.writeUInt32BE(ct);
    blocks.push(createHash('sm3').update(z).update(counter).digest());
  }
  return Buffer.concat(blocks).subarray(0, length);
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

/** x₂ ‖ y₂ of a point, and the key stream and C3 it gives for `message` (§6.1 steps A5–A7, §7.1 B4–B6). */
function shared(curve: Sm2Curve, point: WeierstrassPoint<bigint>, length: number): { x2: Buffer; y2: Buffer; t: Buffer } {
  if (point.is0()) throw new PkiError('invalid-argument', 'SM2 encryption reached the point at infinity');
  const { x, y } = point.toAffine();
  const x2 = curve.octets(x);
  const y2 = curve.octets(y);
  return { x2, y2, t: sm2Kdf(Buffer.concat([x2, y2]), length) };
}

const c3Of = (x2: Buffer, message: Buffer, y2: Buffer): Buffer => createHash('sm3').update(x2).update(message).update(y2).digest();

/**
 * Encrypts `message` (non-empty) to the public key `publicPoint` (GB/T 32918.4 §6.1). Returns
 * C1 ‖ C3 ‖ C2 with C1 uncompressed (04 ‖ x₁ ‖ y₁).
 *
 * @param random source of k's octets; default crypto.randomBytes. A draw outside [1, n − 1] or one
 * giving an all-zero key stream is discarded and drawn again (steps A1, A5).
 */
export function sm2Encrypt(curve: Sm2Curve, publicPoint: WeierstrassPoint<bigint>, message: Buffer, random: (n: number) => Buffer = randomBytes): Buffer {
  if (!Buffer.isBuffer(message) || message.length === 0) throw new PkiError('invalid-argument', 'SM2 encrypts a non-empty message');
  publicPoint.assertValidity(); // A3: h = 1, so S = [h]P_B is P_B, which must be a finite curve point
  const { Fn, BASE } = curve.Point;
  for (let attempt = 0; attempt < 64; attempt++) {
    const k = BigInt(`0x${random(curve.size).toString('hex') || '0'}`);
    if (!Fn.isValidNot0(k)) continue; // A1: k ∈ [1, n − 1]
    const c1 = BASE.multiply(k).toBytes(false); // A2: C1 = [k]G
    const { x2, y2, t } = shared(curve, publicPoint.multiply(k), message.length); // A4, A5
    if (t.every((octet) => octet === 0)) continue;
    return Buffer.concat([c1, c3Of(x2, message, y2), xor(message, t)]); // A6, A7, A8 (C1 ‖ C3 ‖ C2)
  }
  throw new PkiError('invalid-argument', 'the random source gave no usable SM2 encryption nonce in 64 draws');
}

/**
 * Decrypts C1 ‖ C3 ‖ C2 with the private key `d` (GB/T 32918.4 §7.1). A C1 that is not a curve point
 * is PkiError('malformed'); a C3 that does not match (altered ciphertext, other key) is
 * PkiError('bad-signature'), and nothing of the message is returned.
 */
export function sm2Decrypt(curve: Sm2Curve, d: bigint, ciphertext: Buffer): Buffer {
  const pointLength = 1 + 2 * curve.size;
  if (!Buffer.isBuffer(ciphertext) || ciphertext.length <= pointLength + C3_LENGTH || ciphertext[0] !== 0x04) {
    throw new PkiError('malformed', 'an SM2 ciphertext is 04 ‖ x₁ ‖ y₁ ‖ C3 ‖ C2 with C2 non-empty');
  }
  const c1 = curve.pointFromBytes(ciphertext.subarray(0, pointLength)); // B1
  const c3 = ciphertext.subarray(pointLength, pointLength + C3_LENGTH);
  const c2 = ciphertext.subarray(pointLength + C3_LENGTH);
  const { x2, y2, t } = shared(curve, c1.multiply(d), c2.length); // B3, B4
  if (t.every((octet) => octet === 0)) throw new PkiError('bad-signature', 'SM2 decryption failed');
  const message = xor(c2, t); // B5
  if (!timingSafeEqual(c3Of(x2, message, y2), c3)) { // B6
    message.fill(0);
    throw new PkiError('bad-signature', 'SM2 decryption failed: the ciphertext was altered or is for another key');
  }
  return message;
}

/** C1 ‖ C3 ‖ C2 as GM/T 0009-2012 §7.2 SM2Cipher: SEQUENCE { XCoordinate INTEGER, YCoordinate INTEGER, HASH OCTET STRING (32), CipherText OCTET STRING }. */
export function encodeSm2Cipher(curve: Sm2Curve, ciphertext: Buffer): Buffer {
  const n = curve.size;
  const x = ciphertext.subarray(1, 1 + n);
  const y = ciphertext.subarray(1 + n, 1 + 2 * n);
  const rest = ciphertext.subarray(1 + 2 * n);
  return sequence(integer(BigInt(`0x${x.toString('hex')}`)), integer(BigInt(`0x${y.toString('hex')}`)), octetString(rest.subarray(0, C3_LENGTH)), octetString(rest.subarray(C3_LENGTH)));
}

/** An SM2Cipher (GM/T 0009 §7.2) back to C1 ‖ C3 ‖ C2; PkiError('malformed') for anything else. */
export function decodeSm2Cipher(curve: Sm2Curve, der: Buffer): Buffer {
  const parts = children(readOnly(der, 0x30));
  if (parts.length !== 4) throw new PkiError('malformed', 'an SM2Cipher has four fields');
  const [x, y] = parts.slice(0, 2).map((p) => BigInt(`0x${expectTag(p, 0x02, 'SM2Cipher coordinate').content.toString('hex') || '0'}`));
  const hash = expectTag(parts[2], 0x04, 'SM2Cipher HASH').content;
  const body = expectTag(parts[3], 0x04, 'SM2Cipher CipherText').content;
  if (hash.length !== C3_LENGTH || body.length === 0) throw new PkiError('malformed', 'an SM2Cipher has a 32-octet HASH and a non-empty CipherText');
  if (x >= curve.params.p || y >= curve.params.p) throw new PkiError('malformed', 'an SM2Cipher coordinate is outside the field');
  return Buffer.concat([Buffer.from([0x04]), curve.octets(x), curve.octets(y), hash, body]);
}
