// `tierca backup > file` and `tierca restore < file` as real processes, on the engine of the pass
// (SQLite or PostgreSQL), while a `tierca serve` runs on the source: the backup names its schema and
// holds keys only sealed; the restored database, served by a new process with the same passphrase,
// is a working CA (chains, OCSP and CRLs checked by openssl, tokens, audit chain, serials, CRL numbers
// and revocation events continuing). Restore refuses a database that holds data and any truncated,
// altered or foreign file, leaving the target untouched. In the PostgreSQL pass, a SQLite backup
// also moves an embedded CA to PostgreSQL.
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { nodeCsr } from '../helpers/pki-fixtures.ts';
import { freePort, TEST_PASSPHRASE } from '../helpers/tierca.ts';
import { snapshotCounts, tableNames, testEngine, testStoreOptions } from '../helpers/database.ts';
import {
  freshDatabase, http, initHierarchyFor, runTierca, startServe,
  type ProcessDatabase, type ProcessRole, type ServeProcess,
} from '../helpers/processes.ts';
import { createKnex, openStore } from '../../server/storage/knex-store.ts';
import { exportBackup, restoreBackup, type BackupHeader } from '../../server/storage/backup.ts';
import { migrations } from '../../server/storage/migrate.ts';
import { verifyAuditChain } from '../../server/audit/audit-log.ts';
import { unlockKeystoreHeader, unsealBytes } from '../../pki/keystore/key-sealing.ts';
import { keyAad } from '../../pki/keystore/software-keystore.ts';
import { TiercaError } from '../../server/errors.ts';
import type { AuditRecord } from '../../server/storage/storage.ts';
import { decodePemOrDer } from '../../pki/pem.ts';

const engine = testEngine();
/** The newest migration: what a backup of a fresh database names as its schema. */
const SCHEMA = migrations.at(-1)!.name;
const ISSUER = 'yuhu-t1';
const tmp = new TempDir();

let src: ProcessDatabase;
let srv: ServeProcess;
let tokens: Record<ProcessRole, string>;
let files: { root: string; chain: string; issuer: string };
let good: { serial: string; certPath: string };
let revoked: { serial: string; certPath: string };
let backup: Buffer;
let lines: unknown[];
let sourceAudit: AuditRecord[];
let n = 0;

