/**
 * Which keystore an installation's CA keys live in, and opening it: the custody record kept in the
 * database (`meta.keystore`: the software keystore's header, or `pkcs11:` and the module and token
 * label — never the PIN; `meta.keystore.token` when both custodies are used), making or opening the
 * keystore it names, and the one mapping of token faults to errors people can act on.
 */
import { KeystoreError, type KeystoreErrorCode } from '../pki/keystore/pkcs11-errors.ts';
import { Pkcs11KeyStore } from '../pki/keystore/pkcs11-keystore.ts';
import { TiercaError } from './errors.ts';
import type { KeyStore } from '../pki/keystore/keystore.ts';
import { SoftwareKeyStore } from '../pki/keystore/software-keystore.ts';
import { CompositeKeyStore } from '../pki/keystore/composite-keystore.ts';
import { PkiError } from '../pki/pki-error.ts';

/** Where `tierca init` makes the keys: sealed in the database (software), or inside a PKCS#11 token. */
export type KeystoreSettings =
  | { custody: 'software' }
  | { custody: 'pkcs11'; module: string; tokenLabel: string; sessions?: number; inSoftware?: readonly ('root' | 'domain' | 'tier')[] };

/** What `meta.keystore` says: a software keystore header, or the token to open. */
export type StoredCustody =
  | { custody: 'software'; header: string }
  | { custody: 'pkcs11'; module: string; tokenLabel: string; sessions?: number };

const PKCS11_PREFIX = 'pkcs11:';

/** The meta key of a token used beside a software keystore (both custodies: composite-keystore.ts). */
export const TOKEN_META = 'keystore.token';

/** The `meta.keystore` value of a PKCS#11 installation: module path and token label, no secret. */
export function pkcs11CustodyRecord(settings: Extract<KeystoreSettings, { custody: 'pkcs11' }>): string {
  return `${PKCS11_PREFIX}${JSON.stringify({ module: settings.module, tokenLabel: settings.tokenLabel, ...(settings.sessions ? { sessions: settings.sessions } : {}) })}`;
}

/** Reads `meta.keystore`. A software header is opaque here (software-keystore.ts reads it). */
export function readCustody(meta: string): StoredCustody {
  if (!meta.startsWith(PKCS11_PREFIX)) return { custody: 'software', header: meta };
  const parsed = JSON.parse(meta.slice(PKCS11_PREFIX.length)) as { module?: unknown; tokenLabel?: unknown; sessions?: unknown };
  if (typeof parsed.module !== 'string' || typeof parsed.tokenLabel !== 'string') {
    throw new TiercaError('internal', 'the stored keystore record names no PKCS#11 module and token');
  }
  return { custody: 'pkcs11', module: parsed.module, tokenLabel: parsed.tokenLabel, ...(typeof parsed.sessions === 'number' ? { sessions: parsed.sessions } : {}) };
}

/** What a person does about each token fault, appended to the keystore's own message. */
const ADVICE: Partial<Record<KeystoreErrorCode, string>> = {
  'module-missing': 'check the module path and that the HSM client library is installed',
  'token-absent': 'check that the token is plugged in and initialised with this label (softhsm2-util --show-slots, pkcs11-tool -L)',
  'wrong-pin': 'one login was tried and counted by the token; tierca does not retry — check TIERCA_PKCS11_PIN or the --pin-file',
  'pin-locked': 'the token\'s security officer must unlock or reset the user PIN',
  'key-missing': 'the key object of a CA is not in this token: is it the token the ceremony used?',
};

/**
 * A token fault as a TiercaError: faults of the moment (the session or token went away, the keystore
 * closed) are `unavailable` (503, worth retrying once the token is back); the others are
 * `keystore-fault`, naming the fault and what to do. Other errors pass through unchanged.
 */
export function keystoreFaultError(err: unknown): unknown {
  if (!(err instanceof KeystoreError)) return err;
  if (err.code === 'session-lost' || err.code === 'closed' || err.code === 'token-error') {
    return new TiercaError('unavailable', `the CA key token is not available now (${err.code}); try again shortly`, { cause: err });
  }
  const advice = ADVICE[err.code];
  return new TiercaError('keystore-fault', `${err.message}${advice ? ` — ${advice}` : ''}`, { cause: err, detail: { fault: err.code } });
}

/** Opens the token of a PKCS#11 installation with `pin`; faults as {@link keystoreFaultError}. */
export async function openPkcs11Custody(custody: Extract<StoredCustody, { custody: 'pkcs11' }>, pin: string): Promise<Pkcs11KeyStore> {
  try {
    return await Pkcs11KeyStore.open({ modulePath: custody.module, tokenLabel: custody.tokenLabel, pin, sessions: custody.sessions });
  } catch (err) {
    throw keystoreFaultError(err);
  }
}

/**
 * The keystore the ceremony makes keys in, and what the database will say of it: `meta.keystore`
 * (the software header, or the token's record) and, when both custodies are used, `meta.keystore.token`.
 */
export async function newKeystore(settings: KeystoreSettings, opts: { passphrase?: string; pin?: string; kdf?: { N: number; r: number; p: number } }): Promise<{ keystore: KeyStore; header: string; token?: string }> {
  if (settings.custody === 'software') return SoftwareKeyStore.initialise({ passphrase: opts.passphrase!, kdf: opts.kdf });
  const token = await openPkcs11Custody(settings, opts.pin!);
  if (!settings.inSoftware?.length) return { keystore: token, header: pkcs11CustodyRecord(settings) };
  try {
    const software = await SoftwareKeyStore.initialise({ passphrase: opts.passphrase!, kdf: opts.kdf });
    return { keystore: new CompositeKeyStore(software.keystore, token), header: software.header, token: pkcs11CustodyRecord(settings) };
  } catch (err) {
    await token.close();
    throw err;
  }
}

/**
 * Opens what the installation's keys are held in: the software keystore (unlocked with
 * `passphrase`), the token (logged in with `pin`), or both (a token added to a software
 * installation, or layers kept in software) as one {@link CompositeKeyStore}.
 */
export async function openInstalledKeystore(
  custody: StoredCustody, token: StoredCustody | undefined, passphrase: string | undefined, pin: string | undefined,
): Promise<KeyStore> {
  const tokenCustody = custody.custody === 'pkcs11' ? custody : token?.custody === 'pkcs11' ? token : undefined;
  if (tokenCustody && !pin) {
    throw new TiercaError('bad-request', `the CA keys are in the PKCS#11 token "${tokenCustody.tokenLabel}": its PIN is needed (set TIERCA_PKCS11_PIN or use --pin-file)`);
  }
  if (custody.custody === 'pkcs11') return openPkcs11Custody(custody, pin!);
  const software = await unlockSoftware(custody.header, passphrase);
  if (!tokenCustody) return software;
  return new CompositeKeyStore(software, await openPkcs11Custody(tokenCustody, pin!));
}

export async function unlockSoftware(header: string, passphrase: string | undefined): Promise<SoftwareKeyStore> {
  if (!passphrase) throw new TiercaError('bad-request', 'the keystore passphrase is needed: set TIERCA_PASSPHRASE or use --passphrase-file');
  try {
    return await SoftwareKeyStore.unlock({ passphrase, header });
  } catch (err) {
    if (err instanceof PkiError && err.code === 'wrong-passphrase') throw new TiercaError('wrong-passphrase', 'the keystore passphrase is wrong');
    throw err;
  }
}
