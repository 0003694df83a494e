/**
 * The CLI's HTTP client for the tierca API (docs/api.md): fetch, a bearer token, JSON in and out.
 * A non-2xx answer becomes a {@link CliError} whose exit code comes from the problem `type`
 * (server/errors.ts), so that `tierca` exits with the same code whichever command hit the error; a
 * server that cannot be reached is exit 9 with the URL named.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { exitCodeForProblemType } from '../server/errors.ts';
import { CliError, EXIT, type Problem } from './cli-error.ts';

/** Where `tierca` looks for the server when neither `--server` nor `TIERCA_URL` is given. */
export const DEFAULT_SERVER_URL = 'http://127.0.0.1:8080';

/** Time allowed for one HTTP exchange before the server is reported unavailable. */
export const DEFAULT_TIMEOUT_MS = 60_000;

/** The URL path `strings` with every interpolated value percent-encoded as one path segment. */
export function apiPath(strings: TemplateStringsArray, ...values: string[]): string {
  return strings.reduce((acc, s, i) => acc + s + (i < values.length ? encodeURIComponent(values[i]) : ''), '');
}

/** Query parameters; `undefined` values are left out. */
export type Query = Record<string, string | number | undefined>;

/** An answer with its HTTP status (issuance answers 201 or 202 and the CLI prints each differently). */
export interface ApiResponse<T> {
  status: number;
  body: T;
}

/** A binary answer (`/ca/{id}.crt`, `/ocsp`). */
export interface BinaryResponse {
  status: number;
  contentType: string;
  body: Buffer;
}

/** The CLI exit code for an HTTP status, used when the answer carries no known problem `type`. */
export function exitCodeForStatus(status: number): number {
  if (status === 400 || status === 413 || status === 415) return EXIT.usage;
  if (status === 401 || status === 403) return EXIT.auth;
  if (status === 404) return EXIT.notFound;
  if (status === 409) return EXIT.conflict;
  if (status === 422) return EXIT.policy;
  if (status === 429) return EXIT.rateLimited;
  if (status === 502 || status === 503 || status === 504) return EXIT.unavailable;
  return EXIT.internal;
}

/**
 * The error for a non-2xx answer: message `<title>: <detail>` (and the error id the server logged,
 * which an operator quotes when reporting), exit code from the problem type, else from the status.
 */
export function errorFromResponse(status: number, statusText: string, text: string, what: string): CliError {
  let problem: Problem | undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) problem = parsed as Problem;
  } catch {
    // Not JSON (a proxy's HTML page, say): report the status alone.
  }
  if (!problem || (typeof problem.title !== 'string' && typeof problem.type !== 'string')) {
    return new CliError(`${what}: HTTP ${status}${statusText ? ` ${statusText}` : ''}`, exitCodeForStatus(status));
  }
  const byType = exitCodeForProblemType(problem.type);
  // exitCodeForProblemType answers 1 for a type it does not know; the status then says more.
  const exitCode = byType !== EXIT.internal ? byType : exitCodeForStatus(status);
  const title = problem.title ?? problem.type ?? `HTTP ${status}`;
  let message = problem.detail && problem.detail !== title ? `${title}: ${problem.detail}` : title;
  if (problem.errorId) message += ` (error id ${problem.errorId})`;
  return new CliError(message, exitCode, problem);
}

const UNREACHABLE: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_SOCKET: 'connection closed',
};

/** The error for a request that got no HTTP answer at all: always exit 9, naming the server. */
function unreachableError(err: unknown, baseUrl: string, timeoutMs: number): CliError {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') {
    return new CliError(`no answer from the tierca server at ${baseUrl} within ${timeoutMs / 1000} s`, EXIT.unavailable);
  }
  const code = e?.cause?.code;
  const why = (code && UNREACHABLE[code]) ?? e?.cause?.message ?? e?.message ?? String(err);
  const hint = code === 'ECONNREFUSED' ? ' (is `tierca serve` running there? --server or TIERCA_URL choose another)' : '';
  return new CliError(`cannot reach the tierca server at ${baseUrl}: ${why}${hint}`, EXIT.unavailable);
}

export interface ApiClientParams {
  /** The server's base URL, e.g. `http://127.0.0.1:8080` (a path prefix is kept). */
  baseUrl: string;
  /**
   * Gives the bearer token; called only for authenticated requests, so public ones need none.
   * `undefined`: send none (the client authenticates with a TLS client certificate).
   */
  token: () => string | undefined;
  /** Per-request time limit; default {@link DEFAULT_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** The fetch to use; default the global one. */
  fetch?: typeof fetch;
  /** Sent as User-Agent; default `tierca-cli`. */
  userAgent?: string;
}

