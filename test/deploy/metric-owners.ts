/**
 * Which process exports which metric family: the webhook its own, the sync its own, both the shared ones and Node's
 * default process metrics under their standard names. Alerts and dashboard panels select a process with
 * job="jobs-storage-webhook" / job="jobs-storage-sync"; the tests check that each queried family is exported there.
 *
 * The families each process exports are read from the process's own registry (`createWebhookMetrics`,
 * `createSyncMetrics` in src/metrics/registry.ts). OWNERS is the expected split, checked
 * against those registries: a new metric fails the tests until it gets an owner here.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';
import {
  METRIC_PREFIX,
  createProcessRegistry,
  createSyncMetrics,
  createWebhookMetrics,
} from '../../src/metrics/registry.js';

export type Owner = 'webhook' | 'sync' | 'shared';
export type Process = 'webhook' | 'sync';

/** Metric name without the toolforge_jobs_ prefix → owner. */
export const OWNERS: Readonly<Record<string, Owner>> = {
  direct_writes_total: 'webhook',
  storage_writes_denied_total: 'webhook',
  break_glass_total: 'webhook',
  admission_duration_seconds: 'webhook',
  admission_requests_total: 'webhook',
  admission_unauthenticated_total: 'webhook',
  tls_certificate_expiry_timestamp_seconds: 'webhook',
  tls_certificate_reloads_total: 'webhook',
  only_in_runtime: 'sync',
  only_in_storage: 'sync',
  out_of_sync: 'sync',
  foreign_workloads: 'sync',
  synced_to_storage_total: 'sync',
  sync_duration_seconds: 'sync',
  sync_last_success_timestamp_seconds: 'sync',
  sync_errors_total: 'sync',
  sync_leader: 'sync',
  sync_tombstones: 'sync',
  sync_events_total: 'sync',
  phase_info: 'shared',
  phase_config_stale: 'shared',
  build_info: 'shared',
};

export const JOB_OF: Readonly<Record<Process, string>> = { webhook: 'jobs-storage-webhook', sync: 'jobs-storage-sync' };

export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary';
}

async function familiesOf(registry: Registry): Promise<Family[]> {
  const json = await registry.getMetricsAsJSON();
  return json.map((m) => ({ name: m.name, type: String(m.type) as Family['type'] }));
}

/** Every family the given process exports: its own, the shared ones and Node's default metrics. */
export async function exportedBy(process: Process): Promise<Family[]> {
  const registry = createProcessRegistry({ defaultMetrics: true });
  if (process === 'webhook') createWebhookMetrics(registry);
  else createSyncMetrics(registry);
  return familiesOf(registry);
}

/** The product's metric families (full names) over both processes. */
export async function declaredFamilies(): Promise<Family[]> {
  const byName = new Map<string, Family>();
  for (const process of ['webhook', 'sync'] as const) {
    for (const f of await exportedBy(process)) if (f.name.startsWith(METRIC_PREFIX)) byName.set(f.name, f);
  }
  return [...byName.values()];
}

/** Node's default process metrics under their standard names (prom-client's collectDefaultMetrics, no prefix). */
export async function defaultFamilies(): Promise<Family[]> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return familiesOf(registry);
}

/** The sample names a family produces in the exposition format (histograms: _bucket, _sum, _count). */
export function sampleNames(f: Family): string[] {
  return f.type === 'histogram' || f.type === 'summary'
    ? [`${f.name}_bucket`, `${f.name}_sum`, `${f.name}_count`, f.name]
    : [f.name];
}

/** kube-apiserver's own metrics that alerts and panels read about our webhooks and policy. */
export const APISERVER_SAMPLES = new Set([
  'apiserver_admission_webhook_admission_duration_seconds_bucket',
  'apiserver_admission_webhook_admission_duration_seconds_count',
  'apiserver_admission_webhook_rejection_count',
  'apiserver_admission_webhook_fail_open_count',
  'apiserver_validating_admission_policy_check_total',
]);

/** Metric names in a PromQL expression (identifiers that are not functions, keywords, labels or durations). */
export function metricNamesIn(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const withoutMatchers = withoutStrings
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\$\w+/g, '1');
  const withoutGrouping = withoutMatchers.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = new Set<string>();
  for (const m of withoutGrouping.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = m[0];
    const after = withoutGrouping.slice((m.index ?? 0) + word.length).trimStart();
    if (after.startsWith('(')) continue; // a function call
    if (/^(and|or|unless|bool|offset|vector|time|inf|nan)$/i.test(word)) continue;
    if (/^\d/.test(word)) continue;
    if (/^[smhdwy]$|^ms$/.test(word)) continue;
    names.add(word);
  }
  return [...names];
}

/** The value of a `job` matcher on the first selector of `metric` in expr, if any. */
export function jobMatcherOf(expr: string, metric: string): string | undefined {
  const re = new RegExp(`${metric}\\{([^}]*)\\}`, 'g');
  for (const m of expr.matchAll(re)) {
    const job = /(?:^|,)\s*job\s*(=~?)\s*"([^"]*)"/.exec(m[1] ?? '');
    if (job) return job[2];
  }
  return undefined;
}
