/**
 * The SM2 {@link Signer}: SM2 signatures with SM3 and the signer identity hash Z (GB/T 32918.2-2016 §6.1,
 * GM/T 0009-2012 §10), DER `SEQUENCE { r, s }` (GM/T 0009-2012 §7.3), labelled sm2-with-SM3
 * 1.2.156.10197.1.501 without parameters (GM/T 0006; how GmSSL, Tongsuo and OpenSSL write it).
 *
 * Signing is synchronous JavaScript (@noble/curves, ./sm2.ts), ~0.5 ms here: `sign` returns a settled
 * promise. Issuance moves it off the main thread through `inMemoryKey` (server/ca/signing-pool.ts).
 */
import type { KeyObject } from 'node:crypto';
import { signatureAlgorithmIdentifier } from './algorithms.ts';
import type { Signer } from './signer.ts';
import { SM2_DEFAULT_ID, encodeSm2Signature, sm2p256v1 } from './sm2.ts';
import { sm2SigningKeyOf } from './sm2-key.ts';

export interface Sm2SignerParams {
  /** An SM2 private key (either kind of Node SM2 KeyObject, see ./sm2-key.ts). */
  privateKey: KeyObject;
  /** Signer identity hashed into Z; default {@link SM2_DEFAULT_ID} (`1234567812345678`). */
  id?: Uint8Array;
  /** Source of the nonce k's octets; default crypto.randomBytes (tests inject the standard's k). */
  random?: (n: number) => Buffer;
}

const SM2_WITH_SM3 = signatureAlgorithmIdentifier('SM2');

/**
 * A signer making SM2 signatures with `privateKey`. Z is computed once here, so each signature costs
 * one SM3 over Z ‖ data and one scalar multiplication.
 *
 * `inMemoryKey` is set only for the default identity and randomness: a signing thread rebuilds the
 * signer from it with the defaults, and must sign exactly as this one does.
 *
 * @throws PkiError('unsupported-algorithm') for a key that is not SM2; PkiError('malformed') for a
 * key whose scalar is out of range or does not match its public key; PkiError('invalid-argument')
 * for an identity longer than 8191 octets.
 */
export function sm2Signer({ privateKey, id = SM2_DEFAULT_ID, random }: Sm2SignerParams): Signer {
  const { key, publicKeyInfo } = sm2SigningKeyOf(privateKey);
  const za = sm2p256v1.za(key.publicPoint, id);
  const standard = random === undefined && Buffer.from(id).equals(SM2_DEFAULT_ID);
  const sign = (data: Uint8Array): Promise<Buffer> => {
    try {
      const e = sm2p256v1.digestOf(za, data);
      return Promise.resolve(encodeSm2Signature(sm2p256v1.signDigest(key, e, random)));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  };
  return {
    signatureAlgorithm: SM2_WITH_SM3,
    publicKeyInfo,
    sign,
    ...(standard ? { inMemoryKey: { privateKey, algorithm: 'SM2' as const, rsaPadding: 'pkcs1' as const } } : {}),
  };
}
