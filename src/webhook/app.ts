import express from 'express';
import type { Express } from 'express';
import type { Registry } from 'prom-client';
import type { AdmissionHandler } from './admission.js';
import { ADMISSION_PATHS, serveAdmission } from './http.js';
import type { WebhookRequest, WebhookResponse } from './http.js';

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
    const { status, body } = readyzAnswer(deps.readiness());
    res.status(status).json(body);
  });
  app.get('/metrics', async (_req, res) => {
    res.type(deps.registry.contentType).send(await deps.registry.metrics());
  });
  app.use((_req, res) => {
    res.status(404).json({ message: 'not found' });
  });
  return app;
}

function readyzAnswer(state: Readiness): { status: number; body: unknown } {
  return {
    status: state.ready ? 200 : 503,
    body: { status: state.ready ? 'ready' : 'not ready', checks: state.checks },
  };
}

function sendJson(res: WebhookResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/**
 * The same probe and metrics routes as `createApp` for h2 requests, without express: express 5 swaps the request's
 * prototype for node:http's and fails on node:http2's compat request. kubelet probes and Prometheus scrapes use
 * HTTP/1.1 and keep reaching express; an h2 client (e.g. kube-apiserver's connection) gets the same answers here.
 */
export function createPlainRoutes(
  deps: Omit<AppDeps, 'admission'>,
): (req: WebhookRequest, res: WebhookResponse) => void {
  return (req, res) => {
    req.resume();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (req.method !== 'GET') {
      sendJson(res, 404, { message: 'not found' });
      return;
    }
    if (path === '/healthz') {
      sendJson(res, 200, { status: 'ok' });
    } else if (path === '/readyz') {
      const { status, body } = readyzAnswer(deps.readiness());
      sendJson(res, status, body);
    } else if (path === '/metrics') {
      deps.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': deps.registry.contentType, 'content-length': Buffer.byteLength(text) });
          res.end(text);
        },
        () => sendJson(res, 500, { message: 'metrics unavailable' }),
      );
    } else {
      sendJson(res, 404, { message: 'not found' });
    }
  };
}
