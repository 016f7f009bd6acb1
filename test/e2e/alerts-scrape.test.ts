/**
 * The alert rules against what a real kube-apiserver exports: on a real control plane with the product's
 * ValidatingAdmissionPolicy (webhook-config/storage-policy.yaml, as the chart ships it) and the product's webhook
 * configuration, the test makes a tool's job CR write be denied, makes the policy itself fail (a runtime error, then
 * the CEL cost budget running out), lets the webhooks fail open and fail closed, and scrapes kube-apiserver's
 * /metrics as admin after each step. The series each step added, with their label sets exactly as scraped, become
 * promtool test cases that run against deploy/prometheus/jobs-storage.yaml. The webhook process is not started: its
 * configuration points at a closed port, so each webhook call fails.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { parse as parseYaml, parseAllDocuments, stringify as stringifyYaml } from 'yaml';
import { configSchema } from '../../src/config/schema.js';
import { POLICY_NAME, WEBHOOK_NAMES, validatingWebhookConfiguration } from '../../src/webhook/manifests.js';
import { REPO_ROOT, installJobsCrds, startControlPlane } from '../../scripts/control-plane/cluster.js';
import type { ControlPlane, KubectlResult } from '../../scripts/control-plane/cluster.js';
import { crOf, scheduledJob, workloadsOf } from '../../scripts/control-plane/jobs.js';
import { freePort, sleep } from '../../scripts/control-plane/process.js';
import { runTool } from '../../scripts/tools/binaries.js';
import { APISERVER_SAMPLES, metricNamesIn } from '../deploy/metric-owners.js';
import { grown, keyOf, parseExposition } from './exposition.js';
import type { Series } from './exposition.js';

const RULES = join(REPO_ROOT, 'deploy', 'prometheus', 'jobs-storage.yaml');
const POLICY_FILE = join(REPO_ROOT, 'webhook-config', 'storage-policy.yaml');
const TOOL = 'alpha';
const NS = `tool-${TOOL}`;
const POLICY_ALERT = 'JobsStorageAdmissionPolicyErrors';
const config = configSchema.parse({});

/** The kube-apiserver families the rules read about the product's policy and webhooks. */
const FAMILY = /^apiserver_(validating_admission_policy_check_total|admission_webhook_)/;

let cp: ControlPlane | undefined;
let dir = '';
let deadPort = 0;
/** Every series of FAMILY seen in any scrape, by label set. */
const seen = new Map<string, Series>();
const scraped: Record<'denial' | 'runtimeError' | 'outOfBudget' | 'failOpen' | 'callError', Series[]> = {
  denial: [],
  runtimeError: [],
  outOfBudget: [],
  failOpen: [],
  callError: [],
};

function plane(): ControlPlane {
  assert.ok(cp, 'control plane not started');
  return cp;
}

async function scrape(): Promise<Series[]> {
  const series = parseExposition(await plane().kubectlOk('admin', ['get', '--raw', '/metrics']), FAMILY);
  for (const s of series) seen.set(keyOf(s), s);
  return series;
}

function asTool(args: string[], stdin?: string): Promise<KubectlResult> {
  return plane().kubectl(TOOL, args, stdin === undefined ? undefined : { stdin });
}

function asJobsApi(args: string[], stdin?: string): Promise<KubectlResult> {
  return plane().kubectl('jobs-api', ['-n', NS, ...args], stdin === undefined ? undefined : { stdin });
}

let probes = 0;
/** jobs-api creates a new ScheduledJob CR; the result of the kubectl call. */
function jobsApiCreate(): Promise<KubectlResult> {
  probes += 1;
  return asJobsApi(['create', '-f', '-'], JSON.stringify(crOf(scheduledJob(TOOL, `probe-${probes}`))));
}

/**
 * Repeats `attempt` until its stderr contains `marker` (a configuration change reaches the apiserver asynchronously),
 * scraping before each attempt: `prior` is the scrape just before the attempt that showed the marker.
 */
