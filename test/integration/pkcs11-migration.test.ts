// Moving a software installation into an HSM by CA rollover (SoftHSM2, a fresh token): `addToken`
// records the token, serve then needs both the passphrase and the PIN, a tier CA's rollover makes its
// next generation's key inside the token while the old generation's software key still signs its
// CRL, and a leaf of the new generation verifies with openssl. A hierarchy whose root stays in
// software (`keystore.inSoftware: [root]`) and whose other CAs are in the token is checked too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addToken, startService, type RunningService } from '../../server/bootstrap.ts';
import { ceremony } from '../../server/init-ceremony.ts';
import { buildConfig } from '../../server/config/load-config.ts';
import { FixedClock } from '../../server/clock.ts';
import { TiercaError } from '../../server/errors.ts';
import { knexOf } from '../../server/storage/knex-store.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { TEST_KDF, TEST_PASSPHRASE, call, freePort, type RoleName, type TestTierca } from '../helpers/tierca.ts';
import { freshDatabase, type ProcessDatabase } from '../helpers/processes.ts';
import { caPem, issueLeaf, smallConfig } from '../helpers/rotation.ts';
import { freshSoftHsm, type SoftHsm } from '../helpers/softhsm.ts';
import { pino } from 'pino';

const clock = new FixedClock(new Date('2027-04-01T09:00:00Z'));
const tmp = new TempDir();
const log = pino({ level: 'silent' });
let hsm: SoftHsm;
const opened: { db: ProcessDatabase; service?: RunningService }[] = [];

/** A fresh database with the small topology's ceremony done by `custody`, and the tokens of its principals. */
async function installation(configExtra: Record<string, unknown>, secrets: { passphrase?: string; pin?: string }) {
  const db = await freshDatabase();
  const port = await freePort();
  const config = buildConfig({ ...smallConfig(), publicUrl: `http://127.0.0.1:${port}`, ...configExtra });
  const store = await db.openStore();
  let tokens: Record<string, string>;
  try {
    ({ tokens } = await ceremony(store, { ...db.options, config, ...secrets, kdf: TEST_KDF, clock },
      'sysadmin:admin', 'sysadmin:admin2', 'officer:officer', 'officer:officer2', 'auditor:auditor'));
  } finally {
    await store.close();
  }
  const entry: { db: ProcessDatabase; service?: RunningService } = { db };
  opened.push(entry);
  return { db, port, tokens: tokens as Record<RoleName, string>, entry };
}

async function serve(inst: Awaited<ReturnType<typeof installation>>, secrets: { passphrase?: string; pin?: string }): Promise<TestTierca> {
  const service = await startService({ ...inst.db.options, port: inst.port, clock, log, ...secrets, pollMs: 200 });
  inst.entry.service = service;
  return { url: service.url, port: inst.port, tokens: inst.tokens, service, store: service.services.store, dataDir: inst.db.dataDir } as unknown as TestTierca;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return err instanceof TiercaError ? err.code : String(err);
  }
  return 'no error';
}

beforeAll(async () => {
  hsm = await freshSoftHsm({ tokenLabel: 'tierca-move' });
});
afterAll(async () => {
  for (const { db, service } of opened) {
    await service?.close();
    await db.cleanup();
  }
  hsm?.cleanup();
  tmp.cleanup();
});

