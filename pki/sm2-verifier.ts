/**
 * SM2 signature verification (GB/T 32918.2-2016 §7.1) with SM3 and the signer identity hash Z, on the
 * same arithmetic as the signer (./sm2.ts). Node's `crypto.verify` cannot be used: it hashes the
 * empty identity only.
 */
import { SM2_DEFAULT_ID, decodeSm2Signature, sm2p256v1 } from './sm2.ts';
import { sm2PublicPointOf } from './sm2-key.ts';

/** Which signer identity made a signature: GM/T 0009's `1234567812345678`, or the empty one (OpenSSL 3.0's default). */
export type Sm2Identity = 'default' | 'empty';

const EMPTY_ID = Buffer.alloc(0);

export interface Sm2VerifyParams {
  /** DER SubjectPublicKeyInfo of the signer. */
  publicKeyInfo: Buffer;
  /** The signed octets (a TBSCertificate, TBSCertList, ResponseData, CertificationRequestInfo…). */
  data: Uint8Array;
  /** DER `SEQUENCE { r, s }` as it stands in the BIT STRING. */
  signature: Buffer;
}

/**
 * Whether `signature` is an SM2 signature over `data` by the key in `publicKeyInfo` with signer
 * identity `id` (default `1234567812345678`).
 *
 * @returns false when the signature does not verify, is not a strict DER SM2 signature value, or the
 * key is not an SM2 key.
 * @throws PkiError('malformed') for an SM2 key whose point is not on the curve or unreadable DER.
 */
export function verifySm2Signature(p: Sm2VerifyParams & { id?: Uint8Array }): boolean {
  const id = p.id ?? SM2_DEFAULT_ID;
  return identityOf(p, [id]) === 0;
}

/**
 * Which of the two identities a relying party meets verifies `signature`: the standard one first,
 * then the empty one (what `openssl req -sm3` of OpenSSL 3.0 signs with unless given
 * `-sigopt distid:…`). One point multiplication serves both checks.
 *
 * @returns 'default', 'empty', or null when neither verifies (or the key is not SM2).
 * @throws PkiError('malformed') for an SM2 key whose point is not on the curve or unreadable DER.
 */
export function sm2IdentityThatVerifies(p: Sm2VerifyParams): Sm2Identity | null {
  const which = identityOf(p, [SM2_DEFAULT_ID, EMPTY_ID]);
  return which === 0 ? 'default' : which === 1 ? 'empty' : null;
}

/** The index of the first identity in `ids` under which the signature verifies, or −1. */
function identityOf(p: Sm2VerifyParams, ids: readonly Uint8Array[]): number {
  const publicPoint = sm2PublicPointOf(p.publicKeyInfo);
  if (!publicPoint) return -1;
  const signature = decodeSm2Signature(p.signature);
  if (!signature) return -1;
  const x1 = sm2p256v1.verificationX(publicPoint, signature);
  if (x1 === null) return -1;
  const { Fn } = sm2p256v1.Point;
  return ids.findIndex((id) => Fn.create(sm2p256v1.digestOf(sm2p256v1.za(publicPoint, id), p.data) + x1) === signature.r);
}
