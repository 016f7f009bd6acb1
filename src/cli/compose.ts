/**
 * The composition root: the one place that builds the parts of each process (config, logger, metrics, API client,
 * phase source, sync loop) and starts and stops what runs in the background. Commands take their parts from here.
 */
import { hostname } from 'node:os';
import pino from 'pino';
import type { Registry } from 'prom-client';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { AppError } from '../errors.js';
import { KubeApi } from '../k8s/api.js';
import { loadCredentials } from '../k8s/credentials.js';
import { createLogger } from '../log/logger.js';
import type { Logger } from '../log/logger.js';
import { createProcessRegistry, createSyncMetrics, reportPhase } from '../metrics/registry.js';
import type { SharedMetrics, SyncMetrics, WebhookMetrics } from '../metrics/registry.js';
import { PhaseSource } from '../phase/source.js';
import { createStorageCodec } from '../storage/codec.js';
import { SyncSidecar } from '../sync/sidecar.js';
import { workloadTracker } from '../sync/track-workload.js';
import { VERSION } from '../version.js';

export interface CommonOptions {
  /** `--config <file>`. */
  configFile: string | undefined;
  /** The command, for the log lines (`command` field). */
  command: string;
  /** One-shot commands log to stderr, so their stdout is only their output (tables, JSON) and can be piped. */
  oneShot?: boolean;
}

export interface Common<M extends SharedMetrics> {
  config: Config;
  logger: Logger;
  metrics: M;
  api: KubeApi;
}

/**
 * Config, logger, this process's metrics (`createMetrics`: the webhook's, the sync's or only the shared ones) and the
 * API client. Daemons log NDJSON to stdout; one-shot commands to stderr.
 */
export async function common<M extends SharedMetrics>(
  options: CommonOptions,
  createMetrics: (registry: Registry) => M,
): Promise<Common<M>> {
  const config = loadConfig({ file: options.configFile });
  const logger = createLogger({
    level: config.logLevel,
    base: { command: options.command, version: VERSION },
    ...(options.oneShot ? { destination: pino.destination(2) } : {}),
  });
  const metrics = createMetrics(createProcessRegistry());
  metrics.buildInfo.set({ version: VERSION }, 1);
  const api = new KubeApi(await loadCredentials(config));
  return { config, logger, metrics, api };
}

/** The phase from its ConfigMap, exported as `phase_info` and `phase_config_stale`. Not started. */
function phaseSource({ config, api, logger, metrics }: Common<SharedMetrics>): PhaseSource {
  return new PhaseSource({ config, api, logger, report: (report) => reportPhase(metrics, report) });
}

/** The webhook's parts besides its server: the phase. */
export function webhookParts(parts: Common<WebhookMetrics>): { phase: PhaseSource } {
  return { phase: phaseSource(parts) };
}

export interface SyncPartsOptions {
  readOnly?: boolean;
  elect?: boolean;
}

/** The sync's parts, shared by the sync process and the one-shot import/report commands. Nothing started. */
export function syncParts(
  parts: Common<SyncMetrics>,
  options: SyncPartsOptions = {},
): { phase: PhaseSource; sidecar: SyncSidecar } {
  const { config, logger, metrics, api } = parts;
  const phase = phaseSource(parts);
  const sidecar = new SyncSidecar({
    config,
    logger,
    metrics,
    api,
    codec: createStorageCodec(),
    phase,
    identity: syncIdentity(config),
    ...workloadTracker(config),
    ...(options.elect === undefined ? {} : { elect: options.elect }),
    ...(options.readOnly ? { readOnly: true } : {}),
  });
  return { phase, sidecar };
}

/** The name this replica campaigns and writes under. */
export function syncIdentity(config: Config): string {
  return config.sync.identity || hostname();
}

/** Starts the phase source, runs `use`, and stops the phase source however `use` ends. */
export async function withPhase<T>(phase: PhaseSource, use: () => Promise<T>): Promise<T> {
  phase.start();
  try {
    return await use();
  } finally {
    await phase.stop();
  }
}

/** How long a one-shot command waits for the first complete list of everything before giving up. */
const ONE_SHOT_TIMEOUT_MS = 300_000;

/**
 * The sync run once for `import` and `report`: no election, no backfill grace, the sidecar's first reconcile and
 * settled writes awaited, then `use`, then everything stopped.
 */
export async function withOneShotSync<T>(
  options: { configFile: string | undefined; readOnly: boolean },
  use: (sidecar: SyncSidecar, logger: Logger) => T | Promise<T>,
): Promise<T> {
  const parts = await common(
    { configFile: options.configFile, command: options.readOnly ? 'report' : 'import', oneShot: true },
    createSyncMetrics,
  );
  const config = { ...parts.config, sync: { ...parts.config.sync, backfillGraceSeconds: 0 } };
  const { phase, sidecar } = syncParts({ ...parts, config }, { elect: false, readOnly: options.readOnly });
  return withPhase(phase, async () => {
    sidecar.start();
    let timer: NodeJS.Timeout | undefined;
    try {
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new AppError('ERR_K8S_API', 'could not list every workload and job CR in time; see the log')),
          ONE_SHOT_TIMEOUT_MS,
        );
      });
      await Promise.race([sidecar.firstReconcile, timedOut]);
      await sidecar.settled();
      return await use(sidecar, parts.logger);
    } finally {
      clearTimeout(timer);
      await sidecar.stop();
    }
  });
}
