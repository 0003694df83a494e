// PKCS#11 custody as an operator uses it, through the real `tierca` binary and `npm start` on a
// fresh SoftHSM2 token: `tierca init --keystore pkcs11 --module … --token-label …` with the PIN from
// the environment, `pkcs11-tool` showing the CA keys private, sensitive and never extractable, serve
// with the PIN from a file, `tierca keystore status`, and the faults that make init and serve refuse
// (no PIN, wrong PIN, module missing, token absent) with their exit codes and nothing written.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../server/storage/knex-store.ts';
import { storeOptions } from '../../server/open-database.ts';
import { TempDir } from '../helpers/openssl.ts';
import { freePort } from '../helpers/tierca.ts';
import { freshDatabase, runTierca, startServe, type ProcessDatabase, type ServeProcess } from '../helpers/processes.ts';
import { smallConfig } from '../helpers/rotation.ts';
import { freshSoftHsm, parseListedObjects, type SoftHsm } from '../helpers/softhsm.ts';

const tmp = new TempDir();
let hsm: SoftHsm;
let db: ProcessDatabase;
let port: number;
let configFile: string;
let adminToken = '';
let serve: ServeProcess | undefined;
/** Every server started, so that a failing test leaves none running. */
const started: ServeProcess[] = [];

const dbArgs = () => ['--data', db.dataDir, ...(db.databaseUrl ? ['--database-url', db.databaseUrl] : [])];
const initArgs = (extra: string[] = []) => ['init', '--config', configFile, ...dbArgs(), ...extra];
const tokenArgs = () => ['--keystore', 'pkcs11', '--module', hsm.modulePath, '--token-label', hsm.tokenLabel];

/** What the database holds of an installation: the custody record (none before a ceremony). */
async function storedCustody(): Promise<string | undefined> {
  const store = await openStore(storeOptions(db.options));
  try {
    return await store.meta.get('keystore');
  } finally {
    await store.close();
  }
}

beforeAll(async () => {
  hsm = await freshSoftHsm({ tokenLabel: 'tierca-cli' });
  db = await freshDatabase();
  port = await freePort();
  configFile = join(tmp.path, 'config.json');
  writeFileSync(configFile, JSON.stringify({ ...smallConfig(), publicUrl: `http://127.0.0.1:${port}` }));
});
afterAll(async () => {
  for (const s of started) await s.stop();
  await db?.cleanup();
  hsm?.cleanup();
  tmp.cleanup();
});

