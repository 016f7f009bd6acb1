// The product's alert rules on a live Prometheus: the chart's pods on a node (test/e2e/node-fixture.ts), scraped by
// the pinned Prometheus server (scripts/control-plane/prometheus.ts) as the README tells admins to scrape them, with
// kube-apiserver's /metrics beside them, evaluating a copy of deploy/prometheus/jobs-storage.yaml whose `for:` and
// rate windows are cut from minutes to seconds (the shipped file is unchanged). A healthy install must fire nothing;
// with the webhook Deployment scaled to 0 while a tool keeps writing, JobsStorageWebhookAbsent and
// JobsStorageWebhookFailOpen must fire, and resolve once it is scaled back. Needs root, like the other node tests;
// JOBS_STORAGE_NODE_E2E=0 leaves it out, and says so.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { REPO_ROOT } from '../../scripts/control-plane/cluster.js';
import { waitFor } from '../../scripts/control-plane/jobs.js';
import { NODE_IP } from '../../scripts/control-plane/node.js';
import { sleep } from '../../scripts/control-plane/process.js';
import {
  APISERVER_JOB,
  SYNC_JOB,
  WEBHOOK_JOB,
  shortenRules,
  startPrometheus,
} from '../../scripts/control-plane/prometheus.js';
import type { ActiveAlert, PrometheusServer } from '../../scripts/control-plane/prometheus.js';
import { runTool, toolBinary } from '../../scripts/tools/binaries.js';
import {
  CHART_ON_NODE_TIMEOUT_MS,
  NS,
  SYNC_LABEL,
  SYNC_PORT,
  TOOL,
  TOOL_NS,
  WEBHOOK_LABEL,
  WEBHOOK_PORT,
  nodeE2eEnabled,
  noteLeftOut,
  startChartOnNode,
} from './node-fixture.js';
import type { ChartOnNode } from './node-fixture.js';

const RULES = join(REPO_ROOT, 'deploy', 'prometheus', 'jobs-storage.yaml');
const WEBHOOK_REPLICAS = 2;
const SYNC_REPLICAS = 2;
/** Scrape and evaluation interval of the test's Prometheus. */
const INTERVAL_S = 2;
/** Every rule's `for:` in the test's copy: 5 evaluations. */
const FOR_S = 10;
/** The rules' 10m and 5m rate windows in the test's copy: 15 scrapes. */
const RANGE_S = 30;
/** Evaluations a healthy install is watched for; longer than FOR_S + RANGE_S, so a rule true throughout would fire. */
const HEALTHY_EVALUATIONS = 25;
const ABSENT = 'JobsStorageWebhookAbsent';
const FAIL_OPEN = 'JobsStorageWebhookFailOpen';
const SERVING_NAME = `jobs-storage-webhook.${NS}.svc`;
/** The rules' matcher of the product's webhooks (a PromQL string: `\\.` is a regex `\.`). */
const PRODUCT_WEBHOOKS = '.+\\\\.jobs-storage\\\\.toolforge\\\\.org';

let chart: ChartOnNode | undefined;
let prom: PrometheusServer | undefined;
let dir = '';
/** The test's copy of the rule file, with short `for:` and rate windows. */
let shortened = '';
/** The alert names of the shipped file. */
let ruleNames: string[] = [];
/** When every target was first seen up == 1 (ms since the epoch). */
let allUpAt = 0;

function on(): ChartOnNode {
  assert.ok(chart, 'chart not installed');
  return chart;
}

function server(): PrometheusServer {
  assert.ok(prom, 'prometheus not started');
  return prom;
}

/** The product's alerts (every rule of the file carries service="jobs-storage") that are pending or firing. */
async function productAlerts(): Promise<ActiveAlert[]> {
  return (await server().alerts()).filter((a) => a.labels['service'] === 'jobs-storage' && a.state !== 'inactive');
}

const describeAlert = (a: ActiveAlert): string =>
  `${a.labels['alertname'] ?? '?'}${a.labels['name'] ? `{name=${a.labels['name']}}` : ''} ${a.state} (value ${a.value})`;

