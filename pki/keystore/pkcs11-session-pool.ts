/**
 * One logged-in connection to a PKCS#11 token: the module loaded once per process, the token found
 * by label, one login, and a pool of sessions of which each call takes one for itself
 * (docs/decisions/0018-pkcs11-sessions.md says why).
 *
 * PKCS#11 v2.40 §6.7: a session has at most one active operation, and must not be used by two
 * threads at once; the login belongs to the application and the token, shared by all its sessions,
 * and ends when the last session closes. So: an "anchor" session that does nothing but hold the
 * login, and up to `sessions` working sessions, each lent to one call at a time (C_SignInit then
 * C_SignAsync, which runs on libuv's thread pool). Calls beyond that wait in FIFO order.
 *
 * Faults: a call whose session, login or module went away fails with KeystoreError('session-lost')
 * and its session is dropped; the next call re-initialises the module if needed, finds the token
 * again and logs in again with the PIN it was opened with — once: a PIN refused then makes every
 * later call fail with 'wrong-pin' without another attempt, so the token's lockout counter only
 * ever sees the attempts an operator made. Any failed call drops its session (an operation left
 * half-done must not poison the next call); sessions are cheap to open.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type * as Pkcs11Js from 'pkcs11js';
import { ckrOf, KeystoreError, tokenFault } from './pkcs11-errors.ts';
import { PkiError } from '../pki-error.ts';

type Lib = Pkcs11Js.PKCS11;
type Ck = typeof Pkcs11Js;

/** What a session pool is opened with. */
export interface Pkcs11PoolParams {
  /** Path of the PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  modulePath: string;
  /** CKA token label (blank padding ignored). */
  tokenLabel: string;
  /** The user PIN, from the caller (environment, PIN file or prompt — never argv). */
  pin: string;
  /** Working sessions at most; default 4 (libuv's default thread-pool size). */
  sessions?: number;
}

/** Where the token was found: for `tierca keystore status`. */
export interface TokenLocation {
  modulePath: string;
  tokenLabel: string;
  /** Slot ID in hex. */
  slot: string;
  tokenSerial: string;
  /** C_GetTokenInfo flags at the time of the call (CKF_USER_PIN_COUNT_LOW etc.). */
  flags: number;
}

interface LoadedModule {
  ck: Ck;
  lib: Lib;
  refs: number;
  /**
   * SHA-256 of the PIN each token (by label) was logged in with by a pool of this process. The login
   * is per process, so a second pool's C_Login answers CKR_USER_ALREADY_LOGGED_IN without checking
   * its PIN: it is checked against this instead (no attempt reaches the token).
   */
  logins: Map<string, Buffer>;
}

/** Modules by path: C_Initialize is per process (PKCS#11 v2.40 §5.4), so pools on one module share it. */
const modules = new Map<string, LoadedModule>();

async function loadModule(modulePath: string): Promise<LoadedModule> {
  const known = modules.get(modulePath);
  if (known) {
    known.refs++;
    return known;
  }
  let ck: Ck;
  try {
    ck = ((await import('pkcs11js')) as unknown as { default: Ck }).default;
  } catch (err) {
    throw new KeystoreError('module-missing', `the pkcs11js binding cannot be loaded (is it built? npm ci builds it): ${(err as Error).message.split('\n')[0]}`);
  }
  const lib = new ck.PKCS11();
  try {
    lib.load(modulePath);
  } catch (err) {
    throw new KeystoreError('module-missing', `the PKCS#11 module ${modulePath} cannot be loaded: ${(err as Error).message.split('\n')[0]}`);
  }
  const loaded: LoadedModule = { ck, lib, refs: 1, logins: new Map() };
  initialise(loaded);
  modules.set(modulePath, loaded);
  return loaded;
}

