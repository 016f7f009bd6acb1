import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { PHASES } from '../rollout/phases.js';
import type { Phase } from '../rollout/phases.js';

export const METRIC_PREFIX = 'toolforge_jobs_';

/** Admission latency buckets in seconds, up to the 3 s webhook timeout. */
const ADMISSION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3];
const SYNC_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/*
 * Every metric of the product is declared in this module, once. Each process registers only its own set plus the
 * shared one, on its own registry: an unlabelled gauge a process never sets would export 0 (the sync would report a
 * serving certificate that expired in 1970). Tests create a fresh registry each. Per-tool gauges keep only non-zero
 * series: their owners remove a tool's series when its count drops to zero.
 */

/**
 * How often the event-loop delay histogram (`nodejs_eventloop_lag_*`) samples, ms. prom-client's default, 10 ms, is
 * a timer that wakes the process 100 times a second: at 200 admission reviews/s that is one wakeup for every two
 * reviews, each costing the webhook CPU while it has nothing to do. 100 ms still catches a blocked loop.
 */
export const EVENT_LOOP_SAMPLE_MS = 100;

/** A registry for one process, with Node's default metrics under their standard names (`process_*`, `nodejs_*`). */
export function createProcessRegistry(options: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  }
  return registry;
}

/** The metrics of every process: build and rollout phase. */
export function createSharedMetrics(registry: Registry) {
  const registers = [registry];
  return {
    registry,
    buildInfo: new Gauge({
      name: `${METRIC_PREFIX}build_info`,
      help: 'Build information; always 1',
      labelNames: ['version'] as const,
      registers,
    }),
    phaseInfo: new Gauge({
      name: `${METRIC_PREFIX}phase_info`,
      help: 'The rollout phase in force: 1 for the current phase; all 0 until the phase ConfigMap has been read',
      labelNames: ['phase'] as const,
      registers,
    }),
    phaseStale: new Gauge({
      name: `${METRIC_PREFIX}phase_config_stale`,
      help: '1 while the phase ConfigMap cannot be read and the last known phase is used',
      registers,
    }),
  };
}

/** The webhook's metrics: admission decisions and the serving certificate, plus the shared ones. */
export function createWebhookMetrics(registry: Registry) {
  const registers = [registry];
  // Each read of an admission metric (a scrape, a test) first applies the records the admission handler still holds
  // in its batch, so what is read counts every review answered before it.
  const pending = { apply: (): void => undefined };
  const collect = (): void => pending.apply();
  return {
    ...createSharedMetrics(registry),
    /** Sets what a read of the admission metrics applies first (`createAdmission` with a batch). */
    applyBeforeRead(apply: () => void): void {
      pending.apply = apply;
    },
    directWrites: new Counter({
      name: `${METRIC_PREFIX}direct_writes_total`,
      help: 'Workload writes in tool namespaces that did not come through the jobs API, per tool, kind and operation',
      labelNames: ['tool_name', 'kind', 'operation'] as const,
      registers,
      collect,
    }),
    storageWritesDenied: new Counter({
      name: `${METRIC_PREFIX}storage_writes_denied_total`,
      help: 'Writes of job definition custom resources denied because they did not come from the jobs API',
      labelNames: ['operation'] as const,
      registers,
      collect,
    }),
    breakGlass: new Counter({
      name: `${METRIC_PREFIX}break_glass_total`,
      help: 'Writes allowed only because the requester is in a break-glass group',
      labelNames: ['resource', 'operation'] as const,
      registers,
      collect,
    }),
    admissionDuration: new Histogram({
      name: `${METRIC_PREFIX}admission_duration_seconds`,
      help: 'Time to decide an admission review',
      labelNames: ['webhook'] as const,
      buckets: ADMISSION_BUCKETS,
      registers,
      collect,
    }),
    admissionRequests: new Counter({
      name: `${METRIC_PREFIX}admission_requests_total`,
      help: 'Admission reviews answered, by webhook and decision',
      labelNames: ['webhook', 'decision'] as const,
      registers,
      collect,
    }),
    admissionUnauthenticated: new Counter({
      name: `${METRIC_PREFIX}admission_unauthenticated_total`,
      help: 'Requests to the admission webhook refused (401) for want of a client certificate from the configured CA',
      labelNames: ['reason'] as const,
      registers,
    }),
    certExpiry: new Gauge({
      name: `${METRIC_PREFIX}tls_certificate_expiry_timestamp_seconds`,
      help: 'Expiry (notAfter) of the serving certificate in use',
      registers,
    }),
    certReloads: new Counter({
      name: `${METRIC_PREFIX}tls_certificate_reloads_total`,
      help: 'Serving certificate loads, by result',
      labelNames: ['result'] as const,
      registers,
    }),
  };
}

