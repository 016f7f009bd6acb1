// The chart's pods for real: the image built from the Dockerfile, `helm install` of deploy/chart with the local
// values on a node (test/e2e/node-fixture.ts). No cert-manager here: the fixture makes the serving certificate (the
// Secret the chart mounts) and gives the chart its CA. Needs root, like test/e2e/node.test.ts; JOBS_STORAGE_NODE_E2E=0
// leaves it out, and says so.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  CHART_ON_NODE_TIMEOUT_MS,
  NS,
  SYNC_LABEL,
  SYNC_PORT,
  TOOL,
  TOOL_NS,
  WEBHOOK_LABEL,
  WEBHOOK_PORT,
  IMAGE_NAME,
  IMAGE_TAG,
  nodeE2eEnabled,
  noteLeftOut,
  startChartOnNode,
} from './node-fixture.js';
import type { ChartOnNode, PodJson } from './node-fixture.js';
import { waitFor } from '../../scripts/control-plane/jobs.js';

const MANAGED = 'is managed by the Toolforge jobs API';

let chart: ChartOnNode | undefined;

function on(): ChartOnNode {
  assert.ok(chart, 'chart not installed');
  return chart;
}

if (!nodeE2eEnabled) {
  noteLeftOut('test/e2e/node-chart');
} else {
  before(
    async () => {
      // Two sync replicas: one leads, the other takes the Lease over when the leader's pod goes.
      chart = await startChartOnNode({ webhookReplicas: 1, syncReplicas: 2 });
    },
    { timeout: CHART_ON_NODE_TIMEOUT_MS },
  );

  after(async () => {
    await chart?.stop();
  });

  test('both Deployments run the built image on the node as uid 65534 with a read-only root filesystem', async (t) => {
    assert.ok(on().installToReadyMs > 0);
    const pods = [...(await on().podsOf(WEBHOOK_LABEL)), ...(await on().podsOf(SYNC_LABEL))];
    assert.equal(pods.length, 3, pods.join(' '));
    for (const name of pods) {
      const pod = await on().podJson(name);
      const [container] = pod.spec.containers;
      assert.ok(container);
      assert.equal(pod.spec.nodeName, on().node.name);
      assert.equal(container.image, `${IMAGE_NAME}:${IMAGE_TAG}`);
      // The effective securityContext: the container's fields over the pod's.
      const effective = { ...pod.spec.securityContext, ...container.securityContext };
      assert.equal(effective['readOnlyRootFilesystem'], true, JSON.stringify(effective));
      assert.equal(effective['runAsNonRoot'], true, JSON.stringify(effective));
      const probe =
        "const fs=require('node:fs');let root;try{fs.writeFileSync('/probe','x');root='written'}catch(e){root=e.code}" +
        'console.log(JSON.stringify({uid:process.getuid(),gid:process.getgid(),root}))';
      const execStarted = Date.now();
      const out = await on().cp.kubectlOk('admin', [
        'exec',
        '-n',
        NS,
        name,
        '-c',
        container.name,
        '--',
        'node',
        '-e',
        probe,
      ]);
      const seen = JSON.parse(out) as { uid: number; gid: number; root: string };
      t.diagnostic(
        `${name}: ${out.trim()} (kubectl exec ${Date.now() - execStarted} ms), ServiceAccount ${pod.spec.serviceAccountName ?? ''}`,
      );
      assert.deepEqual(seen, { uid: 65534, gid: 65534, root: 'EROFS' });
    }
  });

  test("a tool's kubectl write of a job CR is denied with the policy's message", async () => {
    const cr = {
      apiVersion: 'jobs-api.toolforge.org/v1',
      kind: 'ScheduledJob',
      metadata: { name: 'sneaky', namespace: TOOL_NS },
      spec: {},
    };
    const res = await on().cp.kubectl(TOOL, ['create', '-f', '-'], { stdin: JSON.stringify(cr) });
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, new RegExp(MANAGED));
  });

  test("a tool's `kubectl create cronjob` is warned through the Service and counted in the webhook pod's /metrics", async (t) => {
    const [webhookPod] = await on().podsOf(WEBHOOK_LABEL);
    assert.ok(webhookPod);
    // Every webhook of the configuration names the chart's Service (no url): the apiserver resolves it to the
    // Service's ClusterIP, which only kube-proxy's rules on this node lead to the pod.
    const vwc = JSON.parse(
      await on().cp.kubectlOk('admin', [
        'get',
        'validatingwebhookconfigurations',
        '-l',
        'app.kubernetes.io/part-of=jobs-storage',
        '-o',
        'json',
      ]),
    ) as { items: Array<{ webhooks: Array<{ clientConfig: { url?: string; service?: Record<string, unknown> } }> }> };
    const clientConfigs = vwc.items.flatMap((i) => i.webhooks.map((w) => w.clientConfig));
    assert.ok(clientConfigs.length > 0, 'no webhook configuration of the release');
    for (const cc of clientConfigs) {
      assert.equal(cc.url, undefined);
      assert.equal(cc.service?.['namespace'], NS);
      assert.equal(cc.service?.['name'], 'jobs-storage-webhook');
      assert.equal(cc.service?.['port'], 443);
    }
    // The apiserver picks the webhook configuration up asynchronously, and kube-proxy the Service's endpoints.
    let n = 0;
    const warning = await waitFor(
      'a warned direct CronJob',
      async () => {
        n += 1;
        const res = await on().cp.kubectl(TOOL, [
          'create',
          'cronjob',
          `direct-${n}`,
          '-n',
          TOOL_NS,
          '--image=docker-registry.tools.wmflabs.org/toolforge-python311-sssd-base:latest',
          '--schedule=17 3 * * *',
          '--',
          './run.sh',
        ]);
        assert.equal(res.code, 0, res.stderr);
        return /^Warning: /m.test(res.stderr) ? res.stderr : undefined;
      },
      30_000,
      1_000,
    ).catch(async (err: unknown) => {
      throw new Error(
        `${String(err)}\nwebhook logs:\n${(await on().cp.kubectl('admin', ['logs', '-n', NS, webhookPod])).stdout}`,
      );
    });
    t.diagnostic(`after ${n} write(s): ${warning.trim()}`);
    const metrics = await on().podMetrics(webhookPod, 'https', WEBHOOK_PORT);
    assert.match(metrics, /toolforge_jobs_direct_writes_total\{[^}]*tool_name="alpha"[^}]*\} [1-9]/);
    assert.match(metrics, /toolforge_jobs_phase_info\{phase="storage-truth"\} 1/);
  });

  test('a jobs-framework CronJob without a CR is backfilled by the leading sync pod', async () => {
    const holder = await on().leaseHolder();
    const syncPods = await on().podsOf(SYNC_LABEL);
    assert.ok(syncPods.includes(holder), `Lease holder ${holder} is not a sync pod (${syncPods.join(' ')})`);
    await on().createUnmanagedJob('nightly');
    assert.equal(await on().waitForBackfill('nightly'), holder);
    const metrics = await on().podMetrics(holder, 'http', SYNC_PORT);
    assert.match(metrics, /toolforge_jobs_sync_leader 1/);
  });

  test('deleting the leader pod hands the Lease to the other sync pod, which backfills', async (t) => {
    const old = await on().leaseHolder();
    const started = Date.now();
    await on().cp.kubectlOk('admin', ['delete', 'pod', old, '-n', NS, '--wait=false']);
    const next = await waitFor(
      'a new Lease holder',
      async () => {
        const h = await on().leaseHolder();
        return h !== '' && h !== old ? h : undefined;
      },
      60_000,
      500,
    );
    t.diagnostic(`Lease: ${old} -> ${next} in ${Date.now() - started} ms`);
    assert.ok((await on().podsOf(SYNC_LABEL)).includes(next));
    await on().createUnmanagedJob('weekly');
    assert.equal(await on().waitForBackfill('weekly'), next);
  });

  test("each pod's RSS against its memory request (kubelet's /stats/summary)", async (t) => {
    const nodeName = on().node.name ?? '';
    const summary = JSON.parse(
      await on().cp.kubectlOk('admin', ['get', '--raw', `/api/v1/nodes/${nodeName}/proxy/stats/summary`]),
    ) as {
      pods: Array<{
        podRef: { name: string; namespace: string };
        containers?: Array<{ name: string; memory?: { rssBytes?: number; workingSetBytes?: number } }>;
      }>;
    };
    const ours = summary.pods.filter((p) => p.podRef.namespace === NS);
    assert.ok(ours.length >= 2, `stats for ${ours.map((p) => p.podRef.name).join(' ')}`);
    for (const p of ours) {
      const container = p.containers?.[0];
      const rss = container?.memory?.rssBytes;
      if (rss === undefined) continue;
      const spec = await on().cp.kubectl('admin', ['get', 'pod', p.podRef.name, '-n', NS, '-o', 'json']);
      const request =
        spec.code === 0
          ? ((JSON.parse(spec.stdout) as PodJson).spec.containers[0]?.resources?.requests?.['memory'] ?? '-')
          : 'gone';
      t.diagnostic(`${p.podRef.name}: RSS ${(rss / 1e6).toFixed(1)} MB (request ${request})`);
      assert.ok(rss > 10e6, `${p.podRef.name} RSS ${rss}`);
    }
  });
}