describe('tierca init --keystore pkcs11', () => {
  it('refuses without a PIN, with a wrong PIN, with a missing module, and without --module — writing nothing', async () => {
    const noPin = await runTierca(initArgs(tokenArgs()), { env: { TIERCA_PKCS11_PIN: '' } });
    expect(noPin.code, noPin.stderr).toBe(2);
    expect(noPin.stderr).toContain('the token PIN is needed: set TIERCA_PKCS11_PIN or use --pin-file');

    const wrongPin = await runTierca(initArgs(tokenArgs()), { env: { TIERCA_PKCS11_PIN: 'not-the-pin' } });
    expect(wrongPin.code, wrongPin.stderr).toBe(7);
    expect(wrongPin.stderr).toMatch(/PIN is wrong.*tierca does not retry/);
    expect(wrongPin.stderr).not.toContain('not-the-pin');

    const noModule = await runTierca(initArgs(['--keystore', 'pkcs11', '--module', join(tmp.path, 'no-such-module.so'), '--token-label', hsm.tokenLabel]), {
      env: { TIERCA_PKCS11_PIN: hsm.pin },
    });
    expect(noModule.code, noModule.stderr).toBe(7);
    expect(noModule.stderr).toContain('no-such-module.so');

    const usage = await runTierca(initArgs(['--keystore', 'pkcs11', '--token-label', hsm.tokenLabel]), { env: { TIERCA_PKCS11_PIN: hsm.pin } });
    expect(usage.code, usage.stderr).toBe(2);
    expect(usage.stderr).toContain('--keystore pkcs11 needs --module and --token-label');

    expect(await storedCustody()).toBeUndefined();
    // The token is as fresh as before: no key object was made by a refused ceremony.
    const objects = await hsm.pkcs11Tool(['--token-label', hsm.tokenLabel, '--login', '--pin', hsm.pin, '--list-objects']);
    expect(parseListedObjects(objects.stdout)).toEqual([]);
  });

  it('makes every CA key inside the token and records only the module and the token label', async () => {
    const init = await runTierca(initArgs([...tokenArgs(), '--sysadmins', '1']), { env: { TIERCA_PKCS11_PIN: hsm.pin } });
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout.toString()).toMatch(/yuhu-t3/);
    adminToken = /^tca_[A-Za-z0-9_-]{43}$/m.exec(init.stdout.toString())?.[0] ?? '';
    expect(adminToken).not.toBe('');
    const custody = await storedCustody();
    expect(custody).toBe(`pkcs11:${JSON.stringify({ module: hsm.modulePath, tokenLabel: hsm.tokenLabel })}`);
    expect(custody).not.toContain(hsm.pin);

    const listed = await hsm.pkcs11Tool(['--token-label', hsm.tokenLabel, '--login', '--pin', hsm.pin, '--list-objects', '--type', 'privkey']);
    const keys = parseListedObjects(listed.stdout);
    // One key per CA (labelled tierca:<key id>, the key id naming the CA) and the audit key.
    const caOf = (label: string) => /^tierca:ca-(.+)-[0-9a-f]{8}$/.exec(label)?.[1];
    expect(keys.map((k) => caOf(k.label)).filter(Boolean).sort()).toEqual(['root', 'yuhu', 'yuhu-t1', 'yuhu-t2', 'yuhu-t3']);
    expect(keys.filter((k) => /^tierca:audit-[0-9a-f]+$/.test(k.label))).toHaveLength(1);
    for (const key of keys) {
      expect(key.access, key.label).toMatch(/sensitive/);
      expect(key.access, key.label).toMatch(/never extractable/);
      expect(key.access, key.label).not.toMatch(/(^|, )extractable/);
    }
  });
});

