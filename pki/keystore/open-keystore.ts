/**
 * One factory from keystore parameters to a {@link KeyStore}, for the configuration and CLI wiring
 * (`tierca init|serve --keystore software|pkcs11`): the software keystore unlocked from its stored
 * header, or a PKCS#11 token opened and logged in. The PIN and passphrase come from the caller
 * (environment, a file or a prompt); this module never reads argv or the environment.
 */
import type { KeyStore } from './keystore.ts';
import { SoftwareKeyStore } from './software-keystore.ts';
import { Pkcs11KeyStore } from './pkcs11-keystore.ts';

/** Parameters of the keystore of an installation. */
export type OpenKeystoreParams =
  | {
      custody: 'software';
      passphrase: string;
      /** The keystore header from the database meta table. */
      header: string;
      random?: (n: number) => Buffer;
    }
  | {
      custody: 'pkcs11';
      /** Path of the PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so. */
      modulePath: string;
      tokenLabel: string;
      pin: string;
      /** Working sessions; default 4. */
      sessions?: number;
      random?: (n: number) => Buffer;
    };

/**
 * Opens the keystore `p` describes. Software faults are PkiError ('wrong-passphrase', 'malformed');
 * PKCS#11 faults are KeystoreError ('module-missing', 'token-absent', 'wrong-pin', 'pin-locked').
 */
export async function openKeystore(p: OpenKeystoreParams): Promise<KeyStore> {
  if (p.custody === 'software') return SoftwareKeyStore.unlock({ passphrase: p.passphrase, header: p.header, random: p.random });
  return Pkcs11KeyStore.open({ modulePath: p.modulePath, tokenLabel: p.tokenLabel, pin: p.pin, sessions: p.sessions, random: p.random });
}