/** The value of each sample of an instant query, keyed by its pod (or instance) label. */
async function upByTarget(job: string): Promise<Map<string, number>> {
  const samples = await server().query(`up{job="${job}"}`);
  return new Map(samples.map((s) => [s.metric['pod'] ?? s.metric['instance'] ?? '?', Number(s.value[1])]));
}

/** kube-apiserver's count of calls to the product's webhooks it let through failed (0 without a series). */
async function failOpenCalls(): Promise<number> {
  const samples = await server().query(`sum(apiserver_admission_webhook_fail_open_count{name=~"${PRODUCT_WEBHOOKS}"})`);
  return Number(samples[0]?.value[1] ?? 0);
}

/**
 * How long kube-apiserver timed the calls to each of the product's webhooks over the last `seconds`: the cumulative
 * count per bucket of apiserver_admission_webhook_admission_duration_seconds, e.g. "record-direct-writes…: ≤0.005 s
 * 12, ≤2.5 s 15, all 15".
 */
async function callDurations(seconds: number): Promise<string> {
  const samples = await server().query(
    `sum by (name, le) (increase(apiserver_admission_webhook_admission_duration_seconds_bucket{name=~"${PRODUCT_WEBHOOKS}"}[${seconds}s]))`,
  );
  const byName = new Map<string, Array<[number, number]>>();
  for (const sample of samples) {
    const name = sample.metric['name'] ?? '?';
    const le = sample.metric['le'] === '+Inf' ? Infinity : Number(sample.metric['le']);
    byName.set(name, [...(byName.get(name) ?? []), [le, Math.round(Number(sample.value[1]))]]);
  }
  return [...byName]
    .map(([name, buckets]) => {
      // Only the buckets where the count grows, so the line reads as a distribution.
      let previous = 0;
      const steps: string[] = [];
      for (const [le, count] of buckets.sort((a, b) => a[0] - b[0])) {
        if (count > previous) steps.push(le === Infinity ? `all ${count}` : `≤${le} s ${count}`);
        previous = count;
      }
      return `${name}: ${steps.join(', ') || 'no call'}`;
    })
    .join('; ');
}

/**
 * A tool's direct writes, as long as the test needs traffic through the webhook: `kubectl create cronjob` then its
 * delete (a CronJob left behind would run at its schedule), one round a second.
 */
