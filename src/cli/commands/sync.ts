import { once } from 'node:events';
import { createSyncMetrics } from '../../metrics/registry.js';
import type { SyncMetrics } from '../../metrics/registry.js';
import type { SyncHttpServers } from '../../sync/admin-app.js';
import type { SyncLoop } from '../../sync/loop.js';
import { common, syncIdentity, syncParts, withPhase } from '../compose.js';
import type { Common } from '../compose.js';
import { EXIT } from '../io.js';
import type { CliIo } from '../io.js';

/**
 * `jobs-storage sync`: the sync with its metrics and probes (`sync.host:sync.port`) and its admin API (loopback
 * `admin.host:admin.port`), until SIGTERM/SIGINT.
 */
export async function runSyncCommand(opts: { config?: string }, _io: CliIo): Promise<number> {
  const parts = await common({ configFile: opts.config, command: 'sync' }, createSyncMetrics);
  const { phase, sync } = syncParts(parts);
  return withPhase(phase, async () => {
    // The lists start first: the admin API's modules (express, jose) load while the API server prepares the first
    // pages, which on a cold start is time the sync would otherwise spend waiting.
    sync.start();
    let servers: SyncHttpServers;
    try {
      servers = await serveHttp(parts, sync);
    } catch (err) {
      await sync.stop();
      throw err;
    }
    const signal = await Promise.race([once(process, 'SIGTERM'), once(process, 'SIGINT')]);
    parts.logger.info({ signal: String(signal[0] ?? 'signal') }, 'sync stopping');
    await sync.stop();
    await servers.close();
    return EXIT.ok;
  });
}

async function serveHttp(
  { config, logger, metrics, api }: Common<SyncMetrics>,
  sync: SyncLoop,
): Promise<SyncHttpServers> {
  const [
    { createAdminApp, createProbeApp, listenSyncHttp },
    { createTokenVerifier },
    { readPreflight },
    { loadRuntimeSettings },
  ] = await Promise.all([
    import('../../sync/admin-app.js'),
    import('../../sync/admin-auth.js'),
    import('../../preflight/read.js'),
    import('../../runtime/settings.js'),
  ]);
  const verifier = createTokenVerifier({
    api,
    audience: config.admin.audience,
    maxTokenAgeSeconds: config.admin.maxTokenAgeSeconds,
    ...(config.admin.issuer ? { issuer: config.admin.issuer } : {}),
    ...(config.admin.jwksUri ? { jwksUri: config.admin.jwksUri } : {}),
  });
  const admin = createAdminApp({
    source: sync,
    metrics,
    verifier,
    allowedSubjects: config.admin.allowedSubjects,
    logger,
    preflight: (tools) => readPreflight(api, { runtime: loadRuntimeSettings(config) }, { tools }),
  });
  const servers = await listenSyncHttp(config, { probe: createProbeApp({ source: sync, metrics }), admin });
  logger.info(
    { address: servers.probe.address(), adminAddress: servers.admin.address(), identity: syncIdentity(config) },
    'sync serving',
  );
  return servers;
}