async function until(
  what: string,
  marker: string,
  attempt: () => Promise<KubectlResult>,
): Promise<{ res: KubectlResult; prior: Series[] }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const prior = await scrape();
    const res = await attempt();
    if (res.stderr.includes(marker)) return { res, prior };
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last stderr: ${res.stderr}`);
    await sleep(300);
  }
}

/** The product's policy and binding as the chart ships them. */
function shippedPolicy(): Record<string, unknown>[] {
  return parseAllDocuments(readFileSync(POLICY_FILE, 'utf8')).map((d) => d.toJS() as Record<string, unknown>);
}

/** The shipped policy with validations appended, as a change to the policy (or the apiserver under it) would. */
function policyWith(extra: { expression: string; message: string }[]): Record<string, unknown>[] {
  return shippedPolicy().map((o) => {
    if (o['kind'] !== 'ValidatingAdmissionPolicy') return o;
    const spec = o['spec'] as { validations: object[] };
    return { ...o, spec: { ...spec, validations: [...spec.validations, ...extra] } };
  });
}

/**
 * Validations that each stay under CEL's per-expression cost limit (1,000,000) while together they exceed the
 * per-request budget of a policy (10,000,000): 40³ iterations each, 80 of them.
 */
function overBudgetValidations(): { expression: string; message: string }[] {
  const list = `[${Array.from({ length: 40 }, (_, i) => i).join(', ')}]`;
  return Array.from({ length: 80 }, (_, i) => ({
    expression: `${list}.all(a, ${list}.all(b, ${list}.all(c, a + b + c >= ${-i - 1})))`,
    message: 'always true',
  }));
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'alerts-scrape-e2e-'));
  cp = await startControlPlane({ controllerManager: false });
  await Promise.all([cp.addTool(TOOL), installJobsCrds(cp)]);
  deadPort = await freePort(); // nothing listens here: every webhook call fails
  await cp.apply('admin', [
    validatingWebhookConfiguration({ identities: config.identities, target: { url: `https://127.0.0.1:${deadPort}` } }),
  ]);
  await cp.apply('admin', shippedPolicy());
});

