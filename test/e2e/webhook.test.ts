/**
 * The admission webhook on a real kube-apiserver: the webhook runs in this process on 127.0.0.1 with a serving
 * certificate from certs/make-certs.sh, registered with `url:` + caBundle, and believes only kube-apiserver's webhook
 * client certificate (webhook.clientCaFile); tools act through kubectl with their Toolforge-style client
 * certificates. kube-controller-manager runs too, so CronJob runs and garbage collection come from the real
 * controllers' identities.
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { KubeApi } from '../../src/k8s/api.js';
import type { Phase } from '../../src/phase/behaviour.js';
import type { PhaseSource } from '../../src/phase/source.js';
import { webhookParts } from '../../src/cli/compose.js';
import { configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/log/logger.js';
import { Registry } from 'prom-client';
import { createWebhookMetrics } from '../../src/metrics/registry.js';
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

/** Metadata-level audit of the storage group, so break-glass annotations of the policy can be read back. */
const AUDIT_POLICY = JSON.stringify({
  apiVersion: 'audit.k8s.io/v1',
  kind: 'Policy',
  omitStages: ['RequestReceived'],
  rules: [{ level: 'Metadata', resources: [{ group: 'jobs-api.toolforge.org' }] }, { level: 'None' }],
});

/** Runs every minute; the real cronjob controller starts its Jobs while the other tests run. */
const EVERY_MINUTE = 'every-minute';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'webhook-e2e-'));
  execFileSync(join(ROOT, 'certs', 'make-certs.sh'), [dir, '127.0.0.1'], { stdio: 'ignore' });
  writeFileSync(join(dir, 'audit-policy.json'), AUDIT_POLICY);
  cp = await startControlPlane({
    extraApiserverArgs: [
      `--audit-policy-file=${join(dir, 'audit-policy.json')}`,
      `--audit-log-path=${join(dir, 'audit.log')}`,
    ],
  });
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
      clientCaFile: cp.webhookClientCaFile,
    },
  });
  const logger = createLogger({ level: 'debug', destination: createWriteStream(join(dir, 'webhook.log')) });
  phaseSource = webhookParts({
    config: webhookConfig,
    api: new KubeApi(cp.kubeConfig('jobs-storage-webhook')), // the chart's ServiceAccount and RBAC
    logger,
    metrics,
  }).phase;
  phaseSource.start();
  webhook = await runWebhook({
    config: webhookConfig,
    logger,
    metrics,
    phase: phaseSource,
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
  await asTool(
    ['create', '-f', '-'],
    JSON.stringify({
      ...cronJob(EVERY_MINUTE, false),
      spec: { ...(cronJob(EVERY_MINUTE).spec as object), schedule: '* * * * *' },
    }),
  );
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

function deployment(name: string, jobsFramework: boolean): Record<string, unknown> {
  const selector = jobsFramework
    ? {
        toolforge: 'tool',
        'app.kubernetes.io/managed-by': 'toolforge-jobs-framework',
        'app.kubernetes.io/created-by': TOOL,
        'app.kubernetes.io/name': name,
      }
    : { app: name };
  const labels = jobsFramework
    ? { ...selector, 'app.kubernetes.io/version': '2', 'app.kubernetes.io/component': 'deployments' }
    : selector;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: selector },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            { name: 'job', image: 'docker-registry.tools.wmflabs.org/toolforge-python311-sssd-base:latest' },
          ],
        },
      },
    },
  };
}

