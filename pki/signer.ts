/**
 * The one signing interface of tierca. Certificate, CRL and OCSP code hand it the bytes to be signed
 * and embed what it returns; nothing else about the key is visible to them, so a PKCS#11 signer or
 * an SM2 signer (SM3 over Z || data, which no WebCrypto provider offers) fits without touching them.
 */
export interface Signer {
  /** DER AlgorithmIdentifier of the signatures this signer makes. */
  readonly signatureAlgorithm: Buffer;
  /** DER SubjectPublicKeyInfo of the signing key. */
  readonly publicKeyInfo: Buffer;
  /** Signs `data` and returns the signature value as it goes in the BIT STRING (DER ECDSA-Sig-Value for ECDSA). */
  sign(data: Uint8Array): Promise<Buffer>;
}
