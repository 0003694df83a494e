/**
 * The one signing interface of tierca. Certificate, CRL and OCSP code hand it the bytes to be signed
 * and embed what it returns; nothing else about the key is visible to them, so a PKCS#11 signer or
 * an SM2 signer (SM3 over Z || data, which no WebCrypto provider offers) fits without touching them.
 */
import type { KeyObject } from 'node:crypto';
import type { KeyAlgorithm, RsaPadding } from './algorithms.ts';

/**
 * The in-memory key of a software signer, as a signing thread of the same process rebuilds the
 * signer from it (KeyObjects can be posted to worker threads; the key never leaves the process).
 */
export interface InMemoryKey {
  readonly privateKey: KeyObject;
  readonly algorithm: KeyAlgorithm;
  readonly rsaPadding: RsaPadding;
}

export interface Signer {
  /** DER AlgorithmIdentifier of the signatures this signer makes. */
  readonly signatureAlgorithm: Buffer;
  /** DER SubjectPublicKeyInfo of the signing key. */
  readonly publicKeyInfo: Buffer;
  /** Signs `data` and returns the signature value as it goes in the BIT STRING (DER ECDSA-Sig-Value for ECDSA). */
  sign(data: Uint8Array): Promise<Buffer>;
  /** Set by software signers only: what a worker thread needs to sign the same way. Absent for keys held elsewhere (PKCS#11). */
  readonly inMemoryKey?: InMemoryKey;
}
