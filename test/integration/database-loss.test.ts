// A tierca instance whose database goes away. PostgreSQL: the server reaches the database through a
// TCP proxy the test cuts (connections closed, new ones refused), and separately has its sessions
// ended by pg_terminate_backend. SQLite (embedded, so there is no connection to lose): another
// process holds the file's write lock beyond the server's wait. Either way the API answers 503 with
// Retry-After, OCSP keeps serving its cached pre-signed answers — and only until their nextUpdate —
// and the instance recovers by itself when the database is back.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { nodeCsr } from '../helpers/pki-fixtures.ts';
import { freePort, TEST_KDF, TEST_PASSPHRASE } from '../helpers/tierca.ts';
import { testEngine, testPgUrl, testStoreOptions } from '../helpers/database.ts';
import { exampleConfigData } from '../helpers/config.ts';
import {
  freshDatabase, http, initHierarchyFor, startServe, startTcpProxy, viaProxy, waitFor,
  type HttpAnswer, type ProcessDatabase, type ProcessRole, type ServeProcess, type TcpProxy,
} from '../helpers/processes.ts';
import { startService, type RunningService } from '../../server/bootstrap.ts';
import { storeOptions } from '../../server/open-database.ts';
import { ceremony } from '../../server/init-ceremony.ts';
import { buildConfig } from '../../server/config/load-config.ts';
import { createKnex, openStore } from '../../server/storage/knex-store.ts';
import { FixedClock } from '../../server/clock.ts';
import { readCertificate, type CertificateFields } from '../../pki/certificate-reader.ts';
import { buildOcspRequest, certIdFor } from '../../pki/ocsp-request.ts';
import { parseOcspResponse } from '../../pki/ocsp-response.ts';
import { decodePemOrDer } from '../../pki/pem.ts';

const engine = testEngine();
const postgres = engine === 'postgres';
const ISSUER = 'yuhu-t1';

/** Takes the database away from a server and gives it back. */
interface Outage {
  begin(): Promise<void>;
  end(): Promise<void>;
  close(): Promise<void>;
}

/** PostgreSQL: cut the proxy the server connects through. */
function proxyOutage(proxy: TcpProxy): Outage {
  return { begin: () => proxy.cut(), end: () => proxy.restore(), close: () => proxy.close() };
}

/** SQLite: another connection (as another process would) holds the write lock until `end`. */
function writeLockOutage(file: string): Outage {
  const holder = new Database(file);
  holder.pragma('busy_timeout = 5000');
  return {
    async begin() {
      holder.exec('BEGIN IMMEDIATE');
    },
    async end() {
      if (holder.inTransaction) holder.exec('ROLLBACK');
    },
    async close() {
      if (holder.inTransaction) holder.exec('ROLLBACK');
      holder.close();
    },
  };
}

/** A DER OCSP request for `serial` under `issuer`, with or without a nonce. */
function ocspRequest(issuer: CertificateFields, serial: string, nonce?: Buffer): Buffer {
  return buildOcspRequest({ certIds: [certIdFor({ issuerName: issuer.subject, issuerPublicKeyInfo: issuer.publicKeyInfo, serial })], nonce });
}

async function ocspGet(base: string, request: Buffer): Promise<{ status: number; body: Buffer; cacheControl: string | null }> {
  const res = await fetch(`${base}/ocsp/${encodeURIComponent(request.toString('base64'))}`, { signal: AbortSignal.timeout(20_000) });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), cacheControl: res.headers.get('cache-control') };
}

