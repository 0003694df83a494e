// The PKCS#11 keystore against a real token (SoftHSM2, a fresh one for this file): keys made in the
// token for every CA algorithm, signatures verified by the openssl CLI and by Node from the SPKI, the
// SPKI equal to what pkcs11-tool reads out of the token, pkcs11-tool listing the private keys as
// sensitive, never extractable and private, sealing inside the token, and each fault with its code.
import { createPublicKey, verify as nodeVerify, constants } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pkcs11KeyStore } from '../../pki/keystore/pkcs11-keystore.ts';
import { KeystoreError } from '../../pki/keystore/pkcs11-errors.ts';
import { PkiError } from '../../pki/pki-error.ts';
import { keyAlgorithmOf } from '../../pki/key-pair.ts';
import { toPem } from '../../pki/der.ts';
import { signatureAlgorithmIdentifier, type KeyAlgorithm, type RsaPadding } from '../../pki/algorithms.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { freshSoftHsm, parseListedObjects, type SoftHsm } from '../helpers/softhsm.ts';

let hsm: SoftHsm;
let ks: Pkcs11KeyStore;
const tmp = new TempDir();
const made = new Map<string, { algorithm: KeyAlgorithm; spki: Buffer; label: string }>();

beforeAll(async () => {
  hsm = await freshSoftHsm();
  ks = await Pkcs11KeyStore.open({ modulePath: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin });
});
afterAll(async () => {
  await ks?.close();
  hsm?.cleanup();
  tmp.cleanup();
});

const open = (over: Partial<Parameters<typeof Pkcs11KeyStore.open>[0]> = {}) =>
  Pkcs11KeyStore.open({ modulePath: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin, ...over });

async function rejection(promise: Promise<unknown>): Promise<KeystoreError | PkiError> {
  try {
    await promise;
  } catch (err) {
    return err as KeystoreError;
  }
  throw new Error('expected a rejection');
}

async function opensslVerifies(spki: Buffer, data: Buffer, signature: Buffer, algorithm: KeyAlgorithm, padding: RsaPadding): Promise<boolean> {
  const name = `${algorithm}-${padding}-${signature.length}`;
  const pub = tmp.file(`${name}.pub.pem`, toPem(spki, 'PUBLIC KEY'));
  const sig = tmp.file(`${name}.sig`, signature);
  const dat = tmp.file(`${name}.dat`, data);
  const pss = padding === 'pss' && algorithm.startsWith('RSA') ? ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32', '-sigopt', 'rsa_mgf1_md:sha256'] : [];
  const res = await openssl(['dgst', algorithm === 'P-384' ? '-sha384' : '-sha256', '-verify', pub, ...pss, '-signature', sig, dat]);
  return res.code === 0 && res.stdout.includes('Verified OK');
}

function nodeVerifies(spki: Buffer, data: Buffer, signature: Buffer, algorithm: KeyAlgorithm, padding: RsaPadding): boolean {
  const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  const options = algorithm.startsWith('RSA')
    ? padding === 'pss' ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } : { key }
    : { key, dsaEncoding: 'der' as const };
  return nodeVerify(algorithm === 'P-384' ? 'sha384' : 'sha256', data, options, signature);
}

