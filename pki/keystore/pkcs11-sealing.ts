/**
 * Sealing in the token (escrowed user keys): AES-256-GCM (NIST SP 800-38D) computed by the token
 * with CKM_AES_GCM under one AES-256 key that never leaves it (CKA_SENSITIVE, non-extractable,
 * label `tierca:seal-kek`), made on the first seal. The same contract as the software keystore's
 * sealing (key-sealing.ts): a fresh random 96-bit IV per seal, the caller's `aad` bound as GCM
 * additional data, a blob moved to another aad fails.
 *
 * Sealed blob, token format version 2 (binary; version 1 is the software keystore's):
 * ```
 *   offset 0        1 octet   format version (0x02)
 *   offset 1       12 octets  AES-GCM IV (random)
 *   offset 13       n octets  ciphertext
 *   offset 13+n    16 octets  GCM authentication tag (PKCS#11 returns it after the ciphertext)
 * ```
 * GCM additional data = "tierca-p11-seal-v2" || 0x00 || UTF-8(aad).
 */
import type * as Pkcs11Js from 'pkcs11js';
import { PkiError } from '../pki-error.ts';
import { ckrOf, KeystoreError } from './pkcs11-errors.ts';
import { findObjects, findOne, SEAL_KEY_LABEL, sealKeyTemplate } from './pkcs11-objects.ts';
import type { Pkcs11SessionPool } from './pkcs11-session-pool.ts';

const FORMAT_VERSION = 0x02;
const IV_LENGTH = 12;
const TAG_LENGTH = 16;
const AAD_PREFIX = Buffer.from('tierca-p11-seal-v2\0', 'utf8');
/** AAD prefixes the keystores keep for themselves (as the software keystore does). */
const RESERVED_AAD = ['key:', 'keystore:'];

/** What a token answers when GCM authentication fails: SoftHSM2 2.6 says CKR_GENERAL_ERROR, the standard CKR_ENCRYPTED_DATA_INVALID. */
const AUTH_FAILED = new Set(['CKR_ENCRYPTED_DATA_INVALID', 'CKR_ENCRYPTED_DATA_LEN_RANGE', 'CKR_GENERAL_ERROR', 'CKR_FUNCTION_FAILED']);

function checkAad(aad: string): void {
  if (typeof aad !== 'string' || aad.length === 0) throw new PkiError('invalid-argument', 'sealing needs a non-empty aad');
  if (RESERVED_AAD.some((prefix) => aad.startsWith(prefix))) {
    throw new PkiError('invalid-argument', `aad prefixes ${RESERVED_AAD.join(', ')} are reserved for the keystore`);
  }
}

/** Seals and opens secret bytes with AES-256-GCM inside the token. */
export class Pkcs11Sealer {
  #key: Buffer | null = null;
  #keyEpoch = -1;

  constructor(
    private readonly pool: Pkcs11SessionPool,
    private readonly random: (n: number) => Buffer,
  ) {}

  seal(plaintext: Buffer, aad: string): Buffer {
    checkAad(aad);
    const iv = this.random(IV_LENGTH);
    if (iv.length !== IV_LENGTH) throw new PkiError('invalid-argument', 'the random source returned the wrong length');
    const body = this.pool.runSync(`sealing "${aad}" in the token`, (lib, session) => {
      lib.C_EncryptInit(session, this.#mechanism(iv, aad), this.#keyOf(lib, session, true));
      return Buffer.from(lib.C_Encrypt(session, plaintext, Buffer.alloc(plaintext.length + TAG_LENGTH)));
    });
    return Buffer.concat([Buffer.from([FORMAT_VERSION]), iv, body]);
  }

  unseal(sealed: Buffer, aad: string): Buffer {
    checkAad(aad);
    if (!Buffer.isBuffer(sealed) || sealed.length < 1 + IV_LENGTH + TAG_LENGTH) throw new PkiError('malformed', 'the sealed blob is too short');
    if (sealed[0] !== FORMAT_VERSION) {
      throw new PkiError('malformed', `sealed blob format version ${sealed[0]} is not the token's (${FORMAT_VERSION}); a software-sealed blob needs the software keystore`);
    }
    const iv = sealed.subarray(1, 1 + IV_LENGTH);
    const body = sealed.subarray(1 + IV_LENGTH);
    try {
      return this.pool.runSync(`opening "${aad}" in the token`, (lib, session) => {
        lib.C_DecryptInit(session, this.#mechanism(iv, aad), this.#keyOf(lib, session, false));
        return Buffer.from(lib.C_Decrypt(session, body, Buffer.alloc(body.length)));
      });
    } catch (err) {
      if (err instanceof KeystoreError && AUTH_FAILED.has(err.ckr ?? '')) {
        throw new PkiError('wrong-passphrase', `the sealed data for "${aad}" failed authentication (the blob was altered, belongs to another id, or was sealed by another token key)`);
      }
      throw err;
    }
  }

  #mechanism(iv: Buffer, aad: string): Pkcs11Js.Mechanism {
    const ck = this.pool.ck;
    const params: Pkcs11Js.AesGCM = {
      type: ck.CK_PARAMS_AES_GCM, iv: Buffer.from(iv), aad: Buffer.concat([AAD_PREFIX, Buffer.from(aad, 'utf8')]), ivBits: IV_LENGTH * 8, tagBits: TAG_LENGTH * 8,
    };
    return { mechanism: ck.CKM_AES_GCM, parameter: params };
  }

  /** The sealing key's handle; made in the token on the first seal (never on unseal: a missing key is 'key-missing'). */
  #keyOf(lib: Pkcs11Js.PKCS11, session: Buffer, create: boolean): Buffer {
    if (this.#key && this.#keyEpoch === this.pool.epoch) return this.#key;
    const ck = this.pool.ck;
    const found = findObjects(lib, ck, session, ck.CKO_SECRET_KEY, SEAL_KEY_LABEL);
    let key: Buffer;
    if (found.length === 0 && create) {
      try {
        key = lib.C_GenerateKey(session, { mechanism: ck.CKM_AES_KEY_GEN }, sealKeyTemplate(ck));
      } catch (err) {
        throw new KeystoreError('token-error', `making the sealing key in the token: ${ckrOf(err) ?? (err as Error).message}`, ckrOf(err));
      }
    } else {
      key = findOne(lib, ck, session, ck.CKO_SECRET_KEY, SEAL_KEY_LABEL, 'sealing key');
    }
    this.#key = key;
    this.#keyEpoch = this.pool.epoch;
    return key;
  }
}
