/**
 * Test helpers for the CLI tests: a fake tierca server on 127.0.0.1:0 that records every request and
 * answers canned responses, and `runCli`, which runs the real CLI entry (`run` of cli/main.ts)
 * in-process with captured output.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { run } from '../../cli/main.ts';
import type { InputSource } from '../../cli/output.ts';

export interface RecordedRequest {
  method: string;
  /** Path without the query. */
  path: string;
  query: Record<string, string>;
  headers: IncomingMessage['headers'];
  body: Buffer;
  /** The body parsed as JSON, when it is JSON. */
  json?: unknown;
}

export interface CannedResponse {
  status?: number;
  /** Sent as application/json (or problem+json when `problem` is set). */
  json?: unknown;
  problem?: boolean;
  body?: Buffer | string;
  contentType?: string;
}

export type Handler = CannedResponse | ((req: RecordedRequest) => CannedResponse | Promise<CannedResponse>);

/** A problem document as the server sends it. */
export const problem = (code: string, status: number, title: string, detail?: string): CannedResponse => ({
  status,
  problem: true,
  json: { type: `urn:tierca:problem:${code}`, title, status, ...(detail ? { detail } : {}) },
});

export class FakeServer {
  readonly requests: RecordedRequest[] = [];
  private readonly routes = new Map<string, Handler>();
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  /** Starts on 127.0.0.1 with a free port; unknown routes answer 404 not-found. */
  static async start(): Promise<FakeServer> {
    let self: FakeServer | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        const url = new URL(req.url ?? '/', 'http://fake');
        const body = Buffer.concat(chunks);
        let json: unknown;
        if (String(req.headers['content-type']).startsWith('application/json')) json = JSON.parse(body.toString('utf8'));
        const recorded: RecordedRequest = {
          method: req.method ?? '',
          path: url.pathname,
          query: Object.fromEntries(url.searchParams),
          headers: req.headers,
          body,
          json,
        };
        self!.requests.push(recorded);
        const handler = self!.routes.get(`${recorded.method} ${recorded.path}`);
        const answer: CannedResponse = handler
          ? typeof handler === 'function'
            ? await handler(recorded)
            : handler
          : problem('not-found', 404, 'Not found', `no route ${recorded.method} ${recorded.path}`);
        const status = answer.status ?? 200;
        if (answer.json !== undefined) {
          res.writeHead(status, { 'content-type': answer.problem ? 'application/problem+json' : 'application/json' });
          res.end(JSON.stringify(answer.json));
        } else {
          res.writeHead(status, answer.contentType ? { 'content-type': answer.contentType } : {});
          res.end(answer.body ?? '');
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    self = new FakeServer(server, `http://127.0.0.1:${port}`);
    return self;
  }

  /** Sets the answer for `METHOD /path` (the query is not part of the key). */
  on(route: string, handler: Handler): this {
    this.routes.set(route, handler);
    return this;
  }

  /** The only request recorded since the last `reset()`; fails when there were more or none. */
  only(): RecordedRequest {
    if (this.requests.length !== 1) throw new Error(`expected one request, got ${this.requests.map((r) => `${r.method} ${r.path}`).join(', ') || 'none'}`);
    return this.requests[0];
  }

  reset(): void {
    this.requests.length = 0;
    this.routes.clear();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A text sink that keeps what was written. */
export class Capture {
  text = '';
  isTTY = false;
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

/** A stdin for tests: not a terminal unless `tty`; `type()` feeds keystrokes to a raw-mode prompt. */
export function fakeStdin(tty = false): InputSource & PassThrough & { rawModes: boolean[]; isRaw: boolean } {
  const stream = new PassThrough() as unknown as InputSource & PassThrough & { rawModes: boolean[]; isRaw: boolean };
  stream.isTTY = tty;
  stream.isRaw = false;
  stream.rawModes = [];
  if (tty) {
    stream.setRawMode = (mode: boolean) => {
      stream.rawModes.push(mode);
      stream.isRaw = mode;
      return stream;
    };
  }
  return stream;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `tierca argv…` in-process with `env` as its whole environment. */
export async function runCli(argv: string[], env: Record<string, string | undefined> = {}, stdin = fakeStdin()): Promise<CliResult> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await run(argv, { stdout, stderr, env, stdin });
  return { code, stdout: stdout.text, stderr: stderr.text };
}
