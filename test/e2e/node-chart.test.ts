// The chart's pods for real (issue 21, item 3): the control plane and a node (scripts/control-plane/node.ts), the
// image built from the Dockerfile by scripts/image/build.sh (cached) and imported into the node's containerd, then
// `helm install` of deploy/chart with the local values and that image. The webhook configuration points at the
// chart's Service, so kube-apiserver calls the webhook pods through the Service's ClusterIP (kube-proxy's rules on
// this host); the pods reach the apiserver through the `kubernetes` Service with their ServiceAccount tokens. No
// cert-manager here: the test makes the serving certificate (the Secret the chart mounts) and gives the chart its CA.
// Needs root, like test/e2e/node.test.ts; JOBS_STORAGE_NODE_E2E=0 leaves it out, and says so.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { REPO_ROOT, baseRbacObjects, startControlPlane } from '../../scripts/control-plane/cluster.js';
import type { ControlPlane } from '../../scripts/control-plane/cluster.js';
import { scheduledJob, waitFor, workloadsOf } from '../../scripts/control-plane/jobs.js';
import { NODE_IP, startNode, waitForNodeReady } from '../../scripts/control-plane/node.js';
import type { Node } from '../../scripts/control-plane/node.js';
import { createCA, createLeaf } from '../../scripts/control-plane/pki.js';
import { CHART_DIR, VALUES_DIR, runTool } from '../../scripts/tools/binaries.js';

const enabled = process.env['JOBS_STORAGE_NODE_E2E'] !== '0';
const NS = 'jobs-storage';
const RELEASE = 'jobs-storage';
const TOOL = 'alpha';
const TOOL_NS = `tool-${TOOL}`;
const IMAGE_NAME = 'localhost/toolforge/jobs-storage';
const IMAGE_TAG = '0.1.0-local';
const WEBHOOK_PORT = 8443;
const SYNC_PORT = 9100;
const MANAGED = 'is managed by the Toolforge jobs API';
const BUILD_TIMEOUT_MS = 30 * 60_000;
const WEBHOOK_LABEL = 'app.kubernetes.io/name=jobs-storage-webhook';
const SYNC_LABEL = 'app.kubernetes.io/name=jobs-storage-sync';

let cp: ControlPlane | undefined;
let node: Node | undefined;
let dir = '';
/** ms from `helm install` to both Deployments' pods Ready. */
let installToReadyMs = 0;

function plane(): ControlPlane {
  assert.ok(cp, 'control plane not started');
  return cp;
}

