/**
 * Keeps an instance's CA directory in step with the database: CAs made by another instance (a
 * rollover's new generation, a domain added online; their keys unsealed into this keystore), newer
 * records (successors, status), domain CAs re-certified by a new offline root generation, and what
 * waits for the offline root. Run by the rotation timer and before a rollover is replayed.
 */
import { readCertificate } from '../../pki/certificate-reader.ts';
import { isKeyAlgorithm } from '../../pki/algorithms.ts';
import type { KeyStore } from '../../pki/keystore/keystore.ts';
import type { TiercaConfig } from '../config/load-config.ts';
import type { Store } from '../storage/storage.ts';
import type { CaDirectory } from './ca-directory.ts';
import { caRsaPadding } from './ca-signature.ts';
import { offlineSigner } from './hierarchy-ceremony.ts';
import { refreshRootWaits } from './offline-root-requests.ts';

/** Brings `cas` up to date with the database; how many entries changed. */
export async function syncCaDirectory(deps: { store: Store; cas: CaDirectory; keystore: KeyStore; config: TiercaConfig }): Promise<number> {
  const { store, cas, keystore } = deps;
  const records = await store.cas.list();
  let changed = 0;
  // Parents are usually listed first (oldest first); loop in case two were made in the same second.
  let pending = records.filter((r) => !cas.get(r.id));
  for (const record of records) if (cas.takeNewer(record)) changed++;
  while (pending.length) {
    const ready = pending.filter((r) => !r.parentId || cas.get(r.parentId));
    if (ready.length === 0) throw new Error(`CAs ${pending.map((r) => r.id).join(', ')} have parents that are not loaded`);
    for (const record of ready) {
      const key = await store.keys.get(record.keyId);
      if (!key || !isKeyAlgorithm(key.algorithm)) throw new Error(`CA ${record.id}: key ${record.keyId} is missing`);
      // A new generation of an offline root (tierca root import of a rollover): only its public key is here.
      const offline = key.purpose === 'offline-root' ? cas.list().find((c) => c.offline) : undefined;
      if (!offline && !keystore.has(key.id)) await keystore.load({ id: key.id, algorithm: key.algorithm, sealed: key.sealed, pkcs11Label: key.pkcs11Label });
      const parent = record.parentId ? cas.get(record.parentId) : undefined;
      cas.add({
        record,
        fields: readCertificate(record.certificate),
        keyAlgorithm: key.algorithm,
        chain: [record.certificate, ...(parent?.chain ?? [])],
        signer: offline ? offlineSigner(record) : keystore.signer(key.id, { rsaPadding: caRsaPadding(deps.config, record) }),
        ...(offline ? { offline: true, ...(offline.offlineWatch ? { offlineWatch: offline.offlineWatch } : {}) } : {}),
      });
      changed++;
    }
    pending = pending.filter((r) => !ready.includes(r));
  }
  // Domain CAs re-certified by a new root generation keep their key: only their certificate and chain change.
  for (const record of records) if (cas.takeRecertified(record)) changed++;
  // What waits for an offline root (certificates, revocations) may have changed on another instance.
  await refreshRootWaits(store, cas);
  return changed;
}