async function issueDevice(via: ServeProcess): Promise<{ serial: string; certPath: string }> {
  const i = ++n;
  const subject = await http(via.url, 'POST', '/api/v1/subjects', {
    token: tokens.officer,
    body: { kind: 'device', domain: 'yuhu', organ: 'court', tier: 't1', name: `backup-${i}`, dns: [`backup-${i}.yuhu.xiangtan.intranet`] },
  });
  expect(subject.status, JSON.stringify(subject.body)).toBe(201);
  const res = await http(via.url, 'POST', '/api/v1/certificates', { token: tokens.officer, body: { subjectId: subject.body.id, csr: (await nodeCsr()).csrPem } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { serial: res.body.certificate.serial, certPath: tmp.file(`backup-${i}.pem`, res.body.pem) };
}

/** The rows of `table` in the parsed backup, as objects by column name. */
function rowsOf(table: string): Record<string, unknown>[] {
  const header = lines[0] as BackupHeader;
  const columns = header.tables.find((t) => t.name === table)!.columns.map((c) => c.name);
  return (lines.slice(1, -1) as unknown[][]).filter((r) => r[0] === table).map((r) => Object.fromEntries(columns.map((c, i) => [c, r[i + 1]])));
}

const opensslOcsp = (via: ServeProcess, certPath: string) =>
  openssl(['ocsp', '-issuer', files.issuer, '-cert', certPath, '-url', `${via.url}/ocsp`, '-CAfile', files.root, '-verify_other', files.chain]);

beforeAll(async () => {
  src = await freshDatabase();
  const port = await freePort();
  tokens = await initHierarchyFor(src, { publicUrl: `http://127.0.0.1:${port}` });
  srv = await startServe({ env: src.env, port });
  const pem = async (id: string) => (await http(srv.url, 'GET', `/ca/${id}.pem`)).raw;
  const [root, domain, tier] = await Promise.all([pem('root'), pem('yuhu'), pem(ISSUER)]);
  files = { root: tmp.file('root.pem', root), issuer: tmp.file('issuer.pem', tier), chain: tmp.file('chain.pem', Buffer.concat([tier, domain])) };
  good = await issueDevice(srv);
  revoked = await issueDevice(srv);
  const revoke = await http(srv.url, 'POST', `/api/v1/certificates/${revoked.serial}/revoke`, { token: tokens.officer, body: { reason: 'keyCompromise', issuer: ISSUER } });
  expect(revoke.status).toBe(200);
  expect((await http(srv.url, 'POST', '/api/v1/crls', { token: tokens.admin, body: { ca: ISSUER } })).status).toBe(201);
});

afterAll(async () => {
  await srv?.kill();
  await src?.cleanup();
  tmp.cleanup();
});

describe(`tierca backup and restore on ${engine}`, () => {
  it('writes a backup while the server runs: a header naming the schema, every table with its rows, an end record', async () => {
    const run = await runTierca(['backup'], { env: src.env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(new RegExp(`^backed up .+: schema ${SCHEMA}, \\d+ tables, \\d+ rows \\(2 certificates, \\d+ audit records\\)\n$`));
    backup = run.stdout;
    lines = backup.toString('utf8').trimEnd().split('\n').map((l) => JSON.parse(l));

    const header = lines[0] as BackupHeader;
    expect(header).toMatchObject({ format: 'tierca-backup', version: 1, engine, migrations: migrations.map((m) => m.name) });
    expect(new Date(header.createdAt).getTime()).toBeGreaterThan(Date.now() - 60_000);
    const store = await src.openStore();
    try {
      expect(header.tables.map((t) => t.name).sort()).toEqual(await tableNames(store));
      // Parents before children, as the foreign keys need on restore.
      const order = header.tables.map((t) => t.name);
      for (const [child, parent] of [['organs', 'domains'], ['cas', 'keys'], ['certificates', 'cas'], ['tokens', 'principals']]) {
        expect(order.indexOf(parent)).toBeLessThan(order.indexOf(child));
      }
      expect(header.tables.find((t) => t.name === 'certificates')).toMatchObject({
        primaryKey: ['issuer_id', 'serial'],
        columns: expect.arrayContaining([{ name: 'der', type: 'binary' }, { name: 'serial', type: 'text' }]),
      });
      expect(header.tables.find((t) => t.name === 'crls')!.columns).toEqual(expect.arrayContaining([
        { name: 'number', type: 'bigint' }, { name: 'delta', type: 'boolean' },
      ]));
      const trailer = lines.at(-1) as { end: boolean; rows: Record<string, number>; sha256: string };
      expect(trailer.end).toBe(true);
      expect(trailer.sha256).toMatch(/^[0-9a-f]{64}$/);
      const rowLines = lines.slice(1, -1) as unknown[][];
      for (const table of header.tables) expect(rowLines.filter((r) => r[0] === table.name)).toHaveLength(trailer.rows[table.name]);
      expect(trailer.rows.certificates).toBe(2);
      const certRow = rowLines.find((r) => r[0] === 'certificates' && r.includes(revoked.serial))!;
      const columns = header.tables.find((t) => t.name === 'certificates')!.columns.map((c) => c.name);
      expect(certRow[1 + columns.indexOf('status')]).toBe('revoked');
      const der = Buffer.from(certRow[1 + columns.indexOf('der')] as string, 'base64');
      expect(der.equals(decodePemOrDer(readFileSync(revoked.certPath), 'CERTIFICATE'))).toBe(true);
      expect((await store.certificates.get(ISSUER, revoked.serial))!.der.equals(der)).toBe(true);
      sourceAudit = await store.audit.list({});
      expect(trailer.rows.audit_log).toBe(sourceAudit.length);
    } finally {
      await store.close();
    }
  });

  it('holds every private key only sealed: no plaintext PKCS#8 or private scalar, no passphrase, no token', async () => {
    const header = lines[0] as BackupHeader;
    const keystoreHeader = rowsOf('meta').find((m) => m.key === 'keystore')!.value as string;
    const kek = await unlockKeystoreHeader({ passphrase: TEST_PASSPHRASE, header: keystoreHeader });
    const keys = rowsOf('keys');
    expect(keys.length).toBeGreaterThanOrEqual(25); // 25 CA keys, plus OCSP responder keys
    const binaries: Buffer[] = (lines.slice(1, -1) as unknown[][]).flatMap((r): Buffer[] => {
      const table = header.tables.find((t) => t.name === r[0])!;
      return table.columns.flatMap((c, j) => (c.type === 'binary' && r[j + 1] !== null ? [Buffer.from(r[j + 1] as string, 'base64')] : []));
    });
    binaries.push(backup);
    const text = backup.toString('utf8');
    for (const key of keys) {
      expect(key.custody).toBe('software');
      const pkcs8 = unsealBytes({ kek, sealed: Buffer.from(key.sealed as string, 'base64'), aad: keyAad(key.id as string) });
      const d = Buffer.from(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' }).d!, 'base64url');
      for (const blob of binaries) {
        expect(blob.includes(pkcs8)).toBe(false);
        expect(blob.includes(d)).toBe(false);
      }
      for (const encoding of ['hex', 'base64', 'base64url'] as const) expect(text.includes(d.toString(encoding))).toBe(false);
    }
    kek.fill(0);
    expect(text.includes(TEST_PASSPHRASE)).toBe(false);
    for (const token of Object.values(tokens)) expect(text.includes(token)).toBe(false);
  });

  let dst: ProcessDatabase;
  let restored: ServeProcess | undefined;

  it('restores into an empty database a CA that works with the same passphrase and tokens', async () => {
    dst = await freshDatabase();
    const run = await runTierca(['restore'], { env: dst.env, input: backup });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.toString()).toMatch(new RegExp(`^restored into .+: schema ${SCHEMA}, \\d+ tables, \\d+ rows \\(2 certificates, \\d+ audit records\\)\n`));

    // The keys open only with the original passphrase.
    await expect(startServe({ env: { ...dst.env, TIERCA_PASSPHRASE: 'not-the-passphrase-at-all' } })).rejects.toThrow(/exited \(7\) before it was ready:[\s\S]*the keystore passphrase is wrong/);
    restored = await startServe({ env: dst.env });
    const [before, after] = await Promise.all([http(srv.url, 'GET', '/ca'), http(restored.url, 'GET', '/ca')]);
    expect(after.body).toEqual(before.body);
    expect((await http(restored.url, 'GET', '/api/v1/whoami', { token: tokens.officer })).body).toMatchObject({ name: 'officer', role: 'officer' });

    // OCSP and CRL from the restored instance, as openssl sees them.
    const ocspGood = await opensslOcsp(restored, good.certPath);
    expect(ocspGood.stdout, ocspGood.stderr).toContain(`${good.certPath}: good`);
    expect(ocspGood.stderr).toContain('Response verify OK');
    const ocspRevoked = await opensslOcsp(restored, revoked.certPath);
    expect(ocspRevoked.stdout).toContain(`${revoked.certPath}: revoked`);
    expect(ocspRevoked.stdout).toContain('Reason: keyCompromise');
    const crlPem = tmp.file('restored.crl.pem', (await openssl(['crl', '-inform', 'DER'], { input: (await http(restored.url, 'GET', `/crl/${ISSUER}.crl`)).raw })).stdout);
    const verify = (cert: string) => openssl(['verify', '-CAfile', files.root, '-untrusted', files.chain, '-crl_check', '-CRLfile', crlPem, cert]);
    expect((await verify(good.certPath)).stdout.trim()).toBe(`${good.certPath}: OK`);
    const bad = await verify(revoked.certPath);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout + bad.stderr).toContain('certificate revoked');

    // It goes on where the original stopped: new serial, a revocation (its event sequence continues),
    // a higher CRL number, the same audit chain.
    const maxCrlNumber = rowsOf('crls').filter((r) => r.ca_id === ISSUER).map((r) => BigInt(r.number as string)).reduce((m, x) => (x > m ? x : m), 0n);
    expect(maxCrlNumber).toBeGreaterThan(0n);
    const fresh = await issueDevice(restored);
    expect([good.serial, revoked.serial]).not.toContain(fresh.serial);
    const revoke = await http(restored.url, 'POST', `/api/v1/certificates/${fresh.serial}/revoke`, { token: tokens.officer, body: { reason: 'superseded', issuer: ISSUER } });
    expect(revoke.status, JSON.stringify(revoke.body)).toBe(200);
    const ocspFresh = await opensslOcsp(restored, fresh.certPath);
    expect(ocspFresh.stdout).toContain(`${fresh.certPath}: revoked`);
    const crls = await http(restored.url, 'POST', '/api/v1/crls', { token: tokens.admin, body: { ca: ISSUER } });
    expect(crls.status).toBe(201);
    expect(BigInt(crls.body[0].number)).toBeGreaterThan(maxCrlNumber);
    const store = await dst.openStore();
    try {
      const audit = await store.audit.list({});
      expect(verifyAuditChain(audit)).toEqual({ ok: true, checked: audit.length });
      expect(audit.slice(0, sourceAudit.length)).toEqual(sourceAudit);
      expect(audit.length).toBeGreaterThan(sourceAudit.length);
      const events = await store.revocationEvents.since(0, 100);
      expect(events.map((e) => e.serial)).toEqual([revoked.serial, fresh.serial]);
      expect(events[1].seq).toBeGreaterThan(events[0].seq);
    } finally {
      await store.close();
    }
  });

  it('refuses to restore into a database that holds data, and changes nothing there', async () => {
    await restored?.stop();
    const store = await dst.openStore();
    try {
      const counts = await snapshotCounts(store);
      const run = await runTierca(['restore'], { env: dst.env, input: backup });
      expect(run.code).toBe(5);
      expect(run.stderr).toMatch(/^error: restore needs an empty database: table \w+ holds \d+ row\(s\)\n$/);
      expect(await snapshotCounts(store)).toEqual(counts);
    } finally {
      await store.close();
      await dst.cleanup();
    }
    const empty = await runTierca(['restore'], { env: src.env, input: Buffer.from('') });
    expect(empty.code).toBe(2);
    expect(empty.stderr).toBe('error: the backup is empty\n');
  });

  it('refuses a truncated, altered, foreign or newer-schema backup and leaves the target empty', async () => {
    const text = backup.toString('utf8').trimEnd().split('\n');
    const header = JSON.parse(text[0]) as BackupHeader;
    const certIndex = text.findIndex((l) => l.startsWith('["certificates"'));
    const goodIndex = text.findIndex((l) => l.startsWith('["certificates"') && l.includes(`"${good.serial}"`));
    const cases: [string, string[], RegExp][] = [
      ['truncated', text.slice(0, -1), /the backup is truncated: it has no end record/],
      ['cut mid-table', [...text.slice(0, certIndex), text.at(-1)!], /does not match its SHA-256/],
      ['altered', text.map((l, i) => (i === goodIndex ? l.replace('"good"', '"hold"') : l)), /does not match its SHA-256/],
      ['foreign', ['{"hello":"world"}', ...text.slice(1)], /this is not a tierca backup/],
      ['newer schema', [JSON.stringify({ ...header, migrations: [...header.migrations, '0099_future'] }), ...text.slice(1)], /is not one this tierca knows/],
      ['extra table', [JSON.stringify({ ...header, tables: [...header.tables, { name: 'extra', columns: [], primaryKey: [] }] }), ...text.slice(1)], /table extra that schema/],
    ];
    for (const [name, input, message] of cases) {
      const db = await testStoreOptions();
      const knex = createKnex(db);
      try {
        const error = await restoreBackup({ knex, lines: input }).catch((err: unknown) => err);
        expect(error, name).toBeInstanceOf(TiercaError);
        expect((error as TiercaError).code, name).toBe('malformed-input');
        expect((error as TiercaError).message, name).toMatch(message);
        // Nothing was left behind: not even the schema (DDL is transactional on both engines).
        const store = await openStore(db);
        try {
          const counts = await snapshotCounts(store);
          expect(Object.values(counts).every((c) => c === 0), name).toBe(true);
        } finally {
          await store.close();
        }
      } finally {
        await knex.destroy();
        await db.cleanup();
      }
    }
  });

  it.runIf(engine === 'postgres')('moves an embedded SQLite CA to PostgreSQL: a SQLite backup restores into PostgreSQL and serves', async () => {
    const lite = await freshDatabase('sqlite');
    const pg = await freshDatabase('postgres');
    let served: ServeProcess | undefined;
    try {
      const liteTokens = await initHierarchyFor(lite, { publicUrl: 'http://127.0.0.1:8080' });
      const knex = createKnex({ sqliteFile: `${lite.dataDir}/tierca.db` });
      const chunks: string[] = [];
      try {
        await exportBackup({ knex, now: new Date(), write: (c) => void chunks.push(c) });
      } finally {
        await knex.destroy();
      }
      expect(JSON.parse(chunks[0]).engine).toBe('sqlite');
      const run = await runTierca(['restore'], { env: pg.env, input: chunks.join('') });
      expect(run.code, run.stderr).toBe(0);
      served = await startServe({ env: pg.env });
      const subject = await http(served.url, 'POST', '/api/v1/subjects', {
        token: liteTokens.officer,
        body: { kind: 'device', domain: 'shaoshan', organ: 'court', tier: 't1', name: 'moved', dns: ['moved.shaoshan.xiangtan.intranet'] },
      });
      expect(subject.status, JSON.stringify(subject.body)).toBe(201);
      const cert = await http(served.url, 'POST', '/api/v1/certificates', { token: liteTokens.officer, body: { subjectId: subject.body.id, csr: (await nodeCsr()).csrPem } });
      expect(cert.status).toBe(201);
      const root = tmp.file('moved-root.pem', (await http(served.url, 'GET', '/ca/root.pem')).raw);
      const chain = tmp.file('moved-chain.pem', cert.body.chain.slice(0, -1).join(''));
      const leaf = tmp.file('moved.pem', cert.body.pem);
      expect((await openssl(['verify', '-CAfile', root, '-untrusted', chain, leaf])).stdout.trim()).toBe(`${leaf}: OK`);
    } finally {
      await served?.kill();
      await lite.cleanup();
      await pg.cleanup();
    }
  });
});
