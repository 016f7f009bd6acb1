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
import { loadCredentials, withImpersonation } from '../k8s/credentials.js';
import type { Impersonation, KubeCredentials } from '../k8s/credentials.js';
import { FailFastApi } from '../k8s/fail-fast.js';
import { createLogger } from '../log/logger.js';
import type { Logger } from '../log/logger.js';
import { createProcessRegistry, createSyncMetrics, reportPhase } from '../metrics/registry.js';
import type { SharedMetrics, SyncMetrics, WebhookMetrics } from '../metrics/registry.js';
import { PhaseSource } from '../phase/source.js';
import { createStorageCodec } from '../storage/codec.js';
import { IMPORT_BACKFILL_IN_FLIGHT } from '../sync/backfill.js';

import { IMPORT_EVENT_DELAY_MS, SyncLoop } from '../sync/loop.js';
import { loadRuntimeSettings } from '../runtime/settings.js';
import { VERSION } from '../version.js';
import { checkImportCaller, establishCaller, refusalError, unreachableError } from './one-shot.js';
import type { OneShotCommand } from './one-shot.js';

export interface CommonOptions {
  /** `--config <file>`. */
  configFile: string | undefined;
  /** The command, for the log lines (`command` field). */
  command: string;
  /** One-shot commands log to stderr, so their stdout is only their output (tables, JSON) and can be piped. */
  oneShot?: boolean;
  /** `--as` / `--as-group`: every request impersonates this user. */
  as?: Impersonation;
}

export interface Common<M extends SharedMetrics, A extends KubeApi = KubeApi> {
  config: Config;
  logger: Logger;
  metrics: M;
  api: A;
}

/**
 * Config, logger, this process's metrics (`createMetrics`: the webhook's, the sync's or only the shared ones) and the
 * API client. Daemons log NDJSON to stdout; one-shot commands to stderr.
 */
export async function common<M extends SharedMetrics>(
  options: CommonOptions,
  createMetrics: (registry: Registry) => M,
): Promise<Common<M>>;
export async function common<M extends SharedMetrics, A extends KubeApi>(
  options: CommonOptions,
  createMetrics: (registry: Registry) => M,
  createApi: (credentials: KubeCredentials) => A,
): Promise<Common<M, A>>;
export async function common<M extends SharedMetrics>(
  options: CommonOptions,
  createMetrics: (registry: Registry) => M,
  createApi: (credentials: KubeCredentials) => KubeApi = (c) => new KubeApi(c),
): Promise<Common<M>> {
  const config = loadConfig({ file: options.configFile });
  const logger = createLogger({
    level: config.logLevel,
    base: { command: options.command, version: VERSION },
    ...(options.oneShot ? { destination: pino.destination(2) } : {}),
    buffered: options.command === 'webhook',
  });
  const metrics = createMetrics(createProcessRegistry());
  metrics.buildInfo.set({ version: VERSION }, 1);
  const credentials = await loadCredentials(config);
  const api = createApi(options.as ? withImpersonation(credentials, options.as) : credentials);
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
  backfillInFlight?: number;
  eventDelayMs?: number;
  /** false: list the CRs once, do not watch them (the one-shot import). */
  watchCrs?: boolean;
}

