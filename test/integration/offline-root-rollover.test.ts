// A rollover of the offline root (issue 20; docs/offline-root.md "Root rollover", decision 0031), end
// to end with the real `tierca` binary: two data folders stand for the two machines and bundles go
// between them as files. The first ceremony, then `root rollover` (new root key under the same two
// officers' passphrases, links, the domain CAs re-certified) and `root import`; end-entity
// certificates issued before and after verified by openssl with the tier policy against the new root,
// the old root with the old domain CA certificate, and the old root through the link; the same
// signatures, CRLs and OCSP answers read by Python's cryptography; later responses verified against
// the new root key only; replays, forgeries by the old key and foreign bundles refused with nothing
// changed; neither root key anywhere online; the offline audit chain carried. SQLite and PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrivateKey, createSecretKey } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freshDatabase, runTierca, startServe, http, waitFor, type ProcessDatabase, type ServeProcess } from '../helpers/processes.ts';
import { exampleConfigData, EXAMPLE_TIER_OIDS } from '../helpers/config.ts';
import { TempDir, openssl } from '../helpers/openssl.ts';
import { pythonCheck } from '../helpers/relying-party.ts';
import { freePort } from '../helpers/net.ts';
import { ceremonyFiles, countsOnline as countsOfflineRoot, issueDevice, newOfficer } from '../helpers/offline-root.ts';
import { SecretScan } from '../helpers/secret-scan.ts';
import { knexOf, openStore } from '../../server/storage/knex-store.ts';
import { unlockKeystoreHeader, unsealBytes } from '../../pki/keystore/key-sealing.ts';
import { keyAad } from '../../pki/keystore/software-keystore.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import { parseBundle, signBundle } from '../../pki/offline-bundle.ts';
import { certificateToPem } from '../../pki/pem.ts';
import { keystorePassphrase, ROOT_DB_FILE } from '../../server/offline-root/machine.ts';
import { AuditCheckpoints } from '../../server/audit/audit-checkpoints.ts';
import { systemClock } from '../../server/clock.ts';
import type { KeyStore } from '../../pki/keystore/keystore.ts';

const tmp = new TempDir();
const { rootDir, officer1: OFFICER_1, officer2: OFFICER_2, p1, onlinePass, rootSecrets: ROOT_SECRETS } = ceremonyFiles(tmp);
const T2 = EXAMPLE_TIER_OIDS.t2!;

let db: ProcessDatabase;
let server: ServeProcess;
let url = '';
let config = '';
let officer = '';
let admin = '';
let admin2 = '';
const pem = {
  oldRoot: join(rootDir, 'root.pem'), newRoot: join(rootDir, 'root-g2.pem'), links: join(rootDir, 'root-g2-links.pem'),
  oldYuhu: join(tmp.path, 'yuhu-old.pem'), newYuhu: join(tmp.path, 'yuhu-new.pem'), newWithOld: join(tmp.path, 'new-with-old.pem'), oldWithNew: join(tmp.path, 'old-with-new.pem'),
};
const leaves: Record<'before' | 'after', { leaf: string; tier: string }> = { before: { leaf: '', tier: '' }, after: { leaf: '', tier: '' } };

const run = (args: string[], env: Record<string, string> = {}) => runTierca(args, { env: { ...db.env, TIERCA_ROOT_DATA: '', ...env } });
const text = (r: { stdout: Buffer }) => r.stdout.toString('utf8');
const bundle = (n: number) => join(tmp.path, `response-${n}.bundle`);

