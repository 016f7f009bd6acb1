import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import {
  METRIC_PREFIX,
  createProcessRegistry,
  createSharedMetrics,
  createSyncMetrics,
  createWebhookMetrics,
  reportPhase,
} from './registry.js';

const ours = (registry: Registry) =>
  registry
    .getMetricsAsArray()
    .map((m) => m.name)
    .filter((n) => n.startsWith(METRIC_PREFIX))
    .map((n) => n.slice(METRIC_PREFIX.length))
    .sort();

const SHARED = ['build_info', 'phase_config_stale', 'phase_info'];

test('the webhook exports exactly its own metrics and the shared ones', () => {
  const registry = new Registry();
  createWebhookMetrics(registry);
  assert.deepEqual(
    ours(registry),
    [
      ...SHARED,
      'admission_duration_seconds',
      'admission_requests_total',
      'admission_unauthenticated_total',
      'break_glass_total',
      'direct_writes_total',
      'storage_writes_denied_total',
      'tls_certificate_expiry_timestamp_seconds',
      'tls_certificate_reloads_total',
    ].sort(),
  );
});

test('the sync exports exactly its own metrics and the shared ones', () => {
  const registry = new Registry();
  createSyncMetrics(registry);
  assert.deepEqual(
    ours(registry),
    [
      ...SHARED,
      'foreign_workloads',
      'only_in_runtime',
      'only_in_storage',
      'out_of_sync',
      'sync_duration_seconds',
      'sync_errors_total',
      'sync_events_total',
      'sync_last_success_timestamp_seconds',
      'sync_leader',
      'sync_tombstones',
      'synced_to_storage_total',
    ].sort(),
  );
});

test("neither process's /metrics text carries the other's series", async () => {
  const sync = createSyncMetrics(createProcessRegistry());
  const webhook = createWebhookMetrics(createProcessRegistry());
  const seriesOf = async (registry: Registry) =>
    (await registry.metrics())
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => line.split(/[{ ]/)[0] ?? '');
  const syncSeries = await seriesOf(sync.registry);
  const webhookSeries = await seriesOf(webhook.registry);
  assert.deepEqual(
    syncSeries.filter((s) => s.startsWith(`${METRIC_PREFIX}tls_`)),
    [],
    'the sync serves no certificate: an expiry of 0 would fire the expiry alert',
  );
  const syncOnly = ['sync_', 'only_in_', 'out_of_sync', 'foreign_', 'synced_to_storage'].map((p) => METRIC_PREFIX + p);
  assert.deepEqual(
    webhookSeries.filter((s) => syncOnly.some((p) => s.startsWith(p))),
    [],
  );
  assert.ok(syncSeries.includes(`${METRIC_PREFIX}sync_leader`));
  assert.ok(webhookSeries.includes(`${METRIC_PREFIX}tls_certificate_expiry_timestamp_seconds`));
});

test("Node's process metrics keep their standard names", () => {
  const registry = createProcessRegistry();
  createWebhookMetrics(registry);
  const names = registry.getMetricsAsArray().map((m) => m.name);
  assert.ok(names.includes('process_cpu_seconds_total'), names.join(' '));
  assert.ok(names.includes('nodejs_eventloop_lag_seconds'), names.join(' '));
  assert.deepEqual(
    names.filter((n) => n.startsWith(`${METRIC_PREFIX}process_`) || n.startsWith(`${METRIC_PREFIX}nodejs_`)),
    [],
  );
});

test('phase_info reads 1 only for a known phase; phase_config_stale follows the last read', async () => {
  const metrics = createSharedMetrics(new Registry());
  const values = async () =>
    Object.fromEntries((await metrics.phaseInfo.get()).values.map((v) => [v.labels['phase'], v.value]));
  reportPhase(metrics, { phase: undefined, stale: false });
  assert.deepEqual(await values(), {
    'runtime-truth': 0,
    'storage-truth': 0,
    'ignore-unmanaged': 0,
    enforce: 0,
  });
  reportPhase(metrics, { phase: 'storage-truth', stale: true });
  assert.deepEqual(await values(), {
    'runtime-truth': 0,
    'storage-truth': 1,
    'ignore-unmanaged': 0,
    enforce: 0,
  });
  assert.equal((await metrics.phaseStale.get()).values[0]?.value, 1);
});