describe('kubectl scale (deployments/scale)', () => {
  test('scaling a jobs-framework Deployment is a direct UPDATE of it, warned and counted; in enforce it is denied', async () => {
    // Toolforge's tools-user role (2023) grants no deployments/scale; a tool that is granted it (or an admin's
    // helper) gets this answer. The grant is the test's own, so the cluster's RBAC stays Toolforge's.
    await plane().apply('admin', [
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: 'scale-deployments', namespace: NS },
        rules: [{ apiGroups: ['apps'], resources: ['deployments/scale'], verbs: ['get', 'patch', 'update'] }],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'scale-deployments', namespace: NS },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'scale-deployments' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: TOOL }],
      },
    ]);
    assert.equal((await asTool(['create', '-f', '-'], JSON.stringify(deployment('bot', true)))).code, 0);
    assert.equal((await asTool(['create', '-f', '-'], JSON.stringify(deployment('handmade-web', false)))).code, 0);
    await settle();
    const before = await directWrites('UPDATE', 'Deployment');
    const scaled = await asTool(['scale', 'deployment', 'bot', '--replicas=2']);
    assert.equal(scaled.code, 0, scaled.stderr);
    assert.match(scaled.stderr, /Warning: Deployment "bot" was changed directly, not through the Toolforge jobs API/);
    await settle();
    assert.equal(await directWrites('UPDATE', 'Deployment'), before + 1);

    await setPhase('enforce');
    try {
      const denied = await asTool(['scale', 'deployment', 'bot', '--replicas=3']);
      assert.notEqual(denied.code, 0);
      assert.match(
        denied.stderr,
        /Deployment "bot" carries Toolforge jobs framework labels, so only the Toolforge jobs API may write it/,
      );
      const replicas = await plane().kubectlOk('admin', [
        '-n',
        NS,
        'get',
        'deployment',
        'bot',
        '-o',
        'jsonpath={.spec.replicas}',
      ]);
      assert.equal(replicas, '2');
      const handmade = await asTool(['scale', 'deployment', 'handmade-web', '--replicas=2']);
      assert.equal(handmade.code, 0, handmade.stderr);
      assert.match(handmade.stderr, /Warning: Deployment "handmade-web" was changed directly/);
      await settle();
      assert.equal(await directWrites('UPDATE', 'Deployment'), before + 2);
    } finally {
      await setPhase('runtime-truth');
    }
  });
});

describe('callers', () => {
  async function postToWebhook(client?: https.RequestOptions): Promise<number> {
    const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'x' } });
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: webhook?.address.port,
          method: 'POST',
          path: '/validate/record-direct-writes',
          ca: readFileSync(join(dir, 'ca.crt')),
          cert: client?.cert,
          key: client?.key,
          agent: false,
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  test("only kube-apiserver's client certificate is believed: no certificate, or a tool's, gets 401 and is counted", async () => {
    assert.equal(await postToWebhook(), 401);
    const toolCert: https.RequestOptions = {};
    await plane().kubeConfig(TOOL).applyToHTTPSOptions(toolCert);
    assert.ok(toolCert.cert, "the tool's kubeconfig has a client certificate");
    assert.equal(await postToWebhook(toolCert), 401);
    const refused = (await metrics.admissionUnauthenticated.get()).values.reduce((sum, v) => sum + v.value, 0);
    assert.equal(refused, 2);
    const admitted = (await metrics.admissionRequests.get()).values.reduce((sum, v) => sum + v.value, 0);
    assert.ok(admitted > 0, 'kube-apiserver, with its certificate, was answered all along');
  });
});

describe('connections', () => {
  /** A CronJob create with the tool's certificate on its own connection to kube-apiserver, which calls the webhook. */
  async function createCronJob(name: string): Promise<number> {
    return (await asJobsApiRuntime('POST', `/apis/batch/v1/namespaces/${NS}/cronjobs`, cronJob(name))).status;
  }

  test('kube-apiserver negotiates h2 and multiplexes a burst of admission calls over one connection', async (t) => {
    const BURST = 60;
    const names = Array.from({ length: BURST }, (_, i) => `burst-${i}`);
    const decided = async () =>
      (await metrics.admissionRequests.get()).values
        .filter((v) => v.labels['webhook'] === 'record-direct-writes')
        .reduce((sum, v) => sum + v.value, 0);
    const before = webhook?.connections();
    const decidedBefore = await decided();
    try {
      const statuses = await Promise.all(names.map(createCronJob));
      assert.deepEqual(new Set(statuses), new Set([201]));
      const after = webhook?.connections();
      assert.ok(before && after);
      const calls = (await decided()) - decidedBefore;
      t.diagnostic(
        `${BURST} concurrent CronJob creates: ${calls} admission calls; new connections h2 ${after.h2 - before.h2}, ` +
          `HTTP/1.1 ${after.http1 - before.http1}; open h2 sessions + HTTP/1.1 connections now ${after.open}`,
      );
      console.log(
        `webhook connections during a burst of ${BURST} creates: h2 sessions opened ${after.h2 - before.h2} ` +
          `(total ${after.h2}), HTTP/1.1 connections opened ${after.http1 - before.http1}, admission calls ${calls}`,
      );
      assert.ok(calls >= BURST, 'every create was reviewed');
      assert.equal(after.http1 - before.http1, 0, 'kube-apiserver never fell back to HTTP/1.1');
      assert.ok(after.h2 >= 1, 'kube-apiserver speaks h2 to the webhook');
      assert.ok(after.h2 - before.h2 <= 1, 'the burst shares one h2 connection');
    } finally {
      await plane().kubectl('jobs-api', [
        '-n',
        NS,
        'delete',
        'cronjob',
        ...names,
        '--ignore-not-found',
        '--wait=false',
      ]);
    }
  });
});

