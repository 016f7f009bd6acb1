import express from 'express';
import type { Express } from 'express';
import type { Registry } from 'prom-client';
import type { AdmissionHandler } from './admission.js';
import { ADMISSION_PATHS, serveAdmission } from './http.js';

export interface Readiness {
  ready: boolean;
  /** Each condition and whether it holds, e.g. `{ certificate: true, phase: false, draining: false }`. */
  checks: Record<string, boolean>;
}

export interface AppDeps {
  admission: AdmissionHandler;
  registry: Registry;
  readiness: () => Readiness;
}

/**
 * The webhook's HTTP surface without TLS or listen: the two admission paths, /healthz (the process answers),
 * /readyz (certificate loaded, phase known, not draining) and /metrics.
 */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  for (const [path, webhook] of Object.entries(ADMISSION_PATHS)) {
    app.post(path, (req, res) => serveAdmission(deps.admission, webhook, req, res));
  }
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    const state = deps.readiness();
    res.status(state.ready ? 200 : 503).json({ status: state.ready ? 'ready' : 'not ready', checks: state.checks });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(deps.registry.contentType).send(await deps.registry.metrics());
  });
  app.use((_req, res) => {
    res.status(404).json({ message: 'not found' });
  });
  return app;
}
