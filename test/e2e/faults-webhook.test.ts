/**
 * Faults of the admission webhook on a real kube-apiserver: the webhook runs as its own process
 * (`jobs-storage webhook`, caller authentication on), so it can be SIGKILLed; the ValidatingAdmissionPolicy and the
 * ValidatingWebhookConfiguration are the generated ones. Each test prints its figures as a test diagnostic.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import { configSchema } from '../../src/config/schema.js';
import { storagePolicy, validatingWebhookConfiguration } from '../../src/webhook/manifests.js';
import { installJobsCrds, startControlPlane } from '../../scripts/control-plane/cluster.js';
import type { ControlPlane } from '../../scripts/control-plane/cluster.js';
import { loadReview } from '../fixtures/admission/load.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'jobs-storage.mjs');
const MAKE_CERTS = join(ROOT, 'certs', 'make-certs.sh');
const TOOL = 'faulty';
const NS = `tool-${TOOL}`;
const WARNING = 'not through the Toolforge jobs API';
const MAX_TOOL_SERIES = 50;
const config = configSchema.parse({});

let cp: ControlPlane | undefined;
let dir = '';
let port = 0;
let webhook: ChildProcess | undefined;
const agents = new Map<string, https.Agent>();

function plane(): ControlPlane {
  assert.ok(cp, 'control plane not started');
  return cp;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port: p } = probe.address() as AddressInfo;
      probe.close(() => resolve(p));
    });
  });
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

interface Reply {
  status: number;
  warning: string | undefined;
  body: string;
}

/** A keep-alive agent with an identity's credentials, as a client library keeps its connections. */
async function agentFor(identity: string): Promise<https.Agent> {
  let agent = agents.get(identity);
  if (agent === undefined) {
    const opts: https.RequestOptions = {};
    await plane().kubeConfig(identity).applyToHTTPSOptions(opts);
    agent = new https.Agent({ keepAlive: true, ca: opts.ca, cert: opts.cert, key: opts.key, maxSockets: 16 });
    agents.set(identity, agent);
  }
  return agent;
}