describe('keys made in the token', () => {
  const cases: [KeyAlgorithm, RsaPadding][] = [['P-256', 'pkcs1'], ['P-384', 'pkcs1'], ['RSA-2048', 'pkcs1'], ['RSA-2048', 'pss'], ['RSA-3072', 'pkcs1'], ['RSA-3072', 'pss']];
  for (const [algorithm, padding] of cases) {
    it(`${algorithm} ${padding}: signs in the token; openssl and Node verify from the SPKI`, async () => {
      const id = `ca-${algorithm}-${padding}`.toLowerCase();
      const generated = await ks.generate(id, algorithm);
      expect(generated.sealed).toBeNull();
      expect(generated.pkcs11Label).toBe(`tierca:${id}`);
      expect(keyAlgorithmOf(generated.publicKeyInfo)).toBe(algorithm);
      made.set(id, { algorithm, spki: generated.publicKeyInfo, label: generated.pkcs11Label! });
      const signer = ks.signer(id, { rsaPadding: padding });
      expect(signer.inMemoryKey).toBeUndefined();
      expect(signer.publicKeyInfo.equals(generated.publicKeyInfo)).toBe(true);
      expect(signer.signatureAlgorithm.equals(signatureAlgorithmIdentifier(algorithm, padding))).toBe(true);
      const data = Buffer.from(`to be signed by ${id}`);
      const signature = await signer.sign(data);
      expect(nodeVerifies(generated.publicKeyInfo, data, signature, algorithm, padding)).toBe(true);
      expect(await opensslVerifies(generated.publicKeyInfo, data, signature, algorithm, padding)).toBe(true);
      // A signature over other data does not verify (the checks above can fail).
      expect(nodeVerifies(generated.publicKeyInfo, Buffer.from('other'), signature, algorithm, padding)).toBe(false);
      // openssl re-encodes our SPKI to the same octets (canonical DER).
      const reencoded = await openssl(['pkey', '-pubin', '-inform', 'DER', '-outform', 'DER', '-out', tmp.file(`${id}.reenc`)], { input: generated.publicKeyInfo });
      expect(reencoded.code, reencoded.stderr).toBe(0);
      expect(tmp.read(`${id}.reenc`).equals(generated.publicKeyInfo)).toBe(true);
      // The token's own public key object, read by pkcs11-tool, is our SPKI octet for octet
      // (OpenSC 0.23 cannot export P-384 public keys: "cannot create EVP_PKEY").
      if (algorithm === 'P-384') return;
      const read = await hsm.pkcs11Tool(['--token-label', hsm.tokenLabel, '--read-object', '--type', 'pubkey', '--label', generated.pkcs11Label!, '-o', tmp.file(`${id}.spki`)]);
      expect(read.code, read.stderr).toBe(0);
      expect(tmp.read(`${id}.spki`).equals(generated.publicKeyInfo)).toBe(true);
    });
  }

  it('refuses SM2, a second key under the same id, and an empty id, creating nothing', async () => {
    expect(await rejection(ks.generate('ca-sm2', 'SM2'))).toMatchObject({ name: 'PkiError', code: 'unsupported-algorithm' });
    expect(await rejection(ks.generate('ca-p-256-pkcs1', 'P-256'))).toMatchObject({ code: 'invalid-argument', message: 'a key with id "ca-p-256-pkcs1" is already held' });
    // Another instance (nothing held) still refuses an id whose objects are in the token.
    const other = await open();
    try {
      expect(await rejection(other.generate('ca-p-256-pkcs1', 'P-256'))).toMatchObject({ code: 'invalid-argument', message: 'the token already holds an object labelled "tierca:ca-p-256-pkcs1"' });
    } finally {
      await other.close();
    }
    expect(await rejection(ks.generate('', 'P-256'))).toMatchObject({ code: 'invalid-argument' });
    const listed = parseListedObjects((await hsm.pkcs11Tool(['--token-label', hsm.tokenLabel, '--list-objects', '--login', '--pin', hsm.pin])).stdout);
    expect(listed.filter((o) => o.kind.startsWith('Private Key')).length).toBe(made.size);
  });

  it('pkcs11-tool lists every private key as sensitive, always sensitive, never extractable, made in the token, and private', async () => {
    const loggedIn = parseListedObjects((await hsm.pkcs11Tool(['--token-label', hsm.tokenLabel, '--list-objects', '--login', '--pin', hsm.pin])).stdout);
    const anonymous = parseListedObjects((await hsm.pkcs11Tool(['--token-label', hsm.tokenLabel, '--list-objects'])).stdout);
    for (const { label } of made.values()) {
      const priv = loggedIn.find((o) => o.kind.startsWith('Private Key') && o.label === label);
      expect(priv, label).toBeDefined();
      expect(priv!.access).toBe('sensitive, always sensitive, never extractable, local');
      expect(priv!.usage).toBe('sign');
      // CKA_PRIVATE: without a login the private key is not even listed; its public half is.
      expect(anonymous.some((o) => o.kind.startsWith('Private Key') && o.label === label)).toBe(false);
      expect(anonymous.some((o) => o.kind.startsWith('Public Key') && o.label === label)).toBe(true);
    }
    // Read through the module directly: the attributes say private, sensitive, never extractable, and
    // the private value itself is refused (CKR_ATTRIBUTE_SENSITIVE).
    const lib = new pkcs11js.PKCS11();
    lib.load(hsm.modulePath);
    const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trim() === hsm.tokenLabel)!;
    const session = lib.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
    try {
      for (const { label, algorithm } of made.values()) {
        lib.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }, { type: pkcs11js.CKA_LABEL, value: label }]);
        const [handle] = lib.C_FindObjects(session, 2);
        lib.C_FindObjectsFinal(session);
        const flags = lib.C_GetAttributeValue(session, handle, [pkcs11js.CKA_TOKEN, pkcs11js.CKA_PRIVATE, pkcs11js.CKA_SENSITIVE, pkcs11js.CKA_EXTRACTABLE, pkcs11js.CKA_NEVER_EXTRACTABLE].map((type) => ({ type })));
        expect(flags.map((a) => a.value[0]), label).toEqual([1, 1, 1, 0, 1]);
        const secret = algorithm.startsWith('RSA') ? pkcs11js.CKA_PRIVATE_EXPONENT : pkcs11js.CKA_VALUE;
        expect(() => lib.C_GetAttributeValue(session, handle, [{ type: secret }])).toThrow('CKR_ATTRIBUTE_SENSITIVE');
      }
    } finally {
      lib.C_CloseSession(session);
      lib.close();
    }
  });

  it('a fresh instance loads a stored key by label and signs with it', async () => {
    const other = await open();
    try {
      const { spki, label } = made.get('ca-p-384-pkcs1')!;
      expect(other.has('ca-p-384-pkcs1')).toBe(false);
      await other.load({ id: 'ca-p-384-pkcs1', algorithm: 'P-384', sealed: null, pkcs11Label: label });
      expect(other.has('ca-p-384-pkcs1')).toBe(true);
      const signer = other.signer('ca-p-384-pkcs1');
      expect(signer.publicKeyInfo.equals(spki)).toBe(true);
      const data = Buffer.from('loaded');
      expect(nodeVerifies(spki, data, await signer.sign(data), 'P-384', 'pkcs1')).toBe(true);
      expect(other.location('ca-p-384-pkcs1')).toMatchObject({ custody: 'pkcs11', tokenLabel: 'tierca', objectLabel: label, modulePath: hsm.modulePath });
    } finally {
      await other.close();
    }
  });

  it('refuses a key stored as another algorithm or size than the token holds, and a key with no token label', async () => {
    const { label } = made.get('ca-rsa-2048-pkcs1')!;
    expect(await rejection(ks.load({ id: 'x1', algorithm: 'RSA-3072', sealed: null, pkcs11Label: label }))).toMatchObject({ code: 'malformed', message: 'key "x1" is stored as RSA-3072 but the token holds another RSA size' });
    expect(await rejection(ks.load({ id: 'x2', algorithm: 'P-256', sealed: null, pkcs11Label: label }))).toMatchObject({ code: 'malformed' });
    expect(await rejection(ks.load({ id: 'x3', algorithm: 'P-256', sealed: Buffer.alloc(40), pkcs11Label: null }))).toMatchObject({ code: 'invalid-argument', message: 'key "x3" is not in PKCS#11 custody (no token label)' });
    expect(ks.has('x1') || ks.has('x2') || ks.has('x3')).toBe(false);
  });
});

