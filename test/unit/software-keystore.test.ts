import { describe, it, expect, beforeAll } from 'vitest';
import { createPrivateKey, createPublicKey, generateKeyPairSync, verify, constants, type KeyObject } from 'node:crypto';
import { SoftwareKeyStore, keyAad } from '../../pki/keystore/software-keystore.ts';
import { unlockKeystoreHeader, unsealBytes, sealBytes } from '../../pki/keystore/key-sealing.ts';
import { signatureAlgorithmIdentifier, type KeyAlgorithm } from '../../pki/algorithms.ts';
import { PkiError } from '../../pki/pki-error.ts';
import { sm2PrivateScalarOf } from '../../pki/sm2-key.ts';
import { SM2_SPKI_PREFIX, SM2_WITH_SM3_DER, smCryptoVerifies } from '../helpers/sm2-independent.ts';

const FAST = { N: 1024, r: 8, p: 1 };
const PASSPHRASE = 'tierca test passphrase';

async function thrown(fn: () => unknown): Promise<PkiError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PkiError);
    return err as PkiError;
  }
  throw new Error('expected a PkiError, nothing was thrown');
}

/** The secret numbers of a private key (EC scalar d; RSA d, p, q), from its JWK. */
function privateNumbers(key: KeyObject): Buffer[] {
  const jwk = key.export({ format: 'jwk' });
  return (['d', 'p', 'q'] as const).flatMap((k) => (jwk[k] ? [Buffer.from(jwk[k] as string, 'base64url')] : []));
}

/** Asserts the blob shows none of the private key's encodings. */
function expectNoPlaintext(sealed: Buffer, pkcs8: Buffer, key: KeyObject): void {
  expect(sealed.includes(pkcs8)).toBe(false);
  const text = sealed.toString('latin1');
  expect(text).not.toContain(pkcs8.toString('base64'));
  expect(text).not.toContain(pkcs8.toString('base64').slice(40, 80)); // nor a fragment of its base64
  expect(text).not.toContain(pkcs8.toString('hex').slice(0, 64));
  for (const secret of privateNumbers(key)) {
    expect(secret.length).toBeGreaterThanOrEqual(32);
    expect(sealed.includes(secret)).toBe(false);
    expect(sealed.includes(secret.subarray(0, 16))).toBe(false);
  }
}