after(async () => {
  await cp?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Prints series as scraped (value: the counter's value in the later scrape). */
function print(t: TestContext, title: string, series: Series[]): void {
  t.diagnostic(`${title} (as scraped; value after the step):`);
  for (const s of series) t.diagnostic(`  ${keyOf(s)} ${s.value}`);
}

const CHECK = 'apiserver_validating_admission_policy_check_total';

describe(
  'kube-apiserver metrics of the product policy and webhooks, and the alerts built on them',
  { timeout: 600_000 },
  () => {
    test("a tool's denied job CR write: what the apiserver counts", async (t) => {
      // Until the new policy is in force a probe may be admitted (the webhook fails open); jobs-api removes it.
      const { res: denied, prior } = await until(
        'the policy to deny',
        `ValidatingAdmissionPolicy '${POLICY_NAME}'`,
        async () => {
          const res = await asTool(['create', '-f', '-'], JSON.stringify(crOf(scheduledJob(TOOL, 'mine'))));
          if (res.code === 0) await asJobsApi(['delete', 'scheduled-jobs', 'mine']);
          return res;
        },
      );
      assert.notEqual(denied.code, 0);
      assert.match(denied.stderr, /is managed by the Toolforge jobs API and cannot be created directly/);
      // jobs-api's own write passes the policy, and is not counted by it.
      const ok = await jobsApiCreate();
      assert.equal(ok.code, 0, ok.stderr);
      const later = await scrape();
      scraped.denial = grown(prior, later).filter((s) => s.name === CHECK);
      print(t, 'series grown by the denial (and an admitted jobs-api write)', scraped.denial);
      print(
        t,
        'apiserver_admission_webhook_* series so far',
        later.filter((s) => s.name.startsWith('apiserver_admission_webhook_') && !s.name.endsWith('_bucket')),
      );
      assert.deepEqual(
        scraped.denial.map((s) => s.labels),
        [{ enforcement_action: 'deny', error_type: 'invalid_error', policy: POLICY_NAME, policy_binding: POLICY_NAME }],
        'one denial, counted as invalid_error/deny; the admitted write adds no series',
      );
      assert.equal(
        later.filter((s) => s.name === CHECK && s.labels['error_type'] === 'no_error').length,
        0,
        'an admitted write is not counted (no no_error series)',
      );
    });

    test('a runtime error of the product policy is counted exactly like a denial', async (t) => {
      await plane().apply(
        'admin',
        policyWith([{ expression: 'request.userInfo.extra["jobs-storage-no-such-key"][0] == ""', message: 'x' }]),
      );
      const { res, prior } = await until('the policy to fail at runtime', 'resulted in error', jobsApiCreate);
      assert.notEqual(res.code, 0);
      const later = await scrape();
      scraped.runtimeError = grown(prior, later).filter((s) => s.name === CHECK);
      print(t, "series grown by jobs-api's writes failing on the policy's runtime error", scraped.runtimeError);
      assert.deepEqual(
        scraped.runtimeError.map((s) => keyOf(s)),
        scraped.denial.map((s) => keyOf(s)),
        'the runtime error lands on the denial series: no label tells them apart',
      );
    });

    test('the product policy running out of its CEL cost budget is counted as out_of_budget', async (t) => {
      await plane().apply('admin', policyWith(overBudgetValidations()));
      const { res, prior } = await until(
        'the policy to run out of budget',
        'running out of cost budget',
        jobsApiCreate,
      );
      assert.notEqual(res.code, 0);
      const later = await scrape();
      scraped.outOfBudget = grown(prior, later).filter((s) => s.name === CHECK);
      print(t, "series grown by jobs-api's writes failing on the exhausted budget", scraped.outOfBudget);
      assert.deepEqual(
        scraped.outOfBudget.map((s) => s.labels),
        [{ enforcement_action: 'deny', error_type: 'out_of_budget', policy: POLICY_NAME, policy_binding: POLICY_NAME }],
      );
      await plane().apply('admin', shippedPolicy());
      const deadline = Date.now() + 60_000;
      while ((await jobsApiCreate()).code !== 0) {
        assert.ok(Date.now() < deadline, 'jobs-api writes again once the shipped policy is back');
        await sleep(300);
      }
    });

    test('the webhooks fail open (failurePolicy Ignore), then fail closed (Fail)', async (t) => {
      const prior = await scrape();
      const cronJob = workloadsOf(scheduledJob(TOOL, 'by-kubectl'))[0];
      const created = await asTool(['create', '-f', '-'], JSON.stringify(cronJob));
      assert.equal(created.code, 0, created.stderr);
      const afterOpen = await scrape();
      scraped.failOpen = grown(prior, afterOpen).filter((s) => s.name.startsWith('apiserver_admission_webhook_'));
      print(t, 'series grown by a direct CronJob write while the webhook is down', scraped.failOpen);
      assert.ok(scraped.failOpen.some((s) => s.name === 'apiserver_admission_webhook_fail_open_count'));

      const vwc = validatingWebhookConfiguration({
        identities: config.identities,
        target: { url: `https://127.0.0.1:${deadPort}` },
      });
      const webhooks = (vwc['webhooks'] as Record<string, unknown>[]).map((w) =>
        w['name'] === WEBHOOK_NAMES.protectStorage ? { ...w, failurePolicy: 'Fail' } : w,
      );
      await plane().apply('admin', [{ ...vwc, webhooks }]);
      // A break-glass admin's CR write passes the policy and reaches protect-storage (writers never do).
      const { res: rejected, prior: beforeClosed } = await until(
        'protect-storage to fail closed',
        'failed calling webhook',
        () =>
          plane().kubectl('admin', [
            '--as=someadmin',
            '--as-group=system:masters',
            '-n',
            NS,
            'annotate',
            '--overwrite',
            'scheduled-jobs',
            'probe-1',
            `fixed=${Date.now()}`,
          ]),
      );
      assert.notEqual(rejected.code, 0);
      const afterClosed = await scrape();
      scraped.callError = grown(beforeClosed, afterClosed).filter(
        (s) => s.name === 'apiserver_admission_webhook_rejection_count',
      );
      print(t, 'series grown by a write rejected because calling protect-storage failed', scraped.callError);
      assert.ok(scraped.callError.length > 0);
    });

    test('every label an alert selects or groups kube-apiserver series by is one the apiserver exports', () => {
      const labelsOf = new Map<string, Set<string>>();
      for (const s of seen.values()) {
        const set = labelsOf.get(s.name) ?? new Set<string>();
        for (const k of Object.keys(s.labels)) set.add(k);
        labelsOf.set(s.name, set);
      }
      const rules = (
        parseYaml(readFileSync(RULES, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] }
      ).groups.flatMap((g) => g.rules);
      let checked = 0;
      for (const r of rules) {
        const metrics = metricNamesIn(r.expr).filter((m) => APISERVER_SAMPLES.has(m));
        if (metrics.length === 0) continue;
        const exported = new Set(metrics.flatMap((m) => [...(labelsOf.get(m) ?? [])]));
        for (const m of metrics) {
          assert.ok(labelsOf.has(m), `${r.alert}: kube-apiserver exported ${m}`);
          for (const sel of r.expr.matchAll(new RegExp(`${m}\\{([^}]*)\\}`, 'g'))) {
            for (const l of (sel[1] ?? '').matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)) {
              assert.ok(labelsOf.get(m)?.has(l[1] ?? ''), `${r.alert}: ${m} has a label ${l[1]}`);
              checked += 1;
            }
          }
        }
        for (const by of r.expr.matchAll(/\bby\s*\(([^)]*)\)/g)) {
          for (const l of (by[1] ?? '')
            .split(',')
            .map((x) => x.trim())
            .filter(Boolean)) {
            assert.ok(exported.has(l), `${r.alert}: groups by ${l}, a label of ${metrics.join(', ')}`);
            checked += 1;
          }
        }
      }
      assert.ok(checked >= 8, `checked ${checked} labels`);
    });

    test('promtool, on the rule file, with the scraped series as counters over time', (t) => {
      const [denial] = scraped.denial;
      const [outOfBudget] = scraped.outOfBudget;
      const [runtimeError] = scraped.runtimeError;
      const failOpen = scraped.failOpen.find((s) => s.name === 'apiserver_admission_webhook_fail_open_count');
      const [callError] = scraped.callError;
      assert.ok(denial && outOfBudget && runtimeError && failOpen && callError, 'every step scraped its series');
      // The apiserver's own latency buckets for the webhook, as scraped, filled as if every call took 1-2.5 s.
      const buckets = [...seen.values()].filter(
        (s) =>
          s.name === 'apiserver_admission_webhook_admission_duration_seconds_bucket' &&
          s.labels['name'] === failOpen.labels['name'] &&
          s.labels['operation'] === 'CREATE',
      );
      assert.ok(
        buckets.some((b) => b.labels['le'] === '2.5'),
        'the webhook latency histogram has a 2.5 s bucket',
      );
      const slow = buckets.map((b) => ({
        ...b,
        value: b.labels['le'] === '+Inf' || Number(b.labels['le']) > 1 ? 10 : 0,
      }));

      const text = (s: Pick<Series, 'name' | 'labels'>) =>
        `${s.name}{${Object.entries(s.labels)
          .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
          .join(', ')}}`;
      const counter = (s: Pick<Series, 'name' | 'labels'>, perMinute: number) => ({
        series: text(s),
        values: `0+${perMinute}x60`,
      });
      const firing = (alertname: string, labels: Record<string, string>) => ({
        expr: `ALERTS{alertname="${alertname}", alertstate="firing"}`,
        eval_time: '30m',
        exp_samples: [
          { labels: text({ name: 'ALERTS', labels: { alertname, alertstate: 'firing', ...labels } }), value: 1 },
        ],
      });
      const house = (severity: string) => ({ severity, service: 'jobs-storage', team: 'wmcs' });
      const quiet = (alertname: string) => ({ eval_time: '30m', alertname, exp_alerts: [] });

      const cases = [
        {
          name: "scraped: a tool's job CR write denied by the policy, once a minute",
          interval: '1m',
          input_series: [counter(denial, 1)],
          alert_rule_test: [quiet(POLICY_ALERT)],
        },
        {
          name: "scraped: the policy's runtime error, once a minute (counted as a denial, so not told apart)",
          interval: '1m',
          input_series: [counter(runtimeError, 1)],
          alert_rule_test: [quiet(POLICY_ALERT)],
        },
        {
          name: 'scraped: the policy out of its CEL cost budget, once a minute',
          interval: '1m',
          input_series: [counter(outOfBudget, 1)],
          promql_expr_test: [firing(POLICY_ALERT, { error_type: 'out_of_budget', ...house('critical') })],
        },
        {
          name: 'scraped: record-direct-writes fails open, once a minute',
          interval: '1m',
          input_series: [counter(failOpen, 1)],
          promql_expr_test: [
            firing('JobsStorageWebhookFailOpen', { name: failOpen.labels['name'] ?? '', ...house('warning') }),
          ],
        },
        {
          name: 'scraped: writes rejected because calling protect-storage fails, once a minute',
          interval: '1m',
          input_series: [counter(callError, 1)],
          promql_expr_test: [
            firing('JobsStorageWebhookCallErrors', {
              name: callError.labels['name'] ?? '',
              error_type: callError.labels['error_type'] ?? '',
              ...house('critical'),
            }),
          ],
        },
        {
          name: 'scraped: the webhook latency buckets, every call between 1 and 2.5 s',
          interval: '1m',
          input_series: slow.map((b) => counter(b, b.value)),
          promql_expr_test: [
            firing('JobsStorageWebhookHighLatency', { name: failOpen.labels['name'] ?? '', ...house('warning') }),
          ],
        },
      ];
      const file = join(dir, 'scraped_test.yaml');
      writeFileSync(file, stringifyYaml({ rule_files: [RULES], evaluation_interval: '1m', tests: cases }));
      t.diagnostic(`promtool test file built from the scrapes (${file}):`);
      for (const line of readFileSync(file, 'utf8').split('\n')) t.diagnostic(`  ${line}`);
      const res = runTool('promtool', ['test', 'rules', file]);
      t.diagnostic(`promtool test rules: exit ${res.code}\n${res.stdout}${res.stderr}`);
      assert.equal(res.code, 0, res.stdout + res.stderr);
      assert.match(res.stdout, /SUCCESS/);
    });
  },
);