/** The sync's metrics (also the one-shot `import` and `report`): drift gauges, backfills, health, plus the shared ones. */
export function createSyncMetrics(registry: Registry) {
  const registers = [registry];
  return {
    ...createSharedMetrics(registry),
    onlyInRuntime: new Gauge({
      name: `${METRIC_PREFIX}only_in_runtime`,
      help: 'Jobs-framework jobs found in Kubernetes but not in storage, per tool',
      labelNames: ['tool_name'] as const,
      registers,
    }),
    onlyInStorage: new Gauge({
      name: `${METRIC_PREFIX}only_in_storage`,
      help: 'Jobs found in storage but with no workload in Kubernetes, per tool',
      labelNames: ['tool_name'] as const,
      registers,
    }),
    outOfSync: new Gauge({
      name: `${METRIC_PREFIX}out_of_sync`,
      help: 'Jobs whose workload differs from the stored definition, per tool',
      labelNames: ['tool_name'] as const,
      registers,
    }),
    foreignWorkloads: new Gauge({
      name: `${METRIC_PREFIX}foreign_workloads`,
      help: 'CronJobs and Deployments in tool namespaces without jobs-framework labels, per tool',
      labelNames: ['tool_name'] as const,
      registers,
    }),
    syncedToStorage: new Counter({
      name: `${METRIC_PREFIX}synced_to_storage_total`,
      help: 'Job definitions backfilled into storage from workloads found in Kubernetes, per tool',
      labelNames: ['tool_name'] as const,
      registers,
    }),
    syncDuration: new Histogram({
      name: `${METRIC_PREFIX}sync_duration_seconds`,
      help: 'Time of one complete reconcile of all tools',
      buckets: SYNC_BUCKETS,
      registers,
    }),
    syncLastSuccess: new Gauge({
      name: `${METRIC_PREFIX}sync_last_success_timestamp_seconds`,
      help: 'Unix time of the last complete reconcile',
      registers,
    }),
    syncErrors: new Counter({
      name: `${METRIC_PREFIX}sync_errors_total`,
      help: 'Errors of the sync, by stage (list, watch, write, tombstones: reading or persisting them)',
      labelNames: ['stage'] as const,
      registers,
    }),
    tombstones: new Gauge({
      name: `${METRIC_PREFIX}sync_tombstones`,
      help: 'Jobs whose CR went away while their workload stands, held as tombstones: never backfilled',
      registers,
    }),
    events: new Counter({
      name: `${METRIC_PREFIX}sync_events_total`,
      help:
        'Events on workloads not managed through the jobs API, by result: created, repeated (series count bumped), ' +
        'failed, dropped (the queue was full)',
      labelNames: ['result'] as const,
      registers,
    }),
    isLeader: new Gauge({
      name: `${METRIC_PREFIX}sync_leader`,
      help: '1 when this replica holds the sync lease and may write',
      registers,
    }),
  };
}

export type SharedMetrics = ReturnType<typeof createSharedMetrics>;
export type WebhookMetrics = ReturnType<typeof createWebhookMetrics>;
export type SyncMetrics = ReturnType<typeof createSyncMetrics>;

/** The rollout phase as the phase metrics show it: the phase in force (undefined until it is known). */
export interface PhaseGauges {
  phase: Phase | undefined;
  /** The last read of the phase failed, so the last known phase is in use. */
  stale: boolean;
}

/**
 * Exports the rollout phase (what a PhaseSource reports): `phase_info` is 1 for the phase in force and 0 for the
 * others (all 0 until the phase is known); `phase_config_stale` is 1 while the last read failed.
 */
export function reportPhase(metrics: SharedMetrics, report: PhaseGauges): void {
  for (const p of PHASES) metrics.phaseInfo.set({ phase: p }, p === report.phase ? 1 : 0);
  metrics.phaseStale.set(report.stale ? 1 : 0);
}
