// `tierca init --config config/xiangtan-sm2.example.yaml`, the shipped all-SM2 profile, through the
// real binary: the ceremony makes every CA in SM2, and openssl 3.0 verifies each link of the tree
// with the standard signer identity (`verify -partial_chain -vfyopt distid:1234567812345678`).
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { openStore } from '../../server/storage/knex-store.ts';
import { storeOptions } from '../../server/open-database.ts';
import { certificateToPem } from '../../pki/pem.ts';
import { keyAlgorithmOf } from '../../pki/key-pair.ts';
import { readCertificate } from '../../pki/certificate-reader.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { freshDatabase, runTierca, type ProcessDatabase } from '../helpers/processes.ts';
import { DISTID } from '../helpers/sm2-fixtures.ts';

const tmp = new TempDir();
let db: ProcessDatabase | undefined;
afterAll(async () => {
  await db?.cleanup();
  tmp.cleanup();
});

describe('tierca init with the all-SM2 example', () => {
  it('makes every CA in SM2, and each link verifies with the standard identity', async () => {
    db = await freshDatabase();
    // The shipped file, with two of its six domains (the ceremony's time), extending the base example.
    const sm2 = parse(readFileSync('config/xiangtan-sm2.example.yaml', 'utf8'));
    const base = parse(readFileSync('config/xiangtan.example.yaml', 'utf8'));
    const config = join(tmp.path, 'sm2.yaml');
    writeFileSync(config, JSON.stringify({ ...sm2, extends: join(process.cwd(), 'config/xiangtan.example.yaml'), domains: base.domains.slice(0, 2) }));
    const init = await runTierca(['init', '--config', config, '--data', db.dataDir, ...(db.databaseUrl ? ['--database-url', db.databaseUrl] : [])], {
      env: { TIERCA_PASSPHRASE: 'sm2-ceremony-passphrase' }, timeoutMs: 120_000,
    });
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout.toString()).toMatch(/root .*SM2/);
    const store = await openStore(storeOptions(db.options));
    const cas = await store.cas.list();
    await store.close();
    expect(cas).toHaveLength(1 + 2 + 2 * 3);
    const pem = new Map(cas.map((c) => [c.id, certificateToPem(c.certificate)]));
    for (const ca of cas) {
      expect(keyAlgorithmOf(readCertificate(ca.certificate).publicKeyInfo), ca.id).toBe('SM2');
      if (!ca.parentId) continue;
      const link = await openssl(['verify', '-partial_chain', '-vfyopt', DISTID, '-CAfile', tmp.file(`${ca.id}-issuer.pem`, pem.get(ca.parentId)!), tmp.file(`${ca.id}.pem`, pem.get(ca.id)!)]);
      expect(link.stdout + link.stderr, ca.id).toMatch(/: OK/);
      const text = (await openssl(['x509', '-in', tmp.file(`${ca.id}-t.pem`, pem.get(ca.id)!), '-noout', '-text'])).stdout;
      expect(text, ca.id).toContain('Signature Algorithm: SM2-with-SM3');
    }
  });
});
