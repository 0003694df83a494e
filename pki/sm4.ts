/**
 * SM4 (GB/T 32907-2016) block encryption through Node's OpenSSL ciphers `sm4-ecb` and `sm4-cbc`, without
 * padding: the callers (SM2EnvelopedKey, GM/T 0009 §7.4) encrypt whole blocks such as a 32-octet private key.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { PkiError } from './pki-error.ts';

/** SM4's key and block length in octets. */
export const SM4_BLOCK = 16;

function check(key: Buffer, data: Buffer, iv: Buffer | null): void {
  if (!Buffer.isBuffer(key) || key.length !== SM4_BLOCK) throw new PkiError('invalid-argument', 'an SM4 key is 16 octets');
  if (!Buffer.isBuffer(data) || data.length === 0 || data.length % SM4_BLOCK !== 0) {
    throw new PkiError('invalid-argument', 'SM4 without padding takes a whole number of 16-octet blocks');
  }
  if (iv !== null && (!Buffer.isBuffer(iv) || iv.length !== SM4_BLOCK)) throw new PkiError('invalid-argument', 'an SM4-CBC IV is 16 octets');
}

function run(encrypt: boolean, mode: 'ecb' | 'cbc', key: Buffer, data: Buffer, iv: Buffer | null): Buffer {
  check(key, data, iv);
  const cipher = encrypt ? createCipheriv(`sm4-${mode}`, key, iv) : createDecipheriv(`sm4-${mode}`, key, iv);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(data), cipher.final()]);
}

/** SM4-ECB encryption of whole blocks. */
export const sm4EcbEncrypt = (key: Buffer, data: Buffer): Buffer => run(true, 'ecb', key, data, null);
/** SM4-ECB decryption of whole blocks. */
export const sm4EcbDecrypt = (key: Buffer, data: Buffer): Buffer => run(false, 'ecb', key, data, null);
/** SM4-CBC encryption of whole blocks under `iv`. */
export const sm4CbcEncrypt = (key: Buffer, iv: Buffer, data: Buffer): Buffer => run(true, 'cbc', key, data, iv);
/** SM4-CBC decryption of whole blocks under `iv`. */
export const sm4CbcDecrypt = (key: Buffer, iv: Buffer, data: Buffer): Buffer => run(false, 'cbc', key, data, iv);
