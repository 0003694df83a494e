/**
 * The sockets of one tierca process: the main listener (HTTPS with `tls`, else plain HTTP) serving
 * everything, and — with `tls` and `httpPort` — a plain-HTTP listener of the public routes only
 * (OCSP, CRLs, CA certificates, status), which relying parties fetch without TLS by design (RFC 5019
 * §5, RFC 5280 §4.2.1.13). Both share one request handler, so one app, one metrics registry.
 * docs/decisions/0012-tls-listeners.md records the shape.
 */
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { certificateToPem } from '../pki/pem.ts';
import type { CaDirectory } from './ca/ca-directory.ts';
import { createHttpServer, createRequestListener, type AppDeps, type TlsListenOptions } from './http/app.ts';
import { publicOnly } from './http/public-listener.ts';

/** Key material of the HTTPS listener; `ca` defaults to {@link clientCaBundle} of the hierarchy. */
export type ServiceTls = Omit<TlsListenOptions, 'ca'> & { ca?: TlsListenOptions['ca'] };

export interface ListenParams {
  deps: AppDeps;
  /** The hierarchy, whose CA certificates are the default client-certificate roots. */
  cas: CaDirectory;
  host: string;
  /** The main listener's port (0: any free one). */
  port: number;
  tls?: ServiceTls;
  /** With `tls` only: the port of the plain-HTTP public listener. */
  httpPort?: number;
  log: Logger;
}

export interface Listeners {
  url: string;
  port: number;
  httpUrl?: string;
  httpPort?: number;
  close(): Promise<void>;
}

/** Opens the listeners; on a failure (port taken) closes what it opened and rethrows. */
export async function openListeners({ deps, cas, host, port, tls, httpPort, log }: ListenParams): Promise<Listeners> {
  const servers: Server[] = [];
  try {
    const handler = createRequestListener(deps);
    const main = createHttpServer(deps, tls ? { ...tls, ca: tls.ca ?? clientCaBundle(cas) } : undefined, handler);
    servers.push(main);
    const mainPort = await listen(main, port, host);
    const url = `${tls ? 'https' : 'http'}://${hostPart(host)}:${mainPort}`;
    const out: Listeners = { url, port: mainPort, close: () => closeServers(servers) };
    if (tls && httpPort !== undefined) {
      const plain = createHttpServer(deps, undefined, publicOnly(handler, url));
      servers.push(plain);
      out.httpPort = await listen(plain, httpPort, host);
      out.httpUrl = `http://${hostPart(host)}:${out.httpPort}`;
    } else if (tls && deps.publicUrl.startsWith('http:')) {
      log.warn({ publicUrl: deps.publicUrl }, 'certificates name plain-HTTP OCSP and CRL URLs but no plain-HTTP listener is open (give --http-port, or serve them from a proxy)');
    }
    return out;
  } catch (err) {
    await closeServers(servers);
    throw err;
  }
}

/**
 * The certificates a client certificate is verified against: every CA of the hierarchy that is not
 * revoked. OpenSSL takes only self-signed ones as trust anchors (Node sets no partial-chain flag),
 * so the intermediates only help build the chain of a client that sends its leaf alone; the
 * authorizer then checks the certificate and every CA above it in the database.
 */
export function clientCaBundle(cas: CaDirectory): string[] {
  return cas.list().filter((ca) => ca.record.status !== 'revoked').map((ca) => certificateToPem(ca.record.certificate));
}

const hostPart = (host: string): string => (host.includes(':') ? `[${host}]` : host);

async function listen(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  return typeof address === 'object' && address ? address.port : port;
}

async function closeServers(servers: Server[]): Promise<void> {
  for (const server of servers.splice(0)) {
    if (!server.listening) continue;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
