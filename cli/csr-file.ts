/**
 * Reading a CSR file for the API: PEM or DER, checked locally so that a wrong file fails before any
 * request is sent.
 */
import { readFileSync } from 'node:fs';
import { decodePemOrDerOf } from '../pki/pem.ts';
import { usageError } from './cli-error.ts';

/** The CSR in `path` (PEM or DER) as base64 DER for the API. */
export function readCsrFile(path: string): string {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw usageError(`--csr: cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : (code ?? String(err))}`);
  }
  try {
    return decodePemOrDerOf(raw, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']).toString('base64');
  } catch (err) {
    throw usageError(`--csr: ${path}: ${(err as Error).message}`);
  }
}
