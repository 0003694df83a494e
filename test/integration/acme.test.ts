// The ACME server (RFC 8555) with an in-process client on jose: external account binding, nonces,
// http-01 over a real DNS server (BIND 9) and a real HTTP server, finalize, download, ARI (RFC 9773)
// and revocation; each refusal an urn:ietf:params:acme:error problem with nothing issued. The
// certificate is checked by the openssl CLI with the tier's policy.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestTierca, type TestTierca } from '../helpers/tierca.ts';
import { exampleConfigData, EXAMPLE_TIER_OIDS } from '../helpers/config.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { freePort } from '../helpers/net.ts';
import { startBind9, type Bind9 } from '../helpers/bind9.ts';
import { keyAuthorizationOf, TestAcmeClient } from '../helpers/acme-client.ts';
import { countRows } from '../helpers/database.ts';
import { runTierca } from '../helpers/processes.ts';
import { readCertificate } from '../../pki/certificate-reader.ts';
import { decodePemOrDer } from '../../pki/pem.ts';
import { certIdOf } from '../../server/enrol/acme/renewal-info.ts';

const ZONE = 'yuhu.xiangtan.intranet';
const WEB = `web.${ZONE}`;
const FAR = `far.${ZONE}`;
const tmp = new TempDir();
let t: TestTierca;
let dns: Bind9;
let web: Server;
let far: Server;
let farHits = 0;
const served = new Map<string, string>();