function send(url: URL, options: https.RequestOptions, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { ...options, headers: { 'content-type': 'application/json', ...options.headers } });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          warning: res.headers['warning'] as string | undefined,
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
    req.on('error', reject);
    req.setTimeout(15_000, () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

async function api(identity: string, method: string, path: string, body?: unknown): Promise<Reply> {
  return send(
    new URL(path, plane().server),
    { method, agent: await agentFor(identity) },
    body === undefined ? undefined : JSON.stringify(body),
  );
}

function cronJob(name: string): Record<string, unknown> {
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name, namespace: NS },
    spec: {
      schedule: '13 13 * * *',
      jobTemplate: {
        spec: {
          template: {
            spec: {
              restartPolicy: 'Never',
              containers: [
                { name: 'job', image: 'docker-registry.tools.wmflabs.org/toolforge-python311-sssd-base:latest' },
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
    },
  };
}

const CRONJOBS = `/apis/batch/v1/namespaces/${NS}/cronjobs`;
const SCHEDULED_JOBS = `/apis/jobs-api.toolforge.org/v1/namespaces/${NS}/scheduled-jobs`;

/** Starts `jobs-storage webhook` as a child process; resolves once it answers /readyz. */
async function startWebhook(): Promise<{ child: ChildProcess; readyMs: number }> {
  const started = Date.now();
  const log = openSync(join(dir, 'webhook.log'), 'a');
  const child = spawn(process.execPath, [BIN, 'webhook', '--config', join(dir, 'webhook.json')], {
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  webhook = child;
  await eventually('webhook ready', async () => ((await webhookGet('/readyz')).status === 200 ? true : undefined));
  return { child, readyMs: Date.now() - started };
}

function webhookGet(path: string): Promise<Reply> {
  return send(new URL(`https://127.0.0.1:${port}${path}`), {
    method: 'GET',
    ca: readFileSync(join(dir, 'ca.crt')),
    agent: false,
  });
}

function killWebhook(signal: NodeJS.Signals): Promise<void> {
  const child = webhook;
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'webhook-faults-'));
  execFileSync(MAKE_CERTS, [dir, '127.0.0.1'], { stdio: 'ignore' });
  cp = await startControlPlane({ controllerManager: false });
  await Promise.all([cp.addTool(TOOL), installJobsCrds(cp)]);
  await cp.kubectlOk('admin', [
    '-n',
    config.phase.namespace,
    'create',
    'configmap',
    config.phase.name,
    `--from-literal=${config.phase.key}=runtime-truth`,
  ]);
  port = await freePort();
  writeFileSync(
    join(dir, 'webhook.json'),
    JSON.stringify({
      logLevel: 'warn',
      kubeconfig: cp.kubeconfigPath('admin'),
      webhook: {
        host: '127.0.0.1',
        port,
        certFile: join(dir, 'tls.crt'),
        keyFile: join(dir, 'tls.key'),
        clientCaFile: cp.webhookClientCaFile,
        certPollSeconds: 1,
        shutdownDelaySeconds: 0,
        maxToolSeries: MAX_TOOL_SERIES,
      },
    }),
  );
  await startWebhook();
  await cp.apply('admin', [
    validatingWebhookConfiguration({
      identities: config.identities,
      target: { url: `https://127.0.0.1:${port}` },
      caBundle: readFileSync(join(dir, 'ca.crt')).toString('base64'),
    }),
    ...storagePolicy(config.identities),
  ]);
  await eventually('webhook and policy in force', async () => {
    const dry = await api(TOOL, 'POST', `${CRONJOBS}?dryRun=All`, cronJob('probe'));
    const cr = await api(TOOL, 'POST', `${SCHEDULED_JOBS}?dryRun=All`, scheduledJob('probe'));
    return dry.warning?.includes(WARNING) && cr.status === 403 ? true : undefined;
  });
});

after(async () => {
  for (const agent of agents.values()) agent.destroy();
  await killWebhook('SIGTERM');
  await cp?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Sample {
  startedAt: number;
  endedAt: number;
  reply: Reply | Error;
}

/** Runs `write` in `workers` loops until `until()` says stop; every call's start, end and answer. */
async function load(workers: number, until: () => boolean, write: (i: number) => Promise<Reply>): Promise<Sample[]> {
  const samples: Sample[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (!until()) {
        const i = next++;
        const startedAt = Date.now();
        const reply = await write(i).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
        samples.push({ startedAt, endedAt: Date.now(), reply });
      }
    }),
  );
  return samples;
}

const ok = (s: Sample, status: number) => !(s.reply instanceof Error) && s.reply.status === status;
const warned = (s: Sample) => !(s.reply instanceof Error) && (s.reply.warning ?? '').includes(WARNING);

function report(t: TestContext, figures: Record<string, unknown>): void {
  t.diagnostic(JSON.stringify(figures));
}

test('webhook SIGKILLed during writes: tool CR writes stay denied (policy), workload writes keep working, break-glass works, serving again soon after a restart', async (t) => {
  let stop = false;
  let killedAt = 0;
  let restartedAt = 0;
  const runId = randomUUID().slice(0, 8);
  const workloads = load(
    3,
    () => stop,
    (i) => api(TOOL, 'POST', CRONJOBS, cronJob(`kill-${runId}-${i}`)),
  );
  const crs = load(
    1,
    () => stop,
    (i) => api(TOOL, 'POST', SCHEDULED_JOBS, scheduledJob(`kill-${runId}-${i}`)),
  );
  await sleep(1_500);
  killedAt = Date.now();
  await killWebhook('SIGKILL');
  await sleep(500);
  const breakGlass = await api('admin', 'POST', `${SCHEDULED_JOBS}`, scheduledJob(`glass-${runId}`));
  await sleep(1_500);
  restartedAt = Date.now();
  const { readyMs } = await startWebhook();
  await sleep(1_500);
  stop = true;
  const [w, c] = await Promise.all([workloads, crs]);

  const failedWorkloads = w.filter((s) => !ok(s, 201));
  const wronglyAllowedCrs = c.filter((s) => !ok(s, 403));
  const firstAfterKill = w
    .filter((s) => s.startedAt >= killedAt && ok(s, 201))
    .sort((a, b) => a.endedAt - b.endedAt)[0];
  const servedAgain = w.filter((s) => s.startedAt >= restartedAt && warned(s)).sort((a, b) => a.endedAt - b.endedAt)[0];
  const whileDown = w.filter((s) => s.startedAt > killedAt + 100 && s.endedAt < restartedAt);
  report(t, {
    workloadWrites: w.length,
    workloadWritesFailed: failedWorkloads.length,
    crWrites: c.length,
    crWritesNotDenied: wronglyAllowedCrs.length,
    workloadWritesWhileDown: whileDown.length,
    warnedWhileDown: whileDown.filter(warned).length,
    firstWorkloadWriteAfterKillMs: firstAfterKill ? firstAfterKill.endedAt - killedAt : null,
    restartToReadyMs: readyMs,
    restartToFirstWarnedWriteMs: servedAgain ? servedAgain.endedAt - restartedAt : null,
    breakGlassStatus: breakGlass.status,
  });
  assert.equal(failedWorkloads.length, 0, JSON.stringify(failedWorkloads.slice(0, 3)));
  assert.equal(wronglyAllowedCrs.length, 0, JSON.stringify(wronglyAllowedCrs.slice(0, 3)));
  assert.ok(c.length > 10, 'CR writes ran throughout');
  assert.ok(whileDown.length > 0, 'workload writes ran while the webhook was down');
  assert.equal(whileDown.filter(warned).length, 0, 'nothing answered while it was down');
  assert.ok(firstAfterKill && firstAfterKill.endedAt - killedAt < 1_000, 'workload writes recover within a second');
  assert.ok(servedAgain, 'the restarted webhook answers again');
  assert.equal(breakGlass.status, 201, breakGlass.body);
});

/** A new serving pair from the same CA, in its own directory (the caBundle stays valid). */
function newPair(): { cert: Buffer; key: Buffer } {
  const other = mkdtempSync(join(dir, 'pair-'));
  copyFileSync(join(dir, 'ca.crt'), join(other, 'ca.crt'));
  copyFileSync(join(dir, 'ca.key'), join(other, 'ca.key'));
  execFileSync(MAKE_CERTS, [other, '127.0.0.1'], { stdio: 'ignore' });
  const pair = { cert: readFileSync(join(other, 'tls.crt')), key: readFileSync(join(other, 'tls.key')) };
  rmSync(other, { recursive: true, force: true });
  return pair;
}

function reloads(metricsText: string): number {
  const line = metricsText
    .split('\n')
    .find((l) => l.startsWith('toolforge_jobs_tls_certificate_reloads_total{result="success"}'));
  return Number(line?.split(' ')[1] ?? 0);
}

test('five serving-certificate swaps under load (atomic renames and plain overwrites): no request fails or goes unanswered', async (t) => {
  const reloadsBefore = reloads((await webhookGet('/metrics')).body);
  let stop = false;
  const samples = load(
    4,
    () => stop,
    (i) => api(TOOL, 'POST', `${CRONJOBS}?dryRun=All`, cronJob(`swap-${i}`)),
  );
  for (let swap = 0; swap < 5; swap += 1) {
    await sleep(700);
    if (swap % 2 === 0) {
      execFileSync(MAKE_CERTS, [dir, '127.0.0.1'], { stdio: 'ignore' });
    } else {
      const pair = newPair();
      writeFileSync(join(dir, 'tls.crt'), pair.cert);
      writeFileSync(join(dir, 'tls.key'), pair.key);
    }
  }
  await sleep(1_500);
  stop = true;
  const all = await samples;
  const failed = all.filter((s) => !ok(s, 201) || !warned(s));
  const reloadsAfter = reloads((await webhookGet('/metrics')).body);
  report(t, {
    requests: all.length,
    failedOrUnanswered: failed.length,
    swaps: 5,
    reloads: reloadsAfter - reloadsBefore,
  });
  assert.equal(failed.length, 0, JSON.stringify(failed.slice(0, 3)));
  assert.ok(all.length > 50);
  assert.ok(reloadsAfter - reloadsBefore >= 5, `${reloadsAfter - reloadsBefore} reloads`);
});

/** A kubectl CronJob create with an invented kind in an invented tool namespace. */
function inventedReview(i: number): string {
  const body = loadReview('cronjob-create-kubectl');
  body.request.uid = randomUUID();
  body.request.namespace = `tool-invented${i}`;
  body.request.name = `job-${i}`;
  body.request['kind'] = { group: 'batch', version: 'v1', kind: `Invented${i}${'x'.repeat(i % 200)}` };
  return JSON.stringify(body);
}

test('2,000 invented reviews: refused with 401 without the apiserver certificate; with it, /metrics stays bounded', async (t) => {
  const invented = 2_000;
  const before = (await webhookGet('/metrics')).body.length;
  const anonymous = new https.Agent({ keepAlive: true, ca: readFileSync(join(dir, 'ca.crt')), maxSockets: 8 });
  const asApiserver = new https.Agent({
    keepAlive: true,
    ca: readFileSync(join(dir, 'ca.crt')),
    cert: readFileSync(plane().webhookClientCert.certFile),
    key: readFileSync(plane().webhookClientCert.keyFile),
    maxSockets: 8,
  });
  const url = new URL(`https://127.0.0.1:${port}/validate/record-direct-writes`);
  try {
    let i = 0;
    const refused = await load(
      8,
      () => i >= invented,
      () => send(url, { method: 'POST', agent: anonymous }, inventedReview(i++)),
    );
    const afterRefused = (await webhookGet('/metrics')).body;
    let j = 0;
    const answered = await load(
      8,
      () => j >= invented,
      () => send(url, { method: 'POST', agent: asApiserver }, inventedReview(j++)),
    );
    const afterAnswered = (await webhookGet('/metrics')).body;
    const directSeries = afterAnswered.split('\n').filter((l) => l.startsWith('toolforge_jobs_direct_writes_total{'));
    report(t, {
      refused: refused.filter((s) => ok(s, 401)).length,
      answered: answered.filter((s) => ok(s, 200)).length,
      metricsBytesBefore: before,
      metricsBytesAfterRefused: afterRefused.length,
      metricsBytesAfterAnswered: afterAnswered.length,
      directWriteSeries: directSeries.length,
    });
    assert.equal(refused.filter((s) => ok(s, 401)).length, invented);
    assert.match(
      afterRefused,
      new RegExp(`toolforge_jobs_admission_unauthenticated_total\\{reason="no_certificate"\\} ${invented}`),
    );
    assert.equal(answered.filter((s) => ok(s, 200)).length, invented);
    assert.ok(directSeries.length <= MAX_TOOL_SERIES + 2, `${directSeries.length} direct-write series`);
    assert.ok(afterAnswered.length - before < 20_000, `/metrics grew by ${afterAnswered.length - before} bytes`);
  } finally {
    anonymous.destroy();
    asApiserver.destroy();
  }
});