describe('tierca serve on the token', () => {
  it('refuses to start without the PIN, with a wrong one, or when the token is absent, naming the fault', async () => {
    const common = { env: { TIERCA_PKCS11_PIN: '', TIERCA_PASSPHRASE: '' }, timeoutMs: 30_000 };
    const noPin = await runTierca(['serve', '--port', String(await freePort()), ...dbArgs()], common);
    expect(noPin.code, noPin.stderr).toBe(2);
    expect(noPin.stderr).toContain(`the CA keys are in the PKCS#11 token "${hsm.tokenLabel}": its PIN is needed`);

    const wrongPinFile = join(tmp.path, 'wrong.pin');
    writeFileSync(wrongPinFile, 'wrong-pin\n', { mode: 0o600 });
    const wrongPin = await runTierca(['serve', '--port', String(await freePort()), ...dbArgs(), '--pin-file', wrongPinFile], common);
    expect(wrongPin.code, wrongPin.stderr).toBe(7);
    expect(wrongPin.stderr).toMatch(/PIN is wrong/);

    // Another SoftHSM configuration, whose token directory is empty: the recorded token is not there.
    const elsewhere = join(tmp.path, 'empty-softhsm.conf');
    writeFileSync(elsewhere, `directories.tokendir = ${tmp.path}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    const absent = await runTierca(['serve', '--port', String(await freePort()), ...dbArgs()], {
      ...common, env: { ...common.env, TIERCA_PKCS11_PIN: hsm.pin, SOFTHSM2_CONF: elsewhere },
    });
    expect(absent.code, absent.stderr).toBe(7);
    expect(absent.stderr).toMatch(/tierca-cli.*softhsm2-util --show-slots/s);
  });

  it('serves with the PIN from a file, and keystore status shows every key in the token, able to sign', async () => {
    const pinFile = join(tmp.path, 'token.pin');
    writeFileSync(pinFile, `${hsm.pin}\n`, { mode: 0o600 });
    serve = await startServe({ env: { ...db.env, TIERCA_PASSPHRASE: '', TIERCA_PKCS11_PIN: '' }, port, args: ['--pin-file', pinFile] });
    started.push(serve);
    const env = { TIERCA_URL: serve.url, TIERCA_TOKEN: adminToken };
    const status = await runTierca(['keystore', 'status', '--json'], { env });
    expect(status.code, status.stderr).toBe(0);
    const body = JSON.parse(status.stdout.toString()) as { custody: string; keys: any[] };
    expect(body.custody).toBe('pkcs11');
    const ca = body.keys.filter((k) => k.purpose === 'ca');
    expect(ca.flatMap((k) => k.cas.map((c: { id: string }) => c.id)).sort()).toEqual(['root', 'yuhu', 'yuhu-t1', 'yuhu-t2', 'yuhu-t3']);
    expect(body.keys.filter((k) => k.purpose === 'audit')).toHaveLength(1);
    for (const key of body.keys) {
      expect(key, key.keyId).toMatchObject({ canSign: true, location: { custody: 'pkcs11', tokenLabel: hsm.tokenLabel, objectLabel: `tierca:${key.keyId}` } });
      expect(key.location.objectId).toMatch(/^[0-9a-f]+$/);
    }
    expect(ca.find((k) => k.keyId.startsWith('ca-yuhu-t2-')).cas).toEqual([{ id: 'yuhu-t2', status: 'active' }]);

    const table = await runTierca(['keystore', 'status'], { env });
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout.toString()).toMatch(/ca-yuhu-t2-[0-9a-f]{8}\s+ca\s+\S+\s+yuhu-t2\s+token tierca-cli .*yes/);
    await serve.stop();
    serve = undefined;
  });

  it('npm start opens the token with TIERCA_PKCS11_PIN', async () => {
    serve = await startServe({ entry: 'npm', env: { ...db.env, TIERCA_PASSPHRASE: '', TIERCA_PKCS11_PIN: hsm.pin }, port });
    started.push(serve);
    const res = await fetch(`${serve.url}/api/v1/keystore`, { headers: { authorization: `Bearer ${adminToken}` } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { keys: { canSign: boolean }[] }).keys.every((k) => k.canSign)).toBe(true);
  });

  it('refuses to start, naming the key, when a CA key object is gone from the token — and changes nothing', async () => {
    await serve?.stop();
    serve = undefined;
    const listed = parseListedObjects((await hsm.pkcs11Tool(['--token-label', hsm.tokenLabel, '--login', '--pin', hsm.pin, '--list-objects', '--type', 'privkey'])).stdout);
    const victim = listed.find((k) => /^tierca:ca-yuhu-t3-/.test(k.label))!;
    const deleted = await hsm.pkcs11Tool(['--token-label', hsm.tokenLabel, '--login', '--pin', hsm.pin, '--delete-object', '--type', 'privkey', '--id', victim.id]);
    expect(deleted.code, deleted.stderr).toBe(0);
    const store = await openStore(storeOptions(db.options));
    const auditBefore = (await store.audit.last())?.seq;
    await store.close();
    const refused = await runTierca(['serve', '--port', String(await freePort()), ...dbArgs()], { env: { TIERCA_PKCS11_PIN: hsm.pin, TIERCA_PASSPHRASE: '' }, timeoutMs: 30_000 });
    expect(refused.code, refused.stderr).toBe(7);
    expect(refused.stderr).toContain(victim.label);
    expect(refused.stderr).toContain('is it the token the ceremony used?');
    const after = await openStore(storeOptions(db.options));
    expect((await after.audit.last())?.seq).toBe(auditBefore);
    await after.close();
  });
});
