/**
 * Prometheus metrics: one registry per app, so tests can build several apps in one process.
 */
import { Registry, Counter, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'route' | 'status'>;
  /** Admin API logins refused, by reason (`no-credentials`, `unknown-token`, `rate-limited`…): anonymous refusals are counted here, not audited. */
  loginRefusals: Counter<'reason'>;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const httpRequests = new Counter({
    name: 'tierca_http_requests_total',
    help: 'HTTP requests answered by the express app, by route group and status',
    labelNames: ['route', 'status'] as const,
    registers: [registry],
  });
  const loginRefusals = new Counter({
    name: 'tierca_http_login_refusals_total',
    help: 'Admin API requests refused at authentication, by reason',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  return { registry, httpRequests, loginRefusals };
}
