/**
 * The admission webhook on a real kube-apiserver: the webhook runs in this process on 127.0.0.1 with a serving
 * certificate from certs/make-certs.sh, registered with `url:` + caBundle; tools act through kubectl with their
 * Toolforge-style client certificates.
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { KubeApi } from '../../src/k8s/api.js';
import type { Phase } from '../../src/phase/behaviour.js';
import { PhaseSource } from '../../src/phase/source.js';
import { configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/log/logger.js';
import { Registry } from 'prom-client';
import { createWebhookMetrics, reportPhase } from '../../src/metrics/registry.js';
import type { WebhookMetrics } from '../../src/metrics/registry.js';
import { storagePolicy, validatingWebhookConfiguration } from '../../src/webhook/manifests.js';
import { runWebhook } from '../../src/webhook/server.js';
import type { WebhookHandle } from '../../src/webhook/server.js';
import { installJobsCrds, startControlPlane } from '../../scripts/control-plane/cluster.js';
import type { ControlPlane, KubectlResult } from '../../scripts/control-plane/cluster.js';

const ROOT = join(import.meta.dirname, '..', '..');
const TOOL = 'alpha';
const NS = `tool-${TOOL}`;
const JOBS_API_UA = 'jobs-api toolforge_weld/1.6.0 python-requests/2.31.0';
const MANAGED = 'is managed by the Toolforge jobs API';

let cp: ControlPlane | undefined;
let webhook: WebhookHandle | undefined;
let metrics: WebhookMetrics;
let phaseSource: PhaseSource | undefined;
let dir = '';
const config = configSchema.parse({});

function plane(): ControlPlane {
  assert.ok(cp, 'control plane not started');
  return cp;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const JOBS_FRAMEWORK_LABELS = {
  toolforge: 'tool',
  'app.kubernetes.io/managed-by': 'toolforge-jobs-framework',
  'app.kubernetes.io/created-by': TOOL,
  'app.kubernetes.io/version': '2',
  'app.kubernetes.io/component': 'cronjobs',
};

function cronJob(name: string, labelled = true): Record<string, unknown> {
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: {
      name,
      namespace: NS,
      ...(labelled ? { labels: { ...JOBS_FRAMEWORK_LABELS, 'app.kubernetes.io/name': name } } : {}),
    },
    spec: {
      schedule: '13 13 * * *',
      jobTemplate: {
        spec: {
          template: {
            spec: {
              restartPolicy: 'Never',
              containers: [
                {
                  name: 'job',
                  image: 'docker-registry.tools.wmflabs.org/toolforge-python311-sssd-base:latest',
                  command: ['./run.sh'],
                },
              ],
            },
          },
        },
      },
    },
  };
}

function scheduledJob(name: string): Record<string, unknown> {
  return {
    apiVersion: 'jobs-api.toolforge.org/v1',
    kind: 'ScheduledJob',
    metadata: { name, namespace: NS },
    spec: {
      job_name: name,
      tool_name: TOOL,
      job_type: 'scheduled',
      cmd: './run.sh',
      image: { short_name: 'python3.11' },
      schedule: { text: '@daily' },
    },
  };
}

function asTool(args: string[], stdin?: string): Promise<KubectlResult> {
  return plane().kubectl(TOOL, args, stdin === undefined ? undefined : { stdin });
}

/** A request with the tool's certificate and jobs-api's User-Agent, as jobs-api's runtime client sends it. */
async function asJobsApiRuntime(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; warning: string | undefined }> {
  const opts: https.RequestOptions = {};
  await plane().kubeConfig(TOOL).applyToHTTPSOptions(opts);
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL(path, plane().server),
      {
        ...opts,
        method,
        headers: {
          ...opts.headers,
          'user-agent': JOBS_API_UA,
          'content-type': 'application/json',
          accept: 'application/json',
        },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, warning: res.headers['warning'] as string | undefined }),
        );
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

async function directWrites(operation = 'CREATE', kind = 'CronJob'): Promise<number> {
  const { values } = await metrics.directWrites.get();
  return (
    values.find(
      (v) => v.labels['tool_name'] === TOOL && v.labels['kind'] === kind && v.labels['operation'] === operation,
    )?.value ?? 0
  );
}

async function counterValue(
  name: 'storageWritesDenied' | 'breakGlass',
  labels: Record<string, string>,
): Promise<number> {
  const { values } = await metrics[name].get();
  return (
    values.find((v) => Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l))
      ?.value ?? 0
  );
}

/** Lets any repeated admission call for the last request arrive before counting. */
const settle = () => new Promise((r) => setTimeout(r, 500));

