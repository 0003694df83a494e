/**
 * A keep-alive HTTP client for the API benchmarks (node:http with an Agent that keeps connections:
 * `fetch` would do too, but undici is not a dependency here and its pool is harder to pin to N
 * connections). Bodies are read whole; the latency is measured from the call to the last byte.
 */
import { Agent, request } from 'node:http';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** Milliseconds from sending to the last byte of the answer. */
  ms: number;
}

export class KeepAliveClient {
  private readonly agent: Agent;
  private readonly base: URL;

  constructor(baseUrl: string, private readonly defaultHeaders: Record<string, string> = {}, connections = 32) {
    this.base = new URL(baseUrl);
    this.agent = new Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  }

  send(method: string, path: string, body?: Buffer | string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
    const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
    const started = process.hrtime.bigint();
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: this.base.hostname,
          port: this.base.port,
          method,
          path,
          agent: this.agent,
          headers: { ...this.defaultHeaders, ...headers, ...(payload ? { 'content-length': String(payload.length) } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks),
              ms: Number(process.hrtime.bigint() - started) / 1e6,
            });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Sends JSON and parses a JSON answer (the raw body is kept when it is not JSON). */
  async json<T = any>(method: string, path: string, body?: unknown): Promise<HttpAnswer & { json: T }> {
    const answer = await this.send(method, path, body === undefined ? undefined : JSON.stringify(body), body === undefined ? {} : { 'content-type': 'application/json' });
    let json: T;
    try {
      json = answer.body.length ? (JSON.parse(answer.body.toString('utf8')) as T) : (undefined as T);
    } catch {
      json = undefined as T;
    }
    return { ...answer, json };
  }

  close(): void {
    this.agent.destroy();
  }
}