beforeAll(async () => {
  dns = await startBind9(ZONE, { web: '127.0.0.1', far: '127.0.0.2' });
  const httpPort = await freePort();
  web = createServer((req, res) => {
    const token = req.url?.split('/').pop() ?? '';
    const answer = served.get(token);
    res.writeHead(answer ? 200 : 404).end(answer ?? 'no');
  });
  far = createServer((_req, res) => {
    farHits++;
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => web.listen(httpPort, '127.0.0.1', r));
  await new Promise<void>((r) => far.listen(httpPort, '127.0.0.2', r));
  t = await startTestTierca({
    configData: { ...exampleConfigData(), acme: { resolvers: [dns.server], http01Port: httpPort, validationRanges: ['127.0.0.1/32'] } },
  });
}, 60_000);

afterAll(async () => {
  await t?.close();
  await dns?.stop();
  web?.close();
  far?.close();
  tmp.cleanup();
});

const directory = (tier = 't2') => `${t.url}/acme/${tier}/directory`;

async function bindingKey(body: Record<string, unknown> = {}) {
  const res = await call(t, 'officer', 'POST', '/api/v1/acme/account-keys', { domain: 'yuhu', organ: 'government', tier: 't2', ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { keyId: string; hmacKey: string; directory: string };
}

async function registered(): Promise<TestAcmeClient> {
  const client = await new TestAcmeClient(directory()).init();
  const res = await client.register(await bindingKey());
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return client;
}

async function csrFor(names: string[]): Promise<string> {
  const name = `csr-${Math.random().toString(36).slice(2)}`;
  const res = await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', tmp.file(`${name}.key`),
    '-subj', `/CN=${names[0]}`, '-addext', `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`, '-outform', 'DER', '-out', tmp.file(`${name}.der`)]);
  expect(res.code, res.stderr).toBe(0);
  return tmp.read(`${name}.der`).toString('base64url');
}

async function waitFor(client: TestAcmeClient, url: string, done: (body: any) => boolean): Promise<any> {
  for (let i = 0; i < 100; i++) {
    const res = await client.post(url, null);
    if (done(res.body)) return res.body;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} never settled`);
}

/** new order → http-01 → valid authorization; returns the order URL and body. */
async function validatedOrder(client: TestAcmeClient, names: string[]) {
  const order = await client.post(client.directory.newOrder, { identifiers: names.map((value) => ({ type: 'dns', value })) });
  expect(order.status, JSON.stringify(order.body)).toBe(201);
  for (const url of order.body.authorizations as string[]) {
    const authz = (await client.post(url, null)).body;
    if (authz.status === 'valid') continue;
    const challenge = authz.challenges.find((c: any) => c.type === 'http-01');
    served.set(challenge.token, await keyAuthorizationOf(challenge.token, client.jwk));
    expect((await client.post(challenge.url, {})).status).toBe(200);
    expect((await waitFor(client, url, (b) => b.status !== 'pending')).status).toBe('valid');
  }
  return { url: order.headers.get('location')!, body: await waitFor(client, order.headers.get('location')!, (b) => b.status === 'ready') };
}

describe('ACME accounts', () => {
  it('serves a directory per tier with EAB required, and none for the dual-control tier', async () => {
    const dir = await (await fetch(directory())).json();
    expect(dir.meta.externalAccountRequired).toBe(true);
    expect(dir.newAccount).toBe(`${t.url}/acme/t2/new-account`);
    expect(dir.renewalInfo).toBe(`${t.url}/acme/t2/renewal-info`);
    const t3 = await fetch(directory('t3'));
    expect(t3.status).toBe(404);
    expect((await t3.json()).type).toBe('urn:ietf:params:acme:error:malformed');
    const refused = await call(t, 'officer', 'POST', '/api/v1/acme/account-keys', { domain: 'yuhu', organ: 'government', tier: 't3' });
    expect(refused.status).toBe(422);
  });

  it('refuses an account without binding, with a used or forged binding, and a replayed nonce', async () => {
    const client = await new TestAcmeClient(directory()).init();
    const before = await countRows(t.store, 'acme_accounts');
    const none = await client.register(null);
    expect([none.status, none.body.type]).toEqual([401, 'urn:ietf:params:acme:error:externalAccountRequired']);
    const forged = await client.register({ keyId: (await bindingKey()).keyId, hmacKey: Buffer.alloc(32, 1).toString('base64url') });
    expect([forged.status, forged.body.type]).toEqual([403, 'urn:ietf:params:acme:error:unauthorized']);
    const nonce = await client.freshNonce();
    const first = await client.post(client.directory.newNonce.replace('new-nonce', 'new-order'), { identifiers: [] }, { nonce, jwk: true });
    expect(first.body.type).not.toBe('urn:ietf:params:acme:error:badNonce');
    const again = await client.post(client.directory.newAccount, {}, { nonce, jwk: true });
    expect([again.status, again.body.type]).toEqual([400, 'urn:ietf:params:acme:error:badNonce']);
    expect(again.headers.get('replay-nonce')).toBeTruthy();
    expect(await countRows(t.store, 'acme_accounts')).toBe(before);

    const key = await bindingKey();
    expect((await client.register(key)).status).toBe(201);
    const other = await new TestAcmeClient(directory()).init();
    const reused = await other.register(key);
    expect([reused.status, reused.body.type]).toEqual([403, 'urn:ietf:params:acme:error:unauthorized']);
    expect(await countRows(t.store, 'acme_accounts')).toBe(before + 1);
  });

  it('refuses a JWS whose signature does not verify or whose url is another', async () => {
    const client = await registered();
    const jws = await client.sign(client.directory.newOrder, { identifiers: [{ type: 'dns', value: WEB }] });
    const spoiled = { ...jws, signature: Buffer.alloc(64, 7).toString('base64url') };
    const bad = await client.send(client.directory.newOrder, spoiled);
    expect([bad.status, bad.body.type]).toEqual([400, 'urn:ietf:params:acme:error:malformed']);
    const wrongUrl = await client.send(client.directory.newOrder, await client.sign(client.directory.revokeCert, {}));
    expect(wrongUrl.body.type).toBe('urn:ietf:params:acme:error:unauthorized');
    const json = await client.send(client.directory.newOrder, jws, 'application/json');
    expect(json.status).toBe(415);
  });

  it('rolls the account key over: the old key is refused after', async () => {
    const client = await registered();
    const { generateKeyPairSync } = await import('node:crypto');
    const next = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    const url = client.directory.keyChange;
    const inner = await new TestAcmeClient(directory(), next, 'ES384').init();
    const { FlattenedSign, exportJWK } = await import('jose');
    const innerSigned = await new FlattenedSign(new TextEncoder().encode(JSON.stringify({ account: client.kid, oldKey: client.jwk })))
      .setProtectedHeader({ alg: 'ES384', url, jwk: await exportJWK(inner.publicKey()) }).sign(next);
    const changed = await client.post(url, innerSigned);
    expect(changed.status, JSON.stringify(changed.body)).toBe(200);
    const old = await client.post(client.directory.newOrder, { identifiers: [{ type: 'dns', value: WEB }] });
    expect(old.body.type).toBe('urn:ietf:params:acme:error:malformed');
    inner.kid = client.kid;
    const fresh = await inner.post(client.directory.newOrder, { identifiers: [{ type: 'dns', value: WEB }] });
    expect(fresh.status, JSON.stringify(fresh.body)).toBe(201);
  });
});

describe('ACME orders', () => {
  it('issues over http-01: the chain verifies under the tier policy, ARI gives a window, revocation moves it to now', async () => {
    const client = await registered();
    const { url, body } = await validatedOrder(client, [WEB]);
    const done = await client.post(body.finalize, { csr: await csrFor([WEB]) });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body.status).toBe('valid');
    const order = await waitFor(client, url, (b) => b.status === 'valid');
    const pem = await client.post(order.certificate, null);
    expect(pem.headers.get('content-type')).toContain('application/pem-certificate-chain');
    const blocks = String(pem.body).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)!;
    expect(blocks.length).toBe(3);
    const root = (await call(t, null, 'GET', '/ca/root.pem')).raw;
    const res = await openssl(['verify', '-CAfile', tmp.file('root.pem', root), '-untrusted', tmp.file('chain.pem', blocks.slice(1).join('')),
      '-policy', EXAMPLE_TIER_OIDS.t2, '-explicit_policy', '-purpose', 'sslserver', tmp.file('leaf.pem', blocks[0])]);
    expect(res.stdout + res.stderr).toContain('leaf.pem: OK');
    const leaf = readCertificate(decodePemOrDer(Buffer.from(blocks[0]), 'CERTIFICATE'));
    const certId = certIdOf(leaf.authorityKeyId!, leaf.serial);
    const ari = await fetch(`${client.directory.renewalInfo}/${certId}`);
    const window = (await ari.json()).suggestedWindow;
    expect(ari.headers.get('retry-after')).toBe('3600');
    expect(new Date(window.start).getTime()).toBeGreaterThan(Date.now());

    const revoke = await client.post(client.directory.revokeCert, { certificate: decodePemOrDer(Buffer.from(blocks[0]), 'CERTIFICATE').toString('base64url'), reason: 1 });
    expect(revoke.status, JSON.stringify(revoke.body)).toBe(200);
    const after = (await (await fetch(`${client.directory.renewalInfo}/${certId}`)).json()).suggestedWindow;
    expect(new Date(after.end).getTime()).toBeLessThan(Date.now());
    const status = await call(t, null, 'GET', `/status/${leaf.authorityKeyId ? (await call(t, null, 'GET', '/ca')).body.find((c: any) => c.domain === 'yuhu' && c.tier === 't2').id : ''}/${leaf.serial}`);
    expect(status.body.status).toBe('revoked');
    const twice = await client.post(client.directory.revokeCert, { certificate: decodePemOrDer(Buffer.from(blocks[0]), 'CERTIFICATE').toString('base64url') });
    expect(twice.body.type).toBe('urn:ietf:params:acme:error:alreadyRevoked');
  });

  it('refuses names outside the domain, a CSR for other names, and finalize before validation: nothing issued', async () => {
    const client = await registered();
    const certificates = await countRows(t.store, 'certificates');
    const outside = await client.post(client.directory.newOrder, { identifiers: [{ type: 'dns', value: 'web.yuetang.xiangtan.intranet' }] });
    expect([outside.status, outside.body.type]).toEqual([400, 'urn:ietf:params:acme:error:rejectedIdentifier']);
    const mixed = await client.post(client.directory.newOrder, { identifiers: [{ type: 'dns', value: `ok.${ZONE}` }, { type: 'dns', value: 'a.other.intranet' }, { type: 'dns', value: 'b.other.intranet' }] });
    expect([mixed.status, mixed.body.detail]).toEqual([400, '2 identifiers are refused']);
    expect(mixed.body.subproblems.map((p: any) => [p.type, p.identifier.value])).toEqual([
      ['urn:ietf:params:acme:error:rejectedIdentifier', 'a.other.intranet'], ['urn:ietf:params:acme:error:rejectedIdentifier', 'b.other.intranet'],
    ]);
    const ip = await client.post(client.directory.newOrder, { identifiers: [{ type: 'ip', value: '10.21.0.1' }] });
    expect(ip.body.type).toBe('urn:ietf:params:acme:error:unsupportedIdentifier');
    const early = await client.post(client.directory.newOrder, { identifiers: [{ type: 'dns', value: `early.${ZONE}` }] });
    const notReady = await client.post(early.body.finalize, { csr: await csrFor([`early.${ZONE}`]) });
    expect([notReady.status, notReady.body.type]).toEqual([403, 'urn:ietf:params:acme:error:orderNotReady']);
    const { body } = await validatedOrder(client, [WEB]);
    const other = await client.post(body.finalize, { csr: await csrFor([WEB, `other.${ZONE}`]) });
    expect([other.status, other.body.type]).toEqual([400, 'urn:ietf:params:acme:error:badCSR']);
    expect(await countRows(t.store, 'certificates')).toBe(certificates);
  });

  it('never contacts an address outside the ranges validation may reach', async () => {
    const client = await registered();
    const order = await client.post(client.directory.newOrder, { identifiers: [{ type: 'dns', value: FAR }] });
    const authzUrl = order.body.authorizations[0];
    const challenge = (await client.post(authzUrl, null)).body.challenges.find((c: any) => c.type === 'http-01');
    await client.post(challenge.url, {});
    const authz = await waitFor(client, authzUrl, (b) => b.status !== 'pending');
    expect(authz.status).toBe('invalid');
    expect(authz.challenges.find((c: any) => c.type === 'http-01').error.type).toBe('urn:ietf:params:acme:error:rejectedIdentifier');
    expect(farHits).toBe(0);
    expect((await waitFor(client, order.headers.get('location')!, (b) => b.status !== 'pending')).status).toBe('invalid');
  });

  it('shows officers the accounts and orders of their domain, and a deactivated account is refused', async () => {
    const client = await registered();
    const accounts = await call(t, 'officer', 'GET', '/api/v1/acme/accounts?domain=yuhu');
    expect(accounts.status).toBe(200);
    const id = client.kid!.split('/').pop()!;
    expect(accounts.body.find((a: any) => a.id === id)).toMatchObject({ domain: 'yuhu', organ: 'government', tier: 't2', status: 'valid' });
    expect((await call(t, 'auditor', 'GET', '/api/v1/acme/accounts')).status).toBe(403);
    const off = await call(t, 'officer', 'POST', `/api/v1/acme/accounts/${id}/deactivate`);
    expect([off.status, off.body.status]).toEqual([200, 'deactivated']);
    const refused = await client.post(client.directory.newOrder, { identifiers: [{ type: 'dns', value: WEB }] });
    expect([refused.status, refused.body.type]).toEqual([403, 'urn:ietf:params:acme:error:unauthorized']);
    const audit = await t.store.audit.list({ action: 'acme.account.deactivate' });
    expect(audit.some((r) => r.outcome === 'success' && r.target === `acme-account:${id}`)).toBe(true);
  });
});

describe('tierca acme (the CLI, a client of the API)', () => {
  it('makes a binding key that registers an account, then lists and deactivates that account', async () => {
    const env = { TIERCA_URL: t.url, TIERCA_TOKEN: t.tokens.officer };
    const made = await runTierca(['acme', 'account-key', 'add', '--domain', 'yuhu', '--organ', 'court', '--tier', 't1', '--max-certificates', '5', '--expires', '30d', '--json'], { env });
    expect(made.code, made.stderr).toBe(0);
    const key = JSON.parse(made.stdout.toString());
    expect(key).toMatchObject({ domain: 'yuhu', organ: 'court', tier: 't1', maxCertificates: 5, directory: `${t.url}/acme/t1/directory` });
    expect(new Date(key.expiresAt).getTime() - Date.now()).toBeGreaterThan(29 * 86_400_000);
    const client = await new TestAcmeClient(key.directory).init();
    expect((await client.register(key)).status).toBe(201);
    const id = client.kid!.split('/').pop()!;
    const listed = await runTierca(['acme', 'accounts', '--domain', 'yuhu'], { env });
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout.toString()).toContain(id);
    expect(listed.stdout.toString()).toContain('yuhu/court/t1');
    const off = await runTierca(['acme', 'deactivate', id], { env });
    expect([off.code, off.stdout.toString().trim()]).toEqual([0, `ACME account ${id} is deactivated`]);
    const again = await runTierca(['acme', 'deactivate', id], { env });
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('deactivated already');
  });
});

describe('ACME account key algorithms and per-account limits', () => {
  it('accepts ES256, ES384, RS256 and EdDSA account keys, and refuses an unsigned JWS naming the algorithms it takes', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const keys = [
      ['ES256', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey],
      ['ES384', generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey],
      ['RS256', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey],
      ['EdDSA', generateKeyPairSync('ed25519').privateKey],
    ] as const;
    for (const [alg, key] of keys) {
      const client = await new TestAcmeClient(directory(), key, alg).init();
      const reg = await client.register(await bindingKey());
      expect(reg.status, `${alg}: ${JSON.stringify(reg.body)}`).toBe(201);
      const order = await client.post(client.directory.newOrder, { identifiers: [{ type: 'dns', value: `alg-${alg.toLowerCase()}.${ZONE}` }] });
      expect(order.status, `${alg}: ${JSON.stringify(order.body)}`).toBe(201);
    }
    const client = await registered();
    const orders = await countRows(t.store, 'acme_orders');
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const unsigned = {
      protected: b64({ alg: 'none', nonce: await client.freshNonce(), url: client.directory.newOrder, kid: client.kid }),
      payload: b64({ identifiers: [{ type: 'dns', value: `none.${ZONE}` }] }),
      signature: '',
    };
    const res = await client.send(client.directory.newOrder, unsigned);
    expect([res.status, res.body.type]).toEqual([400, 'urn:ietf:params:acme:error:badSignatureAlgorithm']);
    expect(res.body.algorithms).toEqual(expect.arrayContaining(['ES256', 'ES384', 'RS256', 'EdDSA']));
    expect(await countRows(t.store, 'acme_orders')).toBe(orders);
  });

  it('holds an account to its binding key\'s --max-certificates, and a CSR to the tier\'s key algorithms', async () => {
    const client = await new TestAcmeClient(directory()).init();
    expect((await client.register(await bindingKey({ maxCertificates: 1 }))).status).toBe(201);
    const first = await validatedOrder(client, [WEB]);
    expect((await client.post(first.body.finalize, { csr: await csrFor([WEB]) })).status).toBe(200);
    await waitFor(client, first.url, (b) => b.status === 'valid');

    const certificates = await countRows(t.store, 'certificates');
    const second = await validatedOrder(client, [WEB]);
    // t2 takes P-256, P-384, RSA-3072/4096 and SM2: a 2048-bit RSA key is outside its policy.
    const rsa = await openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', tmp.file('rsa.key'), '-subj', `/CN=${WEB}`,
      '-addext', `subjectAltName=DNS:${WEB}`, '-outform', 'DER', '-out', tmp.file('rsa.der')]);
    expect(rsa.code, rsa.stderr).toBe(0);
    const weak = await client.post(second.body.finalize, { csr: tmp.read('rsa.der').toString('base64url') });
    expect([weak.status, weak.body.type]).toEqual([400, 'urn:ietf:params:acme:error:badCSR']);
    expect(weak.body.detail).toContain('RSA-2048');
    const over = await client.post(second.body.finalize, { csr: await csrFor([WEB]) });
    expect([over.status, over.body.type]).toEqual([429, 'urn:ietf:params:acme:error:rateLimited']);
    expect(over.body.detail).toBe('the account has had its 1 certificates; ask an officer for a new binding key');
    expect((await client.post(second.url, null)).body.status).toBe('ready');
    expect(await countRows(t.store, 'certificates')).toBe(certificates);
  });
});

describe('ACME renewal information after a CA rollover', () => {
  it('moves the window of a certificate to now once its tier CA has rolled over (the last test: yuhu-t2 changes generation)', async () => {
    const client = await registered();
    const { url, body } = await validatedOrder(client, [WEB]);
    expect((await client.post(body.finalize, { csr: await csrFor([WEB]) })).status).toBe(200);
    const order = await waitFor(client, url, (b) => b.status === 'valid');
    const pem = String((await client.post(order.certificate, null)).body);
    const leaf = readCertificate(decodePemOrDer(Buffer.from(pem), 'CERTIFICATE'));
    const ari = `${client.directory.renewalInfo}/${certIdOf(leaf.authorityKeyId!, leaf.serial)}`;
    const before = (await (await fetch(ari)).json()).suggestedWindow;
    expect(new Date(before.start).getTime()).toBeGreaterThan(Date.now());

    const asked = await call(t, 'admin', 'POST', '/api/v1/cas/yuhu-t2/rollover', {});
    expect(asked.status, JSON.stringify(asked.body)).toBe(202);
    const approved = await call(t, 'admin2', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    let after: any;
    for (let i = 0; i < 50; i++) {
      after = (await (await fetch(ari)).json()).suggestedWindow;
      if (new Date(after.end).getTime() < Date.now()) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(new Date(after.end).getTime()).toBeLessThan(Date.now());
    expect(new Date(after.start).getTime()).toBeGreaterThan(Date.now() - 10 * 60_000);
  });
});
