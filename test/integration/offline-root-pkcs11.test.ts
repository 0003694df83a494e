// The offline root with its key in a PKCS#11 token (SoftHSM2): `tierca root init --keystore pkcs11`
// makes the root key inside the token (private, sensitive, never extractable; the root's data folder
// keeps no sealed key), `root sign` signs the online request with it and the online side imports the
// response; the domain CA certificate verifies against the root with openssl; a wrong PIN signs nothing.
// Then `root rollover` makes the new root key in the same token and the online side takes it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TempDir, openssl } from '../helpers/openssl.ts';
import { freePort } from '../helpers/tierca.ts';
import { TEST_PASSPHRASE } from '../helpers/tierca.ts';
import { freshDatabase, runTierca, type ProcessDatabase } from '../helpers/processes.ts';
import { smallConfig } from '../helpers/rotation.ts';
import { freshSoftHsm, parseListedObjects, type SoftHsm } from '../helpers/softhsm.ts';
import { openStore } from '../../server/storage/knex-store.ts';
import { ROOT_DB_FILE } from '../../server/offline-root/machine.ts';
import { certificateToPem } from '../../pki/pem.ts';

const tmp = new TempDir();
const rootDir = join(tmp.path, 'root');
let hsm: SoftHsm;
let db: ProcessDatabase;
let config = '';

const run = (args: string[], env: Record<string, string> = {}) => runTierca(args, { env: { ...db.env, ...env } });

beforeAll(async () => {
  hsm = await freshSoftHsm({ tokenLabel: 'tierca-root' });
  db = await freshDatabase();
  config = tmp.file('config.json', JSON.stringify({ ...smallConfig(), publicUrl: `http://127.0.0.1:${await freePort()}` }));
});
afterAll(async () => {
  await db?.cleanup();
  hsm?.cleanup();
  tmp.cleanup();
});

