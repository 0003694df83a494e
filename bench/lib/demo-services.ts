/**
 * The demo hierarchy opened in-process, without HTTP and without the status scheduler: the same
 * composition root (server/services.ts) that `tierca serve` uses, on a fresh SQLite data folder.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { DEMO_PASSPHRASE, prepareDatabase } from '../../server/bootstrap.ts';
import { storeOptions } from '../../server/open-database.ts';
import { openStore } from '../../server/storage/knex-store.ts';
import { buildConfig } from '../../server/config/load-config.ts';
import { SoftwareKeyStore } from '../../pki/keystore/software-keystore.ts';
import { openServices, type Services } from '../../server/services.ts';
import { systemClock } from '../../server/clock.ts';
import type { RequestContext } from '../../server/ra/permissions.ts';
import type { Store } from '../../server/storage/storage.ts';

export interface DemoServices {
  services: Services;
  /** A request context for a demo principal (by token file name: officer, admin, …). */
  context(name: string): Promise<() => RequestContext>;
  close(): Promise<void>;
}

/**
 * The services over an open store whose keystore unlocks with `passphrase`, logging nothing; `close`
 * stops their signing threads and closes the store (which is closed at once if opening fails).
 */
export async function openServicesOn(store: Store, passphrase: string): Promise<{ services: Services; close(): Promise<void> }> {
  try {
    const config = buildConfig(JSON.parse((await store.meta.get('config'))!));
    const keystore = await SoftwareKeyStore.unlock({ passphrase, header: (await store.meta.get('keystore'))! });
    const services = await openServices({ store, keystore, config, clock: systemClock, log: pino({ level: 'silent' }) });
    return {
      services,
      async close() {
        await services.signing.close();
        await store.close();
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}

export async function openDemoServices(dataDir: string): Promise<DemoServices> {
  await prepareDatabase({ dataDir });
  const { services, close } = await openServicesOn(await openStore(storeOptions({ dataDir })), DEMO_PASSPHRASE);
  return {
    services,
    async context(name) {
      const token = readFileSync(join(dataDir, `demo-${name}.token`), 'utf8').trim();
      const principal = await services.ra.authorizer.authenticate(token);
      if (!principal) throw new Error(`demo token ${name} does not authenticate`);
      return () => ({ principal, source: 'bench', requestId: randomUUID() });
    },
    close,
  };
}
