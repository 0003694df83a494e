/**
 * The errors of the PKCS#11 keystore: one class, {@link KeystoreError}, with a stable `code` from
 * {@link KEYSTORE_ERROR_CODES} so the server can map each fault to a status and `tierca serve` can
 * refuse to start naming it. Messages are safe to show: they name the module, the token label or the
 * key, never the PIN.
 */

/** Fault codes of a keystore held in a token, each with what it means. */
export const KEYSTORE_ERROR_CODES = {
  /** The PKCS#11 module (shared library) or the pkcs11js binding cannot be loaded. */
  'module-missing': 'the PKCS#11 module cannot be loaded',
  /** No initialised token with the configured label is present in any slot. */
  'token-absent': 'the token is not present',
  /** C_Login answered CKR_PIN_INCORRECT (one attempt was made; the token counts it). */
  'wrong-pin': 'the token PIN is wrong',
  /** The user PIN is locked (CKR_PIN_LOCKED): the security officer must reset it. */
  'pin-locked': 'the token PIN is locked',
  /** No key object with the key's label and id is in the token. */
  'key-missing': 'the key object is not in the token',
  /** The session, the login or the module went away during the call; the next call reopens. */
  'session-lost': 'the token session was lost',
  /** Any other PKCS#11 failure (the CKR_ name is in the message). */
  'token-error': 'the token refused the operation',
  /** The keystore was closed. */
  closed: 'the keystore is closed',
} as const;

export type KeystoreErrorCode = keyof typeof KEYSTORE_ERROR_CODES;

/** A fault of a token-held keystore; `ckr` is the PKCS#11 return value name when there was one. */
export class KeystoreError extends Error {
  constructor(
    readonly code: KeystoreErrorCode,
    message: string,
    readonly ckr: string | null = null,
  ) {
    super(message);
    this.name = 'KeystoreError';
  }
}

/** The CKR_ name of a pkcs11js error (`Pkcs11Error.message` is the name), or null for other errors. */
export function ckrOf(err: unknown): string | null {
  if (err instanceof Error && /^CKR_[A-Z0-9_]+$/.test(err.message)) return err.message;
  return null;
}

/**
 * Return values after which the session (or the whole module) cannot be trusted any more: the call
 * fails with 'session-lost' and the pool drops the session, re-initialises or logs in again before
 * the next call (PKCS#11 v2.40 §5.1 return values; §6.7 sessions).
 */
export const SESSION_LOST_CKR: ReadonlySet<string> = new Set([
  'CKR_SESSION_HANDLE_INVALID',
  'CKR_SESSION_CLOSED',
  'CKR_USER_NOT_LOGGED_IN',
  'CKR_CRYPTOKI_NOT_INITIALIZED',
  'CKR_DEVICE_REMOVED',
  'CKR_TOKEN_NOT_PRESENT',
  'CKR_TOKEN_NOT_RECOGNIZED',
  'CKR_DEVICE_ERROR',
  'CKR_OBJECT_HANDLE_INVALID',
  'CKR_KEY_HANDLE_INVALID',
  'CKR_SLOT_ID_INVALID',
]);

/** Wraps what a PKCS#11 call threw into a KeystoreError saying what was being done. */
export function tokenFault(err: unknown, doing: string): KeystoreError {
  if (err instanceof KeystoreError) return err;
  const ckr = ckrOf(err);
  if (ckr === 'CKR_PIN_INCORRECT') return new KeystoreError('wrong-pin', `${doing}: the token PIN is wrong (one login attempt was made)`, ckr);
  if (ckr === 'CKR_PIN_LOCKED') return new KeystoreError('pin-locked', `${doing}: the token PIN is locked; the security officer must reset it`, ckr);
  if (ckr && SESSION_LOST_CKR.has(ckr)) return new KeystoreError('session-lost', `${doing}: the token session was lost (${ckr}); the next call reopens it`, ckr);
  if (ckr) return new KeystoreError('token-error', `${doing}: the token answered ${ckr}`, ckr);
  const detail = err instanceof Error ? err.message.split('\n')[0] : String(err);
  return new KeystoreError('token-error', `${doing}: ${detail}`);
}
