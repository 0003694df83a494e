/**
 * CA key custody in a PKCS#11 token (an HSM; SoftHSM2 in tests): keys are generated inside the token
 * as CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, non-extractable objects, one pair per key id, and sign
 * there. Nothing of the private key is ever read: the database row keeps only the object label
 * (`keys.pkcs11_label`; `keys.sealed` stays null).
 *
 * Signatures: ECDSA P-256/P-384 with CKM_ECDSA over a digest Node computes (SHA-256 / SHA-384,
 * RFC 5758 §3.2), the r ‖ s turned into a DER ECDSA-Sig-Value; RSA with CKM_SHA256_RSA_PKCS
 * (PKCS#1 v1.5) or CKM_SHA256_RSA_PKCS_PSS with SHA-256, MGF1-SHA-256 and a 32-octet salt — the
 * parameters pki/algorithms.ts puts in the certificate (RFC 4055 §3.1). Signers carry no
 * `inMemoryKey`, so the signing threads sign them on the calling thread, through C_SignAsync
 * (docs/decisions/0018-pkcs11-sessions.md).
 *
 * Sealing (escrowed user keys): AES-256-GCM inside the token under one non-extractable AES key
 * (pkcs11-sealing.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import type * as Pkcs11Js from 'pkcs11js';
import { signatureAlgorithmIdentifier, digestFor, type KeyAlgorithm, type RsaPadding } from '../algorithms.ts';
import { PkiError } from '../pki-error.ts';
import type { Signer } from '../signer.ts';
import type { GeneratedKey, KeyLocation, KeyStore, StoredKey } from './keystore.ts';
import { ckrOf, KeystoreError } from './pkcs11-errors.ts';
import { booleansOf, findObjects, findOne, keyPairTemplates, tokenIdOf, tokenLabelOf } from './pkcs11-objects.ts';
import { ecdsaSigValue, ecPublicKeyInfo, keySpecOf, rsaPublicKeyInfo, type Pkcs11KeySpec } from './pkcs11-public-key.ts';
import { Pkcs11SessionPool, type Pkcs11PoolParams } from './pkcs11-session-pool.ts';
import { Pkcs11Sealer } from './pkcs11-sealing.ts';

type Lib = Pkcs11Js.PKCS11;

const STALE_HANDLE = new Set(['CKR_OBJECT_HANDLE_INVALID', 'CKR_KEY_HANDLE_INVALID']);

/** How a PKCS#11 keystore is opened. */
export interface Pkcs11KeyStoreParams extends Pkcs11PoolParams {
  /** IV source for sealing; default crypto.randomBytes. */
  random?: (n: number) => Buffer;
  /**
   * Test-only fault points: `afterSignInit` runs between C_SignInit and C_SignAsync of every
   * signature (a test finalises the module or closes the session there to lose it mid-call).
   */
  hooks?: { afterSignInit?(): void | Promise<void> };
}

interface HeldKey {
  readonly id: string;
  readonly algorithm: KeyAlgorithm;
  readonly spec: Pkcs11KeySpec;
  readonly label: string;
  readonly publicKeyInfo: Buffer;
  handle: Buffer | null;
  handleEpoch: number;
}

function checkId(id: string): void {
  if (typeof id !== 'string' || id.length === 0 || id.length > 200 || /[\u0000-\u001f\u007f]/.test(id)) {
    throw new PkiError('invalid-argument', 'a key id must be 1–200 printable characters');
  }
}

/** CA key custody in a PKCS#11 token; see the file comment. */
export class Pkcs11KeyStore implements KeyStore {
  readonly custody = 'pkcs11' as const;
  readonly #pool: Pkcs11SessionPool;
  readonly #sealer: Pkcs11Sealer;
  readonly #hooks: Pkcs11KeyStoreParams['hooks'];
  readonly #keys = new Map<string, HeldKey>();
  readonly #signers = new Map<string, Signer>();

  private constructor(pool: Pkcs11SessionPool, params: Pkcs11KeyStoreParams) {
    this.#pool = pool;
    this.#hooks = params.hooks;
    this.#sealer = new Pkcs11Sealer(pool, params.random ?? randomBytes);
  }

  /**
   * Loads the module, finds the token labelled `tokenLabel`, logs in once with `pin`. Faults are
   * KeystoreError: 'module-missing', 'token-absent', 'wrong-pin' (one attempt made, no retry),
   * 'pin-locked'. Nothing is created in the token here.
   */
  static async open(params: Pkcs11KeyStoreParams): Promise<Pkcs11KeyStore> {
    return new Pkcs11KeyStore(await Pkcs11SessionPool.open(params), params);
  }

