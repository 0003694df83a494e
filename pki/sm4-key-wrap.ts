/**
 * Key wrap with padding (RFC 5649 / NIST SP 800-38F KWP) over SM4 (GB/T 32907), for the KMC of an
 * all-SM2 deployment (docs/decisions/0022-kmc.md). OpenSSL has the wrap only for AES, so the KWP
 * construction is composed here from SM4's single-block encryption (Node's OpenSSL `sm4-ecb`,
 * pki/sm4.ts); nothing of SM4 itself is written here. {@link kwpWrap} takes any 128-bit block
 * cipher: run over AES-256 it gives exactly what OpenSSL's `id-aes256-wrap-pad` gives (and RFC
 * 5649 §6's vectors over AES-192), which is how the construction is proven
 * (test/interop/kmc-crypto.test.ts); the SM4 result is opened by an independent implementation on
 * sm-crypto's SM4 in the same test.
 */
import { sm4EcbDecrypt, sm4EcbEncrypt } from './sm4.ts';
import { PkiError } from './pki-error.ts';

/** One 16-octet block through the cipher under the key-encryption key. */
export type BlockCipher = (block: Buffer) => Buffer;

/** RFC 5649 §3: the alternative initial value's constant half. */
const AIV_HEAD = Buffer.from('a65959a6', 'hex');
const MAX_PLAINTEXT = 64 * 1024;

/** RFC 5649 §4.1: wraps `plaintext` (1 to 64 KiB) with `encrypt`. */
export function kwpWrap(encrypt: BlockCipher, plaintext: Buffer): Buffer {
  if (!Buffer.isBuffer(plaintext) || plaintext.length === 0 || plaintext.length > MAX_PLAINTEXT) {
    throw new PkiError('invalid-argument', `a wrapped key must be 1 to ${MAX_PLAINTEXT} octets`);
  }
  const aiv = Buffer.alloc(8);
  AIV_HEAD.copy(aiv);
  aiv.writeUInt32BE(plaintext.length, 4);
  const padded = Buffer.alloc(Math.ceil(plaintext.length / 8) * 8);
  plaintext.copy(padded);
  const n = padded.length / 8;
  // §4.1: a single padded block is encrypted as one block with the AIV in front.
  if (n === 1) return encrypt(Buffer.concat([aiv, padded]));
  // Otherwise the RFC 3394 wrapping process W with the AIV as initial value.
  let a: Buffer = aiv;
  const r: Buffer[] = Array.from({ length: n }, (_, i) => padded.subarray(i * 8, i * 8 + 8));
  for (let j = 0; j <= 5; j++) {
    for (let i = 0; i < n; i++) {
      const b = encrypt(Buffer.concat([a, r[i]]));
      a = xorCounter(b.subarray(0, 8), n * j + i + 1);
      r[i] = b.subarray(8, 16);
    }
  }
  padded.fill(0);
  return Buffer.concat([a, ...r]);
}

/**
 * RFC 5649 §4.2: unwraps what {@link kwpWrap} made. An altered blob, one wrapped under another key,
 * or one whose length or padding the AIV contradicts is PkiError('bad-signature'), with nothing
 * returned; a blob of impossible length is PkiError('malformed').
 */
export function kwpUnwrap(decrypt: BlockCipher, wrapped: Buffer): Buffer {
  if (!Buffer.isBuffer(wrapped) || wrapped.length < 16 || wrapped.length % 8 !== 0 || wrapped.length > MAX_PLAINTEXT + 16) {
    throw new PkiError('malformed', 'a wrapped key is a multiple of 8 octets, at least 16');
  }
  const n = wrapped.length / 8 - 1;
  let a: Buffer;
  let padded: Buffer;
  if (n === 1) {
    const block = decrypt(wrapped);
    a = Buffer.from(block.subarray(0, 8));
    padded = Buffer.from(block.subarray(8, 16));
    block.fill(0);
  } else {
    a = wrapped.subarray(0, 8);
    const r: Buffer[] = Array.from({ length: n }, (_, i) => Buffer.from(wrapped.subarray(8 + i * 8, 16 + i * 8)));
    for (let j = 5; j >= 0; j--) {
      for (let i = n - 1; i >= 0; i--) {
        const b = decrypt(Buffer.concat([xorCounter(a, n * j + i + 1), r[i]]));
        a = b.subarray(0, 8);
        r[i] = b.subarray(8, 16);
      }
    }
    padded = Buffer.concat(r);
  }
  // §3: the AIV's head, a length within the last block, and zero padding — else it is not ours.
  const length = a.readUInt32BE(4);
  const ok = a.subarray(0, 4).equals(AIV_HEAD) && length > 8 * (n - 1) && length <= 8 * n && padded.subarray(length).every((octet) => octet === 0);
  if (!ok) {
    padded.fill(0);
    throw new PkiError('bad-signature', 'the wrapped key failed its integrity check (altered, or wrapped under another key)');
  }
  const out = Buffer.from(padded.subarray(0, length));
  padded.fill(0);
  return out;
}

/** The 64-bit big-endian counter `t` XORed into `a` (RFC 3394 §2.2.1). */
function xorCounter(a: Buffer, t: number): Buffer {
  const out = Buffer.from(a);
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(t));
  for (let k = 0; k < 8; k++) out[k] ^= counter[k];
  return out;
}

function sm4Kek(kek: Buffer): Buffer {
  if (!Buffer.isBuffer(kek) || kek.length !== 16) throw new PkiError('invalid-argument', 'an SM4 key-encryption key is 16 octets');
  return kek;
}

/** KWP over SM4 under the 128-bit `kek`. */
export const sm4WrapKey = (kek: Buffer, plaintext: Buffer): Buffer => kwpWrap((block) => sm4EcbEncrypt(sm4Kek(kek), block), plaintext);

/** Opens what {@link sm4WrapKey} made; see {@link kwpUnwrap} for the failures. */
export const sm4UnwrapKey = (kek: Buffer, wrapped: Buffer): Buffer => kwpUnwrap((block) => sm4EcbDecrypt(sm4Kek(kek), block), wrapped);
