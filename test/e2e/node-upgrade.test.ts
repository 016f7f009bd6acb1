// Upgrades and drains drop nothing: the chart's pods on a node (test/e2e/node-fixture.ts), two webhook replicas as on
// Toolforge, and a steady stream of a tool's direct CronJob creates, each one a call from kube-apiserver to the
// record-direct-writes webhook through the chart's Service. What counts is what the apiserver counted
// (apiserver_admission_webhook_*, scraped from its /metrics as admin before and after): a failed call, and a call
// that failed open (the webhook's failurePolicy lets the write through unrecorded). The stream's own errors count too.
// Needs root; JOBS_STORAGE_NODE_E2E=0 leaves it out, and says so.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { WEBHOOK_NAMES } from '../../src/webhook/manifests.js';
import { waitFor } from '../../scripts/control-plane/jobs.js';
import { admissionCalls, scrapeAdmissionWebhooks } from './exposition.js';
import { WriteStream } from './write-stream.js';
import type { AdmissionCalls } from './exposition.js';
import {
  CHART_DIR,
  CHART_ON_NODE_TIMEOUT_MS,
  NS,
  RELEASE,
  SYNC_LABEL,
  TOOL,
  TOOL_NS,
  WEBHOOK_LABEL,
  nodeE2eEnabled,
  note,
  noteLeftOut,
  startChartOnNode,
} from './node-fixture.js';
import type { ChartOnNode } from './node-fixture.js';

const NAMES = Object.values(WEBHOOK_NAMES);
/** The stream's pace: one create every 100 ms, 10 a second. */
const EVERY_MS = 100;

let chart: ChartOnNode | undefined;

function on(): ChartOnNode {
  assert.ok(chart, 'chart not installed');
  return chart;
}

/** Streams the tool's writes while `during` runs, and returns what the apiserver counted meanwhile. */
async function countedDuring(
  prefix: string,
  during: () => Promise<void>,
): Promise<{ calls: AdmissionCalls; stream: WriteStream }> {
  const api = on().cp.kubeConfig(TOOL).makeApiClient(k8s.BatchV1Api);
  const scrapeStarted = Date.now();
  const before = await scrapeAdmissionWebhooks(on().cp);
  note(`${prefix}: scraped kube-apiserver's /metrics in ${Date.now() - scrapeStarted} ms`);
  const stream = new WriteStream(api, TOOL_NS, prefix, EVERY_MS);
  try {
    await during();
  } finally {
    await stream.stop();
  }
  const calls = admissionCalls(before, await scrapeAdmissionWebhooks(on().cp), NAMES);
  return { calls, stream };
}

function report(t: TestContext, what: string, calls: AdmissionCalls, stream: WriteStream): void {
  t.diagnostic(
    `${what}: ${stream.created} creates, ${stream.errors.length} client errors; apiserver: ${calls.calls} webhook ` +
      `calls, ${calls.failed} failed, ${calls.failOpen} failed open; ` +
      `p99 ${(calls.p99Seconds * 1000).toFixed(1)} ms, within 5 ms ${(calls.within5ms * 100).toFixed(1)}%, ` +
      `within 25 ms ${(calls.within25ms * 100).toFixed(1)}%`,
  );
}

/** kube-apiserver's log lines about failed calls to the product's webhooks (its reason for each). */
function apiserverWebhookErrors(): string[] {
  return readFileSync(on().cp.logs.apiserver, 'utf8')
    .split('\n')
    .filter((l) => /jobs-storage\.toolforge\.org/.test(l) && /[Ff]ail/.test(l));
}

function assertNothingDropped(calls: AdmissionCalls, stream: WriteStream): void {
  assert.deepEqual(stream.errors, []);
  assert.ok(stream.created > 0);
  // Every create was one call to the record-direct-writes webhook.
  assert.ok(calls.calls >= stream.created, `${calls.calls} calls for ${stream.created} creates`);
  const why = (): string => `; kube-apiserver says:\n${apiserverWebhookErrors().slice(-5).join('\n')}`;
  assert.equal(calls.failed, 0, `failed admission calls${calls.failed > 0 ? why() : ''}`);
  assert.equal(calls.failOpen, 0, `fail-open admission calls${calls.failOpen > 0 ? why() : ''}`);
}

async function webhookPodNames(): Promise<string[]> {
  return (await on().pods(WEBHOOK_LABEL)).map((p) => p.metadata.name).sort();
}

