// The key-management centre's module on a real store (SQLite or PostgreSQL): escrowed keys are only
// ever wrapped (not in the table, not in a backup), come back intact for a recovery — proven by
// `openssl cms -decrypt` of a message `openssl cms -encrypt` sent to the encryption certificate — a
// tampered or swapped row gives nothing back, and a master-key rotation cut short halfway is finished
// by the next run with every key still recoverable.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyObject } from 'node:crypto';
import { buildCertificate, randomSerial } from '../../pki/certificate.ts';
import { toPem } from '../../pki/der.ts';
import { generateKeyPair, keyIdentifier, publicKeyInfoOf } from '../../pki/key-pair.ts';
import { SoftwareKeyStore } from '../../pki/keystore/software-keystore.ts';
import { encodeName } from '../../pki/name.ts';
import { endEntityExtensions } from '../../pki/profiles.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import { FixedClock } from '../../server/clock.ts';
import { TiercaError } from '../../server/errors.ts';
import { KeyManagementCentre } from '../../server/kmc/key-management-centre.ts';
import { KmcStore } from '../../server/kmc/kmc-store.ts';
import { exportBackup, restoreBackup } from '../../server/storage/backup.ts';
import { createKnex, knexOf, openStore } from '../../server/storage/knex-store.ts';
import type { Store } from '../../server/storage/storage.ts';
import { testStoreOptions } from '../helpers/database.ts';
import smCrypto from 'sm-crypto';
import { independentKwpUnwrap } from '../helpers/kwp-independent.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { TEST_KDF } from '../helpers/tierca.ts';

const clock = new FixedClock(new Date('2027-02-01T08:00:00Z'));
const tmp = new TempDir();
let db: Awaited<ReturnType<typeof testStoreOptions>>;
let store: Store;
let kmcStore: KmcStore;
let keystore: SoftwareKeyStore;
let failAfter: number | null = null;
let rewraps = 0;
let kmc: KeyManagementCentre;
const made: Record<string, { keyId: string; privateKey: KeyObject; certPem: string }> = {};

const pkcs8 = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'der' });
const codeOf = async (p: Promise<unknown>) => p.then(() => 'no error', (e: unknown) => (e instanceof TiercaError ? e.code : String(e)));

/** An encryption certificate for `publicKeyInfo`, issued by a throwaway P-256 CA (the CA's part is not under test here). */
async function encryptionCertificate(publicKeyInfo: Buffer, name: string): Promise<string> {
  const { privateKey: caKey } = await generateKeyPair('P-256');
  const caSpki = publicKeyInfoOf(caKey);
  const der = await buildCertificate({
    serial: randomSerial(), issuer: encodeName([{ type: 'CN', value: 'test CA' }]), subject: encodeName([{ type: 'CN', value: name }]),
    notBefore: new Date(Date.now() - 3_600_000), notAfter: new Date(Date.now() + 86_400_000), publicKeyInfo,
    extensions: endEntityExtensions({ profile: 'user-enc', publicKeyInfo, issuerKeyId: keyIdentifier(caSpki), policyOid: '1.3.6.1.4.1.32473.1.2',
      links: { caIssuersUrl: 'http://x/ca.crt', ocspUrl: 'http://x/ocsp', crlUrl: 'http://x/ca.crl' }, email: [`${name}@yuhu.xiangtan.intranet`] }),
    signer: softwareSigner({ privateKey: caKey, algorithm: 'P-256' }),
  });
  return toPem(der, 'CERTIFICATE');
}

/** `openssl cms -encrypt` to `certPem`, then `-decrypt` with `key`: the message comes back only with the right key. */
async function cmsRoundTrip(name: string, certPem: string, key: KeyObject): Promise<string> {
  const message = tmp.file(`${name}.txt`, `an official document for ${name}\n`);
  const enc = await openssl(['cms', '-encrypt', '-binary', '-aes256', '-recip', tmp.file(`${name}.pem`, certPem), '-in', message, '-outform', 'DER', '-out', tmp.file(`${name}.cms`)]);
  expect(enc.code, enc.stderr).toBe(0);
  const keyFile = tmp.file(`${name}-${Math.random().toString(36).slice(2)}.key`, key.export({ type: 'pkcs8', format: 'pem' }) as string);
  const dec = await openssl(['cms', '-decrypt', '-inform', 'DER', '-in', tmp.file(`${name}.cms`), '-recip', tmp.file(`${name}.pem`), '-inkey', keyFile]);
  return dec.code === 0 ? dec.stdout : `failed: ${dec.stderr.split('\n')[0]}`;
}