async function setPhase(phase: Phase): Promise<void> {
  await setPhaseConfigMap(phase);
  await eventually(`phase ${phase}`, async () => (webhook?.phase.current() === phase ? true : undefined));
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'webhook-e2e-'));
  execFileSync(join(ROOT, 'certs', 'make-certs.sh'), [dir, '127.0.0.1'], { stdio: 'ignore' });
  cp = await startControlPlane();
  await Promise.all([cp.addTool(TOOL), installJobsCrds(cp)]);
  await setPhaseConfigMap('runtime-truth');
  metrics = createWebhookMetrics(new Registry());
  const port = await freePort();
  const webhookConfig = configSchema.parse({
    webhook: {
      host: '127.0.0.1',
      port,
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      shutdownDelaySeconds: 0,
      shutdownTimeoutSeconds: 5,
    },
  });
  const logger = createLogger({ level: 'debug', destination: createWriteStream(join(dir, 'webhook.log')) });
  phaseSource = new PhaseSource({
    config: webhookConfig,
    api: new KubeApi(cp.kubeConfig('jobs-storage-webhook')), // the chart's ServiceAccount and RBAC
    logger,
    report: (report) => reportPhase(metrics, report),
  });
  phaseSource.start();
  webhook = await runWebhook({
    config: webhookConfig,
    logger,
    metrics,
    phase: phaseSource,
    signals: [],
  });
  await eventually('webhook ready', async () => (webhook?.readiness().ready ? true : undefined));
  await cp.apply('admin', [
    validatingWebhookConfiguration({
      identities: config.identities,
      target: { url: `https://127.0.0.1:${port}` },
      caBundle: readFileSync(join(dir, 'ca.crt')).toString('base64'),
    }),
  ]);
  // The apiserver picks a new configuration up asynchronously; a denied CR create shows it is in force.
  await eventually('webhook registered', async () => {
    const res = await asTool(['create', '-f', '-'], JSON.stringify(scheduledJob('probe')));
    if (res.code === 0) await plane().kubectlOk('jobs-api', ['-n', NS, 'delete', 'scheduled-jobs', 'probe']);
    return res.stderr.includes(MANAGED) ? true : undefined;
  });
});

async function setPhaseConfigMap(phase: Phase): Promise<void> {
  const json = await plane().kubectlOk('admin', [
    '-n',
    config.phase.namespace,
    'create',
    'configmap',
    config.phase.name,
    `--from-literal=${config.phase.key}=${phase}`,
    '--dry-run=client',
    '-o',
    'json',
  ]);
  await plane().kubectlOk('admin', ['apply', '-f', '-'], { stdin: json });
}

