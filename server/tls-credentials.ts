/**
 * The HTTPS listener's own credentials, read from PEM files named by `tierca serve --tls-cert/--tls-key`
 * or `npm start`'s TIERCA_TLS_CERT/TIERCA_TLS_KEY. The key file may be encrypted (PKCS#8
 * `ENCRYPTED PRIVATE KEY` or a legacy `Proc-Type: 4,ENCRYPTED` PEM); its passphrase comes from a file
 * or the environment, never from the command line. The key is decrypted here, in memory only, so a
 * wrong passphrase or a key that does not match the certificate fails at start with the option named,
 * not at the first handshake.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { TiercaError } from './errors.ts';

export interface TlsFiles {
  /** PEM: the server certificate first, then the intermediates a client needs (not the root). */
  certFile: string;
  /** PEM private key of the first certificate, plain or encrypted. */
  keyFile: string;
  /** Passphrase of an encrypted key; absent for a plain one. */
  passphrase?: string;
  /** How the options are called in messages; default `--tls-cert` / `--tls-key`. */
  names?: { cert: string; key: string };
}

/** What an HTTPS listener is given: the chain as PEM and the private key decrypted (PKCS#8 PEM, in memory). */
export interface TlsCredentials {
  cert: string;
  key: string;
  /** The server certificate (the first of the chain). */
  certificate: X509Certificate;
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Reads and checks the listener's certificate chain and key.
 *
 * @throws TiercaError `bad-request` naming the option when a file cannot be read, holds no PEM
 *   certificate or key, the key is encrypted and no passphrase was given, the passphrase is wrong,
 *   or the key is not the certificate's.
 */
export function loadTlsCredentials({ certFile, keyFile, passphrase, names = { cert: '--tls-cert', key: '--tls-key' } }: TlsFiles): TlsCredentials {
  const certText = readText(certFile, names.cert);
  const blocks = certText.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) throw new TiercaError('bad-request', `${names.cert}: ${certFile} holds no PEM certificate`);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(blocks[0]!);
  } catch {
    throw new TiercaError('bad-request', `${names.cert}: the first certificate in ${certFile} cannot be read`);
  }
  const keyText = readText(keyFile, names.key);
  const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(keyText);
  if (encrypted && !passphrase) {
    throw new TiercaError('bad-request', `${names.key}: ${keyFile} is encrypted; give its passphrase with --tls-key-passphrase-file or TIERCA_TLS_KEY_PASSPHRASE`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyText, format: 'pem', ...(encrypted ? { passphrase } : {}) });
  } catch {
    throw new TiercaError('bad-request', encrypted
      ? `${names.key}: the passphrase does not decrypt ${keyFile}`
      : `${names.key}: ${keyFile} holds no PEM private key`);
  }
  if (!certificate.checkPrivateKey(key)) {
    throw new TiercaError('bad-request', `${names.key}: the key in ${keyFile} is not the key of the certificate in ${certFile}`);
  }
  return { cert: blocks.map((b) => `${b}\n`).join(''), key: key.export({ format: 'pem', type: 'pkcs8' }) as string, certificate };
}

function readText(path: string, option: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TiercaError('bad-request', `${option}: cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : (code ?? String(err))}`);
  }
}
