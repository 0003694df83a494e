// The policy arc at the two doors a configuration comes in by: `tierca init --config` (a bad OID is
// refused naming its field, before the passphrase is asked and before anything is written) and the
// configuration a database stores (one of an earlier tierca, with 2.25.<UUID> tier OIDs, is refused
// at start with what to do — never served on).
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { stringify } from 'yaml';
import { startService } from '../../server/bootstrap.ts';
import { openStore } from '../../server/storage/knex-store.ts';
import { TiercaError } from '../../server/errors.ts';
import { TempDir } from '../helpers/openssl.ts';
import { exampleConfigData } from '../helpers/config.ts';
import { TEST_KDF, freePort } from '../helpers/tierca.ts';

const BIN = join(process.cwd(), 'bin', 'tierca.js');
const UUID_ARC = '2.25.128645345817574449542064460584668162789';
const tmp = new TempDir();
afterAll(() => tmp.cleanup());

function tierca(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, TIERCA_PASSPHRASE: 'policy-arc-test-passphrase', DATABASE_URL: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('tierca init refuses a configuration with a bad OID and writes nothing', () => {
  it.each([
    ['a 2.25.UUID arc', (d: any) => { d.policyArc = UUID_ARC; },
      'policyArc: arc 128645345817574449542064460584668162789 exceeds 2^28-1 (RFC 5280 App. B)'],
    ['a 2.25.UUID tier policy', (d: any) => { d.tiers = { t2: { policyOid: `${UUID_ARC}.1.2` } }; },
      'tiers.t2.policyOid: arc 128645345817574449542064460584668162789 exceeds 2^28-1 (RFC 5280 App. B)'],
    ['a negative arc', (d: any) => { d.tiers = { t1: { policyOid: '1.2.156.-1' } }; }, 'tiers.t1.policyOid: arc -1 is negative'],
    ['a malformed OID', (d: any) => { d.policyArc = '1.3.6..1'; }, 'policyArc: "1.3.6..1" is not a dotted OID (decimal arcs separated by dots)'],
  ])('%s', async (name, mutate, message) => {
    const data = exampleConfigData();
    mutate(data);
    const file = join(tmp.path, `${name.replaceAll(/\W+/g, '-')}.yaml`);
    writeFileSync(file, stringify(data));
    const dataDir = join(tmp.path, `data-${name.replaceAll(/\W+/g, '-')}`);
    const run = await tierca(['init', '--config', file, '--data', dataDir]);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain(message);
    expect(run.stdout).toBe('');
    // No database file, no folder: the configuration is refused before the store is opened.
    expect(existsSync(dataDir) ? readdirSync(dataDir) : []).toEqual([]);
  });
});

describe('a database whose stored configuration has 2.25 tier OIDs', () => {
  it('is refused at start with its field named and what to do (the demo: remove its data folder)', async () => {
    const dataDir = join(tmp.path, 'old-demo');
    const log = pino({ level: 'silent' });
    // The demo, as `npm start` makes it on an empty data folder …
    const first = await startService({ dataDir, port: await freePort(), kdf: TEST_KDF, log });
    await first.close();
    // … then turned into what an earlier tierca stored: every tier under the 2.25.<UUID> arc.
    const store = await openStore({ sqliteFile: join(dataDir, 'tierca.db') });
    const stored = JSON.parse((await store.meta.get('config'))!);
    expect(Object.values(stored.tiers).map((t: any) => t.oid)).toEqual(['1.3.6.1.4.1.32473.1.1', '1.3.6.1.4.1.32473.1.2', '1.3.6.1.4.1.32473.1.3']);
    for (const [id, t] of Object.entries<any>(stored.tiers)) t.oid = `${UUID_ARC}.1.${id.slice(1)}`;
    await store.meta.set('config', JSON.stringify(stored));
    const certificates = await store.certificates.count({});
    await store.close();

    const err = await startService({ dataDir, port: await freePort(), kdf: TEST_KDF, log }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(TiercaError);
    expect((err as TiercaError).code).toBe('invalid-config');
    expect((err as TiercaError).message).toContain('tiers.t1.oid: arc 128645345817574449542064460584668162789 exceeds 2^28-1 (RFC 5280 App. B)');
    expect((err as TiercaError).message).toContain(`remove its data folder (rm -r ${dataDir}) and run \`npm start\` again to re-create the demo`);
    const after = await openStore({ sqliteFile: join(dataDir, 'tierca.db') });
    expect(await after.certificates.count({})).toBe(certificates);
    await after.close();
  });
});