  async generate(id: string, algorithm: KeyAlgorithm): Promise<GeneratedKey> {
    checkId(id);
    const spec = keySpecOf(algorithm);
    if (this.#keys.has(id)) throw new PkiError('invalid-argument', `a key with id "${id}" is already held`);
    const label = tokenLabelOf(id);
    const ck = this.#pool.ck;
    const held = await this.#pool.run(`generating key "${id}" in the token`, async (lib, session) => {
      for (const cls of [ck.CKO_PRIVATE_KEY, ck.CKO_PUBLIC_KEY]) {
        if (findObjects(lib, ck, session, cls, label).length) throw new PkiError('invalid-argument', `the token already holds an object labelled "${label}"`);
      }
      const t = keyPairTemplates(ck, spec, label);
      const pair = await lib.C_GenerateKeyPairAsync(session, { mechanism: t.mechanism }, t.publicKey, t.privateKey);
      try {
        // A token that ignored the template must not leave an exportable CA key behind.
        const [sensitive, extractable, token, priv] = booleansOf(lib, session, pair.privateKey, [ck.CKA_SENSITIVE, ck.CKA_EXTRACTABLE, ck.CKA_TOKEN, ck.CKA_PRIVATE]);
        if (!sensitive || extractable || !token || !priv) throw new KeystoreError('token-error', `the token did not make key "${id}" sensitive, private and non-extractable`);
        return this.#hold(id, algorithm, spec, label, publicKeyInfoOf(lib, ck, session, pair.publicKey, spec), pair.privateKey);
      } catch (err) {
        for (const object of [pair.privateKey, pair.publicKey]) {
          try {
            lib.C_DestroyObject(session, object);
          } catch {
            // best effort: the error below says what happened
          }
        }
        throw err;
      }
    });
    return { publicKeyInfo: held.publicKeyInfo, sealed: null, pkcs11Label: label };
  }

  async load(key: StoredKey): Promise<void> {
    checkId(key.id);
    const spec = keySpecOf(key.algorithm);
    if (!key.pkcs11Label) throw new PkiError('invalid-argument', `key "${key.id}" is not in PKCS#11 custody (no token label)`);
    const label = key.pkcs11Label;
    const ck = this.#pool.ck;
    await this.#pool.run(`loading key "${key.id}" from the token`, (lib, session) => {
      const priv = findOne(lib, ck, session, ck.CKO_PRIVATE_KEY, label, `private key of "${key.id}"`);
      const pub = findOne(lib, ck, session, ck.CKO_PUBLIC_KEY, label, `public key of "${key.id}"`);
      const [keyType] = lib.C_GetAttributeValue(session, priv, [{ type: ck.CKA_KEY_TYPE }]);
      const expected = spec.kind === 'ec' ? ck.CKK_EC : ck.CKK_RSA;
      if (ulongOf(keyType.value) !== expected) {
        throw new PkiError('malformed', `key "${key.id}" is stored as ${key.algorithm} but the token object is another kind of key`);
      }
      const spki = publicKeyInfoOf(lib, ck, session, pub, spec);
      if (spec.kind === 'rsa' && rsaBits(lib, ck, session, pub) !== spec.bits) {
        throw new PkiError('malformed', `key "${key.id}" is stored as ${key.algorithm} but the token holds another RSA size`);
      }
      this.#hold(key.id, key.algorithm, spec, label, spki, priv);
    });
    for (const cached of [...this.#signers.keys()]) if (cached.startsWith(`${key.id}\0`)) this.#signers.delete(cached);
  }

  has(id: string): boolean {
    return this.#keys.has(id);
  }

  signer(id: string, options: { rsaPadding?: RsaPadding } = {}): Signer {
    const held = this.#keys.get(id);
    if (!held) throw new PkiError('invalid-argument', `key "${id}" is not loaded in the keystore`);
    const rsaPadding = options.rsaPadding ?? 'pkcs1';
    const cacheKey = `${id}\0${rsaPadding}`;
    let signer = this.#signers.get(cacheKey);
    if (!signer) {
      signer = this.#makeSigner(held, rsaPadding);
      this.#signers.set(cacheKey, signer);
    }
    return signer;
  }

  seal(plaintext: Buffer, aad: string): Buffer {
    return this.#sealer.seal(plaintext, aad);
  }

  unseal(sealed: Buffer, aad: string): Buffer {
    return this.#sealer.unseal(sealed, aad);
  }

  location(id: string): KeyLocation | null {
    const held = this.#keys.get(id);
    if (!held) return null;
    const token = this.#pool.location();
    return {
      custody: 'pkcs11', modulePath: token.modulePath, tokenLabel: token.tokenLabel, tokenSerial: token.tokenSerial, slot: token.slot,
      objectLabel: held.label, objectId: tokenIdOf(held.label).toString('hex'),
    };
  }

  /** C_GetTokenInfo flags now (CKF_USER_PIN_COUNT_LOW after a refused PIN, CKF_USER_PIN_LOCKED…). */
  tokenFlags(): number {
    return this.#pool.location().flags;
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }

  #hold(id: string, algorithm: KeyAlgorithm, spec: Pkcs11KeySpec, label: string, publicKeyInfo: Buffer, handle: Buffer): HeldKey {
    const held: HeldKey = { id, algorithm, spec, label, publicKeyInfo, handle, handleEpoch: this.#pool.epoch };
    this.#keys.set(id, held);
    return held;
  }

  /** The private key handle, found again after the module was re-initialised or a handle refused. */
  #handleOf(held: HeldKey, lib: Lib, session: Buffer): Buffer {
    if (held.handle && held.handleEpoch === this.#pool.epoch) return held.handle;
    const ck = this.#pool.ck;
    held.handle = findOne(lib, ck, session, ck.CKO_PRIVATE_KEY, held.label, `private key of "${held.id}"`);
    held.handleEpoch = this.#pool.epoch;
    return held.handle;
  }

  #makeSigner(held: HeldKey, rsaPadding: RsaPadding): Signer {
    const ck = this.#pool.ck;
    const { spec } = held;
    const digest = digestFor(held.algorithm);
    const mechanism: Pkcs11Js.Mechanism = spec.kind === 'ec'
      ? { mechanism: ck.CKM_ECDSA }
      : rsaPadding === 'pss'
        ? { mechanism: ck.CKM_SHA256_RSA_PKCS_PSS, parameter: { type: ck.CK_PARAMS_RSA_PSS, hashAlg: ck.CKM_SHA256, mgf: ck.CKG_MGF1_SHA256, saltLen: 32 } as Pkcs11Js.RsaPSS }
        : { mechanism: ck.CKM_SHA256_RSA_PKCS };
    const outLength = spec.kind === 'ec' ? 2 * spec.size : spec.bits / 8;
    const hooks = this.#hooks;
    return {
      signatureAlgorithm: signatureAlgorithmIdentifier(held.algorithm, rsaPadding),
      publicKeyInfo: held.publicKeyInfo,
      sign: (data: Uint8Array): Promise<Buffer> =>
        this.#pool.run(`signing with key "${held.id}"`, async (lib, session) => {
          // CKM_ECDSA signs a digest given to it (PKCS#11 v2.40 §2.3.1); the RSA mechanisms hash themselves.
          const input = spec.kind === 'ec' ? createHash(digest).update(data).digest() : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
          try {
            lib.C_SignInit(session, mechanism, this.#handleOf(held, lib, session));
          } catch (err) {
            // A stale handle (objects re-numbered by the token) is found again once: nothing was signed yet.
            if (!STALE_HANDLE.has(ckrOf(err) ?? '')) throw err;
            held.handle = null;
            lib.C_SignInit(session, mechanism, this.#handleOf(held, lib, session));
          }
          await hooks?.afterSignInit?.();
          const signature = await lib.C_SignAsync(session, input, Buffer.alloc(outLength));
          return spec.kind === 'ec' ? ecdsaSigValue(signature, spec) : Buffer.from(signature);
        }),
    };
  }
}