describe('an offline root in a PKCS#11 token', { timeout: 180_000 }, () => {
  it('root init makes the key in the token; the ceremony signs with it; the online side imports', async () => {
    const tokenArgs = ['--keystore', 'pkcs11', '--module', hsm.modulePath, '--token-label', hsm.tokenLabel];
    const init = await run(['root', 'init', '--config', config, '--data', rootDir, ...tokenArgs], { TIERCA_PKCS11_PIN: hsm.pin });
    expect(init.code, init.stderr).toBe(0);
    const listed = parseListedObjects((await hsm.pkcs11Tool(['--token-label', hsm.tokenLabel, '--login', '--pin', hsm.pin, '--list-objects', '--type', 'privkey'])).stdout);
    expect(listed).toHaveLength(1);
    expect(listed[0]!.label).toMatch(/^tierca:ca-root-[0-9a-f]{8}$/);
    expect(listed[0]!.access).toMatch(/sensitive/);
    expect(listed[0]!.access).toMatch(/never extractable/);
    // The root's own folder records the token, never a sealed key or the PIN.
    const rootStore = await openStore({ sqliteFile: join(rootDir, ROOT_DB_FILE) });
    try {
      const [key] = await rootStore.keys.list('ca');
      expect(key).toMatchObject({ custody: 'pkcs11', sealed: null, pkcs11Label: listed[0]!.label });
      expect(await rootStore.meta.get('keystore')).toBe(`pkcs11:${JSON.stringify({ module: hsm.modulePath, tokenLabel: hsm.tokenLabel })}`);
    } finally {
      await rootStore.close();
    }
    expect(readFileSync(join(rootDir, ROOT_DB_FILE)).includes(Buffer.from(hsm.pin))).toBe(false);

    const passFile = tmp.file('online.pass', `${TEST_PASSPHRASE}\n`);
    const online = await run(['init', '--config', config, '--passphrase-file', passFile, '--offline-root', join(rootDir, 'root.pem'), '--bundle-out', join(tmp.path, 'req.bundle')]);
    expect(online.code, online.stderr).toBe(0);

    const wrongPin = tmp.file('wrong.pin', '999999\n');
    const refused = await run(['root', 'sign', join(tmp.path, 'req.bundle'), '--data', rootDir, '--out', join(tmp.path, 'x.bundle'), '--yes', '--pin-file', wrongPin]);
    expect(refused.code).toBe(7);
    expect(refused.stderr).not.toContain('999999');

    const pinFile = tmp.file('root.pin', `${hsm.pin}\n`);
    const signed = await run(['root', 'sign', join(tmp.path, 'req.bundle'), '--data', rootDir, '--out', join(tmp.path, 'resp.bundle'), '--yes', '--pin-file', pinFile]);
    expect(signed.code, signed.stderr).toBe(0);
    const imported = await run(['root', 'import', join(tmp.path, 'resp.bundle')]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout.toString()).toMatch(/certified:\s+yuhu/);

    const certificate = JSON.parse(readFileSync(join(tmp.path, 'resp.bundle'), 'utf8')).payload.certificates[0].certificate as string;
    const yuhu = join(tmp.path, 'yuhu.pem');
    writeFileSync(yuhu, certificateToPem(Buffer.from(certificate, 'base64')));
    const ok = await openssl(['verify', '-CAfile', join(rootDir, 'root.pem'), yuhu]);
    expect(ok.stdout.trim(), ok.stderr).toBe(`${yuhu}: OK`);
  });

  it('root rollover makes the new root key in the same token; the links and the re-certified domain CA verify; the online side imports', async () => {
    const pinFile = tmp.file('root.pin', `${hsm.pin}\n`);
    const rolled = await run(['root', 'rollover', '--config', config, '--data', rootDir, '--out', join(tmp.path, 'roll.bundle'), '--yes', '--pin-file', pinFile]);
    expect(rolled.code, rolled.stderr).toBe(0);
    const listed = parseListedObjects((await hsm.pkcs11Tool(['--token-label', hsm.tokenLabel, '--login', '--pin', hsm.pin, '--list-objects', '--type', 'privkey'])).stdout);
    expect(listed.map((o) => o.label)).toHaveLength(2);
    for (const o of listed) {
      expect(o.access).toMatch(/sensitive/);
      expect(o.access).toMatch(/never extractable/);
    }
    const rootStore = await openStore({ sqliteFile: join(rootDir, ROOT_DB_FILE) });
    try {
      const keys = await rootStore.keys.list('ca');
      expect(keys.map((k) => [k.custody, k.sealed]).sort()).toEqual([['pkcs11', null], ['pkcs11', null]]);
    } finally {
      await rootStore.close();
    }
    const rollover = JSON.parse(readFileSync(join(tmp.path, 'roll.bundle'), 'utf8')).payload.rollover as { ca: string; certificate: string; links: { newWithOld: string }; certificates: { ca: string; certificate: string }[] };
    expect(rollover.ca).toBe('root-g2');
    const pemOf = (name: string, b64: string) => tmp.file(name, certificateToPem(Buffer.from(b64, 'base64')));
    const newRoot = pemOf('root-g2.pem', rollover.certificate);
    // The new root's key, certified by the old one (the token's first key): what a relying party holding the old root follows.
    const link = pemOf('new-with-old.pem', rollover.links.newWithOld);
    const linked = await openssl(['verify', '-CAfile', join(rootDir, 'root.pem'), link]);
    expect(linked.stdout.trim(), linked.stderr).toBe(`${link}: OK`);
    expect(rollover.certificates.map((c) => c.ca)).toEqual(['yuhu']);
    const yuhu = pemOf('yuhu-g2-cert.pem', rollover.certificates[0]!.certificate);
    const ok = await openssl(['verify', '-CAfile', newRoot, yuhu]);
    expect(ok.stdout.trim(), ok.stderr).toBe(`${yuhu}: OK`);
    const imported = await run(['root', 'import', join(tmp.path, 'roll.bundle')]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout.toString()).toMatch(/rolled over to:\s+root-g2/);
  });
});
