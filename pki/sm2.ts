/**
 * SM2 digital signatures (GB/T 32918.2-2016 §6 and §7, = GM/T 0003.2-2012) with SM3 (GB/T 32905-2016)
 * over the recommended curve sm2p256v1 (GB/T 32918.5-2017 §3, = GM/T 0003.5-2012).
 *
 * SM2's signature equation is not ECDSA's — r = (e + x₁) mod n, s = (1 + d)⁻¹·(k − r·d) mod n, and e
 * hashes the signer identity hash Z in front of the message — so no ECDSA implementation can make it,
 * and Node's crypto cannot set the identity (it signs with an empty one, docs/decisions/0017-sm2.md).
 * The curve arithmetic is @noble/curves' (audited): its constant-time `Point.multiply` for k·G, its
 * `multiplyUnsafe` (over G's precomputed windows, and P_A) for the public s·G + t·P of verification, its scalar field and its
 * constant-time inversion. This file only composes them in the order the standard gives.
 *
 * JavaScript BigInt arithmetic is not constant-time; that holds for every pure-JS SM2 and is why CA
 * keys belong in hardware (PKCS#11) in production.
 */
import { createHash, randomBytes } from 'node:crypto';
import { weierstrass, type WeierstrassPoint, type WeierstrassPointCons } from '@noble/curves/abstract/weierstrass.js';
import { invertCt } from '@noble/curves/abstract/modular.js';
import { integer, sequence } from './der.ts';
import { children, readOnly } from './der-reader.ts';
import { PkiError } from './pki-error.ts';

/** Domain parameters of a prime-field SM2 curve y² = x³ + ax + b (cofactor 1). */
export interface Sm2CurveParams {
  readonly p: bigint;
  readonly a: bigint;
  readonly b: bigint;
  readonly n: bigint;
  readonly Gx: bigint;
  readonly Gy: bigint;
}

/** The recommended 256-bit curve of GB/T 32918.5-2017 §3 (OID 1.2.156.10197.1.301, GM/T 0006). */
export const SM2P256V1: Sm2CurveParams = {
  p: 0xfffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffffn,
  a: 0xfffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffcn,
  b: 0x28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93n,
  n: 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n,
  Gx: 0x32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7n,
  Gy: 0xbc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0n,
};

/**
 * The default signer identity of GM/T 0009-2012 §10: the 16 ASCII octets `1234567812345678`. This is
 * what GmSSL, Tongsuo, BouncyCastle and OpenSSL's `distid:1234567812345678` hash into Z, and what tierca
 * signs with.
 */
export const SM2_DEFAULT_ID: Buffer = Buffer.from('1234567812345678', 'ascii');

/** ENTL is two octets holding the identity's length in bits (GB/T 32918.2 §5.5), so at most 8191 octets. */
const MAX_ID_OCTETS = 8191;

/** An SM2 signature as two integers in [1, n − 1]. */
export interface Sm2Signature {
  readonly r: bigint;
  readonly s: bigint;
}

/** The operations of SM2 on one curve. Use {@link sm2p256v1}; other curves are for the standard's test vectors. */
export class Sm2Curve {
  readonly Point: WeierstrassPointCons<bigint>;
  /** Octets of a field element and of a scalar (32 for sm2p256v1). */
  readonly size: number;
  readonly #abG: Buffer;

  constructor(readonly params: Sm2CurveParams) {
    this.Point = weierstrass({ ...params, h: 1n });
    // Window tables of G (noble's wNAF precomputation, W = 8: ~1 MB, ~30 ms once): [k]G of signing and
    // [s′]G of verification use them; measured here, verification 1.9 → 1.35 ms (bench/sm2.ts).
    this.Point.BASE.precompute(8);
    this.size = this.Point.Fp.BYTES;
    this.#abG = Buffer.concat([params.a, params.b, params.Gx, params.Gy].map((v) => this.octets(v)));
  }

  /** A field element or scalar as `size` big-endian octets (GB/T 32918.1 §4.2.1). */
  octets(value: bigint): Buffer {
    return Buffer.from(value.toString(16).padStart(this.size * 2, '0'), 'hex');
  }

  /** A public key from its SEC 1 octets (04 ‖ X ‖ Y, or compressed); PkiError('malformed') if not a valid curve point. */
  pointFromBytes(bytes: Uint8Array): WeierstrassPoint<bigint> {
    try {
      const point = this.Point.fromBytes(bytes);
      point.assertValidity();
      return point;
    } catch {
      throw new PkiError('malformed', 'malformed public key: not a point of the SM2 curve');
    }
  }

  /** The public key d·G of a private key d ∈ [1, n − 2] (GB/T 32918.1 §6.1); PkiError('malformed') otherwise. */
  publicPointOf(d: bigint): WeierstrassPoint<bigint> {
    if (d < 1n || d > this.params.n - 2n) throw new PkiError('malformed', 'an SM2 private key must lie in [1, n − 2]');
    return this.Point.BASE.multiply(d);
  }

