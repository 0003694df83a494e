/**
 * The software keystore: CA private keys live on disk and in the database only as PKCS#8 sealed with
 * AES-256-GCM under one scrypt-derived KEK (key-sealing.ts, docs/decisions/0002-key-sealing.md), and
 * in memory only as Node KeyObjects held in a private field. The KEK itself is kept as a secret
 * KeyObject (native memory, not printable), and the scrypt output buffer is wiped once copied.
 *
 * Nothing here returns a private key: callers get a {@link Signer}. SM2 keys are sealed and unsealed
 * like the others (their PKCS#8 reads back as Node's SM2 form) and sign through the SM2 signer with the
 * standard identity (../sm2-signer.ts).
 */
import { createPrivateKey, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import type { KeyAlgorithm, RsaPadding } from '../algorithms.ts';
import { generateKeyPair, keyAlgorithmOf, publicKeyInfoOf } from '../key-pair.ts';
import { PkiError } from '../pki-error.ts';
import type { Signer } from '../signer.ts';
import { softwareSigner } from '../software-signer.ts';
import type { GeneratedKey, KeyStore, StoredKey } from './keystore.ts';
import { createKeystoreHeader, sealBytes, unlockKeystoreHeader, unsealBytes, type ScryptParams } from './key-sealing.ts';

/** AAD prefixes the keystore keeps for itself; {@link SoftwareKeyStore.seal} refuses them. */
const RESERVED_AAD = ['key:', 'keystore:'];

/** The AAD a CA key's sealed PKCS#8 is bound to: purpose `key` and its id. */
export const keyAad = (id: string): string => `key:${id}`;

interface HeldKey {
  readonly privateKey: KeyObject;
  readonly algorithm: KeyAlgorithm;
}

function checkId(id: string): void {
  if (typeof id !== 'string' || id.length === 0 || id.length > 200 || /[\u0000-\u001f\u007f]/.test(id)) {
    throw new PkiError('invalid-argument', 'a key id must be 1–200 printable characters');
  }
}

/** CA key custody in software: sealed PKCS#8 at rest, KeyObjects in memory. */
export class SoftwareKeyStore implements KeyStore {
  readonly custody = 'software' as const;
  readonly #kek: KeyObject;
  readonly #random: (n: number) => Buffer;
  readonly #keys = new Map<string, HeldKey>();
  readonly #signers = new Map<string, Signer>();

  private constructor(kek: Buffer, random: (n: number) => Buffer) {
    this.#kek = createSecretKey(kek);
    kek.fill(0);
    this.#random = random;
  }

  /**
   * Sets up a new installation: derives the KEK from `passphrase` with a fresh salt and returns the
   * unlocked keystore and the header to store in the database meta table.
   *
   * @param p.random salt and IV source; default crypto.randomBytes
   * @param p.kdf scrypt cost; default N=2^16, r=8, p=1 (small values are for tests only)
   */
  static async initialise(p: {
    passphrase: string;
    random?: (n: number) => Buffer;
    kdf?: ScryptParams;
  }): Promise<{ keystore: SoftwareKeyStore; header: string }> {
    const random = p.random ?? randomBytes;
    const { header, kek } = await createKeystoreHeader({ passphrase: p.passphrase, random, kdf: p.kdf });
    return { keystore: new SoftwareKeyStore(kek, random), header };
  }

  /**
   * Opens an existing installation's keystore from its stored header. A wrong passphrase is
   * PkiError('wrong-passphrase', 'the keystore passphrase is wrong'); a bad header is 'malformed'.
   *
   * @param p.random IV source for later seals; default crypto.randomBytes
   */
  static async unlock(p: { passphrase: string; header: string; random?: (n: number) => Buffer }): Promise<SoftwareKeyStore> {
    const kek = await unlockKeystoreHeader({ passphrase: p.passphrase, header: p.header });
    return new SoftwareKeyStore(kek, p.random ?? randomBytes);
  }

  async generate(id: string, algorithm: KeyAlgorithm): Promise<GeneratedKey> {
    checkId(id);
    if (this.#keys.has(id)) throw new PkiError('invalid-argument', `a key with id "${id}" is already held`);
    const { privateKey } = await generateKeyPair(algorithm);
    const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
    try {
      const sealed = sealBytes({ kek: this.#kek, plaintext: pkcs8, aad: keyAad(id), random: this.#random });
      this.#keys.set(id, { privateKey, algorithm });
      return { publicKeyInfo: publicKeyInfoOf(privateKey), sealed, pkcs11Label: null };
    } finally {
      pkcs8.fill(0);
    }
  }

  async load(key: StoredKey): Promise<void> {
    checkId(key.id);
    if (!key.sealed) {
      throw new PkiError('invalid-argument', `key "${key.id}" is not in software custody (no sealed PKCS#8)`);
    }
    const pkcs8 = unsealBytes({ kek: this.#kek, sealed: key.sealed, aad: keyAad(key.id) });
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
    } catch {
      throw new PkiError('malformed', `key "${key.id}" does not unseal to a PKCS#8 private key`);
    } finally {
      pkcs8.fill(0);
    }
    // The AAD binds the blob to its id, not to the algorithm column: check that too.
    const actual = keyAlgorithmOf(publicKeyInfoOf(privateKey));
    if (actual !== key.algorithm) {
      throw new PkiError('malformed', `key "${key.id}" is stored as ${key.algorithm} but holds ${actual ?? 'another kind of'} key`);
    }
    this.#keys.set(key.id, { privateKey, algorithm: key.algorithm });
    for (const cached of [...this.#signers.keys()]) if (cached.startsWith(`${key.id}\0`)) this.#signers.delete(cached);
  }

  has(id: string): boolean {
    return this.#keys.has(id);
  }

  signer(id: string, options: { rsaPadding?: RsaPadding } = {}): Signer {
    const held = this.#keys.get(id);
    if (!held) throw new PkiError('invalid-argument', `key "${id}" is not loaded in the keystore`);
    const rsaPadding = options.rsaPadding ?? 'pkcs1';
    const cacheKey = `${id}\0${rsaPadding}`;
    let signer = this.#signers.get(cacheKey);
    if (!signer) {
      signer = softwareSigner({ privateKey: held.privateKey, algorithm: held.algorithm, rsaPadding });
      this.#signers.set(cacheKey, signer);
    }
    return signer;
  }

  /** Seals secret bytes under the KEK bound to `aad`; `key:` and `keystore:` prefixes are reserved. */
  seal(plaintext: Buffer, aad: string): Buffer {
    checkCallerAad(aad);
    return sealBytes({ kek: this.#kek, plaintext, aad, random: this.#random });
  }

  unseal(sealed: Buffer, aad: string): Buffer {
    checkCallerAad(aad);
    return unsealBytes({ kek: this.#kek, sealed, aad });
  }
}

/** Callers' seals must not be able to mint a blob that loads as a CA key (or as the check value). */
function checkCallerAad(aad: string): void {
  if (typeof aad !== 'string' || aad.length === 0) throw new PkiError('invalid-argument', 'sealing needs a non-empty aad');
  if (RESERVED_AAD.some((prefix) => aad.startsWith(prefix))) {
    throw new PkiError('invalid-argument', `aad prefixes ${RESERVED_AAD.join(', ')} are reserved for the keystore`);
  }
}