/** C_Initialize with OS locking (the async calls run on other threads); already initialised is fine. */
function initialise({ ck, lib }: LoadedModule): void {
  try {
    lib.C_Initialize({ flags: ck.CKF_OS_LOCKING_OK });
  } catch (err) {
    if (ckrOf(err) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') throw tokenFault(err, 'initialising the PKCS#11 module');
  }
}

/** CKS_RO_USER_FUNCTIONS and CKS_RW_USER_FUNCTIONS (PKCS#11 v2.40 §5.6; pkcs11js does not export the CKS_ values). */
const USER_STATES: readonly number[] = [1, 3];

/** A logged-in token and its sessions; see the file comment. */
export class Pkcs11SessionPool {
  readonly #module: LoadedModule;
  readonly #params: Required<Pkcs11PoolParams>;
  #slot!: Buffer;
  #anchor: Buffer | null = null;
  readonly #idle: Buffer[] = [];
  readonly #epochOf = new WeakMap<Buffer, number>();
  readonly #waiters: (() => void)[] = [];
  #live = 0;
  #epoch = 0;
  #stale = false;
  #fatal: KeystoreError | null = null;
  #closed = false;

  private constructor(module: LoadedModule, params: Required<Pkcs11PoolParams>) {
    this.#module = module;
    this.#params = params;
  }

  /** Loads the module, finds the token and logs in once; every fault is a KeystoreError and leaves nothing open. */
  static async open(params: Pkcs11PoolParams): Promise<Pkcs11SessionPool> {
    const sessions = params.sessions ?? 4;
    if (!Number.isInteger(sessions) || sessions < 1 || sessions > 64) throw new PkiError('invalid-argument', 'sessions must be an integer from 1 to 64');
    if (typeof params.pin !== 'string' || params.pin.length === 0) throw new KeystoreError('wrong-pin', 'a token PIN is needed');
    const module = await loadModule(params.modulePath);
    const pool = new Pkcs11SessionPool(module, { ...params, sessions });
    try {
      pool.#findToken();
      pool.#ensureLoggedIn();
    } catch (err) {
      await pool.close();
      throw tokenFault(err, `opening token "${params.tokenLabel}"`);
    }
    return pool;
  }

  /** The pkcs11js constants (CKA_*, CKM_*…). */
  get ck(): Ck {
    return this.#module.ck;
  }

  /** Bumps whenever object handles may have changed (module re-initialised, a handle refused): handles are cached per epoch. */
  get epoch(): number {
    return this.#epoch;
  }

  /** The slot and token in use. */
  location(): TokenLocation {
    const info = this.#module.lib.C_GetTokenInfo(this.#slot);
    return {
      modulePath: this.#params.modulePath, tokenLabel: this.#params.tokenLabel, slot: this.#slot.toString('hex'),
      tokenSerial: info.serialNumber.trim(), flags: info.flags,
    };
  }

  /** Runs `fn` with a session of its own; a fault becomes a KeystoreError saying `doing`. */
  async run<T>(doing: string, fn: (lib: Lib, session: Buffer) => Promise<T> | T): Promise<T> {
    const session = await this.#acquire(doing);
    let failed = false;
    try {
      return await fn(this.#module.lib, session);
    } catch (err) {
      failed = true;
      throw this.#fault(err, doing);
    } finally {
      this.#release(session, failed);
    }
  }

  /** {@link run} for synchronous work (sealing): never waits; may open a session beyond the pool size for the call. */
  runSync<T>(doing: string, fn: (lib: Lib, session: Buffer) => T): T {
    const session = this.#take(doing) ?? this.#openSession(doing);
    let failed = false;
    try {
      return fn(this.#module.lib, session);
    } catch (err) {
      failed = true;
      throw this.#fault(err, doing);
    } finally {
      this.#release(session, failed);
    }
  }

  /** Closes every session and, with the last pool on the module, finalises it. Calls waiting fail with 'closed'. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const { lib } = this.#module;
    for (const s of [...this.#idle.splice(0), ...(this.#anchor ? [this.#anchor] : [])]) {
      try {
        lib.C_CloseSession(s);
      } catch {
        // already gone with the module or the token
      }
    }
    this.#anchor = null;
    for (const wake of this.#waiters.splice(0)) wake();
    if (--this.#module.refs === 0) {
      modules.delete(this.#params.modulePath);
      try {
        lib.C_Finalize();
      } catch {
        // finalised under us already
      }
      lib.close();
    }
  }

  #check(): void {
    if (this.#closed) throw new KeystoreError('closed', 'the PKCS#11 keystore is closed');
    if (this.#fatal) throw this.#fatal;
  }

  #fault(err: unknown, doing: string): Error {
    if (err instanceof PkiError) return err;
    const fault = tokenFault(err, doing);
    if (fault.ckr === 'CKR_CRYPTOKI_NOT_INITIALIZED') this.#stale = true;
    if (fault.ckr === 'CKR_OBJECT_HANDLE_INVALID' || fault.ckr === 'CKR_KEY_HANDLE_INVALID') this.#epoch++;
    return fault;
  }

  async #acquire(doing: string): Promise<Buffer> {
    for (;;) {
      const session = this.#take(doing);
      if (session) return session;
      if (this.#live < this.#params.sessions) return this.#openSession(doing);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** An idle session that still works (and is logged in), or null; dead ones are dropped on the way. */
  #take(doing: string): Buffer | null {
    this.#check();
    const { lib } = this.#module;
    for (let session = this.#idle.pop(); session; session = this.#idle.pop()) {
      try {
        if (!USER_STATES.includes(lib.C_GetSessionInfo(session).state)) this.#ensureLoggedIn();
        return session;
      } catch (err) {
        this.#live--;
        if (err instanceof KeystoreError && (err.code === 'wrong-pin' || err.code === 'pin-locked')) throw err;
        if (ckrOf(err) === 'CKR_CRYPTOKI_NOT_INITIALIZED') this.#stale = true;
        if (!(err instanceof KeystoreError) && ckrOf(err) === null) throw tokenFault(err, doing);
      }
    }
    return null;
  }

  #openSession(doing: string): Buffer {
    this.#check();
    const { lib, ck } = this.#module;
    try {
      if (this.#stale) this.#reinitialise();
      let session: Buffer;
      try {
        session = lib.C_OpenSession(this.#slot, ck.CKF_SERIAL_SESSION | ck.CKF_RW_SESSION);
      } catch (err) {
        // Module finalised, token re-inserted (new slot), sessions closed: start again once.
        if (!['CKR_CRYPTOKI_NOT_INITIALIZED', 'CKR_SLOT_ID_INVALID', 'CKR_TOKEN_NOT_PRESENT', 'CKR_DEVICE_REMOVED'].includes(ckrOf(err) ?? '')) throw err;
        this.#reinitialise();
        session = lib.C_OpenSession(this.#slot, ck.CKF_SERIAL_SESSION | ck.CKF_RW_SESSION);
      }
      this.#ensureLoggedIn();
      this.#epochOf.set(session, this.#epoch);
      this.#live++;
      return session;
    } catch (err) {
      throw tokenFault(err, doing);
    }
  }

  #release(session: Buffer, failed: boolean): void {
    const current = this.#epochOf.get(session) === this.#epoch && !this.#stale;
    if (failed || !current || this.#closed) {
      this.#live--;
      try {
        this.#module.lib.C_CloseSession(session);
      } catch {
        // the session is gone already
      }
    } else {
      this.#idle.push(session);
    }
    this.#waiters.shift()?.();
  }

  /** Module initialised again (after C_Finalize under us), token found again, object handles to be found again. */
  #reinitialise(): void {
    initialise(this.#module);
    this.#live -= this.#idle.length;
    this.#idle.length = 0;
    this.#anchor = null;
    this.#epoch++;
    this.#stale = false;
    this.#findToken();
  }

  #findToken(): void {
    const { lib, ck } = this.#module;
    const labels: string[] = [];
    for (const slot of lib.C_GetSlotList(true)) {
      const info = lib.C_GetTokenInfo(slot);
      if (!(info.flags & ck.CKF_TOKEN_INITIALIZED)) continue;
      const label = info.label.trim();
      labels.push(label);
      if (label !== this.#params.tokenLabel) continue;
      if (info.flags & ck.CKF_USER_PIN_LOCKED) throw new KeystoreError('pin-locked', `the user PIN of token "${label}" is locked; the security officer must reset it`);
      this.#slot = slot;
      return;
    }
    const present = labels.length ? `tokens present: ${labels.map((l) => `"${l}"`).join(', ')}` : 'no initialised token is present';
    throw new KeystoreError('token-absent', `no token labelled "${this.#params.tokenLabel}" in ${this.#params.modulePath} (${present})`);
  }

  /** Makes sure the anchor session exists and the user is logged in; one C_Login at most, never after a refused PIN. */
  #ensureLoggedIn(): void {
    this.#check();
    const { lib, ck } = this.#module;
    if (this.#anchor) {
      try {
        if (USER_STATES.includes(lib.C_GetSessionInfo(this.#anchor).state)) return;
      } catch {
        this.#anchor = null;
      }
    }
    const anchor = this.#anchor ?? lib.C_OpenSession(this.#slot, ck.CKF_SERIAL_SESSION);
    this.#anchor = anchor;
    const pinHash = createHash('sha256').update(this.#params.pin, 'utf8').digest();
    try {
      lib.C_Login(anchor, ck.CKU_USER, this.#params.pin);
      this.#module.logins.set(this.#params.tokenLabel, pinHash);
      // SoftHSM2 (and other tokens) drop object handles with the last session: find them again.
      this.#epoch++;
    } catch (err) {
      const ckr = ckrOf(err);
      if (ckr === 'CKR_USER_ALREADY_LOGGED_IN') {
        const known = this.#module.logins.get(this.#params.tokenLabel);
        if (!known || timingSafeEqual(known, pinHash)) return;
        this.#fatal = new KeystoreError('wrong-pin', `logging in to token "${this.#params.tokenLabel}": the token PIN is wrong (it differs from the PIN this process is logged in with; no attempt was made at the token)`);
        throw this.#fatal;
      }
      const fault = tokenFault(err, `logging in to token "${this.#params.tokenLabel}"`);
      if (fault.code === 'wrong-pin' || fault.code === 'pin-locked') this.#fatal = fault;
      throw fault;
    }
  }
}
