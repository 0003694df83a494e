/**
 * A one-domain tierca opened in process for a benchmark: the key ceremony of `config` over
 * `keystore` on a fresh SQLite file, the audit key, one officer of Yuhu, and the services as
 * `tierca serve` opens them (bench/hsm.ts, bench/sm2.ts).
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import pino from 'pino';
import type { KeyStore } from '../../pki/keystore/keystore.ts';
import { generateAuditKey } from '../../server/audit/audit-checkpoints.ts';
import { runHierarchyCeremony } from '../../server/ca/hierarchy-ceremony.ts';
import { systemClock } from '../../server/clock.ts';
import { buildConfig } from '../../server/config/load-config.ts';
import { createPrincipal } from '../../server/ra/principal.service.ts';
import { openServices, type Services } from '../../server/services.ts';
import { openStore } from '../../server/storage/knex-store.ts';
import { exampleConfigData } from '../../test/helpers/config.ts';

export interface BenchStack {
  services: Services;
  keystore: KeyStore;
  /** A fresh request context of the officer. */
  ctx: () => Parameters<Services['ra']['issuance']['issue']>[0];
  close(): Promise<void>;
}

/** The example topology cut to Yuhu, with `change` applied to its data (algorithms, tiers). */
export function yuhuConfig(change: (data: Record<string, any>) => void = () => undefined) {
  const data = exampleConfigData();
  data.domains = data.domains.filter((d: { slug: string }) => d.slug === 'yuhu');
  change(data);
  return buildConfig({ ...data, publicUrl: 'http://127.0.0.1:8080' });
}

export async function openBenchStack(p: { keystore: KeyStore; dataDir: string; file: string; config?: ReturnType<typeof yuhuConfig> }): Promise<BenchStack> {
  const config = p.config ?? yuhuConfig();
  const store = await openStore({ sqliteFile: join(p.dataDir, p.file) });
  const now = systemClock.now();
  await runHierarchyCeremony({ config, store, keystore: p.keystore, now });
  const auditKey = await generateAuditKey({ keystore: p.keystore, now });
  let officer!: Awaited<ReturnType<typeof createPrincipal>>['principal'];
  await store.transaction(async (tx) => {
    await tx.keys.insert(auditKey);
    officer = (await createPrincipal(tx, { name: 'bench officer', role: 'officer', domains: ['yuhu'], now })).principal;
  });
  const services = await openServices({ store, keystore: p.keystore, config, clock: systemClock, log: pino({ level: 'silent' }) });
  const principal = { id: officer.id, name: officer.name, role: officer.role, domains: officer.domains };
  return {
    services, keystore: p.keystore,
    ctx: () => ({ principal, source: 'bench', requestId: randomUUID() }) as Parameters<Services['ra']['issuance']['issue']>[0],
    async close() {
      await services.signing.close();
      await store.close();
    },
  };
}