describe('a software installation moves into the token by rollover', () => {
  let t: TestTierca;
  let inst: Awaited<ReturnType<typeof installation>>;

  beforeAll(async () => {
    inst = await installation({}, { passphrase: TEST_PASSPHRASE });
  });

  it('adds the token only with the right passphrase and PIN, and only once', async () => {
    const target = { ...inst.db.options, module: hsm.modulePath, tokenLabel: hsm.tokenLabel, clock };
    expect(await codeOf(addToken({ ...target, passphrase: 'not the passphrase', pin: hsm.pin }))).toBe('wrong-passphrase');
    expect(await codeOf(addToken({ ...target, passphrase: TEST_PASSPHRASE, pin: 'wrong-pin' }))).toBe('keystore-fault');
    const store = await inst.db.openStore();
    expect(await store.meta.get('keystore.token')).toBeUndefined();
    await store.close();
    await addToken({ ...target, passphrase: TEST_PASSPHRASE, pin: hsm.pin });
    expect(await codeOf(addToken({ ...target, passphrase: TEST_PASSPHRASE, pin: hsm.pin }))).toBe('conflict');
    // serve now needs the PIN as well as the passphrase.
    expect(await codeOf(startService({ ...inst.db.options, port: await freePort(), clock, log, passphrase: TEST_PASSPHRASE }))).toBe('bad-request');
  });

  it('rolls yuhu-t2 over into the token; the old generation still signs its CRL; the new one issues', async () => {
    t = await serve(inst, { passphrase: TEST_PASSPHRASE, pin: hsm.pin });
    const asked = await call(t, 'admin', 'POST', '/api/v1/cas/yuhu-t2/rollover', {});
    expect(asked.status, JSON.stringify(asked.body)).toBe(202);
    const done = await call(t, 'admin2', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
    expect(done.status, JSON.stringify(done.body)).toBe(200);

    const status = await call(t, 'admin', 'GET', '/api/v1/keystore');
    expect(status.status).toBe(200);
    const byCa = (id: string) => status.body.keys.find((k: any) => k.cas.some((c: any) => c.id === id));
    expect(byCa('yuhu-t2')).toMatchObject({ canSign: true, location: { custody: 'software' } });
    expect(byCa('yuhu-t2-g2')).toMatchObject({ canSign: true, location: { custody: 'pkcs11', tokenLabel: 'tierca-move' } });
    expect(byCa('root')).toMatchObject({ location: { custody: 'software' } });
    const rows = await knexOf(t.store)('keys').select('id', 'custody', 'sealed', 'pkcs11_label');
    const g2 = rows.find((r: any) => r.id === byCa('yuhu-t2-g2').keyId);
    expect(g2).toMatchObject({ custody: 'pkcs11', sealed: null, pkcs11_label: `tierca:${g2.id}` });

    // A leaf of the new generation, verified by openssl up to the (software) root.
    const leaf = await issueLeaf(t, tmp, { kind: 'device', tier: 't2' });
    expect(leaf.issuerId).toBe('yuhu-t2-g2');
    const [root, yuhu, g2Pem] = [await caPem(t, 'root'), await caPem(t, 'yuhu'), await caPem(t, 'yuhu-t2-g2')];
    const verified = await openssl(['verify', '-attime', String(Math.floor(clock.now().getTime() / 1000) + 60), '-CAfile', tmp.file('root.pem', root),
      '-untrusted', tmp.file('chain.pem', yuhu + g2Pem), tmp.file('leaf.pem', leaf.pem)]);
    expect(verified.stdout).toMatch(/: OK/);

    // The old generation's CRL, signed by its software key, verifies against its certificate.
    expect((await call(t, 'admin', 'POST', '/api/v1/crls', {})).status).toBe(201);
    const crl = await call(t, null, 'GET', '/crl/yuhu-t2.crl');
    expect(crl.status).toBe(200);
    const checked = await openssl(['crl', '-inform', 'DER', '-in', tmp.file('old.crl', crl.raw), '-noout', '-CAfile', tmp.file('old.pem', await caPem(t, 'yuhu-t2'))]);
    expect(checked.stderr + checked.stdout).toMatch(/verify OK/);
  });
});

describe('a hierarchy whose root stays in software', () => {
  it('makes the root key sealed in the database and every other CA key in the token', async () => {
    const keystore = { custody: 'pkcs11', module: hsm.modulePath, tokenLabel: hsm.tokenLabel, inSoftware: ['root'] };
    // Without the passphrase the root key could not be sealed: refused before anything is made.
    const bare = await freshDatabase();
    opened.push({ db: bare });
    const store = await bare.openStore();
    const config = buildConfig({ ...smallConfig(), publicUrl: 'http://127.0.0.1:9', keystore });
    expect(await codeOf(ceremony(store, { ...bare.options, config, pin: hsm.pin, clock }, 'sysadmin:admin'))).toBe('bad-request');
    expect(await store.meta.get('keystore')).toBeUndefined();
    await store.close();

    const inst = await installation({ keystore }, { passphrase: TEST_PASSPHRASE, pin: hsm.pin });
    const t = await serve(inst, { passphrase: TEST_PASSPHRASE, pin: hsm.pin });
    const status = await call(t, 'admin', 'GET', '/api/v1/keystore');
    const where = Object.fromEntries(status.body.keys.filter((k: any) => k.purpose === 'ca').map((k: any) => [k.cas[0].id, k.location.custody]));
    expect(where).toEqual({ root: 'software', yuhu: 'pkcs11', 'yuhu-t1': 'pkcs11', 'yuhu-t2': 'pkcs11', 'yuhu-t3': 'pkcs11' });
    expect(status.body.keys.every((k: any) => k.canSign)).toBe(true);
    const leaf = await issueLeaf(t, tmp, { kind: 'device', tier: 't1' });
    const verified = await openssl(['verify', '-attime', String(Math.floor(clock.now().getTime() / 1000) + 60), '-CAfile', tmp.file('r2.pem', await caPem(t, 'root')),
      '-untrusted', tmp.file('c2.pem', (await caPem(t, 'yuhu')) + (await caPem(t, 'yuhu-t1'))), tmp.file('l2.pem', leaf.pem)]);
    expect(verified.stdout).toMatch(/: OK/);
  });
});