/** A client for the tierca HTTP API. */
export class ApiClient {
  private readonly base: URL;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly params: ApiClientParams) {
    this.base = parseServerUrl(params.baseUrl);
    this.timeoutMs = params.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.fetchImpl = params.fetch ?? fetch;
  }

  /** The absolute URL of `path` (which starts with `/`) under the base URL. */
  url(path: string, query: Query = {}): URL {
    const url = new URL(path.replace(/^\//, ''), this.base);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  /** `GET path` with the bearer token; the parsed JSON answer. */
  async get<T>(path: string, query: Query = {}): Promise<T> {
    return (await this.send<T>({ method: 'GET', path, query })).body;
  }

  /** `POST path` with a JSON body (none when `body` is undefined) and the bearer token. */
  async post<T>(path: string, body?: unknown): Promise<ApiResponse<T>> {
    return this.send<T>({ method: 'POST', path, body });
  }

  /** One JSON exchange. `auth` (default true) sends `Authorization: Bearer <token>`. */
  async send<T>(req: { method: string; path: string; query?: Query; body?: unknown; auth?: boolean }): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { accept: 'application/json, application/problem+json' };
    if (req.body !== undefined) headers['content-type'] = 'application/json';
    const res = await this.exchange({ ...req, headers, body: req.body === undefined ? undefined : JSON.stringify(req.body) });
    const text = res.body.toString('utf8');
    if (res.status === 204 || text.trim() === '') return { status: res.status, body: undefined as T };
    try {
      return { status: res.status, body: JSON.parse(text) as T };
    } catch {
      throw new CliError(`the answer to ${req.method} ${req.path} from ${this.params.baseUrl} is not JSON`, EXIT.internal);
    }
  }

  /**
   * One exchange with a binary body and answer (`POST /ocsp`, `GET /ca/{id}.crt`). `auth` defaults
   * to false: these are public routes, and a token is not sent where it is not needed.
   */
  async binary(req: { method: string; path: string; body?: Buffer; contentType?: string; accept: string; auth?: boolean }): Promise<BinaryResponse> {
    const headers: Record<string, string> = { accept: `${req.accept}, application/problem+json` };
    if (req.contentType) headers['content-type'] = req.contentType;
    return this.exchange({ ...req, auth: req.auth ?? false, headers });
  }

  private async exchange(req: {
    method: string;
    path: string;
    query?: Query;
    headers: Record<string, string>;
    body?: string | Buffer;
    auth?: boolean;
  }): Promise<BinaryResponse> {
    const headers: Record<string, string> = { ...req.headers, 'user-agent': this.params.userAgent ?? 'tierca-cli' };
    const token = (req.auth ?? true) ? this.params.token() : undefined;
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    const url = this.url(req.path, req.query);
    let res: Response;
    let body: Buffer;
    try {
      res = await this.fetchImpl(url, {
        method: req.method,
        headers,
        // A Buffer is sent as the bytes it views (fetch's BodyInit has no Buffer in its types).
        body: typeof req.body === 'string' || req.body === undefined ? req.body : new Uint8Array(req.body),
        redirect: 'error',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      body = Buffer.from(await res.arrayBuffer());
    } catch (err) {
      throw unreachableError(err, this.params.baseUrl, this.timeoutMs);
    }
    if (res.status < 200 || res.status > 299) {
      throw errorFromResponse(res.status, res.statusText, body.toString('utf8'), `${req.method} ${req.path}`);
    }
    return { status: res.status, contentType: res.headers.get('content-type') ?? '', body };
  }
}

/** `text` as an http(s) URL ending in `/` (so relative paths resolve under it), or a usage error. */
export function parseServerUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CliError(`--server: "${text}" is not a URL (e.g. http://127.0.0.1:8080)`, EXIT.usage);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError(`--server: "${text}" is not an http or https URL`, EXIT.usage);
  }
  if (url.username || url.password) {
    throw new CliError('--server: credentials do not belong in the URL; use --token-file or TIERCA_TOKEN', EXIT.usage);
  }
  url.search = '';
  url.hash = '';
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

/** Whether `url` names this machine (127.0.0.0/8, ::1, localhost): only then may a demo token be used. */
export function isLoopback(url: URL): boolean {
  const host = url.hostname.toLowerCase();
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * The demo token file tried last when no token is given and the server is on this machine; commands
 * that act as an officer or auditor try `demo-officer.token` / `demo-auditor.token` first.
 */
export const DEMO_TOKEN_FILES = ['demo-admin.token'] as const;

/** A demo principal of `npm start`: its token is `$TIERCA_DATA/demo-<role>.token`. */
export type DemoRole = 'officer' | 'auditor' | 'admin';

/**
 * Which demo principal a command acts as against the local demo, by the role the command needs
 * (docs/api.md "Permissions"): sysadmins run the CAs, rotation, principals and CRL generation;
 * officers manage subjects, certificates and requests; auditors read the audit log. A subcommand
 * entry (`crl generate`) wins over its command's (`crl`); a command not listed (`whoami`) uses
 * `demo-admin.token`, and every one falls back to it when its own file is missing.
 */
export const DEMO_ROLE_BY_COMMAND: Readonly<Record<string, DemoRole>> = {
  ca: 'admin',
  rotate: 'admin',
  principal: 'admin',
  subject: 'officer',
  cert: 'officer',
  request: 'officer',
  crl: 'officer',
  'crl generate': 'admin', // POST /api/v1/crls is crl:generate, sysadmin only
  audit: 'auditor',
  keystore: 'admin',
  key: 'officer',
  kmc: 'admin',
};

/** The demo role of a command path (`['cert', 'issue']`); undefined for a command not listed. */
export function demoRoleFor(path: readonly string[]): DemoRole | undefined {
  return DEMO_ROLE_BY_COMMAND[path.slice(0, 2).join(' ')] ?? DEMO_ROLE_BY_COMMAND[path[0] ?? ''];
}

export interface TokenSourceParams {
  /** `--token-file`: a file holding the token (surrounding whitespace ignored). */
  tokenFile?: string;
  /** Environment: `TIERCA_TOKEN` (the token itself) and `TIERCA_DATA` (default `./data`). */
  env: Record<string, string | undefined>;
  /** The server the token is for: the demo fallback applies only to a loopback server. */
  serverUrl: URL;
  /** Base for relative paths; default `process.cwd()`. */
  cwd?: string;
  /** The demo principal to prefer (`demo-<role>.token`) before `demo-admin.token`. */
  demoRole?: DemoRole;
}

const readTokenFile = (path: string, what: string): string => {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(`cannot read ${what} ${path}: ${code === 'ENOENT' ? 'no such file' : (code ?? String(err))}`, EXIT.usage);
  }
  const token = text.trim();
  if (!token) throw new CliError(`${what} ${path} is empty`, EXIT.usage);
  return token;
};

/**
 * The bearer token to use: `--token-file`, else `TIERCA_TOKEN`, else — only when the server is on
 * this machine — `$TIERCA_DATA/demo-<role>.token` for the command's role, then `demo-admin.token`, as
 * `npm start` writes them for the demo. A token is
 * never taken from a command-line value, where `ps` and shell history would show it.
 *
 * @throws CliError exit 2 for an unreadable or empty token file, exit 4 when there is no token.
 */
export function resolveToken({ tokenFile, env, serverUrl, cwd = process.cwd(), demoRole }: TokenSourceParams): string {
  if (tokenFile) return readTokenFile(isAbsolute(tokenFile) ? tokenFile : resolve(cwd, tokenFile), 'token file');
  const fromEnv = env.TIERCA_TOKEN?.trim();
  if (fromEnv) return fromEnv;
  const dataDir = resolve(cwd, env.TIERCA_DATA || 'data');
  if (isLoopback(serverUrl)) {
    const preferred = demoRole && demoRole !== 'admin' ? [`demo-${demoRole}.token`] : [];
    for (const name of [...preferred, ...DEMO_TOKEN_FILES]) {
      const path = join(dataDir, name);
      try {
        return readTokenFile(path, 'demo token file');
      } catch {
        // Try the next one; the final error below says what was looked for.
      }
    }
  }
  const demo = isLoopback(serverUrl)
    ? ` (no demo token at ${join(dataDir, DEMO_TOKEN_FILES[0])} either)`
    : ' (the demo token is used only for a server on this machine)';
  throw new CliError(`no API token: give --token-file <path> or set TIERCA_TOKEN${demo}`, EXIT.auth);
}
