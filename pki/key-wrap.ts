/**
 * AES key wrap with padding (RFC 5649, = NIST SP 800-38F KWP) through Node's OpenSSL ciphers
 * `id-aes{128,192,256}-wrap-pad`: the KMC wraps escrowed keys under its 256-bit master key with it
 * (docs/decisions/0022-kmc.md). The wrap is deterministic and carries its own integrity check (the
 * alternative initial value and the length), so a changed blob or a wrong key-encryption key is refused.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { PkiError } from './pki-error.ts';

/** The alternative initial value of RFC 5649 §3 (A65959A6); the length in it is added by OpenSSL. */
const AIV = Buffer.from('a65959a6', 'hex');

/** The largest key we wrap: far above any private key's PKCS#8, and a bound on what a row can ask us to unwrap. */
const MAX_PLAINTEXT = 64 * 1024;

function cipherName(kek: Buffer): string {
  if (!Buffer.isBuffer(kek) || ![16, 24, 32].includes(kek.length)) {
    throw new PkiError('invalid-argument', 'an AES key-encryption key must be 16, 24 or 32 bytes');
  }
  return `id-aes${kek.length * 8}-wrap-pad`;
}

/** Wraps `plaintext` (1 to 64 KiB) under `kek` (RFC 5649 §4.1); the result is 8 to 15 octets longer. */
export function wrapKey(kek: Buffer, plaintext: Buffer): Buffer {
  const name = cipherName(kek);
  if (!Buffer.isBuffer(plaintext) || plaintext.length === 0 || plaintext.length > MAX_PLAINTEXT) {
    throw new PkiError('invalid-argument', `a wrapped key must be 1 to ${MAX_PLAINTEXT} octets`);
  }
  const cipher = createCipheriv(name, kek, AIV);
  return Buffer.concat([cipher.update(plaintext), cipher.final()]);
}

/**
 * Unwraps what {@link wrapKey} made (RFC 5649 §4.2). A blob that fails the integrity check — altered,
 * truncated, or wrapped under another key — is PkiError('bad-signature'); a blob of impossible length
 * is PkiError('malformed'). Nothing of a failed unwrap is returned.
 */
export function unwrapKey(kek: Buffer, wrapped: Buffer): Buffer {
  const name = cipherName(kek);
  if (!Buffer.isBuffer(wrapped) || wrapped.length < 16 || wrapped.length % 8 !== 0 || wrapped.length > MAX_PLAINTEXT + 16) {
    throw new PkiError('malformed', 'a wrapped key is a multiple of 8 octets, at least 16');
  }
  const decipher = createDecipheriv(name, kek, AIV);
  let opened: Buffer | undefined;
  try {
    opened = decipher.update(wrapped);
    return Buffer.concat([opened, decipher.final()]);
  } catch {
    opened?.fill(0);
    throw new PkiError('bad-signature', 'the wrapped key failed its integrity check (altered, or wrapped under another key)');
  }
}