describe('sealing inside the token', () => {
  it('round-trips, binds the aad, refuses reserved prefixes and foreign blobs; the AES key is never extractable', async () => {
    const secret = Buffer.from('an escrowed PKCS#8 would be here');
    const sealed = ks.seal(secret, 'escrow:yuhu-t2/0abc');
    expect(sealed[0]).toBe(0x02);
    expect(sealed.length).toBe(1 + 12 + secret.length + 16);
    expect(sealed.includes(secret)).toBe(false);
    expect(ks.unseal(sealed, 'escrow:yuhu-t2/0abc').equals(secret)).toBe(true);
    expect(() => ks.unseal(sealed, 'escrow:yuhu-t2/0abd')).toThrow(expect.objectContaining({ code: 'wrong-passphrase' }));
    const flipped = Buffer.from(sealed);
    flipped[20] ^= 1;
    expect(() => ks.unseal(flipped, 'escrow:yuhu-t2/0abc')).toThrow(expect.objectContaining({ code: 'wrong-passphrase' }));
    expect(() => ks.unseal(Buffer.concat([Buffer.from([1]), sealed.subarray(1)]), 'escrow:yuhu-t2/0abc')).toThrow(expect.objectContaining({ code: 'malformed' }));
    expect(() => ks.seal(secret, 'key:ca-root')).toThrow(expect.objectContaining({ code: 'invalid-argument' }));
    // Two seals of the same bytes differ (fresh IV), and another instance on the token opens them.
    expect(ks.seal(secret, 'escrow:a').equals(ks.seal(secret, 'escrow:a'))).toBe(false);
    const other = await open();
    try {
      expect(other.unseal(sealed, 'escrow:yuhu-t2/0abc').equals(secret)).toBe(true);
    } finally {
      await other.close();
    }
    const listed = parseListedObjects((await hsm.pkcs11Tool(['--token-label', hsm.tokenLabel, '--list-objects', '--login', '--pin', hsm.pin])).stdout);
    const kek = listed.filter((o) => o.kind.startsWith('Secret Key'));
    expect(kek.map((o) => [o.label, o.usage, o.access])).toEqual([['tierca:seal-kek', 'encrypt, decrypt', 'sensitive, always sensitive, never extractable, local']]);
  });
});