  /**
   * Z_A = SM3(ENTL_A ‖ ID_A ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A) (GB/T 32918.2 §5.5).
   *
   * @param id the signer identity octets; default {@link SM2_DEFAULT_ID}. An empty id is allowed (OpenSSL 3.0's default).
   */
  za(publicPoint: WeierstrassPoint<bigint>, id: Uint8Array = SM2_DEFAULT_ID): Buffer {
    if (id.length > MAX_ID_OCTETS) throw new PkiError('invalid-argument', `an SM2 signer identity is at most ${MAX_ID_OCTETS} octets`);
    const entl = Buffer.alloc(2);
    entl.writeUInt16BE(id.length * 8);
    const { x, y } = publicPoint.toAffine();
    return createHash('sm3').update(entl).update(id).update(this.#abG).update(this.octets(x)).update(this.octets(y)).digest();
  }

  /** e = SM3(Z_A ‖ M) read as an integer (GB/T 32918.2 §6.1 steps A1–A2 and §4.2.3's octets-to-integer). */
  digestOf(za: Uint8Array, message: Uint8Array): bigint {
    return BigInt(`0x${createHash('sm3').update(za).update(message).digest('hex')}`);
  }

  /**
   * Signs the digest e with private key d (GB/T 32918.2 §6.1 steps A3–A7). `inverseOnePlusD` is
   * (1 + d)⁻¹ mod n, computed once per key by {@link Sm2Curve.signingKey}.
   *
   * @param random source of k's octets; default crypto.randomBytes. A draw outside [1, n − 1], or one
   * giving r = 0, r + k = n or s = 0, is discarded and drawn again (steps A3, A5, A6).
   */
  signDigest(key: Sm2SigningKey, e: bigint, random: (n: number) => Buffer = randomBytes): Sm2Signature {
    const { Fn, BASE } = this.Point;
    for (let attempt = 0; attempt < 64; attempt++) {
      const k = BigInt(`0x${random(this.size).toString('hex') || '0'}`);
      if (!Fn.isValidNot0(k)) continue; // A3: k ∈ [1, n − 1]
      const x1 = BASE.multiply(k).toAffine().x; // A4: (x₁, y₁) = [k]G
      const r = Fn.create(e + x1); // A5: r = (e + x₁) mod n
      if (r === 0n || Fn.add(r, k) === 0n) continue;
      const s = Fn.mul(key.inverseOnePlusD, Fn.sub(k, Fn.mul(r, key.d))); // A6
      if (s === 0n) continue;
      return { r, s };
    }
    throw new PkiError('invalid-argument', 'the random source gave no usable SM2 nonce in 64 draws');
  }

  /** The values a signer keeps for a private key d: d, its public point and (1 + d)⁻¹ mod n. */
  signingKey(d: bigint): Sm2SigningKey {
    const publicPoint = this.publicPointOf(d);
    // Constant-time inversion (Fermat): d is secret. Once per key, not per signature.
    return { d, publicPoint, inverseOnePlusD: invertCt(d + 1n, this.params.n) };
  }

  /** Checks (r, s) over digest e against the public key (GB/T 32918.2 §7.1 steps B1–B7 after the digest). */
  verifyDigest(publicPoint: WeierstrassPoint<bigint>, e: bigint, signature: Sm2Signature): boolean {
    const x1 = this.verificationX(publicPoint, signature);
    return x1 !== null && this.Point.Fn.create(e + x1) === signature.r;
  }

  /**
   * x₁′ of (x₁′, y₁′) = [s′]G + [t]P_A with t = (r′ + s′) mod n (§7.1 steps B1, B2, B5, B6), or null
   * when the signature fails those steps. It does not depend on the digest, so one point
   * multiplication can check the same signature against digests made with several identities: the
   * signature holds for digest e′ when (e′ + x₁′) mod n = r′ (step B7).
   */
  verificationX(publicPoint: WeierstrassPoint<bigint>, { r, s }: Sm2Signature): bigint | null {
    const { Fn, BASE } = this.Point;
    if (!Fn.isValidNot0(r) || !Fn.isValidNot0(s)) return null; // B1, B2
    const t = Fn.add(r, s); // B5
    if (t === 0n) return null;
    // B6. [s′]G from G's precomputed windows plus [t]P_A, rather than one Strauss–Shamir walk over
    // both: the tables make this about 28 % faster (the same point; public scalars only).
    const sum = BASE.multiplyUnsafe(s).add(publicPoint.multiplyUnsafe(t));
    return sum.is0() ? null : sum.toAffine().x;
  }
}

/** What signing needs of a private key; kept inside a signer, never exported. */
export interface Sm2SigningKey {
  readonly d: bigint;
  readonly publicPoint: WeierstrassPoint<bigint>;
  readonly inverseOnePlusD: bigint;
}

/** SM2 on the recommended curve sm2p256v1. */
export const sm2p256v1 = new Sm2Curve(SM2P256V1);

/** The DER signature value of GM/T 0009-2012 §7.3: SEQUENCE { r INTEGER, s INTEGER }. */
export function encodeSm2Signature({ r, s }: Sm2Signature): Buffer {
  return sequence(integer(r), integer(s));
}

/**
 * Reads a DER SM2 signature value strictly: exactly SEQUENCE { INTEGER, INTEGER }, minimal and
 * positive, nothing after it. Returns null for anything else (the signature then does not verify).
 */
export function decodeSm2Signature(der: Buffer): Sm2Signature | null {
  try {
    const parts = children(readOnly(der, 0x30));
    if (parts.length !== 2 || parts.some((p) => p.tag !== 0x02 || p.content.length === 0)) return null;
    const [r, s] = parts.map((p) => BigInt(`0x${p.content.toString('hex')}`));
    // Re-encoding catches a negative value and non-minimal octets (X.690 §8.3.2) in one comparison.
    return encodeSm2Signature({ r, s }).equals(der) ? { r, s } : null;
  } catch {
    return null;
  }
}
