import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
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

interface Target {
  expr: string;
  instant?: boolean;
  range?: boolean;
  format?: string;
}
interface Threshold {
  color: string;
  value: number | null;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  fieldConfig?: { defaults: { thresholds?: { mode: string; steps: Threshold[] } } };
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
  // Panels that show one value per series "now": a range query there draws the last point of a series whose set
  // (topk) or window ([$__range]) is recomputed at every step.
  const NOW_TYPES = new Set(['stat', 'bargauge', 'gauge', 'table']);

  test('panels that show "now" run instant queries; graphs over time run range queries', () => {
    const now = dashboard.panels.filter((p) => NOW_TYPES.has(p.type));
    assert.ok(now.filter((p) => p.type === 'bargauge').length >= 4);
    for (const p of now) {
      for (const t of p.targets ?? []) {
        assert.equal(t.instant, true, `${p.title}: instant`);
        assert.equal(t.range, false, `${p.title}: not range`);
      }
    }
    for (const p of dashboard.panels.filter((x) => x.type === 'timeseries' || x.type === 'state-timeline')) {
      for (const t of p.targets ?? []) assert.notEqual(t.instant, true, `${p.title}: a graph over time`);
    }
    // The top-N over the range: one increase over the whole range, ending now.
    const direct = dashboard.panels.find((p) => p.title.startsWith('Direct writes per tool'));
    assert.match(direct?.targets?.[0]?.expr ?? '', /^topk\(\$topn, .*\[\$__range\]\)+$/);
    const versions = dashboard.panels.find((p) => p.title === 'Versions');
    assert.equal(versions?.targets?.[0]?.format, 'table');
  });

  const stepsOf = (p: Panel | undefined): Threshold[] => p?.fieldConfig?.defaults.thresholds?.steps ?? [];
  const ALERTS = parseYaml(
    readFileSync(join(import.meta.dirname, '..', '..', 'deploy', 'prometheus', 'jobs-storage.yaml'), 'utf8'),
  ) as { groups: { rules: { alert: string; expr: string }[] }[] };
  const alertExpr = (name: string) => ALERTS.groups.flatMap((g) => g.rules).find((r) => r.alert === name)?.expr ?? '';

  test('every stat has thresholds; the certificate stat turns red where its alert fires', () => {
    for (const p of dashboard.panels.filter((x) => x.type === 'stat')) {
      const steps = stepsOf(p);
      assert.ok(steps.length >= 2, `${p.title}: thresholds`);
      assert.equal(steps[0]?.value, null, `${p.title}: a base step`);
      const values = steps.slice(1).map((s) => s.value ?? Number.NaN);
      assert.deepEqual(
        values,
        [...values].sort((a, b) => a - b),
        `${p.title}: ascending`,
      );
    }
    const cert = dashboard.panels.find((p) => p.title.startsWith('Serving certificate expires in'));
    assert.match(cert?.targets?.[0]?.expr ?? '', /\/ 86400$/, 'in days');
    const alertDays = /< (\d+) \* 86400$/.exec(alertExpr('JobsStorageWebhookCertificateExpiresSoon'))?.[1];
    assert.equal(alertDays, '14');
    // Red below the alert's 14 days, orange below cert-manager's renewal at 30 (renewBefore 720h), green above.
    assert.deepEqual(stepsOf(cert), [
      { color: 'red', value: null },
      { color: 'orange', value: Number(alertDays) },
      { color: 'green', value: 30 },
    ]);
  });

  test('error-rate stats: red at the first error in 10 minutes, as their alerts fire on any', () => {
    const cases: Array<[string, string]> = [
      ['Webhook errors', 'JobsStorageWebhookErrors'],
      ['Fail-open calls', 'JobsStorageWebhookFailOpen'],
      ['Writes rejected for call errors', 'JobsStorageWebhookCallErrors'],
    ];
    for (const [title, alert] of cases) {
      const p = dashboard.panels.find((x) => x.title.startsWith(title));
      assert.ok(p, title);
      assert.equal(p.type, 'stat');
      const expr = p.targets?.[0]?.expr ?? '';
      // The alert's series and window, shown as a number (0, not "No data", when nothing failed).
      const series = /rate\(([a-z_]+)\{/.exec(alertExpr(alert))?.[1];
      assert.ok(series && expr.includes(`rate(${series}{`), `${title}: ${series}`);
      assert.match(expr, /\[10m\]\)\) or on\(\) vector\(0\)$/, title);
      assert.match(alertExpr(alert), /\[10m\]\)\) > 0$/, alert);
      const steps = stepsOf(p);
      assert.equal(steps.at(-1)?.color, 'red', title);
      // One error in 10 minutes is 1/600 per second.
      assert.ok((steps.at(-1)?.value ?? 1) <= 1 / 600, `${title}: red from one error`);
    }
    const sync = dashboard.panels.find((x) => x.title.startsWith('Sync errors (now)'));
    assert.deepEqual(
      stepsOf(sync).map((s) => s.color),
      ['green', 'orange', 'red'],
    );
  });

  test('no two panels overlap', () => {
    const cells = new Map<string, string>();
    for (const p of dashboard.panels) {
      const { x, y, w, h } = p.gridPos;
      assert.ok(x >= 0 && x + w <= 24, `${p.title}: within 24 columns`);
      for (let i = x; i < x + w; i += 1) {
        for (let j = y; j < y + h; j += 1) {
          const key = `${i},${j}`;
          assert.equal(cells.get(key), undefined, `${p.title} overlaps ${cells.get(key) ?? ''}`);
          cells.set(key, p.title);
        }
      }
    }
  });
});
