/**
 * Prometheus metrics: one registry per app, so tests can build several apps in one process.
 */
import { Registry, Counter, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'route' | 'status'>;
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
  return { registry, httpRequests };
}
