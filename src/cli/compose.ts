/**
 * The composition root: the one place that builds the parts of each process (config, logger, metrics, API client,
 * phase source, sync loop, HTTP servers). The daemons come from here as a `Process` (`webhookProcess`,
 * `syncProcess`) that the CLI runs under `untilSignal`; the one-shot commands take their parts from here.
 */
import { hostname } from 'node:os';
import type { Registry } from 'prom-client';
import type { SyncHttpServers } from '../admin/app.js';
import { loadConfig } from '../config/load.js';
import { ToolEvents } from '../sync/events/emitter.js';
import type { SyncEvents } from '../sync/events/emitter.js';
import { EventRecorder } from '../sync/events/recorder.js';
import type { Config } from '../config/schema.js';
import { KubeApi } from '../k8s/api.js';
import { loadCredentials } from '../k8s/credentials.js';
import type { KubeCredentials } from '../k8s/credentials.js';
import { createLogger } from '../log/logger.js';
import type { Logger } from '../log/logger.js';
import { createProcessRegistry, createSyncMetrics, createWebhookMetrics, reportPhase } from '../metrics/registry.js';
import type { SharedMetrics, SyncMetrics, WebhookMetrics } from '../metrics/registry.js';
import { PhaseSource } from '../phase/source.js';
import { loadRuntimeSettings } from '../runtime/settings.js';
import type { RuntimeSettings } from '../runtime/settings.js';
import { createStorageCodec } from '../storage/codec.js';
import { SyncLoop } from '../sync/loop.js';
import { VERSION } from '../version.js';
import type { WebhookHandle, WebhookPhase } from '../webhook/server.js';
import type { Process } from './process.js';

export interface CommonOptions {
  /** `--config <file>`. */
  configFile: string | undefined;
  /** The command, for the log lines (`command` field). */
  command: string;
}

export interface Common<M extends SharedMetrics, A extends KubeApi = KubeApi> {
  config: Config;
  logger: Logger;
  metrics: M;
  api: A;
}

/**
 * A daemon's config, logger (NDJSON on stdout), metrics (`createMetrics`: the webhook's or the sync's) and API client.
 * The one-shot commands build theirs in cli/cluster (`connect`).
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
    buffered: options.command === 'webhook',
  });
  const metrics = createMetrics(createProcessRegistry());
  metrics.buildInfo.set({ version: VERSION }, 1);
  const credentials = await loadCredentials(config);
  const api = createApi(credentials);
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
  /** The name this replica campaigns and writes under; default `syncIdentity(config)`. */
  identity?: string;
  readOnly?: boolean;
  elect?: boolean;
  backfillInFlight?: number;
  eventDelayMs?: number;
  /** false: list the CRs once, do not watch them (the one-shot import). */
  watchCrs?: boolean;
  /**
   * Write Events on workloads not managed through the jobs API (sync/events/); default: `sync.events.enabled` for a
   * replica that campaigns for the Lease and may write (the daemon), never for the one-shot commands.
   */
  events?: boolean;
}

export interface SyncParts {
  phase: PhaseSource;
  sync: SyncLoop;
  /** The runtime settings the sync renders with, read once (preflight reads with the same). */
  settings: RuntimeSettings;
}

/**
 * The sync's parts, shared by the sync process, the one-shot import/report commands and tests that run a sync
 * replica against a cluster (`parts` may be built by hand there). Nothing started.
 */
export function syncParts(parts: Common<SyncMetrics>, options: SyncPartsOptions = {}): SyncParts {
  const { config, logger, metrics, api } = parts;
  const phase = phaseSource(parts);
  const settings = loadRuntimeSettings(config, { logger: logger.child({ component: 'image-config' }) });
  const identity = options.identity ?? syncIdentity(config);
  const events =
    (options.events ?? config.sync.events.enabled) && options.elect !== false && !options.readOnly
      ? syncEvents(parts, identity)
      : undefined;
  const sync = new SyncLoop({
    config,
    logger,
    metrics,
    api,
    codec: createStorageCodec(),
    phase,
    identity,
    settings,
    ...(events ? { events } : {}),
    ...(options.elect === undefined ? {} : { elect: options.elect }),
    ...(options.readOnly ? { readOnly: true } : {}),
    ...(options.backfillInFlight === undefined ? {} : { backfillInFlight: options.backfillInFlight }),
    ...(options.eventDelayMs === undefined ? {} : { eventDelayMs: options.eventDelayMs }),
    ...(options.watchCrs === undefined ? {} : { watchCrs: options.watchCrs }),
  });
  return { phase, sync, settings };
}