/** The problem document of a 503 while the database is away, checked field by field. */
function expectUnavailable(res: HttpAnswer): void {
  expect(res.status, JSON.stringify(res.body)).toBe(503);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  expect(res.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
  expect(res.body).toMatchObject({ type: 'urn:tierca:problem:unavailable', status: 503, title: 'Service unavailable' });
}

describe(`a tierca serve process whose ${postgres ? 'PostgreSQL connection is lost' : 'SQLite file is locked by another process'}`, () => {
  const tmp = new TempDir();
  let db: ProcessDatabase;
  let proxy: TcpProxy | undefined;
  let outage: Outage;
  let srv: ServeProcess;
  let tokens: Record<ProcessRole, string>;
  let issuer: CertificateFields;
  let files: { root: string; issuer: string; chain: string };
  let n = 0;

  beforeAll(async () => {
    db = await freshDatabase();
    const port = await freePort();
    tokens = await initHierarchyFor(db, { publicUrl: `http://127.0.0.1:${port}` });
    let env = db.env;
    if (postgres) {
      proxy = await startTcpProxy();
      outage = proxyOutage(proxy);
      env = { ...db.env, DATABASE_URL: viaProxy(db.databaseUrl!, proxy) };
    } else {
      outage = writeLockOutage(join(db.dataDir, 'tierca.db'));
    }
    srv = await startServe({ env, port });
    const pem = async (id: string) => (await http(srv.url, 'GET', `/ca/${id}.pem`)).raw;
    const [root, domain, tier] = await Promise.all([pem('root'), pem('yuhu'), pem(ISSUER)]);
    files = { root: tmp.file('root.pem', root), issuer: tmp.file('issuer.pem', tier), chain: tmp.file('chain.pem', Buffer.concat([tier, domain])) };
    issuer = readCertificate(decodePemOrDer(tier, 'CERTIFICATE'));
  });

  afterAll(async () => {
    await outage?.end();
    await srv?.kill();
    await outage?.close();
    await db?.cleanup();
    tmp.cleanup();
  });

  async function issueDevice(): Promise<{ serial: string; certPath: string }> {
    const i = ++n;
    const subject = await http(srv.url, 'POST', '/api/v1/subjects', {
      token: tokens.officer,
      body: { kind: 'device', domain: 'yuhu', organ: 'court', tier: 't1', name: `loss-${i}`, dns: [`loss-${i}.yuhu.xiangtan.intranet`] },
    });
    expect(subject.status, JSON.stringify(subject.body)).toBe(201);
    const res = await http(srv.url, 'POST', '/api/v1/certificates', { token: tokens.officer, body: { subjectId: subject.body.id, csr: (await nodeCsr()).csrPem } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return { serial: res.body.certificate.serial, certPath: tmp.file(`loss-${i}.pem`, res.body.pem) };
  }

  const opensslOcsp = (certPath: string, extra: string[] = ['-no_nonce']) =>
    openssl(['ocsp', '-issuer', files.issuer, '-cert', certPath, '-url', `${srv.url}/ocsp`, ...extra, '-CAfile', files.root, '-verify_other', files.chain]);

  let cached: { serial: string; certPath: string };

  it('answers the API with 503 and Retry-After while the database is away, and OCSP from its cache', async () => {
    cached = await issueDevice();
    const uncached = await issueDevice();
    const request = ocspRequest(issuer, cached.serial);
    const warm = await ocspGet(srv.url, request);
    expect(warm.status).toBe(200);
    expect(parseOcspResponse(warm.body).responses[0].certStatus.status).toBe('good');

    await outage.begin();
    try {
      // The API: a write (every engine) and, on PostgreSQL, reads and the health check too.
      const write = http(srv.url, 'POST', '/api/v1/subjects', {
        token: tokens.officer,
        body: { kind: 'device', domain: 'yuhu', organ: 'court', tier: 't1', name: 'during-outage', dns: ['during-outage.yuhu.xiangtan.intranet'] },
      });
      if (postgres) {
        expectUnavailable(await http(srv.url, 'GET', '/api/v1/whoami', { token: tokens.officer }));
        const health = await http(srv.url, 'GET', '/healthz');
        expect(health.status).toBe(503);
        expect(health.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
        expect(health.body).toEqual({ status: 'unavailable' });
      } else {
        // Readers are not blocked by a writer in WAL mode: the instance stays healthy for reads.
        expect((await http(srv.url, 'GET', '/api/v1/whoami', { token: tokens.officer })).status).toBe(200);
      }

      // OCSP: the cached answer, byte for byte, over GET and over openssl's POST, verified to the root.
      const during = await ocspGet(srv.url, request);
      expect(during.status).toBe(200);
      expect(during.body.equals(warm.body)).toBe(true);
      expect(during.cacheControl).toMatch(/^max-age=[1-9]\d*, public/);
      const post = await opensslOcsp(cached.certPath);
      expect(post.stdout, post.stderr).toContain(`${cached.certPath}: good`);
      expect(post.stderr).toContain('Response verify OK');
      const respin = await openssl(['ocsp', '-respin', tmp.file('during.der', during.body), '-issuer', files.issuer, '-cert', cached.certPath,
        '-CAfile', files.root, '-verify_other', files.chain]);
      expect(respin.stdout).toContain(`${cached.certPath}: good`);

      if (postgres) {
        // What is not cached cannot be answered: tryLater (RFC 6960 §2.3), never an HTTP error.
        for (const extra of [['-no_nonce'], []]) {
          const res = await opensslOcsp(extra.length ? uncached.certPath : cached.certPath, extra);
          expect(res.stdout + res.stderr).toMatch(/Responder Error: trylater \(3\)/);
        }
      } else {
        // SQLite reads still work: the stored answer of a certificate not yet cached is served too.
        const res = await opensslOcsp(uncached.certPath);
        expect(res.stdout, res.stderr).toContain(`${uncached.certPath}: good`);
      }
      expectUnavailable(await write);
    } finally {
      await outage.end();
    }
  });

  it('recovers by itself once the database is back: health, issuance, and a revocation seen at OCSP', async () => {
    const { ms } = await waitFor(async () => (await http(srv.url, 'GET', '/healthz')).status === 200, 10_000);
    expect(ms).toBeLessThan(10_000);
    const fresh = await issueDevice();
    expect(fresh.serial).toMatch(/^[0-9a-f]+$/);
    const revoke = await http(srv.url, 'POST', `/api/v1/certificates/${cached.serial}/revoke`, { token: tokens.officer, body: { reason: 'superseded', issuer: ISSUER } });
    expect(revoke.status, JSON.stringify(revoke.body)).toBe(200);
    const res = await opensslOcsp(cached.certPath);
    expect(res.stdout).toContain(`${cached.certPath}: revoked`);
    expect(res.stdout).toContain('Reason: superseded');
    expect(res.stderr).toContain('Response verify OK');
  });

  it.runIf(postgres)('rides out sessions ended by pg_terminate_backend: 503 at worst, never a 500, and back at once', async () => {
    const admin = createKnex({ databaseUrl: testPgUrl() });
    try {
      const dbName = new URL(db.databaseUrl!).pathname.slice(1);
      const ended = await admin.raw('select pg_terminate_backend(pid) as ok from pg_stat_activity where datname = ? and pid <> pg_backend_pid()', [dbName]);
      expect(ended.rows.length).toBeGreaterThan(0);
    } finally {
      await admin.destroy();
    }
    const answers = await Promise.all(Array.from({ length: 12 }, () => http(srv.url, 'GET', '/api/v1/whoami', { token: tokens.officer })));
    for (const a of answers) {
      if (a.status !== 200) expectUnavailable(a);
    }
    await waitFor(async () => (await http(srv.url, 'GET', '/api/v1/whoami', { token: tokens.officer })).status === 200, 5000);
    expect((await issueDevice()).serial).toMatch(/^[0-9a-f]+$/);
    expect(srv.child.exitCode).toBeNull();
  });
});

describe('cached OCSP answers during an outage are served only until their nextUpdate (in-process, fixed clock)', () => {
  it('serves the cached answer before nextUpdate and tryLater after it, then a fresh answer once the database is back', async () => {
    const t0 = new Date(Math.floor(Date.now() / 1000) * 1000);
    const clock = new FixedClock(t0);
    const dbOpts = await testStoreOptions();
    const dataDir = mkdtempSync(join(tmpdir(), 'tierca-nextupdate-'));
    const port = await freePort();
    let proxy: TcpProxy | undefined;
    let outage: Outage | undefined;
    let service: RunningService | undefined;
    try {
      const base = { dataDir, databaseUrl: dbOpts.databaseUrl, searchPath: dbOpts.searchPath, sqliteFile: dbOpts.sqliteFile };
      const setup = await openStore(storeOptions(base));
      let tokens: Record<string, string>;
      try {
        const config = buildConfig({ ...exampleConfigData(), publicUrl: `http://127.0.0.1:${port}` });
        ({ tokens } = await ceremony(setup, { ...base, config, passphrase: TEST_PASSPHRASE, kdf: TEST_KDF, clock }, 'officer:officer'));
      } finally {
        await setup.close();
      }
      if (postgres) {
        proxy = await startTcpProxy();
        outage = proxyOutage(proxy);
      } else {
        outage = writeLockOutage(dbOpts.sqliteFile!);
      }
      service = await startService({
        ...base, databaseUrl: postgres ? viaProxy(dbOpts.databaseUrl!, proxy!) : undefined,
        passphrase: TEST_PASSPHRASE, port, clock, log: pino({ level: 'silent' }), pollMs: 200,
      });
      const url = service.url;
      const subject = await http(url, 'POST', '/api/v1/subjects', {
        token: tokens.officer,
        body: { kind: 'device', domain: 'yuhu', organ: 'court', tier: 't1', name: 'next-update', dns: ['next-update.yuhu.xiangtan.intranet'] },
      });
      expect(subject.status).toBe(201);
      const cert = await http(url, 'POST', '/api/v1/certificates', { token: tokens.officer, body: { subjectId: subject.body.id, csr: (await nodeCsr()).csrPem } });
      expect(cert.status).toBe(201);
      const issuer = readCertificate(decodePemOrDer((await http(url, 'GET', `/ca/${ISSUER}.pem`)).raw, 'CERTIFICATE'));
      const request = ocspRequest(issuer, cert.body.certificate.serial);

      const warm = await ocspGet(url, request);
      const first = parseOcspResponse(warm.body).responses[0];
      expect(first.certStatus.status).toBe('good');
      expect(first.thisUpdate).toEqual(t0);
      expect(first.nextUpdate).toEqual(new Date(t0.getTime() + 24 * 3600_000)); // t1: 24 h

      await outage.begin();
      clock.advance(24 * 3600_000 - 1000); // one second before nextUpdate: still the cached answer
      const before = await ocspGet(url, request);
      expect(before.body.equals(warm.body)).toBe(true);
      expect(before.cacheControl).toMatch(/^max-age=1, public/);
      clock.advance(2000); // one second after nextUpdate: never the stale answer
      const after = await ocspGet(url, request);
      expect(after.status).toBe(200);
      expect(parseOcspResponse(after.body).responseStatus).toBe('tryLater');
      await outage.end();

      const renewed = parseOcspResponse((await ocspGet(url, request)).body);
      expect(renewed.responseStatus).toBe('successful');
      expect(renewed.responses[0].certStatus.status).toBe('good');
      expect(renewed.responses[0].thisUpdate).toEqual(new Date(t0.getTime() + 24 * 3600_000 + 1000));
    } finally {
      await outage?.end();
      await service?.close();
      await outage?.close();
      await dbOpts.cleanup();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
