/**
 * A {@link Signer} over a private key held in memory as a Node KeyObject (the software keystore
 * unseals keys into these). ECDSA and RSA sign asynchronously on libuv's thread pool by default, which
 * keeps an event loop that serves requests free. A signing thread (server/ca/signing-worker.ts) asks
 * for `synchronous`: it serves nothing else, and handing each 28 µs P-256 signature to the pool and
 * back cost more CPU than the signature (docs/benchmarks.md, 2026-12-04).
 * SM2 keys get the SM2 signer (./sm2-signer.ts): SM3 over Z ‖ data with the standard identity, which
 * Node's crypto cannot make.
 */
import { sign as nodeSign, constants, type KeyObject } from 'node:crypto';
import { signatureAlgorithmIdentifier, digestFor, type KeyAlgorithm, type RsaPadding } from './algorithms.ts';
import { keyAlgorithmOf, publicKeyInfoOf } from './key-pair.ts';
import { PkiError } from './pki-error.ts';
import type { Signer } from './signer.ts';
import { sm2Signer } from './sm2-signer.ts';

export interface SoftwareSignerParams {
  privateKey: KeyObject;
  algorithm: KeyAlgorithm;
  /** RSA padding; default PKCS#1 v1.5. */
  rsaPadding?: RsaPadding;
  /** Sign on the calling thread instead of libuv's pool (for threads that serve no I/O); default false. */
  synchronous?: boolean;
}

/**
 * A signer over `privateKey` for `algorithm`. SM2 signs with the default identity `1234567812345678`
 * and a CSPRNG nonce (use {@link sm2Signer} to choose either); `rsaPadding` is ignored for EC keys.
 *
 * @throws PkiError('unsupported-algorithm') when `algorithm` is SM2 and the key is not an SM2 key, or
 * the key is an SM2 key and `algorithm` is not SM2 (Node would make ECDSA or empty-identity SM2 with it).
 */
export function softwareSigner({ privateKey, algorithm, rsaPadding = 'pkcs1', synchronous = false }: SoftwareSignerParams): Signer {
  if (algorithm === 'SM2') return sm2Signer({ privateKey });
  const publicKeyInfo = publicKeyInfoOf(privateKey);
  if (keyAlgorithmOf(publicKeyInfo) === 'SM2') throw new PkiError('unsupported-algorithm', `an SM2 key cannot sign as ${algorithm}`);
  const digest = digestFor(algorithm);
  const isRsa = algorithm.startsWith('RSA');
  const keyOptions = isRsa
    ? rsaPadding === 'pss'
      ? { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }
      : { key: privateKey }
    : { key: privateKey, dsaEncoding: 'der' as const };
  return {
    inMemoryKey: { privateKey, algorithm, rsaPadding },
    signatureAlgorithm: signatureAlgorithmIdentifier(algorithm, rsaPadding),
    publicKeyInfo,
    sign(data: Uint8Array): Promise<Buffer> {
      if (synchronous) {
        try {
          return Promise.resolve(nodeSign(digest, data, keyOptions));
        } catch (err) {
          return Promise.reject(err as Error);
        }
      }
      return new Promise((resolve, reject) => {
        nodeSign(digest, data, keyOptions, (err, signature) => (err ? reject(err) : resolve(signature)));
      });
    },
  };
}
