import { once } from 'node:events';
import { hostname } from 'node:os';
import type { Server } from 'node:http';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { KubeApi } from '../k8s/api.js';
import { loadCredentials } from '../k8s/credentials.js';
import { PhaseSource } from '../k8s/phase-source.js';
import pino from 'pino';
import { createLogger } from '../log/logger.js';
import type { Logger } from '../log/logger.js';
import { createMetrics } from '../metrics/registry.js';
import type { Metrics } from '../metrics/registry.js';
import { createStorageCodec } from '../storage/codec.js';
import { loadRuntimeSettings } from '../runtime/settings.js';
import { SyncLoop as SyncSidecar } from '../sync/loop.js';
import { VERSION } from '../version.js';
import type { CliIo } from '../cli.js';

interface Common {
  config: Config;
  logger: Logger;
  metrics: Metrics;
}

/**
 * Config, logger and metrics for a command. Daemons log NDJSON to stdout; one-shot commands (`oneShot`) log to
 * stderr, so their stdout is only their output (tables, JSON) and can be piped.
 */
function common(file: string | undefined, component: string, oneShot = false): Common {
  const config = loadConfig({ file });
  const logger = createLogger({
    level: config.logLevel,
    base: { command: component, version: VERSION },
    ...(oneShot ? { destination: pino.destination(2) } : {}),
  });
  const metrics = createMetrics();
  metrics.buildInfo.set({ version: VERSION }, 1);
  return { config, logger, metrics };
}

/** The sync's dependencies, shared by the sidecar and the one-shot import/report commands. */
export async function syncParts(c: Common, o: { readOnly?: boolean; elect?: boolean } = {}) {
  const api = new KubeApi(await loadCredentials(c.config));
  const phaseSource = new PhaseSource({ config: c.config, api, logger: c.logger, metrics: c.metrics });
  const sidecar = new SyncSidecar({
    config: c.config,
    logger: c.logger,
    metrics: c.metrics,
    api,
    codec: createStorageCodec(),
    phase: phaseSource,
    identity: c.config.sync.identity || hostname(),
    settings: loadRuntimeSettings(c.config),
    ...(o.elect === undefined ? {} : { elect: o.elect }),
    ...(o.readOnly ? { readOnly: true } : {}),
  });
  return { api, phaseSource, sidecar };
}

/** `jobs-storage sync`: the sidecar with its metrics and admin API, until SIGTERM/SIGINT. */
export async function runSyncCommand(opts: { config?: string }, _io: CliIo): Promise<number> {
  const c = common(opts.config, 'sync');
  const { api, phaseSource, sidecar } = await syncParts(c);
  // The lists start first: the admin API's modules (express, jose) load while the API server prepares the first
  // pages, which on a cold start is time the sidecar would otherwise spend waiting.
  phaseSource.start();
  sidecar.start();
  let server: Server;
  try {
    server = await serveAdmin(c, api, sidecar);
  } catch (err) {
    await sidecar.stop();
    await phaseSource.stop();
    throw err;
  }
  const signal = await Promise.race([once(process, 'SIGTERM'), once(process, 'SIGINT')]);
  c.logger.info({ signal: String(signal[0] ?? 'signal') }, 'sync stopping');
  await sidecar.stop();
  await phaseSource.stop();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return 0;
}

async function serveAdmin(c: Common, api: KubeApi, sidecar: SyncSidecar): Promise<Server> {
  const [{ createAdminApp }, { createTokenVerifier }] = await Promise.all([
    import('../sync/admin-app.js'),
    import('../sync/admin-auth.js'),
  ]);
  const verifier = createTokenVerifier({
    api,
    audience: c.config.admin.audience,
    maxTokenAgeSeconds: c.config.admin.maxTokenAgeSeconds,
    ...(c.config.admin.issuer ? { issuer: c.config.admin.issuer } : {}),
    ...(c.config.admin.jwksUri ? { jwksUri: c.config.admin.jwksUri } : {}),
  });
  const app = createAdminApp({
    source: sidecar,
    metrics: c.metrics,
    verifier,
    allowedSubjects: c.config.admin.allowedSubjects,
    logger: c.logger,
  });
  const server: Server = app.listen(c.config.sync.port, c.config.sync.host);
  await once(server, 'listening');
  c.logger.info({ address: server.address(), identity: c.config.sync.identity || hostname() }, 'sync serving');
  return server;
}

export { common as loadCommon };
