import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { runTool } from '../../scripts/tools/binaries.js';
import {
  APISERVER_SAMPLES,
  JOB_OF,
  declaredFamilies,
  exportedBy,
  jobMatcherOf,
  metricNamesIn,
  sampleNames,
} from './metric-owners.js';
import type { Process } from './metric-owners.js';

/** deploy/prometheus: house format, promtool check + unit tests, and every queried series exported by its owner. */

const ROOT = join(import.meta.dirname, '..', '..');
const RULES = join(ROOT, 'deploy', 'prometheus', 'jobs-storage.yaml');
const TESTS = join(ROOT, 'deploy', 'prometheus', 'jobs-storage_test.yaml');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
const rules = (parseYaml(readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap(
  (g) => g.rules,
);

interface AlertCase {
  alertname: string;
  eval_time: string;
  exp_alerts: unknown[];
}
const unitTests = (
  parseYaml(readFileSync(TESTS, 'utf8')) as { tests: { name?: string; alert_rule_test?: AlertCase[] }[] }
).tests;

/**
 * A file-header tag as the alerts repository's test_alerts.py `_get_tag` reads it: `# <name>: <value>` among the
 * leading lines, which end at the first line that is neither a comment nor indented (a blank line ends them too).
 */
function headerTag(text: string, name: string): string | undefined {
  for (const line of text.split('\n')) {
    const m = new RegExp(`^# *${name}: *(.+)$`).exec(line);
    if (m) return m[1];
    if (!line.startsWith('#') && !line.startsWith(' ')) return undefined;
  }
  return undefined;
}

describe('deploy/prometheus alerts', { timeout: 600_000 }, () => {
  test('the file header names where the alerts repository deploys it (deploy-tag, deploy-site)', () => {
    const text = readFileSync(RULES, 'utf8');
    const tags = headerTag(text, 'deploy-tag')?.split(/,\s*/);
    assert.ok(tags, 'a # deploy-tag: line in the header');
    // test_alerts.py: global and local each stand alone.
    if (tags.length > 1) assert.ok(!tags.includes('global') && !tags.includes('local'), tags.join(', '));
    assert.deepEqual(tags, ['cloud']);
    const sites = headerTag(text, 'deploy-site')?.split(/,\s*/);
    assert.ok(sites, 'a # deploy-site: line in the header');
    for (const site of sites) assert.match(site, /^(eqiad|codfw)$/);
    // The header reader stops at the first line that is neither a comment nor indented.
    assert.equal(headerTag('groups: []\n# deploy-tag: cloud\n', 'deploy-tag'), undefined);
    assert.equal(headerTag('\n# deploy-tag: cloud\n', 'deploy-tag'), undefined);
  });

  test('promtool check rules', () => {
    const res = runTool('promtool', ['check', 'rules', RULES]);
    assert.equal(res.code, 0, res.stdout + res.stderr);
  });

  test('promtool test rules (jobs-storage_test.yaml)', () => {
    const res = runTool('promtool', ['test', 'rules', TESTS]);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.match(res.stdout, /SUCCESS/);
  });

  test("every alert is in Toolforge's house format and has a runbook section in the README", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    assert.ok(rules.length >= 10);
    for (const r of rules) {
      assert.equal(r.labels['team'], 'wmcs', r.alert);
      assert.match(r.labels['severity'] ?? '', /^(warning|critical|page)$/, r.alert);
      assert.equal(r.labels['service'], 'jobs-storage', r.alert);
      assert.deepEqual(Object.keys(r.annotations).sort(), ['dashboard', 'description', 'runbook', 'summary'], r.alert);
      assert.equal(
        r.annotations['runbook'],
        `https://wikitech.wikimedia.org/wiki/Portal:Toolforge/Admin/Runbooks/${r.alert}`,
      );
      assert.match(readme, new RegExp(`^#### ${r.alert}$`, 'm'), `README has a runbook section for ${r.alert}`);
    }
  });

  test('every alert has a unit test in which it fires', () => {
    const firing = new Set(
      unitTests.flatMap((t) =>
        (t.alert_rule_test ?? []).filter((c) => c.exp_alerts.length > 0).map((c) => c.alertname),
      ),
    );
    assert.deepEqual(
      rules.map((r) => r.alert).filter((a) => !firing.has(a)),
      [],
    );
  });

  test('a healthy deployment fires nothing, the certificate alert included, when the sync exports no TLS series', () => {
    const healthy = unitTests.find((t) => t.name?.startsWith('healthy deployment'));
    assert.ok(healthy, 'jobs-storage_test.yaml has the healthy-deployment case');
    const quiet = new Set(
      (healthy.alert_rule_test ?? []).filter((c) => c.exp_alerts.length === 0).map((c) => c.alertname),
    );
    assert.deepEqual(
      rules.map((r) => r.alert).filter((a) => !quiet.has(a)),
      [],
    );
  });

  test('every product metric an alert reads is exported by the process its job matcher names', async () => {
    const exported: Record<Process, Set<string>> = {
      webhook: new Set((await exportedBy('webhook')).flatMap(sampleNames)),
      sync: new Set((await exportedBy('sync')).flatMap(sampleNames)),
    };
    const product = new Set((await declaredFamilies()).flatMap(sampleNames));
    for (const r of rules) {
      for (const metric of metricNamesIn(r.expr)) {
        if (metric === 'up' || APISERVER_SAMPLES.has(metric)) continue;
        assert.ok(product.has(metric), `${r.alert}: ${metric} is a metric of the product`);
        const job = jobMatcherOf(r.expr, metric);
        assert.ok(job, `${r.alert}: ${metric} is selected by job`);
        for (const [process, jobName] of Object.entries(JOB_OF) as [Process, string][]) {
          if (new RegExp(`^(?:${job})$`).test(jobName)) {
            assert.ok(exported[process].has(metric), `${r.alert}: ${metric} is exported by the ${process}`);
          }
        }
      }
    }
  });
});
