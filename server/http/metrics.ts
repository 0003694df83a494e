/**
 * Prometheus metrics: one registry per app, so tests can build several apps in one process.
 */
import { Registry, Counter, Gauge, collectDefaultMetrics } from 'prom-client';
import type { OfflineRootArtifacts } from '../ca/offline-root-watch.ts';

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

/**
 * The offline root's gauges (docs/offline-root.md): `tierca_offline_root_next_update_timestamp_seconds`
 * by artifact (`crl`, `ocsp`) — alert on `… - time() < 30*86400` — and `tierca_offline_root_warning`
 * (1 while the service warns). Read from `current` at each scrape.
 */
export function registerOfflineRootGauges(metrics: Metrics, current: () => OfflineRootArtifacts | undefined): void {
  new Gauge({
    name: 'tierca_offline_root_next_update_timestamp_seconds',
    help: 'When the offline root CRL and its pre-signed OCSP answers expire (Unix seconds); renew them at a ceremony before then',
    labelNames: ['artifact'] as const,
    registers: [metrics.registry],
    collect() {
      const c = current();
      if (c?.crlNextUpdate) this.set({ artifact: 'crl' }, Date.parse(c.crlNextUpdate) / 1000);
      if (c?.ocspNextUpdate) this.set({ artifact: 'ocsp' }, Date.parse(c.ocspNextUpdate) / 1000);
    },
  });
  new Gauge({
    name: 'tierca_offline_root_warning',
    help: '1 while the offline root CRL or its OCSP answers are missing or expire within 30 days',
    registers: [metrics.registry],
    collect() {
      this.set(current()?.warning ? 1 : 0);
    },
  });
}