describe('faults', () => {
  const countObjects = async () => parseListedObjects((await hsm.pkcs11Tool(['--token-label', hsm.tokenLabel, '--list-objects', '--login', '--pin', hsm.pin])).stdout).length;

  it('a missing module is module-missing', async () => {
    expect(await rejection(open({ modulePath: '/usr/lib/softhsm/no-such-module.so' }))).toMatchObject({
      name: 'KeystoreError', code: 'module-missing', message: expect.stringContaining('the PKCS#11 module /usr/lib/softhsm/no-such-module.so cannot be loaded'),
    });
  });

  it('an absent token is token-absent, naming the tokens that are there', async () => {
    expect(await rejection(open({ tokenLabel: 'offline-root' }))).toMatchObject({
      code: 'token-absent', message: `no token labelled "offline-root" in ${hsm.modulePath} (tokens present: "tierca")`,
    });
  });

  it('a wrong PIN while this process is logged in is wrong-pin, checked without an attempt at the token; nothing is created', async () => {
    // The token answers CKR_USER_ALREADY_LOGGED_IN to a second login of one process without looking
    // at the PIN, so the keystore compares it with the PIN of the login it holds.
    // (pkcs11-faults.test.ts checks a real refused attempt, in a process with no login.)
    const before = await countObjects();
    const err = await rejection(open({ pin: 'not-the-pin' }));
    expect(err).toBeInstanceOf(KeystoreError);
    expect(err).toMatchObject({ code: 'wrong-pin', message: expect.stringContaining('no attempt was made at the token') });
    expect(err.message).not.toContain('not-the-pin');
    expect(await countObjects()).toBe(before);
    await ks.signer('ca-p-256-pkcs1').sign(Buffer.from('the first instance is untouched'));
  });

  it('a missing key object is key-missing and leaves the keystore working', async () => {
    expect(await rejection(ks.load({ id: 'ca-gone', algorithm: 'P-256', sealed: null, pkcs11Label: 'tierca:ca-gone' }))).toMatchObject({
      code: 'key-missing', message: 'the token holds no private key of "ca-gone" labelled "tierca:ca-gone"',
    });
    expect(ks.has('ca-gone')).toBe(false);
    await ks.signer('ca-p-256-pkcs1').sign(Buffer.from('still fine'));
  });
});