/** The sync's parts, shared by the sync process and the one-shot import/report commands. Nothing started. */
export function syncParts(
  parts: Common<SyncMetrics>,
  options: SyncPartsOptions = {},
): { phase: PhaseSource; sync: SyncLoop } {
  const { config, logger, metrics, api } = parts;
  const phase = phaseSource(parts);
  const sync = new SyncLoop({
    config,
    logger,
    metrics,
    api,
    codec: createStorageCodec(),
    phase,
    identity: syncIdentity(config),
    settings: loadRuntimeSettings(config),
    ...(options.elect === undefined ? {} : { elect: options.elect }),
    ...(options.readOnly ? { readOnly: true } : {}),
    ...(options.backfillInFlight === undefined ? {} : { backfillInFlight: options.backfillInFlight }),
    ...(options.eventDelayMs === undefined ? {} : { eventDelayMs: options.eventDelayMs }),
    ...(options.watchCrs === undefined ? {} : { watchCrs: options.watchCrs }),
  });
  return { phase, sync };
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

/**
 * The sync run once for `import` and `report`: no election, no backfill grace, the sync's first reconcile and
 * settled writes awaited, then `use`, then everything stopped. It fails fast: the caller is established first (a
 * SelfSubjectReview, retried while the API server is unreachable, for at most `oneShot.unreachableSeconds`); `import`
 * refuses callers that may not write job CRs before writing anything; then the first 401/403 of any request ends the
 * command with one line naming the caller and the request, as does the API server staying unreachable.
 * `whileWriting` runs from the first reconcile (every backfill dispatched) until the writes settle, and returns
 * what stops it (import's progress line). `import` writes IMPORT_BACKFILL_IN_FLIGHT CRs at once.
 */
export async function withOneShotSync<T>(
  options: { configFile: string | undefined; command: OneShotCommand; readOnly: boolean; as?: Impersonation },
  use: (sync: SyncLoop, logger: Logger) => T | Promise<T>,
  whileWriting?: (sync: SyncLoop, logger: Logger) => () => void,
): Promise<T> {
  const parts = await common(
    {
      configFile: options.configFile,
      command: options.command,
      oneShot: true,
      ...(options.as ? { as: options.as } : {}),
    },
    createSyncMetrics,
    (credentials) => new FailFastApi(credentials),
  );
  const { api, logger } = parts;
  const server = api.serverUrl;
  const caller = await establishCaller(api, {
    config: parts.config,
    logger,
    server,
    ...(options.as ? { as: options.as } : {}),
  });
  logger.debug({ caller: caller.name, groups: caller.groups, confirmed: caller.confirmed }, 'running as');
  if (options.command === 'import' && !options.readOnly) checkImportCaller(caller, parts.config);

  const config = { ...parts.config, sync: { ...parts.config.sync, backfillGraceSeconds: 0 } };
  const { phase, sync } = syncParts(
    { ...parts, config },
    {
      elect: false,
      readOnly: options.readOnly,
      ...(options.command === 'import'
        ? { backfillInFlight: IMPORT_BACKFILL_IN_FLIGHT, eventDelayMs: IMPORT_EVENT_DELAY_MS, watchCrs: false }
        : {}),
    },
  );
  const stopped = new AbortController();
  let listDeadline: NodeJS.Timeout | undefined;
  // Every way the command can end early, as one rejection: a refusal, the server gone for too long, the list deadline.
  const failure = new Promise<never>((_, reject) => {
    void api.refused.then((refusal) => reject(refusalError(options.command, caller, refusal, config)));
    const check = setInterval(() => {
      const since = api.unreachableSince;
      if (since !== undefined && Date.now() - since >= config.oneShot.unreachableSeconds * 1000)
        reject(unreachableError(server, config, api));
    }, 250);
    listDeadline = setTimeout(
      () =>
        reject(
          new AppError(
            'ERR_K8S_API',
            `could not list every workload and job CR in ${config.oneShot.listSeconds} s (oneShot.listSeconds); see the log`,
          ),
        ),
      config.oneShot.listSeconds * 1000,
    );
    stopped.signal.addEventListener('abort', () => {
      clearInterval(check);
      clearTimeout(listDeadline);
    });
  });
  failure.catch(() => undefined);
  return withPhase(phase, async () => {
    sync.start();
    try {
      await Promise.race([sync.firstReconcile, failure]);
      // Everything is listed: the deadline was for that, not for the writes (20,000 CRs may take minutes).
      clearTimeout(listDeadline);
      const stopWatching = whileWriting?.(sync, parts.logger);
      try {
        await Promise.race([sync.settled(), failure]);
      } finally {
        stopWatching?.();
      }
      return await use(sync, parts.logger);
    } finally {
      stopped.abort();
      await sync.stop();
    }
  });
}
