/**
 * Two custodies in one installation: the software keystore (CA keys sealed in the database) and a
 * PKCS#11 token. It serves a deployment whose root stays in software (or is kept apart) while the
 * issuing CAs sign in the HSM, and one moving into an HSM: existing software keys keep signing
 * until they retire, and every key made from then on — a CA rollover's new generation, a
 * responder key — is made in the token, so no key ever travels (docs/decisions/0021-pkcs11-custody.md).
 *
 * Routing: a stored key goes to the keystore that made it (a sealed blob: software; a token label:
 * the token). A new key goes to the token unless the caller asks for software. Sealing of secret
 * data (escrowed keys, passphrases of pending requests) uses the token; blobs sealed before the
 * token was added open with the software keystore (the blob's format octet says which made it).
 */
import type { KeyAlgorithm, RsaPadding } from '../algorithms.ts';
import type { Signer } from '../signer.ts';
import type { GeneratedKey, KeyLocation, KeyStore, StoredKey } from './keystore.ts';

/** The first octet of a sealed blob: 0x01 software (key-sealing.ts), 0x02 token (pkcs11-sealing.ts). */
const SOFTWARE_SEAL_FORMAT = 0x01;

export class CompositeKeyStore implements KeyStore {
  readonly custody = 'pkcs11' as const;

  constructor(
    private readonly software: KeyStore,
    private readonly token: KeyStore,
  ) {}

  generate(id: string, algorithm: KeyAlgorithm, options: { custody?: 'software' | 'pkcs11' } = {}): Promise<GeneratedKey> {
    return (options.custody === 'software' ? this.software : this.token).generate(id, algorithm);
  }

  load(key: StoredKey): Promise<void> {
    return (key.sealed ? this.software : this.token).load(key);
  }

  has(id: string): boolean {
    return this.software.has(id) || this.token.has(id);
  }

  signer(id: string, options?: { rsaPadding?: RsaPadding }): Signer {
    return this.holder(id).signer(id, options);
  }

  seal(plaintext: Buffer, aad: string): Buffer {
    return this.token.seal(plaintext, aad);
  }

  unseal(sealed: Buffer, aad: string): Buffer {
    return (sealed[0] === SOFTWARE_SEAL_FORMAT ? this.software : this.token).unseal(sealed, aad);
  }

  location(id: string): KeyLocation | null {
    if (this.token.has(id)) return this.token.location?.(id) ?? null;
    return this.software.has(id) ? { custody: 'software' } : null;
  }

  async close(): Promise<void> {
    await this.token.close?.();
    await this.software.close?.();
  }

  /** The keystore holding `id`; the token's own error for a key neither holds. */
  private holder(id: string): KeyStore {
    return this.software.has(id) ? this.software : this.token;
  }
}