beforeAll(async () => {
  db = await testStoreOptions();
  store = await openStore(db);
  kmcStore = new KmcStore(knexOf(store));
  ({ keystore } = await SoftwareKeyStore.initialise({ passphrase: 'kmc-test-passphrase', kdf: TEST_KDF }));
  kmc = new KeyManagementCentre({
    store: kmcStore, keystore, clock,
    afterRewrap: () => {
      rewraps++;
      if (failAfter !== null && rewraps >= failAfter) throw new Error('the rotation was cut short here');
    },
  });
  for (const [name, algorithm] of [['rsa', 'RSA-2048'], ['ec', 'P-256'], ['sm2', 'SM2'], ['ec2', 'P-256']] as const) {
    clock.advance(1000);
    const key = await kmc.generate({ subjectId: name === 'ec2' ? 'sub-ec' : `sub-${name}`, algorithm });
    made[name] = { keyId: key.keyId, privateKey: key.privateKey, certPem: await encryptionCertificate(key.publicKeyInfo, name) };
    await kmc.bind(key.keyId, 'yuhu-t2', `0${name.length}${Object.keys(made).length}`);
  }
});
afterAll(async () => {
  await store?.close();
  await db?.cleanup();
  tmp.cleanup();
});

describe('key-management centre', () => {
  it('escrows keys wrapped only: neither the table nor a backup holds the private key', async () => {
    const rows = await knexOf(store)('kmc_keys').select('*');
    const masters = await knexOf(store)('kmc_master_keys').select('*');
    expect(rows).toHaveLength(4);
    expect(masters).toHaveLength(1);
    const chunks: string[] = [];
    await exportBackup({ knex: knexOf(store), write: (c) => void chunks.push(c), now: clock.now() });
    const everything = Buffer.concat([...rows.flatMap((r) => [r.wrapped as Buffer]), Buffer.from(chunks.join(''))]);
    for (const { privateKey } of Object.values(made)) {
      const secret = pkcs8(privateKey);
      expect(everything.includes(secret)).toBe(false);
      expect(Buffer.from(chunks.join('')).includes(secret.toString('base64'))).toBe(false);
    }
    expect(chunks.join('')).toContain('"kmc_keys"');
  });

  it('lists a subject\'s key history without secrets, oldest first, and finds a key by its certificate', async () => {
    const history = await kmc.history('sub-ec');
    expect(history.map((h) => h.id)).toEqual([made.ec.keyId, made.ec2.keyId]);
    expect(history[0]).not.toHaveProperty('wrapped');
    expect(history[0]).toMatchObject({ algorithm: 'P-256', issuerId: 'yuhu-t2' });
    const first = history[0];
    expect((await kmc.keyOfCertificate('yuhu-t2', first.serial!))?.id).toBe(made.ec.keyId);
    expect(await codeOf(kmc.bind(made.ec.keyId, 'yuhu-t2', 'ff'))).toBe('conflict');
  });

  it('recovers each key intact: openssl cms decrypts with it what was sent to the certificate (RSA and EC)', async () => {
    for (const name of ['rsa', 'ec']) {
      const recovered = await kmc.recover(made[name].keyId);
      expect(pkcs8(recovered).equals(pkcs8(made[name].privateKey))).toBe(true);
      expect(await cmsRoundTrip(name, made[name].certPem, recovered)).toBe(`an official document for ${name}\n`);
    }
    const sm2 = await kmc.recover(made.sm2.keyId);
    expect(publicKeyInfoOf(sm2).equals(publicKeyInfoOf(made.sm2.privateKey))).toBe(true);
    // The wrong key does not open it.
    expect(await cmsRoundTrip('ec', made.ec.certPem, made.ec2.privateKey)).toMatch(/^failed/);
  });

  it('gives nothing back for a tampered wrapped key or two swapped rows', async () => {
    const knex = knexOf(store);
    const original = (await knex('kmc_keys').where({ id: made.ec.keyId }).first()).wrapped as Buffer;
    const altered = Buffer.from(original);
    altered[9] ^= 0x40;
    await knex('kmc_keys').where({ id: made.ec.keyId }).update({ wrapped: altered });
    expect(await codeOf(kmc.recover(made.ec.keyId))).toBe('escrow-tampered');
    const other = (await knex('kmc_keys').where({ id: made.ec2.keyId }).first()).wrapped as Buffer;
    await knex('kmc_keys').where({ id: made.ec.keyId }).update({ wrapped: other });
    expect(await codeOf(kmc.recover(made.ec.keyId))).toBe('escrow-tampered');
    await knex('kmc_keys').where({ id: made.ec.keyId }).update({ wrapped: original });
    expect(pkcs8(await kmc.recover(made.ec.keyId)).equals(pkcs8(made.ec.privateKey))).toBe(true);
    expect(await codeOf(kmc.recover('kmc-none'))).toBe('not-found');
  });

  it('re-wraps every key under a new master key, finishing a rotation cut short, with nothing lost', async () => {
    const before = (await kmcStore.masterKeys()).find((m) => m.status === 'active')!;
    rewraps = 0;
    failAfter = 2;
    await expect(kmc.rotateMaster()).rejects.toThrow(/cut short/);
    const midway = await kmcStore.masterKeys();
    expect(midway.map((m) => m.status).sort()).toEqual(['active', 'retiring']);
    const under = async (id: string) => (await knexOf(store)('kmc_keys').where({ master_key_id: id })).length;
    const next = midway.find((m) => m.status === 'active')!;
    expect([await under(before.id), await under(next.id)]).toEqual([2, 2]);
    // Halfway, every key is still recoverable (each under the master key its row names).
    for (const { keyId, privateKey } of Object.values(made)) expect(pkcs8(await kmc.recover(keyId)).equals(pkcs8(privateKey))).toBe(true);
    failAfter = null;
    // A fresh KMC (a restarted process) finishes the rotation.
    const restarted = new KeyManagementCentre({ store: kmcStore, keystore, clock });
    expect(await restarted.rotateMaster()).toEqual({ masterKeyId: next.id, rewrapped: 2 });
    const after = await kmcStore.masterKeys();
    expect(after.find((m) => m.id === before.id)!.status).toBe('retired');
    expect([await under(before.id), await under(next.id)]).toEqual([0, 4]);
    for (const name of ['rsa', 'ec']) expect(await cmsRoundTrip(name, made[name].certPem, await restarted.recover(made[name].keyId))).toBe(`an official document for ${name}\n`);
    // A second rotation starts anew from the current master.
    expect((await restarted.rotateMaster()).rewrapped).toBe(4);
  });

  it('restores from a backup into an empty database with every key still recoverable', async () => {
    const chunks: string[] = [];
    await exportBackup({ knex: knexOf(store), write: (c) => void chunks.push(c), now: clock.now() });
    const target = await testStoreOptions();
    const knex = createKnex(target);
    try {
      await restoreBackup({ knex, lines: chunks.join('').split('\n').filter(Boolean) });
      const restored = new KeyManagementCentre({ store: new KmcStore(knex), keystore, clock });
      for (const name of ['rsa', 'ec']) expect(await cmsRoundTrip(name, made[name].certPem, await restored.recover(made[name].keyId))).toBe(`an official document for ${name}\n`);
      expect((await restored.history('sub-ec')).map((h) => h.id)).toEqual([made.ec.keyId, made.ec2.keyId]);
    } finally {
      await knex.destroy();
      await target.cleanup();
    }
  });
  it('wraps under SM4 for an SM2 deployment: a rotation moves every key from AES-256 to SM4, each still recoverable and opened by sm-crypto', async () => {
    const sm4 = new KeyManagementCentre({ store: kmcStore, keystore, clock, wrap: 'sm4' });
    const { masterKeyId, rewrapped } = await sm4.rotateMaster();
    expect(masterKeyId).toMatch(/^kmc-master-sm4-/);
    expect(rewrapped).toBe(4);
    const master = (await kmcStore.masterKeys()).find((m) => m.id === masterKeyId)!;
    const kek = keystore.unseal(master.sealed, `kmc-master:${masterKeyId}`);
    expect(kek.length).toBe(16);
    for (const name of ['rsa', 'ec']) {
      const row = await knexOf(store)('kmc_keys').where({ id: made[name].keyId }).first();
      expect(row.master_key_id).toBe(masterKeyId);
      // An unwrap on sm-crypto's SM4 (not the KMC's code) opens the row to the escrowed PKCS#8.
      const opened = independentKwpUnwrap((b) => Buffer.from(smCrypto.sm4.decrypt(b, kek.toString('hex'), { padding: 'none', output: 'array' })), Buffer.from(row.wrapped));
      expect(opened.equals(pkcs8(made[name].privateKey))).toBe(true);
      expect(await cmsRoundTrip(name, made[name].certPem, await sm4.recover(made[name].keyId))).toBe(`an official document for ${name}\n`);
    }
    const fresh = await sm4.generate({ subjectId: 'sub-sm2', algorithm: 'SM2' });
    expect((await kmcStore.key(fresh.keyId))!.masterKeyId).toBe(masterKeyId);
    expect(publicKeyInfoOf(await sm4.recover(fresh.keyId)).equals(fresh.publicKeyInfo)).toBe(true);
    const row = await knexOf(store)('kmc_keys').where({ id: made.ec.keyId }).first();
    const altered = Buffer.from(row.wrapped);
    altered[3] ^= 1;
    await knexOf(store)('kmc_keys').where({ id: made.ec.keyId }).update({ wrapped: altered });
    expect(await codeOf(sm4.recover(made.ec.keyId))).toBe('escrow-tampered');
    await knexOf(store)('kmc_keys').where({ id: made.ec.keyId }).update({ wrapped: row.wrapped });
  });
});
