import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { METRIC_PREFIX } from '../../src/metrics/registry.js';
import {
  APISERVER_SAMPLES,
  JOB_OF,
  OWNERS,
  declaredFamilies,
  defaultFamilies,
  exportedBy,
  jobMatcherOf,
  metricNamesIn,
  sampleNames,
} from './metric-owners.js';
import type { Process } from './metric-owners.js';

/** deploy/grafana: the panels the ticket names exist, and every metric a panel queries is exported by its owner. */

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
}
const dashboard = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', '..', 'deploy', 'grafana', 'jobs-storage.json'), 'utf8'),
) as { uid: string; panels: Panel[] };
const queried = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

describe('deploy/grafana dashboard', () => {
  test('every product metric family has exactly one owner in the table', async () => {
    assert.deepEqual(
      (await declaredFamilies()).map((f) => f.name.slice(METRIC_PREFIX.length)).sort(),
      Object.keys(OWNERS).sort(),
    );
  });

  test("each process's registry exports exactly the families the table gives it", async () => {
    for (const process of ['webhook', 'sync'] as const) {
      const exported = (await exportedBy(process))
        .map((f) => f.name)
        .filter((n) => n.startsWith(METRIC_PREFIX))
        .map((n) => n.slice(METRIC_PREFIX.length))
        .sort();
      const expected = Object.entries(OWNERS)
        .filter(([, owner]) => owner === process || owner === 'shared')
        .map(([name]) => name)
        .sort();
      assert.deepEqual(exported, expected, process);
    }
  });

  test("Node's default metrics are named process_* / nodejs_*", async () => {
    const names = (await defaultFamilies()).map((f) => f.name);
    assert.ok(names.includes('process_resident_memory_bytes'));
    assert.ok(
      names.every((n) => n.startsWith('process_') || n.startsWith('nodejs_')),
      names.join(' '),
    );
  });

  test('has the panels an admin needs', () => {
    const titles = dashboard.panels.map((p) => p.title.toLowerCase());
    for (const want of [
      'phase over time',
      'direct writes per tool',
      'only in runtime per tool',
      'only in storage per tool',
      'out of sync per tool',
      'backfills',
      'admission latency as kube-apiserver sees it',
      'leader',
      'since the last complete reconcile',
    ]) {
      assert.ok(
        titles.some((t) => t.startsWith(want)),
        `a panel titled "${want}…"`,
      );
    }
    assert.equal(dashboard.uid, 'toolforge-jobs-storage');
  });

  test('every metric a panel queries is exported by the process its job matcher names', async () => {
    const exported: Record<Process, Set<string>> = {
      webhook: new Set((await exportedBy('webhook')).flatMap(sampleNames)),
      sync: new Set((await exportedBy('sync')).flatMap(sampleNames)),
    };
    assert.ok(queried.length > 20);
    for (const { panel, expr } of queried) {
      const metrics = metricNamesIn(expr);
      assert.ok(metrics.length > 0, `${panel}: queries a metric`);
      for (const metric of metrics) {
        if (APISERVER_SAMPLES.has(metric)) continue;
        const job = jobMatcherOf(expr, metric);
        assert.ok(job, `${panel}: ${metric} is selected by job`);
        const owners = (Object.entries(JOB_OF) as [Process, string][]).filter(([, j]) =>
          new RegExp(`^(?:${job})$`).test(j),
        );
        assert.ok(owners.length > 0, `${panel}: job "${job}" names a process`);
        for (const [process] of owners) {
          assert.ok(exported[process].has(metric), `${panel}: ${metric} is exported by the ${process}`);
        }
      }
    }
  });

  test('the metric-name scanner finds names and skips functions, labels and durations', () => {
    assert.deepEqual(
      metricNamesIn(
        'histogram_quantile(0.99, sum by (name, le) (rate(a_bucket{name=~"x.y", job="j"}[5m]))) > 1 and on() max(b) == 1',
      ),
      ['a_bucket', 'b'],
    );
    assert.equal(jobMatcherOf('max(x{a="1", job=~"p|q"})', 'x'), 'p|q');
  });
});