/** Runs a command; resolves with its stdout when it exits 0, else rejects with its stderr. */
function must(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      process.stderr.write(d);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${String(code)}: ${stderr.slice(-4000)}`));
    });
  });
}

function helm(args: string[]): string {
  const res = runTool('helm', [...args, '--kubeconfig', plane().kubeconfigPath('admin')]);
  assert.equal(res.code, 0, `helm ${args.join(' ')}: ${res.stdout}${res.stderr}`);
  return res.stdout;
}

/** The names of the pods a label selects (admin), running or not. */
async function podsOf(selector: string): Promise<string[]> {
  const out = await plane().kubectlOk('admin', [
    'get',
    'pods',
    '-n',
    NS,
    '-l',
    selector,
    '-o',
    'jsonpath={range .items[*]}{.metadata.name}{"\\n"}{end}',
  ]);
  return out.split('\n').filter((l) => l.trim() !== '');
}

interface PodJson {
  metadata: { name: string; deletionTimestamp?: string };
  spec: {
    nodeName?: string;
    serviceAccountName?: string;
    securityContext?: Record<string, unknown>;
    containers: Array<{
      name: string;
      image: string;
      securityContext?: Record<string, unknown>;
      resources?: { requests?: Record<string, string> };
    }>;
  };
  status: { phase?: string; conditions?: Array<{ type: string; status: string }> };
}

async function podJson(name: string): Promise<PodJson> {
  return JSON.parse(await plane().kubectlOk('admin', ['get', 'pod', name, '-n', NS, '-o', 'json'])) as PodJson;
}

/** Ready pods of a Deployment's selector (not being deleted). */
async function readyPods(selector: string): Promise<string[]> {
  const list = JSON.parse(
    await plane().kubectlOk('admin', ['get', 'pods', '-n', NS, '-l', selector, '-o', 'json']),
  ) as { items: PodJson[] };
  return list.items
    .filter(
      (p) =>
        p.metadata.deletionTimestamp === undefined &&
        p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    )
    .map((p) => p.metadata.name);
}

/** The pod's /metrics through the apiserver's pod proxy (scheme https for the webhook, http for the sync). */
async function podMetrics(pod: string, scheme: 'https' | 'http', port: number): Promise<string> {
  return plane().kubectlOk('admin', [
    'get',
    '--raw',
    `/api/v1/namespaces/${NS}/pods/${scheme}:${pod}:${port}/proxy/metrics`,
  ]);
}

async function leaseHolder(): Promise<string> {
  return plane().kubectlOk('admin', [
    'get',
    'lease',
    'jobs-storage-sync',
    '-n',
    NS,
    '-o',
    'jsonpath={.spec.holderIdentity}',
  ]);
}

/** Creates a jobs-framework CronJob (as jobs-api renders it) as the tool, with no CR; returns the job's name. */
async function createUnmanagedJob(name: string): Promise<void> {
  const objs = workloadsOf(scheduledJob(TOOL, name));
  await plane().kubectlOk(TOOL, ['create', '-f', '-'], {
    stdin: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objs }),
  });
}

/** Waits for the sync to backfill the job's CR; returns its backfilled-by annotation. */
async function waitForBackfill(name: string, timeoutMs = 90_000): Promise<string> {
  return waitFor(
    `the CR of ${TOOL_NS}/${name} backfilled`,
    async () => {
      const res = await plane().kubectl('admin', [
        'get',
        'scheduled-jobs',
        name,
        '-n',
        TOOL_NS,
        '-o',
        'jsonpath={.metadata.annotations.jobs-storage\\.toolforge\\.org/backfilled-by}',
      ]);
      return res.code === 0 && res.stdout !== '' ? res.stdout : undefined;
    },
    timeoutMs,
    1_000,
  );
}

if (!enabled) {
  process.stdout.write(
    '# node chart e2e left out (JOBS_STORAGE_NODE_E2E=0): run it with npm test -- test/e2e/node-chart (root)\n',
  );
} else {
  before(
    async () => {
      dir = mkdtempSync(join(tmpdir(), 'jobs-storage-node-chart-'));
      // The image first (cached when its inputs did not change): nothing else runs while it builds.
      const buildStarted = Date.now();
      const out = await must('bash', [join(REPO_ROOT, 'scripts', 'image', 'build.sh')], BUILD_TIMEOUT_MS);
      const [ref, archive] = out.trim().split('\n');
      assert.equal(ref, `${IMAGE_NAME}:${IMAGE_TAG}`, `build.sh printed ${out}`);
      assert.ok(archive, `build.sh printed no archive: ${out}`);
      process.stdout.write(`# image ${ref} ready in ${Date.now() - buildStarted} ms (${archive})\n`);

      cp = await startControlPlane({ seed: false, node: { advertiseAddress: NODE_IP } });
      node = await startNode(cp);
      await waitForNodeReady(cp, node);
      const importStarted = Date.now();
      await node.ctr(['images', 'import', archive]);
      process.stdout.write(`# image imported into the node's containerd in ${Date.now() - importStarted} ms\n`);

      // The platform around the chart (tool accounts, jobs-api's identity, the namespaces); nothing of jobs-storage's.
      await cp.apply('admin', baseRbacObjects());
      await cp.addTool(TOOL);

      // The webhook's serving certificate, as cert-manager's Certificate would issue it: the Service's DNS names.
      const caPair = await createCA(dir, 'webhook-ca', 'jobs-storage node e2e webhook CA');
      const leaf = await createLeaf(dir, 'webhook', caPair, {
        commonName: `jobs-storage-webhook.${NS}.svc`,
        usage: 'server',
        dnsNames: [`jobs-storage-webhook.${NS}.svc`, `jobs-storage-webhook.${NS}.svc.cluster.local`],
      });
      await cp.kubectlOk('admin', [
        'create',
        'secret',
        'tls',
        'jobs-storage-webhook-tls',
        '-n',
        NS,
        `--cert=${leaf.certFile}`,
        `--key=${leaf.keyFile}`,
      ]);
      // The ServiceAccount admission plugin refuses pods until the controller-manager has made the default one.
      await waitFor(
        `the default ServiceAccount in ${NS}`,
        async () => (await cp?.kubectl('admin', ['get', 'serviceaccount', 'default', '-n', NS]))?.code === 0,
        60_000,
        300,
      );

      const ca = readFileSync(caPair.certFile);
      const installStarted = Date.now();
      helm([
        'install',
        RELEASE,
        CHART_DIR,
        '--namespace',
        NS,
        '--values',
        join(VALUES_DIR, 'local.yaml'),
        '--set',
        `image.name=${IMAGE_NAME}`,
        '--set',
        `image.tag=${IMAGE_TAG}`,
        '--set',
        'certManager.enabled=false',
        '--set',
        `webhook.caBundle=${ca.toString('base64')}`,
        // Two sync replicas: one leads, the other takes the Lease over when the leader's pod goes.
        '--set',
        'sync.replicas=2',
        // The phase in which the sync backfills a CR for a jobs-framework workload that has none (design.md §5).
        '--set',
        'phase.initial=storage-truth',
        '--set',
        'config.phase.initial=storage-truth',
        '--set',
        'config.sync.backfillGraceSeconds=2',
      ]);
      try {
        await waitFor(
          'both Deployments Ready',
          async () => {
            const [w, s] = await Promise.all([readyPods(WEBHOOK_LABEL), readyPods(SYNC_LABEL)]);
            return w.length >= 1 && s.length >= 2;
          },
          240_000,
          500,
        );
      } catch (err) {
        const described = await cp.kubectl('admin', ['describe', 'pods', '-n', NS]);
        const logs: string[] = [];
        for (const pod of [...(await podsOf(WEBHOOK_LABEL)), ...(await podsOf(SYNC_LABEL))]) {
          const res = await cp.kubectl('admin', ['logs', '-n', NS, pod, '--previous', '--tail=20']);
          logs.push(`--- ${pod} (previous container):\n${res.stdout}${res.stderr}`);
        }
        throw new Error(`${String(err)}\n${logs.join('\n')}\n${described.stdout}`);
      }
      installToReadyMs = Date.now() - installStarted;
      process.stdout.write(`# helm install -> webhook and sync pods Ready: ${installToReadyMs} ms\n`);
    },
    { timeout: BUILD_TIMEOUT_MS + 10 * 60_000 },
  );

  after(async () => {
    await node?.stop();
    await cp?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('both Deployments run the built image on the node as uid 65534 with a read-only root filesystem', async (t) => {
    assert.ok(installToReadyMs > 0);
    const pods = [...(await podsOf(WEBHOOK_LABEL)), ...(await podsOf(SYNC_LABEL))];
    assert.equal(pods.length, 3, pods.join(' '));
    for (const name of pods) {
      const pod = await podJson(name);
      const [container] = pod.spec.containers;
      assert.ok(container);
      assert.equal(pod.spec.nodeName, node?.name);
      assert.equal(container.image, `${IMAGE_NAME}:${IMAGE_TAG}`);
      // The effective securityContext: the container's fields over the pod's.
      const effective = { ...pod.spec.securityContext, ...container.securityContext };
      assert.equal(effective['readOnlyRootFilesystem'], true, JSON.stringify(effective));
      assert.equal(effective['runAsNonRoot'], true, JSON.stringify(effective));
      const probe =
        "const fs=require('node:fs');let root;try{fs.writeFileSync('/probe','x');root='written'}catch(e){root=e.code}" +
        'console.log(JSON.stringify({uid:process.getuid(),gid:process.getgid(),root}))';
      const execStarted = Date.now();
      const out = await plane().kubectlOk('admin', [
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
    const res = await plane().kubectl(TOOL, ['create', '-f', '-'], { stdin: JSON.stringify(cr) });
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, new RegExp(MANAGED));
  });

  test("a tool's `kubectl create cronjob` is warned through the Service and counted in the webhook pod's /metrics", async (t) => {
    const [webhookPod] = await podsOf(WEBHOOK_LABEL);
    assert.ok(webhookPod);
    // Every webhook of the configuration names the chart's Service (no url): the apiserver resolves it to the
    // Service's ClusterIP, which only kube-proxy's rules on this node lead to the pod.
    const vwc = JSON.parse(
      await plane().kubectlOk('admin', [
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
        const res = await plane().kubectl(TOOL, [
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
        `${String(err)}\nwebhook logs:\n${(await plane().kubectl('admin', ['logs', '-n', NS, webhookPod])).stdout}`,
      );
    });
    t.diagnostic(`after ${n} write(s): ${warning.trim()}`);
    const metrics = await podMetrics(webhookPod, 'https', WEBHOOK_PORT);
    assert.match(metrics, /toolforge_jobs_direct_writes_total\{[^}]*tool_name="alpha"[^}]*\} [1-9]/);
    assert.match(metrics, /toolforge_jobs_phase_info\{phase="storage-truth"\} 1/);
  });

  test('a jobs-framework CronJob without a CR is backfilled by the leading sync pod', async () => {
    const holder = await leaseHolder();
    const syncPods = await podsOf(SYNC_LABEL);
    assert.ok(syncPods.includes(holder), `Lease holder ${holder} is not a sync pod (${syncPods.join(' ')})`);
    await createUnmanagedJob('nightly');
    assert.equal(await waitForBackfill('nightly'), holder);
    const metrics = await podMetrics(holder, 'http', SYNC_PORT);
    assert.match(metrics, /toolforge_jobs_sync_leader 1/);
  });

  test('deleting the leader pod hands the Lease to the other sync pod, which backfills', async (t) => {
    const old = await leaseHolder();
    const started = Date.now();
    await plane().kubectlOk('admin', ['delete', 'pod', old, '-n', NS, '--wait=false']);
    const next = await waitFor(
      'a new Lease holder',
      async () => {
        const h = await leaseHolder();
        return h !== '' && h !== old ? h : undefined;
      },
      60_000,
      500,
    );
    t.diagnostic(`Lease: ${old} -> ${next} in ${Date.now() - started} ms`);
    assert.ok((await podsOf(SYNC_LABEL)).includes(next));
    await createUnmanagedJob('weekly');
    assert.equal(await waitForBackfill('weekly'), next);
  });

  test("each pod's RSS against its memory request (kubelet's /stats/summary)", async (t) => {
    const nodeName = node?.name ?? '';
    const summary = JSON.parse(
      await plane().kubectlOk('admin', ['get', '--raw', `/api/v1/nodes/${nodeName}/proxy/stats/summary`]),
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
      const spec = await plane().kubectl('admin', ['get', 'pod', p.podRef.name, '-n', NS, '-o', 'json']);
      const request =
        spec.code === 0
          ? ((JSON.parse(spec.stdout) as PodJson).spec.containers[0]?.resources?.requests?.['memory'] ?? '-')
          : 'gone';
      t.diagnostic(`${p.podRef.name}: RSS ${(rss / 1e6).toFixed(1)} MB (request ${request})`);
      assert.ok(rss > 10e6, `${p.podRef.name} RSS ${rss}`);
    }
  });
}