describe('SoftwareKeyStore', () => {
  let keystore: SoftwareKeyStore;
  let header: string;
  let kek: Buffer;

  beforeAll(async () => {
    ({ keystore, header } = await SoftwareKeyStore.initialise({ passphrase: PASSPHRASE, kdf: FAST }));
    kek = await unlockKeystoreHeader({ passphrase: PASSPHRASE, header });
  });

  it('is software custody', () => {
    expect(keystore.custody).toBe('software');
  });

  const cases: Array<[KeyAlgorithm, string, string]> = [
    ['P-256', 'ec', 'sha256'],
    ['P-384', 'ec', 'sha384'],
    ['RSA-2048', 'rsa', 'sha256'],
  ];
  for (const [algorithm, keyType, digest] of cases) {
    it(`${algorithm}: generates, seals, signs; a fresh unlock loads the sealed key and signs the same key`, async () => {
      const id = `ca-${algorithm}`;
      const generated = await keystore.generate(id, algorithm);
      expect(generated.pkcs11Label).toBeNull();
      expect(keystore.has(id)).toBe(true);
      const publicKey = createPublicKey({ key: generated.publicKeyInfo, format: 'der', type: 'spki' });
      expect(publicKey.asymmetricKeyType).toBe(keyType);

      const signer = keystore.signer(id);
      expect(signer.publicKeyInfo.equals(generated.publicKeyInfo)).toBe(true);
      expect(signer.signatureAlgorithm.equals(signatureAlgorithmIdentifier(algorithm))).toBe(true);
      const data = Buffer.from(`to be signed by ${id}`);
      const signature = await signer.sign(data);
      expect(verify(digest, data, { key: publicKey, dsaEncoding: 'der' }, signature)).toBe(true);
      expect(verify(digest, Buffer.from('other data'), { key: publicKey, dsaEncoding: 'der' }, signature)).toBe(false);

      // What the database holds does not show the key.
      const sealed = generated.sealed!;
      const pkcs8 = unsealBytes({ kek, sealed, aad: `key:${id}` });
      const privateKey = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
      expect(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }).equals(generated.publicKeyInfo)).toBe(true);
      expectNoPlaintext(sealed, pkcs8, privateKey);

      // Another process: unlock from the header, load the stored row, sign.
      const reopened = await SoftwareKeyStore.unlock({ passphrase: PASSPHRASE, header });
      expect(reopened.has(id)).toBe(false);
      await reopened.load({ id, algorithm, sealed, pkcs11Label: null });
      expect(reopened.has(id)).toBe(true);
      const again = await reopened.signer(id).sign(data);
      expect(verify(digest, data, { key: publicKey, dsaEncoding: 'der' }, again)).toBe(true);
    });
  }

  it('RSA signs with PSS when asked, and the signer names RSASSA-PSS', async () => {
    await keystore.generate('rsa-pss', 'RSA-2048');
    const signer = keystore.signer('rsa-pss', { rsaPadding: 'pss' });
    expect(signer.signatureAlgorithm.equals(signatureAlgorithmIdentifier('RSA-2048', 'pss'))).toBe(true);
    const data = Buffer.from('pss');
    const signature = await signer.sign(data);
    const key = createPublicKey({ key: signer.publicKeyInfo, format: 'der', type: 'spki' });
    expect(verify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature)).toBe(true);
    expect(verify('sha256', data, { key, padding: constants.RSA_PKCS1_PADDING }, signature)).toBe(false);
  });

  it('loads an imported key sealed under the KEK, and the blob does not contain its PKCS#8, base64 or scalar', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
    const sealed = sealBytes({ kek, plaintext: pkcs8, aad: keyAad('imported') });
    expectNoPlaintext(sealed, pkcs8, privateKey);
    await keystore.load({ id: 'imported', algorithm: 'P-256', sealed, pkcs11Label: null });
    expect(keystore.signer('imported').publicKeyInfo.equals(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }))).toBe(true);
  });

  it('refuses a sealed key moved to another id (AAD mismatch) and leaves nothing loaded', async () => {
    const { sealed } = await keystore.generate('root', 'P-256');
    const other = await SoftwareKeyStore.unlock({ passphrase: PASSPHRASE, header });
    const err = await thrown(() => other.load({ id: 'intermediate', algorithm: 'P-256', sealed, pkcs11Label: null }));
    expect(err.code).toBe('wrong-passphrase');
    expect(err.message).toBe(
      'the sealed data for "key:intermediate" failed authentication (wrong keystore passphrase, or the blob was altered or belongs to another id)',
    );
    expect(other.has('intermediate')).toBe(false);
  });

  it('refuses a sealed key with a flipped byte', async () => {
    const { sealed } = await keystore.generate('flip', 'P-256');
    const other = await SoftwareKeyStore.unlock({ passphrase: PASSPHRASE, header });
    for (const at of [1, 20, sealed!.length - 1]) {
      const tampered = Buffer.from(sealed!);
      tampered[at] ^= 0x80;
      const err = await thrown(() => other.load({ id: 'flip', algorithm: 'P-256', sealed: tampered, pkcs11Label: null }));
      expect(err.code).toBe('wrong-passphrase');
    }
    expect(other.has('flip')).toBe(false);
  });

  it('refuses a stored row whose algorithm column does not match the sealed key', async () => {
    const { sealed } = await keystore.generate('mislabelled', 'P-256');
    const other = await SoftwareKeyStore.unlock({ passphrase: PASSPHRASE, header });
    const err = await thrown(() => other.load({ id: 'mislabelled', algorithm: 'P-384', sealed, pkcs11Label: null }));
    expect([err.code, err.message]).toEqual(['malformed', 'key "mislabelled" is stored as P-384 but holds P-256 key']);
    expect(other.has('mislabelled')).toBe(false);
  });

  it('refuses a wrong passphrase with the exact code and message', async () => {
    const err = await thrown(() => SoftwareKeyStore.unlock({ passphrase: 'not the passphrase', header }));
    expect(err.code).toBe('wrong-passphrase');
    expect(err.message).toBe('the keystore passphrase is wrong');
  });

  it('refuses a header that is not JSON as malformed', async () => {
    const err = await thrown(() => SoftwareKeyStore.unlock({ passphrase: PASSPHRASE, header: 'not json' }));
    expect([err.code, err.message]).toEqual(['malformed', 'the keystore header is not valid JSON']);
  });

  it('SM2: generates, seals without showing the key, loads in a fresh unlock, and signs SM2 with the standard identity', async () => {
    const generated = await keystore.generate('ca-sm2', 'SM2');
    expect(generated.publicKeyInfo.subarray(0, SM2_SPKI_PREFIX.length)).toEqual(SM2_SPKI_PREFIX);
    const signer = keystore.signer('ca-sm2');
    expect(signer.signatureAlgorithm).toEqual(SM2_WITH_SM3_DER);
    expect(signer.publicKeyInfo).toEqual(generated.publicKeyInfo);
    expect(signer.inMemoryKey?.algorithm).toBe('SM2');

    const sealed = generated.sealed!;
    const pkcs8 = unsealBytes({ kek, sealed, aad: keyAad('ca-sm2') });
    const scalar = Buffer.from(sm2PrivateScalarOf(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).toString(16).padStart(64, '0'), 'hex');
    expect(sealed.includes(pkcs8)).toBe(false);
    expect(sealed.includes(scalar.subarray(0, 16))).toBe(false);
    expect(sealed.toString('latin1')).not.toContain(pkcs8.toString('base64').slice(40, 80));

    const reopened = await SoftwareKeyStore.unlock({ passphrase: PASSPHRASE, header });
    await reopened.load({ id: 'ca-sm2', algorithm: 'SM2', sealed, pkcs11Label: null });
    const data = Buffer.from('to be signed by ca-sm2');
    for (const s of [signer, reopened.signer('ca-sm2')]) {
      const signature = await s.sign(data);
      expect(smCryptoVerifies({ publicKeyInfo: generated.publicKeyInfo, data, signature })).toBe(true);
      expect(smCryptoVerifies({ publicKeyInfo: generated.publicKeyInfo, data, signature, userId: '' })).toBe(false);
    }
    const err = await thrown(() => reopened.load({ id: 'ca-sm2', algorithm: 'P-256', sealed, pkcs11Label: null }));
    expect([err.code, err.message]).toEqual(['malformed', 'key "ca-sm2" is stored as P-256 but holds SM2 key']);
  });

  it('refuses to generate over an id it already holds, and to sign with a key it does not hold', async () => {
    await keystore.generate('dup', 'P-256');
    expect(await thrown(() => keystore.generate('dup', 'P-256'))).toMatchObject({
      code: 'invalid-argument',
      message: 'a key with id "dup" is already held',
    });
    expect(await thrown(() => keystore.signer('absent'))).toMatchObject({
      code: 'invalid-argument',
      message: 'key "absent" is not loaded in the keystore',
    });
  });

  it('refuses to load a row without a sealed key (PKCS#11 custody)', async () => {
    const err = await thrown(() => keystore.load({ id: 'hsm', algorithm: 'P-256', sealed: null, pkcs11Label: 'hsm' }));
    expect([err.code, err.message]).toEqual(['invalid-argument', 'key "hsm" is not in software custody (no sealed PKCS#8)']);
  });

  it('exposes no way to read a private key back', () => {
    const names = new Set<string>();
    for (let o: object | null = keystore; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
      for (const name of Object.getOwnPropertyNames(o)) names.add(name);
    }
    expect([...names].sort()).toEqual(['constructor', 'custody', 'generate', 'has', 'load', 'seal', 'signer', 'unseal']);
    expect(JSON.stringify(keystore)).toBe('{"custody":"software"}');
  });

  describe('seal / unseal for escrowed secrets', () => {
    it('round-trips under the KEK bound to the aad, and refuses another aad', async () => {
      const secret = Buffer.from('escrowed user key bytes');
      const sealed = keystore.seal(secret, 'escrow:user-42');
      expect(sealed.includes(secret)).toBe(false);
      expect(keystore.unseal(sealed, 'escrow:user-42').equals(secret)).toBe(true);
      // another process with the same passphrase opens it too
      const reopened = await SoftwareKeyStore.unlock({ passphrase: PASSPHRASE, header });
      expect(reopened.unseal(sealed, 'escrow:user-42').equals(secret)).toBe(true);
      expect((await thrown(() => keystore.unseal(sealed, 'escrow:user-43'))).code).toBe('wrong-passphrase');
    });

    it('keeps the key: and keystore: aad prefixes for itself, so a caller cannot mint a CA key blob', async () => {
      for (const aad of ['key:root', 'keystore:check']) {
        expect(await thrown(() => keystore.seal(Buffer.from('x'), aad))).toMatchObject({
          code: 'invalid-argument',
          message: 'aad prefixes key:, keystore: are reserved for the keystore',
        });
      }
    });
  });
});
