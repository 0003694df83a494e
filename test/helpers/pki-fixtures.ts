/**
 * Keys, CSRs and chains for integration tests. CSRs come from the openssl CLI (a real client) or, for
 * bulk tests, from Node keys signed by our CSR builder.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { openssl, type TempDir } from './openssl.ts';
import { buildCsr } from '../../pki/csr.ts';
import { encodeName } from '../../pki/name.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import type { KeyAlgorithm } from '../../pki/algorithms.ts';
import { toPem } from '../../pki/der.ts';

const OPENSSL_KEYGEN: Record<string, string[]> = {
  'P-256': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  'P-384': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  'RSA-2048': ['-newkey', 'rsa:2048'],
  'RSA-3072': ['-newkey', 'rsa:3072'],
  'RSA-1024': ['-newkey', 'rsa:1024'],
  secp256k1: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1'],
};

/** A key and CSR made by `openssl req`; the CSR subject is deliberately foreign (tierca must ignore it). */
export async function opensslCsr(tmp: TempDir, name: string, alg: keyof typeof OPENSSL_KEYGEN): Promise<{ keyPath: string; csrPem: string; csrPath: string }> {
  const keyPath = tmp.file(`${name}.key`);
  const csrPath = tmp.file(`${name}.csr`);
  const res = await openssl(['req', '-new', ...OPENSSL_KEYGEN[alg], '-nodes', '-keyout', keyPath, '-out', csrPath, '-subj', '/C=US/O=Not From Here/CN=ignored']);
  if (res.code !== 0) throw new Error(`openssl req failed: ${res.stderr}`);
  return { keyPath, csrPath, csrPem: tmp.read(`${name}.csr`).toString() };
}

/** A Node key pair and a PEM CSR for it (fast; for bulk issuance). */
export async function nodeCsr(alg: 'P-256' | 'P-384' = 'P-256'): Promise<{ privateKey: KeyObject; csrPem: string }> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: alg === 'P-256' ? 'prime256v1' : 'secp384r1' });
  const der = await buildCsr({ subject: encodeName([{ type: 'CN', value: 'bulk' }]), signer: softwareSigner({ privateKey, algorithm: alg as KeyAlgorithm }) });
  return { privateKey, csrPem: toPem(der, 'CERTIFICATE REQUEST') };
}