function publicKeyInfoOf(lib: Lib, ck: typeof Pkcs11Js, session: Buffer, object: Buffer, spec: Pkcs11KeySpec): Buffer {
  if (spec.kind === 'ec') {
    const [params, point] = lib.C_GetAttributeValue(session, object, [{ type: ck.CKA_EC_PARAMS }, { type: ck.CKA_EC_POINT }]);
    if (!params.value.equals(spec.ecParams)) throw new PkiError('malformed', 'the token key is on another curve than its stored algorithm');
    return ecPublicKeyInfo(point.value, spec);
  }
  const [modulus, exponent] = lib.C_GetAttributeValue(session, object, [{ type: ck.CKA_MODULUS }, { type: ck.CKA_PUBLIC_EXPONENT }]);
  return rsaPublicKeyInfo(modulus.value, exponent.value);
}

function rsaBits(lib: Lib, ck: typeof Pkcs11Js, session: Buffer, object: Buffer): number {
  const [modulus] = lib.C_GetAttributeValue(session, object, [{ type: ck.CKA_MODULUS }]);
  let i = 0;
  while (i < modulus.value.length && modulus.value[i] === 0) i++;
  return (modulus.value.length - i) * 8;
}

/** A CK_ULONG attribute value (native byte order: little-endian on the machines tierca runs on). */
function ulongOf(value: Buffer): number {
  return value.length === 8 ? Number(value.readBigUInt64LE(0)) : value.readUInt32LE(0);
}
