/**
 * A throwaway TLS CA and a server certificate for 127.0.0.1, made with the openssl CLI: what a test
 * tierca's HTTPS listener shows (its client certificates are still verified against the hierarchy).
 */
import { writeFileSync } from 'node:fs';
import { openssl, type TempDir } from './openssl.ts';

export interface TlsTestCredentials {
  cert: string;
  key: string;
  /** The PEM file of the TLS CA, for curl --cacert, REQUESTS_CA_BUNDLE, https.request's `ca`. */
  caFile: string;
}

export async function tlsTestCredentials(tmp: TempDir): Promise<TlsTestCredentials> {
  const run = async (args: string[]) => {
    const res = await openssl(args);
    if (res.code !== 0) throw new Error(`openssl ${args[0]} failed: ${res.stderr}`);
  };
  await run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', tmp.file('tls-ca.key'),
    '-subj', '/CN=tls test ca', '-days', '2', '-out', tmp.file('tls-ca.pem')]);
  await run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', tmp.file('tls.key'),
    '-subj', '/CN=127.0.0.1', '-out', tmp.file('tls.csr')]);
  writeFileSync(tmp.file('tls.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await run(['x509', '-req', '-in', tmp.file('tls.csr'), '-CA', tmp.file('tls-ca.pem'), '-CAkey', tmp.file('tls-ca.key'), '-CAcreateserial',
    '-days', '2', '-extfile', tmp.file('tls.ext'), '-out', tmp.file('tls.pem')]);
  return { cert: tmp.read('tls.pem').toString(), key: tmp.read('tls.key').toString(), caFile: tmp.file('tls-ca.pem') };
}
