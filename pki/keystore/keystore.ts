/**
 * CA key custody behind one interface: software (PKCS#8 sealed under a passphrase-derived KEK, see
 * software-keystore.ts) now, PKCS#11 (non-extractable keys in a token) later. Callers get a
 * {@link Signer} for a key id and never the key itself: there is deliberately no method that returns
 * a private key, so a CA key cannot leave custody through this interface.
 */
import type { KeyAlgorithm, RsaPadding } from '../algorithms.ts';
import type { Signer } from '../signer.ts';

/** A key as the database keeps it: the sealed PKCS#8 (software) or the token label (PKCS#11). */
export interface StoredKey {
  id: string;
  algorithm: KeyAlgorithm;
  sealed: Buffer | null;
  pkcs11Label: string | null;
}

/** What {@link KeyStore.generate} hands back for the caller to store. Never plaintext. */
export interface GeneratedKey {
  /** DER SubjectPublicKeyInfo of the new key. */
  publicKeyInfo: Buffer;
  /** The sealed PKCS#8 (software custody), else null. */
  sealed: Buffer | null;
  /** The token object label (PKCS#11 custody), else null. */
  pkcs11Label: string | null;
}

/** Where a key is held, for `tierca keystore status`: in software, or an object in a token. */
export type KeyLocation =
  | { custody: 'software' }
  | { custody: 'pkcs11'; modulePath: string; tokenLabel: string; tokenSerial: string; slot: string; objectLabel: string; objectId: string };

/** Where a generated or stored key is held: a sealed blob is software custody, anything else the token's. */
export const custodyOf = (key: Pick<GeneratedKey, 'sealed'>): 'software' | 'pkcs11' => (key.sealed ? 'software' : 'pkcs11');

/** CA key custody behind one interface: software (sealed PKCS#8) or PKCS#11 (non-extractable token keys). */
export interface KeyStore {
  readonly custody: 'software' | 'pkcs11';
  /**
   * Makes a new key under `id`; returns what the caller stores (never plaintext). The key is usable
   * at once. `custody` asks for software or token custody where the keystore holds both
   * (composite-keystore.ts); a single keystore makes every key its own way.
   */
  generate(id: string, algorithm: KeyAlgorithm, options?: { custody?: 'software' | 'pkcs11' }): Promise<GeneratedKey>;
  /** Loads a stored key into memory (unseals it). */
  load(key: StoredKey): Promise<void>;
  /** Whether the key `id` is loaded and can sign. */
  has(id: string): boolean;
  /** A signer over the loaded key `id`; RSA keys sign with PKCS#1 v1.5 unless `rsaPadding` says 'pss'. */
  signer(id: string, options?: { rsaPadding?: RsaPadding }): Signer;
  /** Seals arbitrary secret bytes (escrowed user keys) under the keystore's KEK, bound to `aad`. */
  seal(plaintext: Buffer, aad: string): Buffer;
  /** Opens what {@link KeyStore.seal} made with the same `aad`. */
  unseal(sealed: Buffer, aad: string): Buffer;
  /** Where the loaded key `id` is held, or null when it is not loaded. Optional: the software keystore need not say. */
  location?(id: string): KeyLocation | null;
  /** Releases what the keystore holds open (token sessions, the module). Optional: nothing to release in software. */
  close?(): Promise<void>;
}
