import type { RequestListener, Server } from 'node:http';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { getRoutes, listenHttp, probeRoutes } from '../http/routes.js';
import type { Route } from '../http/routes.js';
import type { Logger } from '../log/logger.js';
import type { SyncMetrics } from '../metrics/registry.js';
import type { PreflightReport } from '../preflight/preflight.js';
import type { ToolPlan } from '../sync/reconcile.js';
import type { SyncStatus } from '../sync/report.js';
import { AuthError, bearerToken } from './auth.js';
import type { TokenVerifier } from './auth.js';

/*
 * The sync sidecar's HTTP surface: its probes and metrics, and the admin API. The admin API presents what the sync
 * knows (its status, a tool's plan) and what preflight reads, so it sits above both; neither imports it.
 */

export interface AdminSource {
  status(): SyncStatus;
  toolPlan(tool: string): Promise<ToolPlan | undefined>;
  readonly synced: boolean;
}

export interface AdminAppDeps {
  source: AdminSource;
  metrics: SyncMetrics;
  verifier: TokenVerifier;
  allowedSubjects: readonly string[];
  logger: Logger;
  /**
   * Preflight over the named tools, or every tool when none is named, read from the API server when asked
   * (`GET /admin/v1/preflight`); the endpoint answers 404 without it.
   */
  preflight?: (tools: readonly string[]) => Promise<PreflightReport>;
}

const TOOL_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * The sidecar's open HTTP surface, for the kubelet and Prometheus: /metrics, /healthz and /readyz (ready once the
 * first reconcile is done), no token: the same probe routes as the webhook's. It is served on `sync.host:sync.port`;
 * it never serves the admin API.
 */
export function createProbeApp(d: Pick<AdminAppDeps, 'source' | 'metrics'>): Route {
  return getRoutes(
    probeRoutes({
      registry: d.metrics.registry,
      readiness: () => ({ ready: d.source.synced, checks: { synced: d.source.synced } }),
    }),
  );
}

/**
 * The admin API: /admin/v1/* needs a service-account JWT for the configured audience whose subject is on the
 * allowed list. It is plain HTTP carrying bearer tokens, so it gets its own listener on a loopback address
 * (`admin.host:admin.port`), reached through `kubectl port-forward`.
 */
export function createAdminApp(d: AdminAppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');

  const admin = express.Router();
  admin.use(requireAdmin(d));
  admin.get('/status', (_req, res) => {
    res.json(d.source.status());
  });
  admin.get('/tools/:tool', async (req: Request<{ tool: string }>, res) => {
    const tool = req.params.tool;
    if (!TOOL_NAME.test(tool)) {
      res.status(400).json({ error: 'tool name must be a lowercase RFC 1123 label' });
      return;
    }
    const status = d.source.status();
    const plan = await d.source.toolPlan(tool);
    res.json({
      tool,
      phase: status.phase,
      synced: status.synced,
      counts: plan?.counts ?? { onlyInRuntime: 0, onlyInStorage: 0, outOfSync: 0, foreign: 0 },
      jobs: plan?.jobs ?? [],
    });
  });
  admin.get('/preflight', async (req, res) => {
    const raw = req.query['tool'];
    const tools = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).map(String);
    const bad = tools.filter((t) => !TOOL_NAME.test(t));
    if (bad.length > 0) {
      res.status(400).json({ error: 'tool name must be a lowercase RFC 1123 label' });
      return;
    }
    if (!d.preflight) {
      res.status(404).json({ error: 'preflight is not served by this process' });
      return;
    }
    try {
      res.json(await d.preflight(tools));
    } catch (err) {
      d.logger.error({ err, tools }, 'preflight could not read the cluster');
      res.status(502).json({ error: 'preflight could not read the cluster; see the sync log' });
    }
  });
  app.use('/admin/v1', admin);
  app.use((_req, res) => {
    res.status(404).json({ error: 'not found' });
  });
  return app;
}

function requireAdmin(d: AdminAppDeps) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const token = bearerToken(req.headers.authorization);
    if (!token) {
      res.status(401).set('www-authenticate', 'Bearer').json({ error: 'a bearer token is required' });
      return;
    }
    try {
      const { subject } = await d.verifier.verify(token);
      if (!d.allowedSubjects.includes(subject))
        throw new AuthError(403, `subject '${subject}' may not use the admin API`);
      d.logger.info({ subject, path: req.path }, 'admin request');
      next();
    } catch (err) {
      if (err instanceof AuthError) {
        d.logger.warn({ status: err.status, reason: err.message, path: req.path }, 'admin request refused');
        res
          .status(err.status)
          .set(err.status === 401 ? { 'www-authenticate': 'Bearer error="invalid_token"' } : {})
          .json({ error: err.message });
        return;
      }
      d.logger.error({ err }, 'token verification failed');
      res.status(503).json({ error: 'cannot verify tokens right now' });
    }
  };
}

export interface SyncHttpServers {
  /** /metrics, /healthz, /readyz on `sync.host:sync.port`. */
  probe: Server;
  /** The admin API on the loopback `admin.host:admin.port`. */
  admin: Server;
  /** Stops both listeners and closes their connections. */
  close(): Promise<void>;
  /** Closes every connection of both listeners now, requests in flight included. */
  closeAllConnections(): void;
}

/**
 * Listens with the probe routes on `sync.host:sync.port` and the admin app on `admin.host:admin.port` (loopback, as
 * the config schema requires). If the second listener fails, the first is closed before the error is thrown.
 */
export async function listenSyncHttp(
  config: { sync: { host: string; port: number }; admin: { host: string; port: number } },
  apps: { probe: RequestListener; admin: RequestListener },
): Promise<SyncHttpServers> {
  const probe = await listenHttp(apps.probe, config.sync.port, config.sync.host);
  let admin: Server;
  try {
    admin = await listenHttp(apps.admin, config.admin.port, config.admin.host);
  } catch (err) {
    await closeServer(probe);
    throw err;
  }
  return {
    probe,
    admin,
    close: async () => void (await Promise.all([closeServer(probe), closeServer(admin)])),
    closeAllConnections: () => {
      probe.closeAllConnections();
      admin.closeAllConnections();
    },
  };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