if (!nodeE2eEnabled) {
  noteLeftOut('test/e2e/node-upgrade');
} else {
  before(
    async () => {
      chart = await startChartOnNode({ webhookReplicas: 2, syncReplicas: 2 });
      // The apiserver picks the webhook configuration up asynchronously, and kube-proxy the Service's endpoints: wait
      // for the first call the apiserver counts as answered.
      const api = chart.cp.kubeConfig(TOOL).makeApiClient(k8s.BatchV1Api);
      const first = await scrapeAdmissionWebhooks(chart.cp);
      const warmup = new WriteStream(api, TOOL_NS, 'warmup', EVERY_MS);
      try {
        await waitFor(
          'a webhook call the apiserver counts as answered',
          async () => {
            const calls = admissionCalls(first, await scrapeAdmissionWebhooks(on().cp), NAMES);
            return calls.calls > calls.failed + calls.failOpen ? true : undefined;
          },
          60_000,
          1_000,
        );
      } finally {
        await warmup.stop();
      }
    },
    { timeout: CHART_ON_NODE_TIMEOUT_MS },
  );

  after(async () => {
    await chart?.stop();
  });

  test('at a steady 10 creates/s the apiserver reaches the webhook through the Service, every call answered', async (t) => {
    const { calls, stream } = await countedDuring('steady', () => sleep(30_000));
    report(t, 'steady 30 s', calls, stream);
    assertNothingDropped(calls, stream);
  });

  test('`helm upgrade` that rolls the webhook pods drops no admission call', async (t) => {
    const old = await webhookPodNames();
    let rolledMs = 0;
    const { calls, stream } = await countedDuring('upgrade', async () => {
      await sleep(3_000);
      const started = Date.now();
      // A changed config value: the pods' checksum/config annotation changes, so the Deployment rolls.
      on().helm([
        'upgrade',
        RELEASE,
        CHART_DIR,
        '--namespace',
        NS,
        '--reuse-values',
        '--set',
        'config.webhook.certPollSeconds=11',
      ]);
      await on().cp.kubectlOk('admin', [
        'rollout',
        'status',
        'deployment/jobs-storage-webhook',
        '-n',
        NS,
        '--timeout=240s',
      ]);
      rolledMs = Date.now() - started;
      // The old pods drain for shutdownDelaySeconds + their last answers after the rollout reports done.
      await waitFor(
        'the old webhook pods gone',
        async () => ((await webhookPodNames()).some((n) => old.includes(n)) ? undefined : true),
        90_000,
        500,
      );
      await sleep(3_000);
    });
    const now = await webhookPodNames();
    t.diagnostic(`webhook pods ${old.join(' ')} -> ${now.join(' ')}; rollout ${rolledMs} ms`);
    assert.equal(now.length, 2);
    assert.ok(
      now.every((n) => !old.includes(n)),
      'the upgrade did not replace the webhook pods',
    );
    report(t, 'helm upgrade', calls, stream);
    assertNothingDropped(calls, stream);
  });

  test('`kubectl drain` of the node honours the PDBs: one webhook and one sync pod stay, no call dropped', async (t) => {
    const nodeName = on().node.name;
    let minWebhooks = Infinity;
    let minSyncs = Infinity;
    let drain = { code: 0, stdout: '', stderr: '' };
    const { calls, stream } = await countedDuring('drain', async () => {
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const [w, s] = await Promise.all([on().readyPods(WEBHOOK_LABEL), on().readyPods(SYNC_LABEL)]);
          minWebhooks = Math.min(minWebhooks, w.length);
          minSyncs = Math.min(minSyncs, s.length);
          await sleep(300);
        }
      })();
      try {
        // One node: an evicted pod's replacement has nowhere to go, so the PDBs (minAvailable 1) must keep the
        // drain from evicting the last replica of each Deployment; it retries until its timeout.
        drain = await on().cp.kubectl('admin', [
          'drain',
          nodeName,
          '--ignore-daemonsets',
          '--delete-emptydir-data',
          '--timeout=30s',
        ]);
      } finally {
        sampling = false;
        await sampler;
      }
    });
    await on().cp.kubectlOk('admin', ['uncordon', nodeName]);
    t.diagnostic(
      `drain exit ${drain.code}; fewest Ready pods during it: webhook ${minWebhooks}, sync ${minSyncs}; ` +
        `last drain lines: ${drain.stderr.trim().split('\n').slice(-2).join(' | ')}`,
    );
    report(t, 'kubectl drain', calls, stream);
    assert.notEqual(drain.code, 0, 'the drain evicted every pod of the node');
    assert.match(`${drain.stdout}${drain.stderr}`, /disruption budget/);
    assert.ok(minWebhooks >= 1, `webhook Ready pods fell to ${minWebhooks}`);
    assert.ok(minSyncs >= 1, `sync Ready pods fell to ${minSyncs}`);
    assertNothingDropped(calls, stream);
    // Uncordoned, the evicted pods' replacements are scheduled again.
    await on().waitReady(2, 2, 120_000);
  });
}
