/**
 * A `fetch` for the CLI's API client over Node's own https, for what the global fetch cannot be told
 * without an extra dependency: a client certificate (a principal logs in with the certificate tierca
 * issued it, RFC 8446 §4.4.2) and a private trust anchor for the server (the tierca root). Only what
 * cli/api-client.ts uses is implemented: method, headers, a string or byte body, `signal`, and
 * `redirect: 'error'` (a 3xx answer is an error, as there).
 */
import { request as httpsRequest } from 'node:https';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import { CliError, EXIT } from './cli-error.ts';

export interface TlsClientFiles {
  /** `--client-cert`: PEM client certificate, optionally followed by its intermediates. */
  certFile?: string;
  /** `--client-key`: PEM private key of `certFile` (unencrypted: the CLI has no prompt for it). */
  keyFile?: string;
  /** `--ca-file`: PEM certificates that verify the server instead of the system store (the tierca root). */
  caFile?: string;
}

const read = (path: string, option: string): Buffer => {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(`${option}: cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : (code ?? String(err))}`, EXIT.usage);
  }
};

/**
 * A fetch that presents the client certificate and trusts `caFile`.
 *
 * @throws CliError exit 2 when only one of `--client-cert`/`--client-key` is given or a file cannot be read.
 */
export function tlsFetch({ certFile, keyFile, caFile }: TlsClientFiles): typeof fetch {
  if (!!certFile !== !!keyFile) throw new CliError('--client-cert and --client-key go together', EXIT.usage);
  const cert = certFile ? read(certFile, '--client-cert') : undefined;
  const key = keyFile ? read(keyFile, '--client-key') : undefined;
  const ca = caFile ? read(caFile, '--ca-file') : undefined;
  const impl = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const headers = Object.fromEntries(new Headers(init.headers).entries());
    const body = init.body === undefined || init.body === null ? undefined : Buffer.from(init.body as string | Uint8Array);
    if (body) headers['content-length'] = String(body.length);
    return new Promise<Response>((resolve, reject) => {
      const onAnswer = (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 300 && status < 400 && init.redirect === 'error') return reject(new TypeError(`redirect to ${res.headers.location ?? '?'} refused`));
          const answer = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) answer.set(k, Array.isArray(v) ? v.join(', ') : v);
          const nullBody = status === 204 || status === 304;
          resolve(new Response(nullBody ? null : Buffer.concat(chunks), { status, statusText: res.statusMessage ?? '', headers: answer }));
        });
      };
      const common = { method: init.method ?? 'GET', headers, signal: init.signal ?? undefined };
      // A client certificate is never offered over plain HTTP; the server URL decides.
      const req = url.protocol === 'https:'
        ? httpsRequest(url, { ...common, cert, key, ca, agent: false }, onAnswer)
        : httpRequest(url, common, onAnswer);
      // As the global fetch: an abort as it is, anything else a TypeError with the socket error as cause.
      req.on('error', (err) => reject(err.name === 'AbortError' ? err : Object.assign(new TypeError('fetch failed'), { cause: err })));
      req.end(body);
    });
  };
  return impl as typeof fetch;
}
