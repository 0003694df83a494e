/**
 * The online side's commands of the offline-root ceremonies that run on this installation's database
 * without a server (the CLI calls them; docs/offline-root.md): `tierca root import` installs a
 * response bundle, `tierca root request` writes the next request bundle, `--again <n>` a copy of one.
 */
import { openDatabase, type DatabaseOptions } from './open-database.ts';
import { systemClock, type Clock } from './clock.ts';
import { importResponseBundle, type ImportOutcome } from './ca/offline-root-import.ts';
import { requestBundleCopy, unsentRootRequests, writeNextRequestBundle, type RequestBundleWritten } from './ca/offline-root-requests.ts';
import { TOKEN_META, openInstalledKeystore, readCustody } from './keystore-custody.ts';
import { TiercaError } from './errors.ts';
import type { KeyStore } from '../pki/keystore/keystore.ts';
import { isKeyAlgorithm } from '../pki/algorithms.ts';

/**
 * `tierca root import`: installs a response bundle of the offline root in this installation's
 * database (server/ca/offline-root-import.ts). Needs no keystore secret: nothing is signed here.
 */
export async function importResponse(opts: DatabaseOptions & { bytes: Buffer; clock?: Clock }): Promise<ImportOutcome> {
  const store = await openDatabase(opts);
  try {
    return await importResponseBundle(store, opts.bytes, (opts.clock ?? systemClock).now());
  } finally {
    await store.close();
  }
}

/**
 * `tierca root request`: writes the next request bundle with every request the online side has
 * made of the offline root since the last bundle (server/ca/offline-root-requests.ts), signed by the
 * audit key — which is why it needs the keystore passphrase (or the token PIN) and nothing else.
 */
export async function requestRootBundle(opts: DatabaseOptions & { passphrase?: string; pin?: string; clock?: Clock }): Promise<RequestBundleWritten> {
  const store = await openDatabase(opts);
  let keystore: KeyStore | undefined;
  try {
    const stored = await store.meta.get('keystore');
    if (!stored) throw new TiercaError('not-found', 'this database holds no CA hierarchy: run `tierca init --config …` first');
    // Nothing to write is said before any secret is used.
    await unsentRootRequests(store);
    const token = await store.meta.get(TOKEN_META);
    keystore = await openInstalledKeystore(readCustody(stored), token ? readCustody(token) : undefined, opts.passphrase, opts.pin);
    const auditKey = (await store.keys.list('audit')).at(-1);
    if (!auditKey || !isKeyAlgorithm(auditKey.algorithm)) throw new TiercaError('internal', 'this installation has no audit key to sign the request bundle with');
    await keystore.load({ id: auditKey.id, algorithm: auditKey.algorithm, sealed: auditKey.sealed, pkcs11Label: auditKey.pkcs11Label });
    return await writeNextRequestBundle(store, keystore.signer(auditKey.id), (opts.clock ?? systemClock).now());
  } finally {
    await store.close();
    await keystore?.close?.();
  }
}

/** `tierca root request --again <n>`: request bundle `n` again, as written (no secret needed: it is signed already). */
export async function requestRootBundleCopy(opts: DatabaseOptions & { sequence: number }): Promise<{ bytes: Buffer; sequence: number; digest: string }> {
  const store = await openDatabase(opts);
  try {
    return await requestBundleCopy(store, opts.sequence);
  } finally {
    await store.close();
  }
}
