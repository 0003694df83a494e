/**
 * Starts a real tierca service in-process for integration tests: the example topology, a principal
 * per role, on the engine chosen by TIERCA_TEST_DB (SQLite by default, PostgreSQL with a fresh schema).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { startService, type RunningService } from '../../server/bootstrap.ts';
import { storeOptions } from '../../server/open-database.ts';
import { ceremony } from '../../server/init-ceremony.ts';
import { openStore } from '../../server/storage/knex-store.ts';
import { buildConfig } from '../../server/config/load-config.ts';
import { exampleConfigData } from './config.ts';
import type { Clock } from '../../server/clock.ts';
import type { Store } from '../../server/storage/storage.ts';
import { testStoreOptions } from './database.ts';
import type { ServiceTls } from '../../server/listeners.ts';
import type { DurableSync } from '../../server/storage/wal-sync.ts';

export const TEST_PASSPHRASE = 'integration-test-passphrase';
/** Cheap scrypt for tests only: the production default is in pki/keystore/key-sealing.ts. */
export const TEST_KDF = { N: 1024, r: 8, p: 1 };

export type RoleName = 'admin' | 'admin2' | 'officer' | 'officer2' | 'auditor';

export interface TestTierca {
  url: string;
  port: number;
  tokens: Record<RoleName, string>;
  service: RunningService;
  store: Store;
  dataDir: string;
  db: Awaited<ReturnType<typeof testStoreOptions>>;
  close(): Promise<void>;
}

import { freePort } from './net.ts';

export { freePort };


/**
 * `tls`: the main listener speaks HTTPS with this key and certificate, and a plain-HTTP public
 * listener (OCSP, CRLs) is opened beside it; `publicUrl` then names the plain one, as `tierca serve`
 * does, and `url` the HTTPS one.
 */
export async function startTestTierca(opts: {
  clock?: Clock; configData?: Record<string, unknown>; pollMs?: number; tls?: ServiceTls;
  /** SQLite only: what the service's commits wait for (the setup ceremony keeps the real fsync). */
  durableSync?: DurableSync;
} = {}): Promise<TestTierca> {
  const db = await testStoreOptions();
  const dataDir = mkdtempSync(join(tmpdir(), 'tierca-data-'));
  const port = await freePort();
  const httpPort = opts.tls ? await freePort() : undefined;
  const dbOpts = { dataDir, databaseUrl: db.databaseUrl, searchPath: db.searchPath, sqliteFile: db.sqliteFile };
  const data = opts.configData ?? exampleConfigData();
  // Over TLS, ACME clients reach the HTTPS listener: the plain one serves no ACME.
  const acme = opts.tls && data.acme ? { acme: { url: `https://127.0.0.1:${port}`, ...(data.acme as object) } } : {};
  const config = buildConfig({ ...data, ...acme, publicUrl: `http://127.0.0.1:${httpPort ?? port}` });
  const setupStore = await openStore(storeOptions(dbOpts));
  let tokens: Record<string, string>;
  try {
    ({ tokens } = await ceremony(
      setupStore,
      { ...dbOpts, config, passphrase: TEST_PASSPHRASE, clock: opts.clock, kdf: TEST_KDF },
      'sysadmin:admin', 'sysadmin:admin2', 'officer:officer', 'officer:officer2', 'auditor:auditor',
    ));
  } finally {
    await setupStore.close();
  }
  const service = await startService({
    ...dbOpts, durableSync: opts.durableSync, passphrase: TEST_PASSPHRASE, port, clock: opts.clock, log: pino({ level: 'silent' }), pollMs: opts.pollMs ?? 200,
    tls: opts.tls, httpPort,
  });
  return {
    url: service.url,
    port: service.port,
    tokens: tokens as Record<RoleName, string>,
    service,
    store: service.services.store,
    dataDir,
    db,
    async close() {
      await service.close();
      await db.cleanup();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  raw: Buffer;
}

/** Calls the API as `role` (or with no token when role is null). */
export async function call<T = any>(t: TestTierca, role: RoleName | null, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
  const h: Record<string, string> = { ...headers };
  if (role) h.authorization = `Bearer ${t.tokens[role]}`;
  let payload: string | Buffer | undefined;
  if (body !== undefined) {
    if (Buffer.isBuffer(body) || typeof body === 'string') payload = body;
    else {
      payload = JSON.stringify(body);
      h['content-type'] ??= 'application/json';
    }
  }
  const res = await fetch(`${t.url}${path}`, { method, headers: h, body: payload as BodyInit | undefined });
  const raw = Buffer.from(await res.arrayBuffer());
  const type = res.headers.get('content-type') ?? '';
  const parsed = type.includes('json') && raw.length ? JSON.parse(raw.toString('utf8')) : raw;
  return { status: res.status, headers: res.headers, body: parsed as T, raw };
}


/**
 * Adds a sysadmin or an officer the way the API requires (decision 0014): `admin` asks, `admin2`
 * approves. Answers like the direct route did for other roles: 201 with the principal's fields and
 * its token (once), or the refusal of either step as it came.
 */
export async function addApprovingPrincipal(t: TestTierca, body: { name: string; role: 'sysadmin' | 'officer'; domains?: string[] }): Promise<ApiResponse> {
  const asked = await call(t, 'admin', 'POST', '/api/v1/principals', body);
  if (asked.status !== 202) return asked;
  const approved = await call(t, 'admin2', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
  if (approved.status !== 200) return approved;
  const { principal, token } = approved.body.result as { principal: Record<string, unknown>; token: string };
  return { ...approved, status: 201, body: { ...principal, token } };
}
