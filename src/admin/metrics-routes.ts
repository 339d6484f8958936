/**
 * GET /metrics (Prometheus text format) and GET /readyz on the admin listener. Both are
 * unauthenticated like /healthz, so a scraper or load balancer needs no token: they carry
 * counts, connection names and error codes, never a subject, statement or secret.
 */
import type { GatewayMetrics } from './metrics.js';
import type { AdminRoute } from './server.js';
import { sendJson } from './http.js';

export interface Readiness {
  /** Each check: true when ready. */
  checks(): Promise<Record<string, boolean>>;
}

export function metricsRoutes(metrics: GatewayMetrics, readiness: Readiness): AdminRoute[] {
  return [
    {
      method: 'GET',
      pattern: /^\/metrics$/,
      handler: async ({ res }) => {
        const { contentType, body } = await metrics.exposition();
        res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
        res.end(body);
      },
    },
    {
      method: 'GET',
      pattern: /^\/readyz$/,
      handler: async ({ res }) => {
        const checks = await readiness.checks();
        const ready = Object.values(checks).every((v) => v);
        sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', checks });
      },
    },
  ];
}
