// The chart's pods on a real node, for the node e2e tests and the demo's last act: the image built from the
// Dockerfile by scripts/image/build.sh (cached), a control plane with a node (./node.ts) whose containerd holds that
// image, the platform around the chart (tool accounts, jobs-api's identity), then `helm install` of deploy/chart with
// the local values and that image. The webhook configuration names the chart's Service, so kube-apiserver calls the
// webhook pods through the Service's ClusterIP (kube-proxy's rules on this host).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, baseRbacObjects, startControlPlane } from './cluster.js';
import type { ControlPlane, ControlPlaneOptions } from './cluster.js';
import { scheduledJob, waitFor, workloadsOf } from './jobs.js';
import { NODE_IP, startNode, waitForNodeReady } from './node.js';
import type { Node } from './node.js';
import { createCA, createLeaf } from './pki.js';
import { CHART_DIR, VALUES_DIR, runTool } from '../tools/binaries.js';

export const NS = 'jobs-storage';
export const RELEASE = 'jobs-storage';
export const TOOL = 'alpha';
export const TOOL_NS = `tool-${TOOL}`;
export const IMAGE_NAME = 'localhost/toolforge/jobs-storage';
export const IMAGE_TAG = '0.1.0-local';
export const WEBHOOK_PORT = 8443;
export const SYNC_PORT = 9100;
export const WEBHOOK_LABEL = 'app.kubernetes.io/name=jobs-storage-webhook';
export const SYNC_LABEL = 'app.kubernetes.io/name=jobs-storage-sync';
const BUILD_TIMEOUT_MS = 30 * 60_000;
/** A `before` hook's budget for startChartOnNode: the image build on a cold cache, then the rest. */
export const CHART_ON_NODE_TIMEOUT_MS = BUILD_TIMEOUT_MS + 10 * 60_000;

/** Prints a line the test reporter passes through (a `# ` comment). */
export function note(line: string): void {
  process.stdout.write(`# ${line}\n`);
}