after(async () => {
  await webhook?.close();
  await phaseSource?.stop();
  await cp?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('protect-storage', () => {
  test('the jobs-api ServiceAccount creates, changes and deletes job CRs', async () => {
    const api = (args: string[], stdin?: string) =>
      plane().kubectlOk('jobs-api', ['-n', NS, ...args], stdin === undefined ? undefined : { stdin });
    await api(['create', '-f', '-'], JSON.stringify(scheduledJob('daily')));
    await api(['patch', 'scheduled-jobs', 'daily', '--type=merge', '-p', '{"spec":{"cmd":"./other.sh"}}']);
    await api(['create', '-f', '-'], JSON.stringify(scheduledJob('gone')));
    await api(['delete', 'scheduled-jobs', 'gone']);
  });

  test('a tool editing or deleting its job CR is denied by the webhook with the command to use', async () => {
    const edit = await asTool([
      'patch',
      'scheduled-jobs',
      'daily',
      '--type=merge',
      '-p',
      '{"spec":{"cmd":"./mine.sh"}}',
    ]);
    assert.notEqual(edit.code, 0);
    assert.match(edit.stderr, /admission webhook "protect-storage\.jobs-storage\.toolforge\.org" denied the request/);
    assert.match(
      edit.stderr,
      /ScheduledJob "daily" is managed by the Toolforge jobs API and cannot be changed directly; use 'toolforge jobs load <jobs.yaml>' instead/,
    );
    const del = await asTool(['delete', 'scheduled-jobs', 'daily']);
    assert.notEqual(del.code, 0);
    assert.match(del.stderr, /use 'toolforge jobs delete daily' instead/);
    assert.equal(await counterValue('storageWritesDenied', { operation: 'DELETE' }), 1);
  });

  test('a break-glass admin may edit a CR, with a warning, and is counted', async () => {
    const res = await plane().kubectl('admin', [
      '--as=someadmin',
      '--as-group=system:masters',
      '-n',
      NS,
      'annotate',
      'scheduled-jobs',
      'daily',
      'fixed=yes',
    ]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(
      res.stderr,
      /Warning: ScheduledJob "daily" is managed by the Toolforge jobs API; allowed as a break-glass write/,
    );
    assert.equal(await counterValue('breakGlass', { resource: 'scheduled-jobs', operation: 'UPDATE' }), 1);
  });

  test('with the ValidatingAdmissionPolicy installed, the apiserver itself denies with the same message', async () => {
    await plane().apply('admin', storagePolicy(config.identities));
    const res = await eventually('policy in force', async () => {
      const r = await asTool(['delete', 'scheduled-jobs', 'daily']);
      return r.stderr.includes('ValidatingAdmissionPolicy') ? r : undefined;
    });
    assert.notEqual(res.code, 0);
    assert.match(
      res.stderr,
      /ScheduledJob "daily" is managed by the Toolforge jobs API and cannot be deleted directly; use 'toolforge jobs delete daily' instead/,
    );
    const create = await asTool(
      ['create', '-f', '-'],
      JSON.stringify({ ...scheduledJob('mine'), kind: 'ContinuousJob', apiVersion: 'jobs-api.toolforge.org/v1' }),
    );
    assert.match(
      create.stderr,
      /ContinuousJob "mine" is managed by the Toolforge jobs API and cannot be created directly; use 'toolforge jobs run mine --continuous \.\.\.' instead/,
    );
    await plane().kubectlOk('jobs-api', ['-n', NS, 'annotate', 'scheduled-jobs', 'daily', 'still=writable']);
  });
});

describe('record-direct-writes', () => {
  test('a kubectl-created CronJob is allowed with a warning and counted exactly once', async () => {
    const before = await directWrites();
    const res = await asTool(['create', '-f', '-'], JSON.stringify(cronJob('by-kubectl')));
    assert.equal(res.code, 0, res.stderr);
    assert.match(
      res.stderr,
      /Warning: CronJob "by-kubectl" was created directly, not through the Toolforge jobs API; this is recorded\. Use 'toolforge jobs run by-kubectl --schedule \.\.\.' instead/,
    );
    await settle();
    assert.equal(await directWrites(), before + 1);
  });

  test("the same CronJob written with jobs-api's field manager or User-Agent is not counted", async () => {
    const before = await directWrites();
    const flagged = await asTool(
      ['create', '--field-manager=jobs-api toolforge_weld', '-f', '-'],
      JSON.stringify(cronJob('by-field-manager')),
    );
    assert.equal(flagged.code, 0, flagged.stderr);
    assert.doesNotMatch(flagged.stderr, /Warning/);
    const runtime = await asJobsApiRuntime('POST', `/apis/batch/v1/namespaces/${NS}/cronjobs`, cronJob('by-jobs-api'));
    assert.equal(runtime.status, 201);
    assert.equal(runtime.warning, undefined);
    const collection = await asJobsApiRuntime(
      'DELETE',
      `/apis/batch/v1/namespaces/${NS}/cronjobs?labelSelector=${encodeURIComponent('app.kubernetes.io/name=by-jobs-api')}`,
    );
    assert.equal(collection.status, 200);
    await settle();
    assert.equal(await directWrites(), before);
    assert.equal(await directWrites('DELETE'), 0);
  });

  test('a server-side dry run is not counted', async () => {
    const before = await directWrites();
    const res = await asTool(['create', '--dry-run=server', '-f', '-'], JSON.stringify(cronJob('dry')));
    assert.equal(res.code, 0, res.stderr);
    await settle();
    assert.equal(await directWrites(), before);
  });

  test('a Job a tool starts from its CronJob (controller ownerReference) is not counted', async () => {
    const res = await asTool(['create', 'job', 'by-kubectl-now', '--from=cronjob/by-kubectl']);
    assert.equal(res.code, 0, res.stderr);
    assert.doesNotMatch(res.stderr, /Warning/);
    await settle();
    assert.equal(await directWrites('CREATE', 'Job'), 0);
  });

  test('a kubectl delete is counted as a DELETE', async () => {
    const res = await asTool(['delete', 'cronjob', 'by-kubectl']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /Warning: CronJob "by-kubectl" was deleted directly/);
    await settle();
    assert.equal(await directWrites('DELETE'), 1);
  });

  test('in phase enforce a jobs-framework-labelled kubectl CronJob is denied and not counted; others still warn', async () => {
    await setPhase('enforce');
    try {
      const before = await directWrites();
      const denied = await asTool(['create', '-f', '-'], JSON.stringify(cronJob('imitation')));
      assert.notEqual(denied.code, 0);
      assert.match(
        denied.stderr,
        /CronJob "imitation" carries Toolforge jobs framework labels, so only the Toolforge jobs API may write it; use 'toolforge jobs run imitation --schedule \.\.\.' instead/,
      );
      const handmade = await asTool(['create', '-f', '-'], JSON.stringify(cronJob('handmade', false)));
      assert.equal(handmade.code, 0, handmade.stderr);
      assert.match(
        handmade.stderr,
        /Warning: CronJob "handmade" was created directly, not through the Toolforge jobs API: 'toolforge jobs list' will not show it/,
      );
      await settle();
      assert.equal(await directWrites(), before + 1);
    } finally {
      await setPhase('runtime-truth');
    }
  });
});

describe('with the webhook stopped', () => {
  test('CR edits are still denied (policy in the apiserver) and CronJobs can still be created (fails open)', async () => {
    await webhook?.close();
    const edit = await asTool([
      'patch',
      'scheduled-jobs',
      'daily',
      '--type=merge',
      '-p',
      '{"spec":{"cmd":"./mine.sh"}}',
    ]);
    assert.notEqual(edit.code, 0);
    assert.match(edit.stderr, new RegExp(MANAGED));
    await plane().kubectlOk('jobs-api', ['-n', NS, 'annotate', 'scheduled-jobs', 'daily', 'webhook=down']);
    const started = Date.now();
    const create = await asTool(['create', '-f', '-'], JSON.stringify(cronJob('while-down')));
    assert.equal(create.code, 0, create.stderr);
    assert.ok(Date.now() - started < 10_000);
  });
});
