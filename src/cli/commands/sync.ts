import { once } from 'node:events';
import type { Server } from 'node:http';
import { createSyncMetrics } from '../../metrics/registry.js';
import type { SyncMetrics } from '../../metrics/registry.js';
import type { SyncSidecar } from '../../sync/sidecar.js';
import { common, syncIdentity, syncParts, withPhase } from '../compose.js';
import type { Common } from '../compose.js';
import { EXIT } from '../io.js';
import type { CliIo } from '../io.js';

/** `jobs-storage sync`: the sidecar with its metrics and admin API, until SIGTERM/SIGINT. */
export async function runSyncCommand(opts: { config?: string }, _io: CliIo): Promise<number> {
  const parts = await common({ configFile: opts.config, command: 'sync' }, createSyncMetrics);
  const { phase, sidecar } = syncParts(parts);
  return withPhase(phase, async () => {
    // The lists start first: the admin API's modules (express, jose) load while the API server prepares the first
    // pages, which on a cold start is time the sidecar would otherwise spend waiting.
    sidecar.start();
    let server: Server;
    try {
      server = await serveAdmin(parts, sidecar);
    } catch (err) {
      await sidecar.stop();
      throw err;
    }
    const signal = await Promise.race([once(process, 'SIGTERM'), once(process, 'SIGINT')]);
    parts.logger.info({ signal: String(signal[0] ?? 'signal') }, 'sync stopping');
    await sidecar.stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return EXIT.ok;
  });
}

async function serveAdmin(
  { config, logger, metrics, api }: Common<SyncMetrics>,
  sidecar: SyncSidecar,
): Promise<Server> {
  const [{ createAdminApp }, { createTokenVerifier }, { readPreflight }, { runtimeSettings }] = await Promise.all([
    import('../../sync/admin-app.js'),
    import('../../sync/admin-auth.js'),
    import('../../preflight/read.js'),
    import('../../sync/track-workload.js'),
  ]);
  const verifier = createTokenVerifier({
    api,
    audience: config.admin.audience,
    maxTokenAgeSeconds: config.admin.maxTokenAgeSeconds,
    ...(config.admin.issuer ? { issuer: config.admin.issuer } : {}),
    ...(config.admin.jwksUri ? { jwksUri: config.admin.jwksUri } : {}),
  });
  const app = createAdminApp({
    source: sidecar,
    metrics,
    verifier,
    allowedSubjects: config.admin.allowedSubjects,
    logger,
    preflight: (tools) => readPreflight(api, { runtime: runtimeSettings(config) }, { tools }),
  });
  const server: Server = app.listen(config.sync.port, config.sync.host);
  await once(server, 'listening');
  logger.info({ address: server.address(), identity: syncIdentity(config) }, 'sync serving');
  return server;
}