/** The sync leader's Events (sync/events/), written through a rate-limited queue: configured by `sync.events`. */
function syncEvents({ config, logger, metrics, api }: Common<SyncMetrics>, identity: string): SyncEvents {
  const { events } = config.sync;
  const sink = new EventRecorder({
    api,
    logger: logger.child({ component: 'events' }),
    metrics,
    ratePerSecond: events.ratePerSecond,
    burst: events.burst,
    queueSize: events.queueSize,
  });
  return new ToolEvents({
    sink,
    identity,
    texts: { deadline: config.migration.deadline, migrationUrl: events.migrationUrl },
    repeatSeconds: events.repeatSeconds,
    graceSeconds: config.sync.backfillGraceSeconds,
    now: Date.now,
  });
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

/** Runs `stop` once, however often it is called. */
function once(stop: () => Promise<void>): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () => (stopping ??= stop());
}

/** What the webhook needs of the phase: read it while serving, started and stopped with the process. */
export type ServedPhase = WebhookPhase & Pick<PhaseSource, 'start' | 'stop'>;

/**
 * `jobs-storage webhook`: the admission webhook's server (TLS, h2 and HTTP/1.1, /healthz, /readyz, /metrics) and the
 * phase it decides in.
 */
export async function webhookProcess(configFile: string | undefined): Promise<Process> {
  const parts = await common({ configFile, command: 'webhook' }, createWebhookMetrics);
  return webhookProcessOf(parts, webhookParts(parts).phase);
}

/**
 * The webhook process from its parts. Starting starts the phase source, then serves; stopping drains the server (not
 * ready, the shutdown delay, in-flight requests finish), then stops the phase source.
 */
export function webhookProcessOf(
  parts: Pick<Common<WebhookMetrics>, 'config' | 'logger' | 'metrics'>,
  phase: ServedPhase,
): Process {
  const { config, logger, metrics } = parts;
  let handle: WebhookHandle | undefined;
  return {
    logger,
    async start() {
      phase.start();
      const { runWebhook } = await import('../webhook/server.js');
      handle = await runWebhook({ config, logger, metrics, phase, version: VERSION });
    },
    stop: once(async () => {
      await handle?.close();
      await phase.stop();
    }),
    force: () => handle?.force(),
    ready: () => handle?.readiness().ready ?? false,
  };
}

/** `jobs-storage sync`: the sync with its probes and metrics and its admin API. */
export async function syncProcess(configFile: string | undefined): Promise<Process> {
  const parts = await common({ configFile, command: 'sync' }, createSyncMetrics);
  return syncProcessOf(parts, syncParts(parts));
}

/**
 * The sync process from its parts (`syncParts`): starting starts the phase source and the sync, then serves its
 * probes and metrics (`sync.host:sync.port`) and its admin API (loopback `admin.host:admin.port`); stopping stops the
 * sync (its passes and writes finish), then the HTTP servers and the phase source.
 */
export function syncProcessOf(parts: Common<SyncMetrics>, { phase, sync, settings }: SyncParts): Process {
  let servers: SyncHttpServers | undefined;
  return {
    logger: parts.logger,
    async start() {
      phase.start();
      // The lists start first: the admin API's modules (express, jose) load while the API server prepares the first
      // pages, which on a cold start is time the sync would otherwise spend waiting.
      sync.start();
      servers = await syncHttp(parts, sync, settings);
    },
    stop: once(async () => {
      parts.logger.info('sync stopping');
      await sync.stop();
      await servers?.close();
      await phase.stop();
    }),
    force: () => servers?.closeAllConnections(),
    ready: () => sync.synced,
  };
}

/**
 * The sync's two listeners: probes and metrics (the shared probe routes), and the admin API with its token check, at
 * `config.sync` and `config.admin`. The sync process serves them; tests serve a running replica's with it.
 */
export async function syncHttp(
  { config, logger, metrics, api }: Common<SyncMetrics>,
  sync: SyncLoop,
  settings: RuntimeSettings,
): Promise<SyncHttpServers> {
  const [{ createAdminApp, createProbeApp, listenSyncHttp }, { createTokenVerifier }, { readPreflight }] =
    await Promise.all([import('../admin/app.js'), import('../admin/auth.js'), import('../preflight/read.js')]);
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
    preflight: (tools) => readPreflight(api, { runtime: settings }, { tools }),
  });
  const servers = await listenSyncHttp(config, { probe: createProbeApp({ source: sync, metrics }), admin });
  logger.info(
    { address: servers.probe.address(), adminAddress: servers.admin.address(), identity: syncIdentity(config) },
    'sync serving',
  );
  return servers;
}