describe('controllers', () => {
  test("Jobs the real cronjob controller starts, and the garbage collector's deletes, are not direct writes", async () => {
    const job = await eventually(
      'a Job started by the cronjob controller',
      async () => {
        const out = await plane().kubectlOk('admin', ['-n', NS, 'get', 'jobs', '--show-managed-fields', '-o', 'json']);
        const jobs = (
          JSON.parse(out) as {
            items: {
              metadata: { name: string; ownerReferences?: { name: string }[]; managedFields?: { manager: string }[] };
            }[];
          }
        ).items;
        return jobs.find((j) => j.metadata.ownerReferences?.some((r) => r.name === EVERY_MINUTE));
      },
      75_000,
    );
    assert.ok(job.metadata.managedFields?.some((f) => f.manager === 'kube-controller-manager'));
    await settle();
    assert.equal(await directWrites('CREATE', 'Job'), 0);
    // The admin deletes the CronJob (break-glass, not a tool's write); the garbage collector deletes its Jobs.
    await plane().kubectlOk('admin', ['-n', NS, 'delete', 'cronjob', EVERY_MINUTE, '--cascade=background']);
    await eventually('the garbage collector deleting the Job', async () => {
      const res = await plane().kubectl('admin', ['-n', NS, 'get', 'job', job.metadata.name]);
      return res.code !== 0 && res.stderr.includes('NotFound') ? true : undefined;
    });
    await settle();
    assert.equal(await directWrites('DELETE', 'Job'), 0);
    assert.equal(await directWrites('DELETE', 'CronJob'), 1, 'only the earlier kubectl delete');
  });
});

describe('controllers: TTL', () => {
  test("a finished Job's deletion by the real TTL controller is not a direct write", async () => {
    // No pods ever run here; a deadline of 1 s makes the real job controller fail the Job, which finishes it.
    const job = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'short-lived', namespace: NS },
      spec: {
        activeDeadlineSeconds: 1,
        ttlSecondsAfterFinished: 0,
        template: (cronJob('x').spec as { jobTemplate: { spec: { template: unknown } } }).jobTemplate.spec.template,
      },
    };
    const created = await asTool(['create', '-f', '-'], JSON.stringify(job));
    assert.equal(created.code, 0, created.stderr);
    await eventually(
      'the TTL controller deleting the finished Job',
      async () => {
        const res = await plane().kubectl('admin', ['-n', NS, 'get', 'job', 'short-lived']);
        return res.code !== 0 && res.stderr.includes('NotFound') ? true : undefined;
      },
      30_000,
    );
    await settle();
    assert.equal(await directWrites('CREATE', 'Job'), 1, "the tool's own create");
    assert.equal(await directWrites('DELETE', 'Job'), 0);
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

  test('break-glass CR writes work (protect-storage fails open) and are annotated in the audit log by the policy', async () => {
    const res = await plane().kubectl('admin', [
      '--as=someadmin',
      '--as-group=system:masters',
      '-n',
      NS,
      'annotate',
      'scheduled-jobs',
      'daily',
      'glass=broken',
    ]);
    assert.equal(res.code, 0, res.stderr);
    const denied = await asTool(['annotate', 'scheduled-jobs', 'daily', 'mine=yes']);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /ValidatingAdmissionPolicy/);
    // One event per break-glass write since the policy was installed: this one.
    const annotations = await eventually('the audit events', async () => {
      const found = readFileSync(join(dir, 'audit.log'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('jobs-storage-protect-storage/break-glass'))
        .map((l) => (JSON.parse(l) as { annotations: Record<string, string> }).annotations);
      return found.length > 0 ? found.map((a) => a['jobs-storage-protect-storage/break-glass']) : undefined;
    });
    assert.equal(annotations.length, 1);
    for (const a of annotations) {
      assert.equal(a, 'break-glass UPDATE of ScheduledJob tool-alpha/daily by someadmin (group system:masters)');
    }
  });
});
