import { type RequestHandler, Router } from 'express';
import type { Metrics } from './metrics.js';
import type { Readiness } from './readiness.js';

export const OPS_PATHS = ['/healthz', '/readyz', '/metrics'] as const;

export interface OpsRouterOptions {
  readiness: Readiness;
  metrics: Metrics;
  /**
   * When set, runs before /metrics: the bridge passes the bearer-token check for METRICS_TOKEN
   * (scim-http/auth.ts), so /metrics requires `Authorization: Bearer <token>`.
   */
  metricsGuard?: RequestHandler;
}

/** /healthz (liveness), /readyz (readiness), /metrics (Prometheus). No SCIM authentication. */
export function opsRouter({ readiness, metrics, metricsGuard }: OpsRouterOptions): Router {
  const router = Router();

  // Liveness: the process is up, its event loop turns, and its store has not been unreachable for
  // longer than LIVENESS_STORE_TIMEOUT_MS (from the background checks; no check runs here). A short
  // outage, or any CloudIdentity outage, does not fail it: that must not get healthy pods restarted.
  router.get('/healthz', (_req, res) => {
    const live = readiness.liveness();
    res.setHeader('Cache-Control', 'no-store');
    res.status(live.status === 'ok' ? 200 : 503).json(live);
  });

  router.get('/readyz', async (_req, res) => {
    const report = await readiness.check();
    res.setHeader('Cache-Control', 'no-store');
    res.status(report.status === 'ready' ? 200 : 503).json(report);
  });

  const guard = metricsGuard ? [metricsGuard] : [];
  router.get('/metrics', ...guard, async (_req, res) => {
    const { contentType, body } = await metrics.render();
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Content-Type', contentType);
    res.send(body);
  });

  return router;
}