class ToolWrites {
  created = 0;
  failures: string[] = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(private readonly chartOnNode: ChartOnNode) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      const name = `alerts-direct-${this.created + this.failures.length + 1}`;
      const res = await this.chartOnNode.cp.kubectl(TOOL, [
        'create',
        'cronjob',
        name,
        '-n',
        TOOL_NS,
        '--image=docker-registry.tools.wmflabs.org/toolforge-python311-sssd-base:latest',
        '--schedule=17 3 * * *',
        '--',
        './run.sh',
      ]);
      if (res.code === 0) {
        this.created += 1;
        await this.chartOnNode.cp.kubectl(TOOL, ['delete', 'cronjob', name, '-n', TOOL_NS, '--wait=false']);
      } else {
        this.failures.push(res.stderr.trim());
      }
      await sleep(1_000);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

/** Polls the alerts until `done` holds; returns ms from `since` to the first time each alert was seen in each state. */
async function watchAlerts(
  what: string,
  since: number,
  done: (active: ActiveAlert[]) => boolean,
  timeoutMs: number,
): Promise<{ firstSeen: Map<string, number>; last: ActiveAlert[] }> {
  const firstSeen = new Map<string, number>();
  let last: ActiveAlert[] = [];
  await waitFor(
    what,
    async () => {
      last = await productAlerts();
      for (const a of last) {
        const key = `${a.labels['alertname'] ?? '?'} ${a.state}`;
        if (!firstSeen.has(key)) firstSeen.set(key, Date.now() - since);
      }
      return done(last);
    },
    timeoutMs,
    1_000,
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}\nactive: ${last.map(describeAlert).join('; ') || 'none'}\n${server().logTail(20)}`);
  });
  return { firstSeen, last };
}

const isFiring = (active: ActiveAlert[], name: string): boolean =>
  active.some((a) => a.labels['alertname'] === name && a.state === 'firing');

async function scaleWebhook(replicas: number): Promise<void> {
  await on().cp.kubectlOk('admin', ['scale', 'deployment', 'jobs-storage-webhook', '-n', NS, `--replicas=${replicas}`]);
}

function report(t: TestContext, label: string, firstSeen: Map<string, number>): void {
  for (const [key, ms] of [...firstSeen].sort((a, b) => a[1] - b[1])) t.diagnostic(`${label}: ${key} after ${ms} ms`);
}

if (!nodeE2eEnabled) {
  noteLeftOut('test/e2e/node-alerts');
} else {
  before(
    async () => {
      // Before anything runs: a cold build takes minutes and nothing else should wait on it.
      toolBinary('prometheus');
      dir = mkdtempSync(join(tmpdir(), 'jobs-storage-node-alerts-'));
      ruleNames = (
        parseYaml(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string }> }> }
      ).groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.alert] : [])));

      chart = await startChartOnNode({
        webhookReplicas: WEBHOOK_REPLICAS,
        syncReplicas: SYNC_REPLICAS,
        set: [
          // This Prometheus scrapes from the node's address (no CNI here enforces the policy; it says who may).
          `webhook.networkPolicy.metricsFrom[0].ipBlock.cidr=${NODE_IP}/32`,
        ],
      });

      shortened = join(dir, 'jobs-storage.yaml');
      writeFileSync(
        shortened,
        shortenRules(readFileSync(RULES, 'utf8'), { forSeconds: FOR_S, rangeSeconds: RANGE_S, ranges: ['10m', '5m'] }),
      );
      const check = runTool('promtool', ['check', 'rules', shortened]);
      assert.equal(check.code, 0, `promtool check rules on the shortened copy: ${check.stdout}${check.stderr}`);

      const started = Date.now();
      prom = await startPrometheus(on().cp, {
        ruleFiles: [shortened],
        namespace: NS,
        webhookTls: { caFile: chart.servingCaFile ?? '', serverName: SERVING_NAME },
        scrapeIntervalSeconds: INTERVAL_S,
        evaluationIntervalSeconds: INTERVAL_S,
        dir: join(dir, 'prometheus'),
      });
      process.stdout.write(`# prometheus ready in ${Date.now() - started} ms at ${prom.url} (pid ${prom.pid})\n`);
    },
    { timeout: CHART_ON_NODE_TIMEOUT_MS + 30 * 60_000 },
  );

  after(async () => {
    await prom?.stop();
    await chart?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("the test's copy of the rules: every `for:` and 5m/10m window in seconds, the rest as shipped", () => {
    type Rules = { groups: Array<{ rules: Array<{ alert: string; expr: string; for?: string }> }> };
    const rulesOf = (text: string) => (parseYaml(text) as Rules).groups.flatMap((g) => g.rules);
    const shipped = rulesOf(readFileSync(RULES, 'utf8'));
    const copy = rulesOf(readFileSync(shortened, 'utf8'));
    assert.deepEqual(
      copy.map((r) => r.alert),
      shipped.map((r) => r.alert),
    );
    for (const [i, rule] of copy.entries()) {
      const original = shipped[i];
      assert.ok(original);
      assert.equal(rule.for, `${FOR_S}s`, rule.alert);
      assert.doesNotMatch(rule.expr, /\[(5|10)m\]/, rule.alert);
      // Put the windows back: the expression is otherwise the shipped one (the 1h/1d/7d look-backs untouched).
      assert.equal(rule.expr.replaceAll(`[${RANGE_S}s]`, '[?]'), original.expr.replace(/\[(5|10)m\]/g, '[?]'));
    }
  });

  test('Prometheus scrapes every webhook and sync pod under the README job names, and kube-apiserver', async (t) => {
    const started = Date.now();
    const webhookPods = await on().podsOf(WEBHOOK_LABEL);
    const syncPods = await on().podsOf(SYNC_LABEL);
    assert.equal(webhookPods.length, WEBHOOK_REPLICAS);
    assert.equal(syncPods.length, SYNC_REPLICAS);
    const expected = new Map([
      [WEBHOOK_JOB, webhookPods],
      [SYNC_JOB, syncPods],
    ]);
    await waitFor(
      'up == 1 for every pod of both jobs and for kube-apiserver',
      async () => {
        for (const [job, pods] of expected) {
          const up = await upByTarget(job);
          if (up.size !== pods.length || !pods.every((p) => up.get(p) === 1)) return false;
        }
        const apiserver = await upByTarget(APISERVER_JOB);
        return apiserver.size === 1 && [...apiserver.values()].every((v) => v === 1);
      },
      60_000,
      1_000,
    ).catch(async (err: unknown) => {
      const targets = await server().targets();
      throw new Error(
        `${String(err)}\ntargets: ${targets.map((x) => `${x.scrapeUrl} ${x.health} ${x.lastError}`).join('; ')}`,
      );
    });
    allUpAt = Date.now();
    t.diagnostic(`every target up == 1 ${allUpAt - started} ms after Prometheus was ready`);

    // The scrape URLs: each pod's own IP at the README's ports, the webhook over HTTPS with its serving CA.
    const targets = await server().targets();
    for (const target of targets) t.diagnostic(`${target.labels['job'] ?? '?'}: ${target.scrapeUrl} ${target.health}`);
    const urls = (job: string) => targets.filter((x) => x.labels['job'] === job).map((x) => x.scrapeUrl);
    assert.equal(urls(WEBHOOK_JOB).length, WEBHOOK_REPLICAS);
    for (const u of urls(WEBHOOK_JOB))
      assert.match(u, new RegExp(`^https://10\\.244\\.[0-9.]+:${WEBHOOK_PORT}/metrics$`));
    assert.equal(urls(SYNC_JOB).length, SYNC_REPLICAS);
    for (const u of urls(SYNC_JOB)) assert.match(u, new RegExp(`^http://10\\.244\\.[0-9.]+:${SYNC_PORT}/metrics$`));

    // What the rules read is there: the certificate's expiry (the one the test issued, 90 days), one sync leader,
    // and kube-apiserver's admission metrics for the product's webhooks.
    const expiry = await server().query(
      `min(toolforge_jobs_tls_certificate_expiry_timestamp_seconds{job="${WEBHOOK_JOB}"}) - time()`,
    );
    const days = Number(expiry[0]?.value[1]) / 86_400;
    t.diagnostic(`serving certificate expires in ${days.toFixed(2)} days`);
    assert.ok(days > 89 && days <= 90, `certificate expiry in ${days} days`);
    const leaders = await server().query(`sum(toolforge_jobs_sync_leader{job="${SYNC_JOB}"})`);
    assert.equal(Number(leaders[0]?.value[1]), 1);
  });

  test(`a healthy install: no alert of the product pending or firing for ${HEALTHY_EVALUATIONS} evaluations`, async (t) => {
    // An alert pending from before the targets were discovered stays so until its rule is next evaluated: the window
    // starts once every rule has been evaluated with the targets up.
    assert.ok(allUpAt > 0, 'the targets were never all up');
    await waitFor(
      'every alerting rule evaluated since the targets were up',
      async () =>
        (await server().rules())
          .filter((r) => r.type === 'alerting')
          .every((r) => Date.parse(r.lastEvaluation) > allUpAt) || undefined,
      60_000,
      500,
    );
    const started = Date.now();
    const rulesBefore = await server().rules();
    // The install itself may have failed calls open (the webhook configuration exists before its pods are Ready).
    const failOpenBefore = await failOpenCalls();
    const seen = new Set<string>();
    // Direct writes go on meanwhile, as on a cluster: the webhook answers them, so nothing may fail open.
    const writes = new ToolWrites(on());
    try {
      for (let i = 0; i < HEALTHY_EVALUATIONS; i++) {
        for (const a of await productAlerts()) seen.add(describeAlert(a));
        await sleep(INTERVAL_S * 1_000);
      }
    } finally {
      await writes.stop();
    }
    const rulesAfter = await server().rules();
    t.diagnostic(
      `watched ${((Date.now() - started) / 1000).toFixed(1)} s; ${writes.created} direct CronJobs written meanwhile`,
    );
    assert.deepEqual(writes.failures, []);
    assert.ok(writes.created > 0);
    assert.deepEqual([...seen], [], `alerts of a healthy install: ${[...seen].join('; ')}`);

    // Not quiet for want of evaluating: every rule of the file is loaded, healthy, and was evaluated again meanwhile.
    const alerting = rulesAfter.filter((r) => r.type === 'alerting');
    assert.deepEqual(alerting.map((r) => r.name).sort(), [...ruleNames].sort());
    for (const rule of alerting) {
      assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError ?? ''}`);
      const earlier = rulesBefore.find((r) => r.name === rule.name);
      assert.ok(earlier && Date.parse(rule.lastEvaluation) > Date.parse(earlier.lastEvaluation), rule.name);
    }
    // kube-apiserver failed none of the window's calls open.
    const failOpenAfter = await failOpenCalls();
    t.diagnostic(`fail-open calls of the install: ${failOpenBefore}; after the window: ${failOpenAfter}`);
    t.diagnostic(
      `kube-apiserver's timing of the webhook calls in the window: ${await callDurations(Math.ceil((Date.now() - started) / 1000))}`,
    );
    assert.equal(failOpenAfter, failOpenBefore);
  });

  test(`webhook scaled to 0 with a tool writing: ${ABSENT} and ${FAIL_OPEN} fire, then resolve at ${WEBHOOK_REPLICAS} replicas`, async (t) => {
    const writes = new ToolWrites(on());
    try {
      const scaledDown = Date.now();
      await scaleWebhook(0);
      const down = await watchAlerts(
        `${ABSENT} and ${FAIL_OPEN} firing`,
        scaledDown,
        (active) => isFiring(active, ABSENT) && isFiring(active, FAIL_OPEN),
        180_000,
      );
      report(t, 'after scaling to 0', down.firstSeen);
      // A failing call is timed too: refused at once once the Service has no endpoint, but while the pods go away a
      // call can wait out the webhook's timeoutSeconds (2 s): why JobsStorageWebhookHighLatency stays quiet while
      // calls fail.
      t.diagnostic(
        `kube-apiserver's timing of the webhook calls since scaling to 0: ${await callDurations(Math.ceil((Date.now() - scaledDown) / 1000))}`,
      );
      for (const a of down.last) t.diagnostic(`active: ${describeAlert(a)}`);
      // Only these two: nothing else of the product is wrong, and a failed-open call is not a rejection.
      assert.deepEqual([...new Set(down.last.map((a) => a.labels['alertname']))].sort(), [ABSENT, FAIL_OPEN].sort());
      const failOpen = down.last.filter((a) => a.labels['alertname'] === FAIL_OPEN);
      for (const a of failOpen) assert.match(a.labels['name'] ?? '', /\.jobs-storage\.toolforge\.org$/);
      const absent = down.last.find((a) => a.labels['alertname'] === ABSENT);
      // -1: the pods are gone from service discovery (0 would be a pod still listed that does not answer).
      t.diagnostic(`${ABSENT} value ${Number(absent?.value)}`);
      assert.ok([-1, 0].includes(Number(absent?.value)), `${ABSENT} value ${absent?.value ?? 'none'}`);
      assert.deepEqual(writes.failures, [], 'the webhook fails open: every write admitted');
      t.diagnostic(`${writes.created} direct CronJobs written while the webhook was down`);

      const scaledUp = Date.now();
      await scaleWebhook(WEBHOOK_REPLICAS);
      // Watched from the scale-up on, while the pods start: the first poll each alert is no longer active at.
      const resolvedAfter = new Map<string, number>();
      const resolved = watchAlerts(
        `${ABSENT} and ${FAIL_OPEN} resolved`,
        scaledUp,
        (active) => {
          for (const name of [ABSENT, FAIL_OPEN]) {
            if (!resolvedAfter.has(name) && !active.some((a) => a.labels['alertname'] === name)) {
              resolvedAfter.set(name, Date.now() - scaledUp);
            }
          }
          return active.length === 0;
        },
        180_000,
      );
      await on().waitReady(WEBHOOK_REPLICAS, SYNC_REPLICAS);
      t.diagnostic(`webhook pods Ready ${Date.now() - scaledUp} ms after scaling back`);
      await resolved;
      for (const [name, ms] of resolvedAfter) t.diagnostic(`after scaling back: ${name} resolved after ${ms} ms`);
      t.diagnostic(`no alert of the product active ${Date.now() - scaledUp} ms after scaling back`);
      assert.deepEqual(writes.failures, []);
    } finally {
      await writes.stop();
    }
  });
}