beforeAll(async () => {
  db = await freshDatabase();
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const data = exampleConfigData();
  config = tmp.file('config.json', JSON.stringify({ ...data, publicUrl: url, root: { ...data.root, dualControl: true }, domains: data.domains.slice(0, 2) }));
  // The first ceremony (offline-root.test.ts walks it step by step).
  expect((await run(['root', 'init', '--config', config, '--data', rootDir, ...ROOT_SECRETS])).code).toBe(0);
  const online = await run(['init', '--config', config, '--passphrase-file', onlinePass, '--sysadmins', '2', '--offline-root', pem.oldRoot, '--bundle-out', join(tmp.path, 'request-1.bundle')]);
  expect(online.code, online.stderr).toBe(0);
  [admin, admin2] = text(online).match(/^tca_[A-Za-z0-9_-]{43}$/gm)! as [string, string];
  const signed = await run(['root', 'sign', join(tmp.path, 'request-1.bundle'), '--data', rootDir, '--out', bundle(1), '--yes', ...ROOT_SECRETS]);
  expect(signed.code, signed.stderr).toBe(0);
  expect((await run(['root', 'import', bundle(1)])).code).toBe(0);
  server = await startServe({ env: db.env, port });
  officer = await newOfficer(url, { first: admin, second: admin2 }, 'yuhu officer', ['yuhu']);
  writeFileSync(pem.oldYuhu, (await http(url, 'GET', '/ca/yuhu.pem')).raw);
  leaves.before = await issueYuhuT2('gw-before');
}, 240_000);

afterAll(async () => {
  await server?.stop();
  await db?.cleanup();
  tmp.cleanup();
});

async function issueYuhuT2(name: string): Promise<{ leaf: string; tier: string }> {
  const res = await issueDevice(url, tmp, officer, { domain: 'yuhu', dnsSuffix: 'yuhu.xiangtan.intranet', name, ips: ['10.21.0.9'] });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { leaf: tmp.file(`${name}.pem`, res.body.pem), tier: tmp.file(`${name}-tier.pem`, res.body.chain[0]) };
}

/** The offline-root tests' counts (test/helpers/offline-root.ts), plus what a rollover changes: root keys, CA rows and links, the pinned root. */
async function countsOnline(): Promise<Record<string, number>> {
  const counts = await countsOfflineRoot(db);
  const store = await db.openStore();
  try {
    const knex = knexOf(store);
    counts.rootKeys = Number((await knex('keys').where({ purpose: 'offline-root' }).count({ n: '*' }))[0]!.n);
    const cas = await knex('cas').select('id', 'fingerprint', 'successor_id', 'parent_id').orderBy('id');
    counts[`cas:${JSON.stringify(cas)}`] = cas.length;
    counts[`meta:${(await store.meta.get('offline-root'))!}`] = 1;
    return counts;
  } finally {
    await store.close();
  }
}

/** The root keys as the offline machine holds them, unsealed with both officers' passphrases (only here, to forge and to scan). */
async function offlineRootKeys(): Promise<{ id: string; caId: string; pkcs8: Buffer; sealed: Buffer; header: Buffer }[]> {
  const store = await openStore({ sqliteFile: join(rootDir, ROOT_DB_FILE) });
  try {
    const header = (await store.meta.get('keystore'))!;
    const kek = createSecretKey(await unlockKeystoreHeader({ passphrase: keystorePassphrase([OFFICER_1, OFFICER_2], true), header }));
    const cas = await store.cas.list();
    return (await store.keys.list('ca')).map((key) => ({
      id: key.id, caId: cas.find((c) => c.keyId === key.id)!.id, pkcs8: unsealBytes({ kek, sealed: key.sealed!, aad: keyAad(key.id) }), sealed: key.sealed!, header: Buffer.from(header),
    }));
  } finally {
    await store.close();
  }
}

/** Counts after `n` refused imports: each adds its one audit record (decision 0026) and nothing else. */
const refused = (before: Record<string, number>, n: number): Record<string, number> => ({ ...before, audit_log: before.audit_log! + n });

const verify = (anchor: string, untrusted: string[], leaf: string, policy = T2) =>
  openssl(['verify', '-CAfile', anchor, '-untrusted', tmp.file(`u-${Math.random().toString(36).slice(2)}.pem`, untrusted.map((f) => readFileSync(f, 'utf8')).join('')), '-policy', policy, '-explicit_policy', '-purpose', 'any', leaf]);

