/**
 * A second SM2 implementation for the tests: sm-crypto (jsbn big integers, its own SM3 and Z), which
 * shares no code with tierca's signer (@noble/curves arithmetic, Node's SM3). Whatever tierca signs
 * must verify here with the standard identity, and must not with the empty one.
 */
import smCrypto from 'sm-crypto';

/** DER SPKI prefix of an SM2 key: id-ecPublicKey (1.2.840.10045.2.1), curve SM2 (1.2.156.10197.1.301), uncompressed point. */
export const SM2_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a811ccf5501822d034200', 'hex');

/** The signature AlgorithmIdentifier SM2-with-SM3 (1.2.156.10197.1.501) without parameters. */
export const SM2_WITH_SM3_DER = Buffer.from('300a06082a811ccf55018375', 'hex');

/** The uncompressed point (04 ‖ X ‖ Y) of an SM2 SPKI, as hex; throws for anything else. */
export function sm2PointHex(spki: Buffer): string {
  if (spki.length !== SM2_SPKI_PREFIX.length + 65 || !spki.subarray(0, SM2_SPKI_PREFIX.length).equals(SM2_SPKI_PREFIX)) {
    throw new Error(`not an uncompressed SM2 SubjectPublicKeyInfo: ${spki.toString('hex')}`);
  }
  return spki.subarray(SM2_SPKI_PREFIX.length).toString('hex');
}

/** sm-crypto's verdict on a DER SM2 signature over `data` by `spki` with identity `userId` (default the standard one). */
export function smCryptoVerifies(p: { publicKeyInfo: Buffer; data: Uint8Array; signature: Buffer; userId?: string }): boolean {
  return smCrypto.sm2.doVerifySignature(Array.from(p.data), p.signature.toString('hex'), sm2PointHex(p.publicKeyInfo), {
    der: true,
    userId: p.userId ?? '1234567812345678',
  });
}
