/**
 * The key-management centre (issue 16; docs/decisions/0022-kmc.md): it makes the key pairs of
 * encryption certificates, escrows each private key wrapped (RFC 5649) under a master key that is
 * itself sealed by the keystore, keeps every subject's key history, gives escrowed keys back to a
 * recovery the RA has approved, and re-wraps everything under a new master key — resumably. The CA
 * sees only the public half it certifies; nothing here returns a key to anyone but its caller.
 */
import { createPrivateKey, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import type { KeyAlgorithm } from '../../pki/algorithms.ts';
import { generateKeyPair, publicKeyInfoOf } from '../../pki/key-pair.ts';
import type { KeyStore } from '../../pki/keystore/keystore.ts';
import { unwrapKey, wrapKey } from '../../pki/key-wrap.ts';
import { sm4UnwrapKey, sm4WrapKey } from '../../pki/sm4-key-wrap.ts';
import { PkiError } from '../../pki/pki-error.ts';
import { asSm2KeyObject } from '../../pki/sm2-key.ts';
import type { Clock } from '../clock.ts';
import { TiercaError } from '../errors.ts';
import type { EscrowedKeyRecord, KmcStore, MasterKeyRecord } from './kmc-store.ts';

/** An escrowed key as the history lists it: no secret. */
export type EscrowedKeyView = Omit<EscrowedKeyRecord, 'wrapped'>;

export interface KmcDeps {
  store: KmcStore;
  keystore: Pick<KeyStore, 'seal' | 'unseal'>;
  clock: Clock;
  random?: (n: number) => Buffer;
  /** The cipher of new master keys (default AES-256); each master key keeps the cipher it was made for. */
  wrap?: WrapCipher;
  /** Test-only: called after each key is re-wrapped during a master-key rotation (a throw stops it there). */
  afterRewrap?: (keyId: string) => void;
}

const masterAad = (id: string) => `kmc-master:${id}`;

/** RFC 5649 key wrap over AES-256 (OpenSSL's id-aes256-wrap-pad) or over SM4 (pki/sm4-key-wrap.ts). */
export type WrapCipher = 'aes-256' | 'sm4';

/**
 * A master key's cipher is written into its id (`kmc-master-sm4-…`; AES-256 ids have no tag, as
 * before SM4 existed), so every escrowed row, through its master key id, says how it was wrapped.
 */
const SM4_MASTER_PREFIX = 'kmc-master-sm4-';
const cipherOfMaster = (id: string): WrapCipher => (id.startsWith(SM4_MASTER_PREFIX) ? 'sm4' : 'aes-256');
const MASTER_KEY_OCTETS: Record<WrapCipher, number> = { 'aes-256': 32, sm4: 16 };
const wrapUnder = (id: string, key: Buffer, plain: Buffer): Buffer => (cipherOfMaster(id) === 'sm4' ? sm4WrapKey(key, plain) : wrapKey(key, plain));
const unwrapUnder = (id: string, key: Buffer, wrapped: Buffer): Buffer => (cipherOfMaster(id) === 'sm4' ? sm4UnwrapKey(key, wrapped) : unwrapKey(key, wrapped));
const REWRAP_BATCH = 100;

export class KeyManagementCentre {
  /** Opened master keys by id (in memory only; each opened once from its sealed row). */
  private readonly opened = new Map<string, Buffer>();

  constructor(private readonly deps: KmcDeps) {}

  /**
   * Makes a key pair of `algorithm` for `subjectId` and escrows its private key. Returns the key's
   * id and public key for the CA to certify, and the private key for delivery to the holder in this
   * same request only.
   */
  async generate(p: { subjectId: string; algorithm: KeyAlgorithm }): Promise<{ keyId: string; publicKeyInfo: Buffer; privateKey: KeyObject }> {
    const { privateKey } = await generateKeyPair(p.algorithm);
    const master = await this.activeMaster();
    const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
    const keyId = `kmc-${randomUUID()}`;
    try {
      await this.deps.store.insertKey({
        id: keyId, subjectId: p.subjectId, algorithm: p.algorithm, publicKeyInfo: publicKeyInfoOf(privateKey), wrapped: wrapUnder(master.id, master.key, pkcs8),
        masterKeyId: master.id, issuerId: null, serial: null, createdAt: this.deps.clock.now(),
      });
    } finally {
      pkcs8.fill(0);
    }
    return { keyId, publicKeyInfo: publicKeyInfoOf(privateKey), privateKey };
  }

  /** Records the certificate the CA issued for escrowed key `keyId`. */
  async bind(keyId: string, issuerId: string, serial: string): Promise<void> {
    if (!(await this.deps.store.bind(keyId, issuerId, serial))) throw new TiercaError('conflict', `escrowed key ${keyId} is unknown or already bound`);
  }

  /**
   * A renewal kept the escrowed key: the key now belongs to the successor certificate (the key
   * history lists a key once, by the certificate that carries it now).
   */
  async rebind(keyId: string, from: { issuerId: string; serial: string }, to: { issuerId: string; serial: string }): Promise<void> {
    if (!(await this.deps.store.rebind(keyId, from, to))) throw new TiercaError('conflict', `escrowed key ${keyId} is not bound to ${from.issuerId}/${from.serial}`);
  }

  /** Every escrowed key of a subject, oldest first, without its secret. */
  async history(subjectId: string): Promise<EscrowedKeyView[]> {
    return (await this.deps.store.keysOf(subjectId)).map(({ wrapped: _wrapped, ...view }) => view);
  }

  async keyOfCertificate(issuerId: string, serial: string): Promise<EscrowedKeyView | undefined> {
    const row = await this.deps.store.keyOfCertificate(issuerId, serial);
    if (!row) return undefined;
    const { wrapped: _wrapped, ...view } = row;
    return view;
  }

  /**
   * The escrowed private key `keyId`, unwrapped — for a recovery the RA has approved, never otherwise.
   * A wrapped key that fails its integrity check, or that opens to another key than the row's public
   * key (rows swapped), is `escrow-tampered` and nothing is returned.
   */
  async recover(keyId: string): Promise<KeyObject> {
    const row = await this.deps.store.key(keyId);
    if (!row) throw new TiercaError('not-found', `no escrowed key ${keyId}`);
    const master = await this.masterKey(row.masterKeyId);
    let pkcs8: Buffer | undefined;
    try {
      pkcs8 = unwrapUnder(row.masterKeyId, master, row.wrapped);
      const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
      const privateKey = row.algorithm === 'SM2' ? asSm2KeyObject(key) : key;
      if (!publicKeyInfoOf(privateKey).equals(row.publicKeyInfo)) throw new PkiError('bad-signature', 'the unwrapped key is not the key of this row');
      return privateKey;
    } catch (err) {
      if (err instanceof TiercaError) throw err;
      throw new TiercaError('escrow-tampered', `escrowed key ${keyId} failed its integrity check: nothing was recovered`, { cause: err });
    } finally {
      pkcs8?.fill(0);
    }
  }

  /**
   * Re-wraps every escrowed key under a new master key (`tierca kmc rotate-master`). Resumable: the
   * old key is marked `retiring` with the new one `active` in one transaction, each key moves in an
   * update of its own (only if still under the old key), and the old key is `retired` when none is
   * left under it — a run cut short anywhere is finished by the next, and no key is ever lost.
   */
  async rotateMaster(): Promise<{ masterKeyId: string; rewrapped: number }> {
    const { store } = this.deps;
    let masters = await store.masterKeys();
    if (!masters.some((m) => m.status === 'retiring')) {
      const current = masters.find((m) => m.status === 'active');
      const next = await this.newMasterRecord();
      await store.transaction(async (tx) => {
        if (current) await tx.setMasterKeyStatus(current.id, 'retiring');
        await tx.insertMasterKey(next);
      });
      masters = await store.masterKeys();
    }
    const active = masters.find((m) => m.status === 'active')!;
    const target = await this.masterKey(active.id);
    let rewrapped = 0;
    for (const old of masters.filter((m) => m.status === 'retiring')) {
      const source = await this.masterKey(old.id);
      for (let batch = await store.keysUnder(old.id, REWRAP_BATCH); batch.length > 0; batch = await store.keysUnder(old.id, REWRAP_BATCH)) {
        for (const row of batch) {
          const pkcs8 = unwrapUnder(old.id, source, row.wrapped);
          try {
            if (await store.rewrap(row.id, old.id, active.id, wrapUnder(active.id, target, pkcs8))) rewrapped++;
          } finally {
            pkcs8.fill(0);
          }
          this.deps.afterRewrap?.(row.id);
        }
      }
      await store.setMasterKeyStatus(old.id, 'retired');
    }
    return { masterKeyId: active.id, rewrapped };
  }

  /** What a rotation would do now: the active master key (none before the first key) and how many keys it would re-wrap. */
  async rotationPlan(): Promise<{ masterKeyId: string | null; keys: number }> {
    const active = (await this.deps.store.masterKeys()).find((m) => m.status === 'active');
    return { masterKeyId: active?.id ?? null, keys: await this.deps.store.countKeys() };
  }

  /** The active master key, made (and sealed) on first use. */
  private async activeMaster(): Promise<{ id: string; key: Buffer }> {
    let active = (await this.deps.store.masterKeys()).find((m) => m.status === 'active');
    if (!active) {
      active = await this.newMasterRecord();
      await this.deps.store.insertMasterKey(active).catch(async (err: unknown) => {
        // Another instance made one at the same moment: use whichever is active now.
        if (!(await this.deps.store.masterKeys()).some((m) => m.status === 'active')) throw err;
      });
      active = (await this.deps.store.masterKeys()).find((m) => m.status === 'active')!;
    }
    return { id: active.id, key: await this.masterKey(active.id) };
  }

  private async newMasterRecord(): Promise<MasterKeyRecord> {
    const cipher = this.deps.wrap ?? 'aes-256';
    const id = `${cipher === 'sm4' ? SM4_MASTER_PREFIX : 'kmc-master-'}${randomUUID()}`;
    const key = Buffer.from((this.deps.random ?? randomBytes)(MASTER_KEY_OCTETS[cipher]));
    try {
      return { id, sealed: this.deps.keystore.seal(key, masterAad(id)), status: 'active', createdAt: this.deps.clock.now() };
    } finally {
      key.fill(0);
    }
  }

  private async masterKey(id: string): Promise<Buffer> {
    const cached = this.opened.get(id);
    if (cached) return cached;
    const record = (await this.deps.store.masterKeys()).find((m) => m.id === id);
    if (!record) throw new TiercaError('escrow-tampered', `master key ${id} of an escrowed key is missing`);
    const key = this.deps.keystore.unseal(record.sealed, masterAad(id));
    this.opened.set(id, key);
    return key;
  }
}
