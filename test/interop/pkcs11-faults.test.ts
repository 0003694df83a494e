// Faults of the PKCS#11 keystore against a real token, in a process of its own (no login held before
// the first test): a wrong PIN is tried once and counted by the token; sessions closed, the module
// finalised or a key object destroyed under a running keystore fail the call in flight with a clear
// code and the next call reopens and goes on; a PIN refused at a re-login is never tried again.
import pkcs11js from 'pkcs11js';
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Pkcs11KeyStore } from '../../pki/keystore/pkcs11-keystore.ts';
import { freshSoftHsm, type SoftHsm } from '../helpers/softhsm.ts';

let hsm: SoftHsm;
/** A second handle on the same module, as another part of the process (or an operator's tool) would hold. */
let raw: pkcs11js.PKCS11;
let slot: Buffer;
const login = vi.spyOn(pkcs11js.PKCS11.prototype, 'C_Login');

beforeAll(async () => {
  hsm = await freshSoftHsm();
});
afterAll(() => {
  login.mockRestore();
  hsm?.cleanup();
});

const open = (over: Partial<Parameters<typeof Pkcs11KeyStore.open>[0]> = {}) =>
  Pkcs11KeyStore.open({ modulePath: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin, ...over });

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string; ckr?: string }> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

function tokenFlags(): number {
  const lib = new pkcs11js.PKCS11();
  lib.load(hsm.modulePath);
  try {
    lib.C_Initialize();
  } catch {
    // initialised by the keystore of this process already
  }
  const found = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trim() === hsm.tokenLabel)!;
  const flags = lib.C_GetTokenInfo(found).flags;
  lib.close();
  return flags;
}

const verifies = (spki: Buffer, data: Buffer, signature: Buffer) =>
  nodeVerify('sha256', data, { key: createPublicKey({ key: spki, format: 'der', type: 'spki' }), dsaEncoding: 'der' }, signature);

describe('a wrong PIN', () => {
  it('is wrong-pin after exactly one C_Login, and the token records the failed attempt', async () => {
    expect(tokenFlags() & pkcs11js.CKF_USER_PIN_COUNT_LOW).toBe(0);
    login.mockClear();
    const err = await rejection(open({ pin: 'not-the-pin' }));
    expect(err).toMatchObject({ name: 'KeystoreError', code: 'wrong-pin', ckr: 'CKR_PIN_INCORRECT' });
    expect(err.message).toBe('logging in to token "tierca": the token PIN is wrong (one login attempt was made)');
    expect(login).toHaveBeenCalledTimes(1);
    // SoftHSM2 keeps no retry counter to lock on, but flags the failed attempt until a good login.
    expect(tokenFlags() & pkcs11js.CKF_USER_PIN_COUNT_LOW).toBe(pkcs11js.CKF_USER_PIN_COUNT_LOW);
    const ks = await open();
    expect(tokenFlags() & pkcs11js.CKF_USER_PIN_COUNT_LOW).toBe(0);
    await ks.close();
  });
});

describe('a session lost while serving', () => {
  let ks: Pkcs11KeyStore;
  let spki: Buffer;
  let inFlight: (() => void) | null = null;

  beforeAll(async () => {
    ks = await open({ sessions: 2, hooks: { afterSignInit: () => inFlight?.() } });
    spki = (await ks.generate('ca-fault', 'P-256')).publicKeyInfo;
    raw = new pkcs11js.PKCS11();
    raw.load(hsm.modulePath);
    slot = raw.C_GetSlotList(true).find((s) => raw.C_GetTokenInfo(s).label.trim() === hsm.tokenLabel)!;
  });
  afterAll(async () => {
    await ks?.close();
    raw?.close();
  });

  const signOnce = async (text: string) => {
    const data = Buffer.from(text);
    const signature = await ks.signer('ca-fault').sign(data);
    expect(verifies(spki, data, signature)).toBe(true);
  };

  it('all sessions closed under it (the login goes with them): the next call opens a session, logs in once and signs', async () => {
    await Promise.all([signOnce('a'), signOnce('b')]);
    raw.C_CloseAllSessions(slot);
    login.mockClear();
    await signOnce('after close-all');
    expect(login).toHaveBeenCalledTimes(1);
    await signOnce('and again');
    expect(login).toHaveBeenCalledTimes(1);
  });

  it('the module finalised under it: the next call initialises it again, finds the token and the key, and signs', async () => {
    raw.C_Finalize();
    await signOnce('after finalize');
    expect(ks.seal(Buffer.from('x'), 'escrow:f').length).toBe(1 + 12 + 1 + 16);
  });

  it('a call in flight when the module goes fails with session-lost; the calls after it succeed', async () => {
    inFlight = () => {
      inFlight = null;
      raw.C_Finalize();
    };
    const err = await rejection(ks.signer('ca-fault').sign(Buffer.from('in flight')));
    expect(err).toMatchObject({ name: 'KeystoreError', code: 'session-lost', ckr: 'CKR_CRYPTOKI_NOT_INITIALIZED' });
    expect(err.message).toBe('signing with key "ca-fault": the token session was lost (CKR_CRYPTOKI_NOT_INITIALIZED); the next call reopens it');
    await signOnce('after the lost call');
  });

  it('the session closed between C_SignInit and C_Sign fails that call only', async () => {
    inFlight = () => {
      inFlight = null;
      raw.C_CloseAllSessions(slot);
    };
    const err = await rejection(ks.signer('ca-fault').sign(Buffer.from('in flight 2')));
    expect(err).toMatchObject({ code: 'session-lost', ckr: 'CKR_SESSION_HANDLE_INVALID' });
    await signOnce('after the closed session');
  });

  it('a key object destroyed under it is key-missing', async () => {
    const other = await ks.generate('ca-doomed', 'P-256');
    const session = raw.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    raw.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_LABEL, value: other.pkcs11Label! }]);
    for (const handle of raw.C_FindObjects(session, 4)) raw.C_DestroyObject(session, handle);
    raw.C_FindObjectsFinal(session);
    raw.C_CloseSession(session);
    // C_SignInit is refused for the stale handle; the key is looked for again (nothing was signed) and is gone.
    expect(await rejection(ks.signer('ca-doomed').sign(Buffer.from('x')))).toMatchObject({
      code: 'key-missing', message: 'the token holds no private key of "ca-doomed" labelled "tierca:ca-doomed"',
    });
    await signOnce('other keys still sign');
  });

  it('a PIN changed under it: the re-login is refused once, and never tried again', async () => {
    const session = raw.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    raw.C_SetPIN(session, hsm.pin, 'a-new-pin-set-by-the-so');
    raw.C_CloseAllSessions(slot);
    login.mockClear();
    const err = await rejection(ks.signer('ca-fault').sign(Buffer.from('x')));
    expect(err).toMatchObject({ code: 'wrong-pin', ckr: 'CKR_PIN_INCORRECT' });
    for (let i = 0; i < 3; i++) expect(await rejection(ks.signer('ca-fault').sign(Buffer.from('x')))).toMatchObject({ code: 'wrong-pin' });
    expect(() => ks.seal(Buffer.from('x'), 'escrow:y')).toThrow(expect.objectContaining({ code: 'wrong-pin' }));
    expect(login).toHaveBeenCalledTimes(1);
  });
});