/** Runs a command; resolves with its stdout when it exits 0, else rejects with its stderr. */
export function must(cmd: string, args: string[], timeoutMs: number): Promise<string> {
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

export interface PodJson {
  metadata: { name: string; deletionTimestamp?: string; labels?: Record<string, string> };
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
  status: { phase?: string; podIP?: string; conditions?: Array<{ type: string; status: string }> };
}

export interface ChartOnNodeOptions {
  /** Extra `helm install --set` values, after the fixture's own. */
  set?: string[];
  /** Webhook and sync replicas (default 1 and 2). */
  webhookReplicas?: number;
  syncReplicas?: number;
  /**
   * Who makes the webhook's serving certificate: 'test' (default) makes the Secret the chart mounts from a CA of its
   * own and gives the chart that CA; 'cert-manager' leaves certManager.enabled on, for a cert-manager that runs.
   */
  certificate?: 'test' | 'cert-manager';
  /** Control-plane options on top of the fixture's (a node, no seeded identities). */
  controlPlane?: ControlPlaneOptions;
  /** Runs after the node is Ready and the platform objects exist, before `helm install`. */
  beforeInstall?: (cp: ControlPlane, node: Node) => Promise<void>;
}

/** Both Deployments' pods on a node, and the calls the node tests make against them. */
export class ChartOnNode {
  /** ms from `helm install` to both Deployments' pods Ready. */
  installToReadyMs = 0;

  constructor(
    readonly cp: ControlPlane,
    readonly node: Node,
    readonly dir: string,
    /** The CA file that signed the webhook's serving certificate ('test' certificates only). */
    readonly servingCaFile: string | undefined,
  ) {}

  /** helm with the admin kubeconfig; throws with helm's output on failure. */
  helm(args: string[]): string {
    const res = runTool('helm', [...args, '--kubeconfig', this.cp.kubeconfigPath('admin')]);
    assert.equal(res.code, 0, `helm ${args.join(' ')}: ${res.stdout}${res.stderr}`);
    return res.stdout;
  }

  async pods(selector: string): Promise<PodJson[]> {
    const list = JSON.parse(
      await this.cp.kubectlOk('admin', ['get', 'pods', '-n', NS, '-l', selector, '-o', 'json']),
    ) as { items: PodJson[] };
    return list.items;
  }

  /** The names of the pods a label selects, running or not. */
  async podsOf(selector: string): Promise<string[]> {
    return (await this.pods(selector)).map((p) => p.metadata.name);
  }

  async podJson(name: string): Promise<PodJson> {
    return JSON.parse(await this.cp.kubectlOk('admin', ['get', 'pod', name, '-n', NS, '-o', 'json'])) as PodJson;
  }

  /** Ready pods of a selector (not being deleted). */
  async readyPods(selector: string): Promise<string[]> {
    return (await this.pods(selector))
      .filter(
        (p) =>
          p.metadata.deletionTimestamp === undefined &&
          p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      )
      .map((p) => p.metadata.name);
  }

  /** The pod's /metrics through the apiserver's pod proxy (https for the webhook, http for the sync). */
  podMetrics(pod: string, scheme: 'https' | 'http', port: number): Promise<string> {
    return this.cp.kubectlOk('admin', [
      'get',
      '--raw',
      `/api/v1/namespaces/${NS}/pods/${scheme}:${pod}:${port}/proxy/metrics`,
    ]);
  }

  leaseHolder(): Promise<string> {
    return this.cp.kubectlOk('admin', [
      'get',
      'lease',
      'jobs-storage-sync',
      '-n',
      NS,
      '-o',
      'jsonpath={.spec.holderIdentity}',
    ]);
  }

  /** Creates a jobs-framework CronJob (as jobs-api renders it) as the tool, with no CR. */
  async createUnmanagedJob(name: string): Promise<void> {
    const objs = workloadsOf(scheduledJob(TOOL, name));
    await this.cp.kubectlOk(TOOL, ['create', '-f', '-'], {
      stdin: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objs }),
    });
  }

  /** Waits for the sync to backfill the job's CR; returns its backfilled-by annotation. */
  waitForBackfill(name: string, timeoutMs = 90_000): Promise<string> {
    return waitFor(
      `the CR of ${TOOL_NS}/${name} backfilled`,
      async () => {
        const res = await this.cp.kubectl('admin', [
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

  /** Waits until at least that many webhook and sync pods are Ready; on timeout throws with their logs. */
  async waitReady(webhooks: number, syncs: number, timeoutMs = 240_000): Promise<void> {
    try {
      await waitFor(
        'both Deployments Ready',
        async () => {
          const [w, s] = await Promise.all([this.readyPods(WEBHOOK_LABEL), this.readyPods(SYNC_LABEL)]);
          return w.length >= webhooks && s.length >= syncs;
        },
        timeoutMs,
        500,
      );
    } catch (err) {
      throw new Error(`${String(err)}\n${await this.diagnose()}`);
    }
  }

  /** Pod descriptions and the last lines of each pod's previous container, for a failure message. */
  async diagnose(): Promise<string> {
    const described = await this.cp.kubectl('admin', ['describe', 'pods', '-n', NS]);
    const logs: string[] = [];
    for (const pod of [...(await this.podsOf(WEBHOOK_LABEL)), ...(await this.podsOf(SYNC_LABEL))]) {
      const res = await this.cp.kubectl('admin', ['logs', '-n', NS, pod, '--previous', '--tail=20']);
      logs.push(`--- ${pod} (previous container):\n${res.stdout}${res.stderr}`);
    }
    return `${logs.join('\n')}\n${described.stdout}`;
  }

  async stop(): Promise<void> {
    await this.node.stop();
    await this.cp.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Builds (or reuses) the image, starts a control plane with a node, and installs the chart with that image. */
export async function startChartOnNode(opts: ChartOnNodeOptions = {}): Promise<ChartOnNode> {
  const dir = mkdtempSync(join(tmpdir(), 'jobs-storage-node-chart-'));
  // The image first (cached when its inputs did not change): nothing else runs while it builds.
  const buildStarted = Date.now();
  const out = await must('bash', [join(REPO_ROOT, 'scripts', 'image', 'build.sh')], BUILD_TIMEOUT_MS);
  const [ref, archive] = out.trim().split('\n');
  assert.equal(ref, `${IMAGE_NAME}:${IMAGE_TAG}`, `build.sh printed ${out}`);
  assert.ok(archive, `build.sh printed no archive: ${out}`);
  note(`image ${ref} ready in ${Date.now() - buildStarted} ms (${archive})`);

  const cp = await startControlPlane({ seed: false, ...opts.controlPlane, node: { advertiseAddress: NODE_IP } });
  let node: Node | undefined;
  try {
    node = await startNode(cp);
    await waitForNodeReady(cp, node);
    const importStarted = Date.now();
    await node.ctr(['images', 'import', archive]);
    note(`image imported into the node's containerd in ${Date.now() - importStarted} ms`);

    // The platform around the chart (tool accounts, jobs-api's identity, the namespaces); nothing of jobs-storage's.
    await cp.apply('admin', baseRbacObjects());
    await cp.addTool(TOOL);
    // The ServiceAccount admission plugin refuses pods until the controller-manager has made the default one.
    await waitFor(
      `the default ServiceAccount in ${NS}`,
      async () => (await cp.kubectl('admin', ['get', 'serviceaccount', 'default', '-n', NS])).code === 0,
      60_000,
      300,
    );

    const set: string[] = [
      `image.name=${IMAGE_NAME}`,
      `image.tag=${IMAGE_TAG}`,
      `webhook.replicas=${opts.webhookReplicas ?? 1}`,
      `sync.replicas=${opts.syncReplicas ?? 2}`,
      // The phase in which the sync backfills a CR for a jobs-framework workload that has none (design.md §5).
      'phase.initial=storage-truth',
      'config.phase.initial=storage-truth',
      'config.sync.backfillGraceSeconds=2',
    ];
    let servingCaFile: string | undefined;
    if ((opts.certificate ?? 'test') === 'test') {
      // The webhook's serving certificate, as the chart's Certificate would have cert-manager issue it: the Service's
      // DNS names, valid 90 days (certManager.duration), so JobsStorageWebhookCertificateExpiresSoon stays quiet.
      const caPair = await createCA(dir, 'webhook-ca', 'jobs-storage node e2e webhook CA', 365);
      const leaf = await createLeaf(dir, 'webhook', caPair, {
        commonName: `jobs-storage-webhook.${NS}.svc`,
        usage: 'server',
        dnsNames: [`jobs-storage-webhook.${NS}.svc`, `jobs-storage-webhook.${NS}.svc.cluster.local`],
        days: 90,
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
      servingCaFile = caPair.certFile;
      set.push('certManager.enabled=false', `webhook.caBundle=${readFileSync(servingCaFile).toString('base64')}`);
    }
    await opts.beforeInstall?.(cp, node);

    const chart = new ChartOnNode(cp, node, dir, servingCaFile);
    const installStarted = Date.now();
    chart.helm([
      'install',
      RELEASE,
      CHART_DIR,
      '--namespace',
      NS,
      '--values',
      join(VALUES_DIR, 'local.yaml'),
      ...[...set, ...(opts.set ?? [])].flatMap((s) => ['--set', s]),
    ]);
    await chart.waitReady(opts.webhookReplicas ?? 1, opts.syncReplicas ?? 2);
    chart.installToReadyMs = Date.now() - installStarted;
    note(`helm install -> webhook and sync pods Ready: ${chart.installToReadyMs} ms`);
    return chart;
  } catch (err) {
    await node?.stop();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

export { CHART_DIR };
