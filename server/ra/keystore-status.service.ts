/**
 * `tierca keystore status` (sysadmins): for each CA and audit key, where it is held (software, or
 * the token's label, serial, slot and the object's label and id), its algorithm, the CAs it signs
 * for, and whether this instance can sign with it now — proven by a signature, not assumed.
 */
import type { KeyLocation, KeyStore, StoredKey } from '../../pki/keystore/keystore.ts';
import type { KeyAlgorithm } from '../../pki/algorithms.ts';
import { KeystoreError } from '../../pki/keystore/pkcs11-errors.ts';
import type { CaStatus, KeyPurpose, Store } from '../storage/storage.ts';
import type { Authorizer } from './authorizer.ts';
import type { RequestContext } from './permissions.ts';

/** One key as the status lists it. */
export interface KeyStatus {
  keyId: string;
  purpose: KeyPurpose;
  algorithm: string;
  /** The CAs (generations) whose certificates carry this key, with their status. */
  cas: { id: string; status: CaStatus }[];
  location: KeyLocation;
  /** Whether a probe signature with the key succeeded just now on this instance. */
  canSign: boolean;
  /** Why it cannot sign (a keystore fault code, e.g. `key-missing`), when it cannot. */
  fault?: string;
}

export interface KeystoreStatus {
  custody: KeyStore['custody'];
  keys: KeyStatus[];
}

export interface KeystoreStatusServiceDeps {
  store: Pick<Store, 'keys' | 'cas'>;
  keystore: Pick<KeyStore, 'custody' | 'has' | 'load' | 'signer' | 'location'>;
  authorizer: Pick<Authorizer, 'require'>;
}

/** What the probe signs: fixed, and useless as anything but a probe (no DER structure starts so). */
const PROBE = Buffer.from('tierca keystore status probe', 'ascii');

/** Purposes a status lists: keys the keystore holds for signing (escrow blobs and responder keys are not CA custody). */
const LISTED: readonly KeyPurpose[] = ['ca', 'audit'];

export class KeystoreStatusService {
  constructor(private readonly deps: KeystoreStatusServiceDeps) {}

  async status(ctx: RequestContext): Promise<KeystoreStatus> {
    const { store, keystore, authorizer } = this.deps;
    await authorizer.require(ctx, 'keystore:read', 'keystore.status', null);
    const cas = await store.cas.list();
    const keys: KeyStatus[] = [];
    for (const purpose of LISTED) {
      for (const key of await store.keys.list(purpose)) {
        const probe = await this.probe({ id: key.id, algorithm: key.algorithm as KeyAlgorithm, sealed: key.sealed, pkcs11Label: key.pkcs11Label });
        // After the probe, which loads a key this instance had not loaded yet.
        const location: KeyLocation = keystore.location?.(key.id) ?? (key.custody === 'pkcs11'
          ? { custody: 'pkcs11', modulePath: '', tokenLabel: '', tokenSerial: '', slot: '', objectLabel: key.pkcs11Label ?? '', objectId: '' }
          : { custody: 'software' });
        keys.push({
          keyId: key.id, purpose, algorithm: key.algorithm,
          cas: cas.filter((c) => c.keyId === key.id).map((c) => ({ id: c.id, status: c.status })),
          location, ...probe,
        });
      }
    }
    return { custody: keystore.custody, keys };
  }

  /**
   * Loads the key if this instance has not yet (the audit key is loaded at its first checkpoint),
   * then signs the probe with it; a fault is reported, not thrown (the status is what was asked).
   */
  private async probe(key: StoredKey): Promise<{ canSign: boolean; fault?: string }> {
    const { keystore } = this.deps;
    try {
      if (!keystore.has(key.id)) await keystore.load(key);
      const signature = await keystore.signer(key.id).sign(PROBE);
      return signature.length > 0 ? { canSign: true } : { canSign: false, fault: 'empty-signature' };
    } catch (err) {
      return { canSign: false, fault: err instanceof KeystoreError ? err.code : 'sign-failed' };
    }
  }
}