describe('root rollover across the air gap', { timeout: 240_000 }, () => {
  it('refuses without confirmation, with a bad --validity or another root name: nothing changes offline', async () => {
    const before = readFileSync(join(rootDir, ROOT_DB_FILE));
    const noYes = await run(['root', 'rollover', '--config', config, '--data', rootDir, '--out', bundle(9), ...ROOT_SECRETS]);
    expect(noYes.code).toBe(2);
    expect(noYes.stderr).toContain('domain CA yuhu again under root-g2: C=CN, ST=湖南省, L=雨湖区');
    expect(noYes.stderr).toContain('nothing signed: confirm with --yes');
    const validity = await run(['root', 'rollover', '--config', config, '--data', rootDir, '--out', bundle(9), '--validity', 'ten', '--yes', ...ROOT_SECRETS]);
    expect(validity.code).toBe(2);
    expect(validity.stderr).toContain('--validity: "ten" is not a whole number of years');
    const renamed = tmp.file('renamed.json', JSON.stringify({ ...JSON.parse(readFileSync(config, 'utf8')), organisation: 'another organisation' }));
    const name = await run(['root', 'rollover', '--config', renamed, '--data', rootDir, '--out', bundle(9), '--yes', ...ROOT_SECRETS]);
    expect(name.code).toBe(2);
    expect(name.stderr).toContain('a rollover keeps the root\'s name');
    const oneOfficer = await run(['root', 'rollover', '--config', config, '--data', rootDir, '--out', bundle(9), '--yes', '--passphrase-file', p1]);
    expect(oneOfficer.code).toBe(2);
    expect(existsSync(bundle(9))).toBe(false);
    expect(readFileSync(join(rootDir, ROOT_DB_FILE)).equals(before)).toBe(true);
  });

  it('root rollover writes the new root, both links and the re-certified domain CAs, signed by the old key', async () => {
    const rolled = await run(['root', 'rollover', '--config', config, '--data', rootDir, '--out', bundle(2), '--yes', '--next-update', '60d', ...ROOT_SECRETS]);
    expect(rolled.code, rolled.stderr).toBe(0);
    expect(rolled.stderr).toMatch(/root rollover: root \(SHA-256 [0-9A-F:]{95}, until \S+\) → root-g2/);
    expect(text(rolled)).toMatch(/new root:\s+root-g2/);
    expect(text(rolled)).toMatch(/recertified:\s+xiangtan \(serial [0-9a-f]+\), yuhu \(serial [0-9a-f]+\)/);
    const b = JSON.parse(readFileSync(bundle(2), 'utf8'));
    expect(b).toMatchObject({ kind: 'response', sequence: 2, payload: { inReplyTo: null, certificates: [] } });
    // Signed by the OLD root key (the one the online side pinned); the hierarchy stays the original root's.
    const oldSpki = (await openssl(['x509', '-in', pem.oldRoot, '-noout', '-pubkey'])).stdout;
    expect(Buffer.from(b.signer.publicKeyInfo, 'base64').toString('base64')).toBe(oldSpki.replace(/-----[^-]+-----|\s/g, ''));
    const fp = (await openssl(['x509', '-in', pem.oldRoot, '-noout', '-fingerprint', '-sha256'])).stdout.split('=')[1]!.replaceAll(':', '').trim().toLowerCase();
    expect(b.hierarchy).toBe(fp);
    expect(b.payload.rollover.ca).toBe('root-g2');
    expect(b.payload.previousRoots.map((g: { ca: string }) => g.ca)).toEqual(['root']);
    expect(b.payload.audit.map((a: { action: string }) => a.action)).toEqual(['root.rollover']);
    writeFileSync(pem.newWithOld, certificateToPem(Buffer.from(b.payload.rollover.links.newWithOld, 'base64')));
    writeFileSync(pem.oldWithNew, certificateToPem(Buffer.from(b.payload.rollover.links.oldWithNew, 'base64')));
    expect(readFileSync(pem.links, 'utf8')).toBe(readFileSync(pem.oldWithNew, 'utf8') + readFileSync(pem.newWithOld, 'utf8'));
    // A distinct key, a new serial, the same name.
    const [oldText, newText] = await Promise.all([pem.oldRoot, pem.newRoot].map(async (f) => (await openssl(['x509', '-in', f, '-noout', '-subject', '-serial', '-pubkey', '-nameopt', 'utf8'])).stdout));
    const field = (t: string, re: RegExp) => re.exec(t)![1];
    expect(field(newText!, /subject=(.*)/)).toBe(field(oldText!, /subject=(.*)/));
    expect(field(newText!, /serial=(.*)/)).not.toBe(field(oldText!, /serial=(.*)/));
    expect(field(newText!, /(-----BEGIN PUBLIC KEY-----[^]*)/)).not.toBe(field(oldText!, /(-----BEGIN PUBLIC KEY-----[^]*)/));
  });

  it('an altered rollover response, or one whose link is not the old root\'s: refused, nothing changed', async () => {
    const good = JSON.parse(readFileSync(bundle(2), 'utf8'));
    const before = await countsOnline();
    const altered = structuredClone(good);
    altered.payload.rollover.certificates = altered.payload.rollover.certificates.slice(0, 1);
    const res = await run(['root', 'import', tmp.file('altered-2.bundle', JSON.stringify(altered))]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('the bundle\'s signature does not verify with this hierarchy\'s root key');
    expect(await countsOnline()).toEqual(refused(before, 1));
  });

  it('root import pins the new root, installs the links and the new domain CA certificates; GET /ca and ca list show it', async () => {
    const imported = await run(['root', 'import', bundle(2)]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(text(imported)).toMatch(/rolled over to:\s+root-g2 \(SHA-256 [0-9a-f]{64}\)/);
    expect(text(imported)).toMatch(/recertified:\s+xiangtan, yuhu/);
    // The running service takes it up from the database (rotation timer sync).
    const { value: cas } = await waitFor<any[] | undefined>(async () => {
      const list = (await http(url, 'GET', '/ca')).body as any[];
      const yuhu = list.find((c) => c.id === 'yuhu');
      return list.some((c) => c.id === 'root-g2') && yuhu?.parent === 'root-g2' ? list : undefined;
    }, 30_000, 250);
    expect(cas!.find((c: any) => c.id === 'root')).toMatchObject({ status: 'active', successor: 'root-g2', layer: 'root' });
    expect(cas!.find((c: any) => c.id === 'root-g2')).toMatchObject({ status: 'active', layer: 'root', parent: null, urls: { certificate: `${url}/ca/root-g2.crt` } });
    expect(cas!.find((c: any) => c.id === 'root-g2').successor).toBeUndefined();
    const list = await run(['ca', 'list', '--server', url], { TIERCA_TOKEN: admin });
    expect(list.code, list.stderr).toBe(0);
    expect(text(list)).toMatch(/^root\s.*superseded by root-g2/m);
    expect(text(list)).toMatch(/^root-g2\s.*\sactive\s/m);
    // Served where CA certificates are: the new root, the links, the domain CA's new certificate.
    expect((await http(url, 'GET', '/ca/root-g2.pem')).raw.toString('utf8')).toBe(readFileSync(pem.newRoot, 'utf8'));
    const served = (await http(url, 'GET', '/ca/root-links.pem')).raw.toString('utf8');
    expect([served.includes(readFileSync(pem.newWithOld, 'utf8')), served.includes(readFileSync(pem.oldWithNew, 'utf8')), served.length]).toEqual([true, true, readFileSync(pem.links, 'utf8').length]);
    writeFileSync(pem.newYuhu, (await http(url, 'GET', '/ca/yuhu.pem')).raw);
    const issuer = await openssl(['verify', '-CAfile', pem.newRoot, pem.newYuhu]);
    expect(issuer.stdout.trim(), issuer.stderr).toMatch(/: OK$/);
    const yuhuText = (await openssl(['x509', '-in', pem.newYuhu, '-noout', '-text'])).stdout;
    expect(yuhuText).toContain(`CA Issuers - URI:${url}/ca/root-g2.crt`);
    expect(yuhuText).toContain(`URI:${url}/crl/root-g2.crl`);
    expect(yuhuText).toContain('X509v3 Name Constraints: critical');
    expect(yuhuText).toContain('DNS:yuhu.xiangtan.intranet');
    // Same subject and key as before: only the issuer side changed.
    const keyOf = async (f: string) => (await openssl(['x509', '-in', f, '-noout', '-pubkey'])).stdout;
    expect(await keyOf(pem.newYuhu)).toBe(await keyOf(pem.oldYuhu));
    // Both roots' CRLs are served, each signed by its own key.
    for (const [id, anchor] of [['root', pem.oldRoot], ['root-g2', pem.newRoot]] as const) {
      const crl = await http(url, 'GET', `/crl/${id}.crl`);
      expect([id, crl.status]).toEqual([id, 200]);
      const file = join(tmp.path, `${id}.crl`);
      writeFileSync(file, crl.raw);
      const read = await openssl(['crl', '-inform', 'DER', '-in', file, '-CAfile', anchor, '-noout']);
      expect(read.stderr + read.stdout).toContain('verify OK');
    }
  });

  it('leaves issued before and after verify against the new root, the old root, and the old root through the link (openssl, tier policy)', async () => {
    leaves.after = await issueYuhuT2('gw-after');
    for (const [when, { leaf, tier }] of Object.entries(leaves)) {
      const a = await verify(pem.newRoot, [tier, pem.newYuhu], leaf);
      const b = await verify(pem.oldRoot, [tier, pem.oldYuhu], leaf);
      const c = await verify(pem.oldRoot, [tier, pem.newYuhu, pem.newWithOld], leaf);
      expect([when, a.stdout.trim(), b.stdout.trim(), c.stdout.trim()]).toEqual([when, `${leaf}: OK`, `${leaf}: OK`, `${leaf}: OK`]);
      // These can fail: without the link the old root does not reach the new domain CA certificate; nor does another tier pass.
      expect((await verify(pem.oldRoot, [tier, pem.newYuhu], leaf)).code).not.toBe(0);
      expect((await verify(pem.newRoot, [tier, pem.newYuhu], leaf, EXAMPLE_TIER_OIDS.t3!)).code).not.toBe(0);
    }
  });

  it('Python\'s cryptography reads the same signatures, both roots\' CRLs and pre-signed OCSP answers', async () => {
    const b = JSON.parse(readFileSync(bundle(2), 'utf8'));
    const yuhuNew = (await openssl(['x509', '-in', pem.newYuhu, '-noout', '-serial'])).stdout.split('=')[1]!.trim().toLowerCase().replace(/^0+/, '');
    const newAnswer = tmp.file('yuhu-new.ocsp', '');
    writeFileSync(newAnswer, Buffer.from(b.payload.ocsp.find((o: any) => o.ca === 'yuhu').der, 'base64'));
    const oldAnswer = tmp.file('yuhu-old.ocsp', '');
    writeFileSync(oldAnswer, Buffer.from(b.payload.previousRoots[0].ocsp.find((o: any) => o.ca === 'yuhu').der, 'base64'));
    const results = await pythonCheck([
      { kind: 'cert', path: pem.newRoot, issuer: pem.newRoot },
      { kind: 'cert', path: pem.newWithOld, issuer: pem.oldRoot },
      { kind: 'cert', path: pem.oldWithNew, issuer: pem.newRoot },
      { kind: 'cert', path: pem.newYuhu, issuer: pem.newRoot },
      { kind: 'cert', path: pem.newYuhu, issuer: pem.oldRoot },
      { kind: 'cert', path: leaves.after.leaf, issuer: leaves.after.tier },
      { kind: 'crl', path: join(tmp.path, 'root-g2.crl'), issuer: pem.newRoot },
      { kind: 'crl', path: join(tmp.path, 'root.crl'), issuer: pem.oldRoot },
      { kind: 'ocsp', path: newAnswer, issuer: pem.newRoot },
      { kind: 'ocsp', path: oldAnswer, issuer: pem.oldRoot },
    ]);
    // The fifth can fail: the new domain CA certificate is not the old root key's.
    expect(results.slice(0, 6).map((r) => r.signatureValid === true)).toEqual([true, true, true, true, false, true]);
    expect(results[3].serial).toBe(yuhuNew);
    expect(results.slice(6, 8).map((r) => [r.signatureValid, r.crlNumber])).toEqual([[true, 2], [true, 2]]);
    expect(results.slice(8).map((r) => [r.certStatus, r.signatureValid])).toEqual([['GOOD', true], ['GOOD', true]]);
  });

  it('OCSP online answers for both domain CA certificates, each signed by its own root', async () => {
    for (const [anchor, cert] of [[pem.newRoot, pem.newYuhu], [pem.oldRoot, pem.oldYuhu]] as const) {
      const ocsp = await openssl(['ocsp', '-issuer', anchor, '-cert', cert, '-url', `${url}/ocsp`, '-CAfile', anchor, '-no_nonce']);
      expect(ocsp.stdout + ocsp.stderr).toContain('Response verify OK');
      expect(ocsp.stdout).toContain(`${cert}: good`);
    }
  });

  it('after the rollover: a bundle from before is a replay; a later response signed by the new key imports; one forged with the old key is refused', async () => {
    let before = await countsOnline();
    for (const n of [1, 2]) {
      const again = await run(['root', 'import', bundle(n)]);
      expect([n, again.code]).toEqual([n, 5]);
      expect(again.stderr).toContain(`response bundle ${n} was imported already (the last imported is 2)`);
    }
    expect(await countsOnline()).toEqual(refused(before, 2));

    const crl = await run(['root', 'crl', '--data', rootDir, '--out', bundle(3), '--next-update', '90d', ...ROOT_SECRETS]);
    expect(crl.code, crl.stderr).toBe(0);
    const third = parseBundle(readFileSync(bundle(3)));
    const newSpki = (await openssl(['x509', '-in', pem.newRoot, '-noout', '-pubkey'])).stdout.replace(/-----[^-]+-----|\s/g, '');
    expect(third.signer.publicKeyInfo).toBe(newSpki);
    expect((third.payload as any).previousRoots.map((g: any) => g.ca)).toEqual(['root']);

    // The old key (unsealed here only to forge with) signs response 4: the online side refuses it.
    const oldKey = (await offlineRootKeys()).find((k) => k.caId === 'root')!;
    const signer = softwareSigner({ privateKey: createPrivateKey({ key: oldKey.pkcs8, format: 'der', type: 'pkcs8' }), algorithm: 'P-384', rsaPadding: 'pkcs1' });
    const forge = async (sequence: number) => {
      const file = join(tmp.path, `forged-${sequence}.bundle`);
      writeFileSync(file, await signBundle({ kind: 'response', hierarchy: third.hierarchy, sequence, createdAt: third.createdAt, payload: third.payload }, signer));
      return file;
    };
    const forged = await run(['root', 'import', await forge(3)]);
    expect(forged.code).toBe(2);
    expect(forged.stderr).toContain('response bundle 3 is signed by the key of root, which the root rolled over to root-g2: every response after the rollover must be signed by root-g2; nothing was changed');
    expect(await countsOnline()).toEqual(refused(before, 3));

    const imported = await run(['root', 'import', bundle(3)]);
    expect(imported.code, imported.stderr).toBe(0);
    before = await countsOnline();
    const forgedLater = await run(['root', 'import', await forge(4)]);
    expect(forgedLater.code).toBe(2);
    expect(forgedLater.stderr).toContain('response bundle 4 is signed by the key of root');
    const replayedForgery = await run(['root', 'import', await forge(2)]);
    expect(replayedForgery.code).toBe(5);
    expect(await countsOnline()).toEqual(refused(before, 2));
  });

  it('a response of another hierarchy is still bundle-foreign', async () => {
    const otherRoot = join(tmp.path, 'other-root');
    const single = tmp.file('single.json', JSON.stringify({ ...JSON.parse(readFileSync(config, 'utf8')), root: { ...JSON.parse(readFileSync(config, 'utf8')).root, dualControl: false } }));
    expect((await run(['root', 'init', '--config', single, '--data', otherRoot, '--passphrase-file', p1])).code).toBe(0);
    expect((await run(['root', 'crl', '--data', otherRoot, '--out', join(tmp.path, 'foreign.bundle'), '--passphrase-file', p1])).code).toBe(0);
    const before = await countsOnline();
    const res = await run(['root', 'import', join(tmp.path, 'foreign.bundle')]);
    expect(res.code).toBe(5);
    expect(res.stderr).toMatch(/the bundle belongs to the hierarchy of root [0-9a-f]{64}, not this one/);
    expect(await countsOnline()).toEqual(refused(before, 1));
  });

  it('a domain CA revoked after the rollover answers revoked under both roots', async () => {
    const revoke = await run(['root', 'revoke', 'yuhu', '--reason', 'keyCompromise', '--yes', '--data', rootDir, ...ROOT_SECRETS]);
    expect(revoke.code, revoke.stderr).toBe(0);
    expect((await run(['root', 'crl', '--data', rootDir, '--out', bundle(4), ...ROOT_SECRETS])).code).toBe(0);
    const imported = await run(['root', 'import', bundle(4)]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(text(imported)).toMatch(/revoked:\s+yuhu/);
    for (const [anchor, cert] of [[pem.newRoot, pem.newYuhu], [pem.oldRoot, pem.oldYuhu]] as const) {
      await waitFor(async () => {
        const ocsp = await openssl(['ocsp', '-issuer', anchor, '-cert', cert, '-url', `${url}/ocsp`, '-CAfile', anchor, '-no_nonce']);
        return ocsp.stdout.includes(`${cert}: revoked`) && (ocsp.stdout + ocsp.stderr).includes('Response verify OK');
      }, 15_000, 250);
    }
  });
});

describe('audit and key custody after the rollover', { timeout: 240_000 }, () => {
  it('the offline records, the rollover among them, joined the online chain and audit verify passes', async () => {
    const store = await db.openStore();
    try {
      const offline = (await store.audit.list({})).filter((r) => r.source === 'offline-root').map((r) => r.action);
      expect(offline).toEqual(['offline.root.init', 'offline.root.sign', 'offline.root.rollover', 'offline.root.crl', 'offline.root.revoke', 'offline.root.crl']);
      const verified = await new AuditCheckpoints({ store, keystore: {} as KeyStore, clock: systemClock }).verify();
      expect(verified.ok, JSON.stringify(verified.firstBad)).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('neither root key — PKCS#8, private scalar or sealed form — is in the online database, data folder or backup', async () => {
    const keys = await offlineRootKeys();
    expect(keys.map((k) => k.caId).sort()).toEqual(['root', 'root-g2']);
    const needles: Record<string, Buffer> = {};
    for (const k of keys) {
      needles[`${k.caId} pkcs8`] = k.pkcs8;
      needles[`${k.caId} d`] = Buffer.from(createPrivateKey({ key: k.pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' }).d!, 'base64url');
      needles[`${k.caId} sealed`] = k.sealed;
    }
    needles.header = keys[0]!.header;
    const online = new SecretScan(needles);
    online.folder(db.dataDir);
    const store = await db.openStore();
    try {
      await online.database(store);
    } finally {
      await store.close();
    }
    const backup = await run(['backup']);
    expect(backup.code, backup.stderr).toBe(0);
    online.bytes('the backup', backup.stdout);
    expect(online.hits).toEqual([]);
    // The scan can fail: the offline folder does hold both sealed keys.
    const offline = new SecretScan(needles);
    offline.folder(rootDir);
    expect(keys.map((k) => offline.hits.some((h) => h.startsWith(`${k.caId} sealed in `))).sort()).toEqual([true, true]);
  });
});

describe('a domain added after the rollover', { timeout: 240_000 }, () => {
  it('is certified by the new root: its request names root-g2\'s URLs and its leaves verify against the new root alone', async () => {
    const data = exampleConfigData();
    const updated = tmp.file('config-yuetang.json', JSON.stringify({ ...data, publicUrl: url, root: { ...data.root, dualControl: true }, domains: data.domains.slice(0, 3) }));
    const add = await run(['ca', 'add-domain', '--config', updated, '--domain', 'yuetang', '--server', url], { TIERCA_TOKEN: admin });
    expect(add.code, add.stderr).toBe(0);
    const id = /request (\S+) to add domain yuetang .* is pending/.exec(text(add))![1]!;
    const approved = await http(url, 'POST', `/api/v1/requests/${id}/approve`, { token: admin2 });
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    const requestFile = join(tmp.path, 'request-yuetang.bundle');
    const asked = await run(['root', 'request', '--out', requestFile, '--passphrase-file', onlinePass, '--json']);
    expect(asked.code, asked.stderr).toBe(0);
    const request = parseBundle(readFileSync(requestFile)).payload as { certify: { ca: string; links: { caIssuersUrl: string; crlUrl: string } }[] };
    expect(request.certify.map((c) => [c.ca, c.links])).toEqual([['yuetang', { caIssuersUrl: `${url}/ca/root-g2.crt`, crlUrl: `${url}/crl/root-g2.crl` }]]);
    const responseFile = join(tmp.path, 'response-yuetang.bundle');
    const signed = await run(['root', 'sign', requestFile, '--data', rootDir, '--out', responseFile, '--yes', ...ROOT_SECRETS]);
    expect(signed.code, signed.stderr).toBe(0);
    const imported = await run(['root', 'import', responseFile]);
    expect(imported.code, imported.stderr).toBe(0);
    await waitFor(async () => ((await http(url, 'GET', '/ca')).body as { id: string }[]).some((c) => c.id === 'yuetang-t2') || undefined, 30_000, 250);
    const officerToken = await newOfficer(url, { first: admin, second: admin2 }, 'yuetang officer', ['yuetang']);
    const res = await issueDevice(url, tmp, officerToken, { domain: 'yuetang', dnsSuffix: 'yuetang.xiangtan.intranet', name: 'gw-yuetang' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const [tierPem, domainPem] = res.body.chain as string[];
    const leaf = tmp.file('gw-yuetang.pem', res.body.pem);
    const tier = tmp.file('yuetang-t2.pem', tierPem!);
    const domain = tmp.file('yuetang.pem', domainPem!);
    expect((await openssl(['x509', '-in', domain, '-noout', '-text'])).stdout).toContain(`${url}/ca/root-g2.crt`);
    const ok = await verify(pem.newRoot, [tier, domain], leaf);
    expect(ok.stdout, ok.stderr).toContain(': OK');
    // Not under the old root: the domain CA's certificate names the new root as its issuer's key.
    const old = await verify(pem.oldRoot, [tier, domain], leaf);
    expect(old.code).not.toBe(0);
  });
});
