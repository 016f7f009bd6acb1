/**
 * `npm run demo`: the whole product on a real local control plane, act by act.
 *
 *   0. kube-apiserver + etcd (built from their Go modules once, then cached), tools alpha and beta, the CRDs
 *   1. jobs as jobs-api wrote them over the years (several format eras), and what `jobs-storage convert` makes of them
 *   2. the chart (`helm template` with the local values, applied); `jobs-storage webhook` with its config file and
 *      ServiceAccount: a tool's edit of a job CR is denied; a kubectl-created CronJob gets a warning and is counted
 *   3. `jobs-storage sync`: existing and kubectl-created jobs are backfilled; per-tool gauges; the admin API
 *   3b. `jobs-storage preflight` before the flip (the older eras' functional changes, today's jobs the same), and
 *      `restore` of a deleted CronJob from its CR
 *   4. phases: storage-truth changes nothing visible; ignore-unmanaged counts but does not store
 *   5. `jobs-storage migrate`: a tool's kubectl-made CronJob and hand-written Deployment become a jobs.yaml and a
 *      message; loaded through the API path, with the old objects deleted, nothing of the tool is only in runtime
 *   6. enforce denies imitations of API jobs
 *   7. with `--node`: the same product as deployed, on a fresh control plane with a node (kubelet, containerd): the
 *      image built from the Dockerfile, the chart's pods (helm install), a tool's CR write denied and kubectl-created
 *      CronJob warned through the Service, a backfill by the leading sync pod, the leader pod deleted and replaced
 *
 * Pauses between acts when run in a terminal; `--ci` (or no TTY) runs straight through. Every expectation is
 * checked: the demo exits 1 if the product does not behave as shown. Everything is cleaned up on exit or Ctrl-C.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { KubeApi } from '../src/k8s/api.js';
import { toolUidFromObjects } from '../src/preflight/preflight.js';
import { renderJobWorkloads } from '../src/runtime/render.js';
import { DEFAULT_RUNTIME_SETTINGS } from '../src/runtime/settings.js';
import { installJobsCrds, JOBS_STORAGE_SA, REPO_ROOT, startControlPlane } from './control-plane/cluster.js';
import type { ControlPlane } from './control-plane/cluster.js';
import { freePort } from './control-plane/process.js';
import { crOf, scheduledJob, waitFor, workloadsOf } from './control-plane/jobs.js';
import { loadThroughApi } from './control-plane/load-jobs.js';
import type { ToolPlan } from '../src/migrate/index.js';
import { helmTemplate } from './tools/binaries.js';
import { SYNC_LABEL, TOOL, TOOL_NS, WEBHOOK_LABEL, startChartOnNode } from './control-plane/chart-on-node.js';
import type { ChartOnNode } from './control-plane/chart-on-node.js';

const interactive = process.stdin.isTTY && !process.argv.includes('--ci') && !process.env['CI'];
const BIN = join(REPO_ROOT, 'bin', 'jobs-storage.mjs');
const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'workloads');
const children: ChildProcess[] = [];
const onNode = process.argv.includes('--node');
let cp: ControlPlane | undefined;
let chart: ChartOnNode | undefined;
let work = '';
let failures = 0;

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const say = (s = '') => process.stdout.write(`${s}\n`);
const indent = (s: string) =>
  s
    .trimEnd()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');

function expect(ok: boolean, what: string): void {
  say(`  ${ok ? '✔' : '✘'} ${what}`);
  if (!ok) failures += 1;
}

async function act(title: string): Promise<void> {
  if (interactive) {
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    await rl.question(`\n(press Enter for: ${title}) `);
    rl.close();
  }
  say(`\n${bold(`══ ${title} ══`)}`);
}

async function kubectl(
  identity: string,
  args: string[],
  stdin?: string,
  quiet = false,
): Promise<{ code: number; out: string; err: string }> {
  say(`\n  $ kubectl ${args.join(' ')}   ${identity === 'admin' ? '(as an admin)' : `(as tool ${identity})`}`);
  const res = await cp!.kubectl(identity, args, stdin === undefined ? {} : { stdin });
  if (quiet) say(`    (${res.stdout.split('\n').length} lines)`);
  else if (res.stdout.trim()) say(indent(res.stdout));
  if (res.stderr.trim()) say(indent(res.stderr));
  return { code: res.code, out: res.stdout, err: res.stderr };
}

function cli(args: string[], input?: string): { code: number; out: string; err: string } {
  say(`\n  $ jobs-storage ${args.join(' ')}`);
  const res = spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8' });
  return { code: res.status ?? 1, out: res.stdout, err: res.stderr };
}

type Tree = Record<string, unknown>;

/** The config file the chart ships (its jobs-storage-config ConfigMap). */
function chartConfigOf(rendered: string): Tree {
  for (const doc of parseAllDocuments(rendered)) {
    const o = doc.toJS() as { kind?: string; metadata?: { name?: string }; data?: Record<string, string> } | null;
    if (o?.kind === 'ConfigMap' && o.metadata?.name === 'jobs-storage-config') {
      return parseYaml(o.data?.['config.yaml'] ?? '') as Tree;
    }
  }
  throw new Error('the rendered chart has no jobs-storage-config ConfigMap');
}

/** The chart's config file with what differs on this host (credentials, listeners, certificate paths) merged in. */
function hostConfig(name: string, chart: Tree, host: Tree): string {
  const merged: Tree = { ...chart };
  for (const [k, v] of Object.entries(host)) {
    const base = merged[k];
    merged[k] =
      typeof v === 'object' && v !== null && typeof base === 'object' && base !== null ? { ...base, ...v } : v;
  }
  const file = join(work, `${name}.yaml`);
  writeFileSync(file, JSON.stringify(merged));
  return file;
}

function daemon(name: string, args: string[]): ChildProcess {
  const log = join(work, `${name}.log`);
  writeFileSync(log, '');
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const append = (chunk: Buffer) => writeFileSync(log, chunk, { flag: 'a' });
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  children.push(child);
  say(`  started jobs-storage ${args[0]} (pid ${child.pid}, log ${log})`);
  return child;
}

function httpsGet(url: string, ca: Buffer, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/**
 * A GET over fetch's pooled keep-alive connections. A request that meets a pooled connection the server closed at that
 * moment fails before it is sent (a socket error, no answer); it is sent once more on a new connection. An answer,
 * whatever its status, is never retried, and a server that is gone fails both tries.
 */
async function httpGet(url: string, token?: string): Promise<{ status: number; body: string }> {
  const once = () =>
    fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} }).then(async (r) => ({
      status: r.status,
      body: await r.text(),
    }));
  try {
    return await once();
  } catch {
    return once();
  }
}

function metricLines(text: string, ...names: string[]): string {
  return text
    .split('\n')
    .filter((l) => names.some((n) => l.startsWith(n)))
    .join('\n');
}

/** A fixture as jobs-api wrote it, moved into a demo tool's namespace, without server-set metadata. */
function fixture(file: string, tool: string): Record<string, unknown>[] {
  const text = readFileSync(join(FIXTURES, file), 'utf8').replaceAll('mytool', tool);
  type Obj = {
    apiVersion: string;
    kind: string;
    metadata: Record<string, unknown> & { labels?: Record<string, string> };
    spec: Record<string, unknown>;
  };
  const docs = parseAllDocuments(text).map((d) => d.toJS() as Obj);
  return docs.map((obj) => {
    const labels = { ...obj.metadata.labels, 'app.kubernetes.io/created-by': tool };
    const {
      resourceVersion: _rv,
      uid: _uid,
      creationTimestamp: _ct,
      managedFields: _mf,
      generation: _g,
      ...metadata
    } = obj.metadata;
    const out: Record<string, unknown> = { ...obj, metadata: { ...metadata, namespace: `tool-${tool}`, labels } };
    if (obj.apiVersion === 'batch/v1beta1') out.apiVersion = 'batch/v1';
    if (obj.kind === 'Service') {
      const { clusterIP: _ip, clusterIPs: _ips, ...spec } = obj.spec;
      out['spec'] = spec;
    }
    delete out['status'];
    return out;
  });
}

const PLURAL: Record<string, string> = { CronJob: 'cronjobs', Deployment: 'deployments', Service: 'services' };
const GROUP: Record<string, string> = { CronJob: '/apis/batch/v1', Deployment: '/apis/apps/v1', Service: '/api/v1' };

async function main(): Promise<void> {
  work = mkdtempSync(join(tmpdir(), 'jobs-storage-demo-'));
  await act('Act 0 — a local control plane: kube-apiserver and etcd built from their Go modules');
  cp = await startControlPlane();
  await Promise.all([cp.addTool('alpha'), cp.addTool('beta')]);
  await installJobsCrds(cp);
  const admin = new KubeApi(cp.kubeConfig('admin'));
  say(`  kube-apiserver at ${cp.server}; tools alpha and beta (client certificates CN=<tool>, O=toolforge)`);

  await act('Act 1 — jobs as jobs-api wrote them over the years, and what the backfill would store');
  const seeds: Array<[string, string]> = [
    ['v2-scheduled-absolute-logs.yaml', 'alpha'],
    ['v1-scheduled-filelog.yaml', 'alpha'],
    ['v2-continuous-port-tcp.yaml', 'alpha'],
    ['v2-service-port-tcp.yaml', 'alpha'],
    ['v1-new-format-scheduled.yaml', 'beta'],
    ['v2-continuous-buildservice-launcher.yaml', 'beta'],
    ['foreign-cronjob.yaml', 'beta'],
  ];
  for (const [file, tool] of seeds) {
    const asTool = new KubeApi(cp.kubeConfig(tool));
    for (const obj of fixture(file, tool)) {
      const kind = String(obj['kind']);
      await asTool.request('POST', `${GROUP[kind]}/namespaces/tool-${tool}/${PLURAL[kind]}`, {
        body: obj,
        query: { fieldManager: 'jobs-api toolforge_weld' },
      });
    }
    say(`  created ${file.replace(/\.yaml$/, '')} in tool-${tool}`);
  }
  const listed = await kubectl('admin', ['get', 'cronjobs,deployments', '-A', '-o', 'yaml'], undefined, true);
  const conv = cli(['convert', '-f', '-', '-o', 'json'], listed.out);
  const entries = JSON.parse(conv.out) as Array<{
    source: { namespace: string; name: string; kind: string };
    outcome: string;
    reason?: string;
    cr?: { kind: string };
  }>;
  for (const e of entries)
    say(
      `    ${e.source.kind} ${e.source.namespace}/${e.source.name} → ${e.outcome}${e.cr ? ` (${e.cr.kind})` : ''}${e.reason ? `: ${e.reason}` : ''}`,
    );
  expect(conv.code === 0, 'convert: every object converted or classified (exit 0)');
  expect(
    entries.filter((e) => e.outcome === 'job').length === 5,
    'five jobs-framework jobs of four eras convert to CRs; the foreign CronJob is unmanaged',
  );

  await act('Act 2 — the admission webhook');
  const certs = join(work, 'certs');
  spawnSync('bash', [join(REPO_ROOT, 'certs', 'make-certs.sh'), certs, '127.0.0.1', 'localhost'], { stdio: 'ignore' });
  const ca = readFileSync(join(certs, 'ca.crt'));
  const [webhookPort, syncPort, adminPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const phaseNs = JOBS_STORAGE_SA.namespace;
  // The chart, rendered with the local values and applied: the control plane has no kubelet, so its Deployments never
  // run; the processes run here with its config file, and its webhook configuration points at them (webhook.url).
  // The demo walks the whole rollout, so it enters at runtime-truth (tools enters at ignore-unmanaged).
  const rendered = helmTemplate({
    environment: 'local',
    namespace: phaseNs,
    set: [
      'certManager.enabled=false',
      `webhook.caBundle=${ca.toString('base64')}`,
      `webhook.url=https://127.0.0.1:${webhookPort}`,
      'phase.initial=runtime-truth',
      'config.phase.initial=runtime-truth',
      'config.logLevel=info',
      'config.sync.backfillGraceSeconds=3',
      `config.admin.allowedSubjects={system:serviceaccount:${phaseNs}:demo-admin}`,
    ],
  });
  await cp.kubectlOk('admin', ['apply', '-f', '-'], { stdin: rendered });
  say('  applied `helm template deploy/chart -f deploy/values/local.yaml` (RBAC, config, phase, admission objects)');
  const chartConfig = chartConfigOf(rendered);
  const webhookConfig = hostConfig('webhook', chartConfig, {
    kubeconfig: cp.kubeconfigPath('jobs-storage-webhook'),
    webhook: {
      host: '127.0.0.1',
      port: webhookPort,
      certFile: join(certs, 'tls.crt'),
      keyFile: join(certs, 'tls.key'),
      shutdownDelaySeconds: 0,
      // Only kube-apiserver's webhook client certificate is believed, as in production.
      clientCaFile: cp.webhookClientCaFile,
    },
  });
  daemon('webhook', ['webhook', '--config', webhookConfig]);
  await waitFor(
    'webhook ready',
    async () =>
      (await httpsGet(`https://127.0.0.1:${webhookPort}/readyz`, ca).catch(() => ({ status: 0 }))).status === 200,
    30_000,
  );
  // The API server picks the configuration up shortly after: a server-side dry run is warned once it has.
  await waitFor(
    'the webhook configuration in effect',
    async () =>
      /Warning:/.test(
        (
          await cp!.kubectl('alpha', [
            'create',
            'cronjob',
            'probe',
            '--image=docker-registry.tools.wmflabs.org/toolforge-python311-sssd-base:latest',
            '--schedule=0 0 * * *',
            '-n',
            'tool-alpha',
            '--dry-run=server',
            '--',
            'true',
          ])
        ).stderr,
      ),
    20_000,
  );
  say("  the chart's ValidatingWebhookConfiguration and ValidatingAdmissionPolicy (webhook-config/) are in force");

  const crCreate = await kubectl(
    'alpha',
    ['create', '-f', '-'],
    JSON.stringify({
      apiVersion: 'jobs-api.toolforge.org/v1',
      kind: 'ScheduledJob',
      metadata: { name: 'sneaky', namespace: 'tool-alpha' },
      spec: { job_name: 'sneaky' },
    }),
  );
  expect(
    crCreate.code !== 0 && /toolforge jobs/.test(crCreate.err),
    "a tool's own write of a job CR is denied, and the message names the `toolforge jobs` command",
  );
  const handMade = await kubectl('alpha', [
    'create',
    'cronjob',
    'hand-made',
    '--image=docker-registry.tools.wmflabs.org/toolforge-python311-sssd-base:latest',
    '--schedule=*/30 * * * *',
    '-n',
    'tool-alpha',
    '--',
    './run.sh',
  ]);
  expect(handMade.code === 0 && /Warning:/.test(handMade.err), 'a kubectl-created CronJob is allowed, with a warning');
  const dry = await kubectl('alpha', [
    'create',
    'cronjob',
    'dry',
    '--image=busybox',
    '--schedule=0 * * * *',
    '-n',
    'tool-alpha',
    '--dry-run=server',
  ]);
  void dry;
  const hookMetrics = await httpsGet(`https://127.0.0.1:${webhookPort}/metrics`, ca);
  say(
    `\n  webhook /metrics:\n${indent(metricLines(hookMetrics.body, 'toolforge_jobs_direct_writes_total', 'toolforge_jobs_storage_writes_denied_total', 'toolforge_jobs_phase_info'))}`,
  );
  expect(
    /toolforge_jobs_direct_writes_total\{tool_name="alpha",kind="CronJob",operation="CREATE"\} 1\b/.test(
      hookMetrics.body,
    ),
    'the direct write is counted once for tool alpha (the dry run is not counted)',
  );

  await act('Act 3 — the sync sidecar: backfill, per-tool gauges, admin API');
  await cp.apply('admin', [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'demo-admin', namespace: phaseNs } },
  ]);
  const syncConfig = hostConfig('sync', chartConfig, {
    kubeconfig: cp.kubeconfigPath('jobs-storage-sync'),
    sync: { host: '127.0.0.1', port: syncPort, identity: 'demo-sync' },
    admin: { port: adminPort },
  });
  daemon('sync', ['sync', '--config', syncConfig]);
  const adminConfig = join(work, 'admin.yaml');
  writeFileSync(
    adminConfig,
    JSON.stringify({
      logLevel: 'warn',
      kubeconfig: cp.kubeconfigPath('admin'),
      phase: { namespace: phaseNs },
      migration: { deadline: '2026-12-15', announcementUrl: 'https://lists.wikimedia.org/announce/jobs-api' },
    }),
  );
  const syncUrl = `http://127.0.0.1:${syncPort}`;
  await waitFor(
    'sync ready',
    async () => (await httpGet(`${syncUrl}/readyz`).catch(() => ({ status: 0 }))).status === 200,
    60_000,
  );
  const before = await httpGet(`${syncUrl}/metrics`);
  say(
    `\n  sync /metrics right after start (jobs in k8s without a CR, per tool):\n${indent(metricLines(before.body, 'toolforge_jobs_only_in_runtime', 'toolforge_jobs_foreign_workloads'))}`,
  );
  await kubectlCreateJob('alpha', 'kubectl-made');
  await waitFor(
    'backfill',
    async () => (await cp!.kubectl('admin', ['get', 'toolforge-jobs', '-A'])).stdout.includes('kubectl-made'),
    30_000,
  ).catch(() => undefined);
  const crs = await kubectl('admin', ['get', 'toolforge-jobs', '-A']);
  expect(
    ['backup', 'daily-report', 'api', 'consumer', 'kubectl-made'].every((n) => crs.out.includes(n)),
    'existing jobs and the kubectl-created job now have CRs (runtime-truth backfills)',
  );
  const edit = await kubectl('alpha', [
    'patch',
    'scheduled-jobs.jobs-api.toolforge.org',
    'backup',
    '-n',
    'tool-alpha',
    '--type=merge',
    '-p',
    '{"spec":{"cmd":"./other.sh"}}',
  ]);
  const del = await kubectl('alpha', ['delete', 'scheduled-jobs.jobs-api.toolforge.org', 'backup', '-n', 'tool-alpha']);
  expect(
    edit.code !== 0 && del.code !== 0,
    'the tool can neither edit nor delete its backfilled CR: only jobs-api writes them',
  );
  const afterMetrics = await httpGet(`${syncUrl}/metrics`);
  say(
    `\n  sync /metrics:\n${indent(metricLines(afterMetrics.body, 'toolforge_jobs_only_in_runtime', 'toolforge_jobs_synced_to_storage_total', 'toolforge_jobs_foreign_workloads', 'toolforge_jobs_phase_info'))}`,
  );
  const token = (
    await cp.kubectlOk('admin', ['create', 'token', 'demo-admin', '-n', phaseNs, '--audience=jobs-storage-admin'])
  ).trim();
  // The admin API listens on loopback only, on its own port (in a pod: `kubectl port-forward pod/<sync pod> 9101`).
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const status = await httpGet(`${adminUrl}/admin/v1/status`, token);
  say(
    `\n  $ curl -H "Authorization: Bearer <kubectl create token demo-admin --audience jobs-storage-admin>" ${adminUrl}/admin/v1/status\n${indent(status.body)}`,
  );
  expect(status.status === 200, 'the admin API answers an allowed service-account token');
  const anon = await httpGet(`${adminUrl}/admin/v1/status`, 'not-a-token');
  expect(anon.status === 401, 'and refuses a bad token (401)');
  // The sync leader puts an Event on the hand-made CronJob of Act 2, where every maintainer of the tool looks.
  const byHand = ['get', 'events', '-n', 'tool-alpha', '--field-selector', 'involvedObject.name=hand-made'];
  await waitFor(
    'the Event on cronjob/hand-made',
    async () => ((await cp!.kubectl('alpha', byHand)).stdout.includes('WrittenOutsideJobsApi') ? true : undefined),
    30_000,
  ).catch(() => undefined);
  const seen = await kubectl('alpha', byHand);
  expect(
    seen.code === 0 && seen.out.includes('WrittenOutsideJobsApi'),
    "the tool's maintainers see an Event on the hand-made CronJob with kubectl get events",
  );
  const report = cli(['report', '--config', adminConfig, '--tool', 'alpha']);
  say(indent(report.out));
  const imported = cli(['import', '--dry-run', '--config', adminConfig]);
  say(indent(imported.out));

  await preflightAndRestore({ admin, syncUrl, adminUrl, token, adminConfig });

  await act('Act 4 — phases');
  // A switch is in force once both the webhook and the sync report it (each watches the phase ConfigMap).
  const phaseInEffect = (phase: string) =>
    waitFor(
      `phase ${phase} in effect`,
      async () => {
        const line = `toolforge_jobs_phase_info{phase="${phase}"} 1`;
        const [hook, sync] = await Promise.all([
          httpsGet(`https://127.0.0.1:${webhookPort}/metrics`, ca),
          httpGet(`${syncUrl}/metrics`),
        ]);
        return hook.body.includes(line) && sync.body.includes(line);
      },
      20_000,
    );
  const p1 = cli(['phase', 'set', 'storage-truth', '--reason', 'jobs-api reads storage now', '--config', adminConfig]);
  say(indent(p1.out + p1.err));
  await phaseInEffect('storage-truth');
  const p2 = cli(['phase', 'set', 'ignore-unmanaged', '--reason', 'deadline passed', '--config', adminConfig]);
  say(indent(p2.out + p2.err));
  await phaseInEffect('ignore-unmanaged');
  const ignored = await kubectlCreateJob('beta', 'after-deadline');
  expect(
    /not be listed|will not/i.test(ignored.err),
    'in ignore-unmanaged the warning says the job will not be listed',
  );
  await waitFor(
    'only_in_runtime{beta}',
    async () => /toolforge_jobs_only_in_runtime\{tool_name="beta"\} 1/.test((await httpGet(`${syncUrl}/metrics`)).body),
    20_000,
  ).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 4000));
  const c = await httpGet(`${syncUrl}/metrics`);
  say(
    `\n  sync /metrics:\n${indent(metricLines(c.body, 'toolforge_jobs_only_in_runtime', 'toolforge_jobs_phase_info'))}`,
  );
  expect(
    /toolforge_jobs_only_in_runtime\{tool_name="beta"\} 1/.test(c.body),
    'the kubectl-created job is counted for tool beta…',
  );
  const noCr = await admin
    .request('GET', '/apis/jobs-api.toolforge.org/v1/namespaces/tool-beta/scheduled-jobs/after-deadline')
    .then(
      () => false,
      () => true,
    );
  expect(noCr, '…and not stored');
  await migrateAct(adminConfig, syncUrl);

  await act('Act 6 — enforce');
  const p3 = cli(['phase', 'set', 'enforce', '--yes', '--config', adminConfig]);
  say(indent(p3.out + p3.err));
  await phaseInEffect('enforce');
  const enforced = await kubectlCreateJob('beta', 'imitation');
  expect(enforced.code !== 0, 'in enforce a kubectl-created CronJob with jobs-framework labels is denied');
  const plain = await kubectl('beta', [
    'create',
    'cronjob',
    'plain',
    '--image=busybox',
    '--schedule=0 * * * *',
    '-n',
    'tool-beta',
  ]);
  expect(
    plain.code === 0 && /Warning:/.test(plain.err),
    'a hand-written CronJob without those labels is still allowed, with a warning',
  );
  const last = await httpsGet(`https://127.0.0.1:${webhookPort}/metrics`, ca);
  say(
    `\n  webhook /metrics:\n${indent(metricLines(last.body, 'toolforge_jobs_direct_writes_total', 'toolforge_jobs_admission_requests_total', 'toolforge_jobs_phase_info'))}`,
  );
  cli(['phase', 'get', '--config', adminConfig])
    .out.split('\n')
    .forEach((l) => l && say(`    ${l}`));
}

const ONLY_IN_RUNTIME_BETA = /toolforge_jobs_only_in_runtime\{tool_name="beta"\} ([0-9]+)/;

/** Act 5: tool beta's jobs outside the API become a jobs.yaml and a message, and move to the API. */
async function migrateAct(adminConfig: string, syncUrl: string): Promise<void> {
  await act('Act 5 — migrate: a jobs.yaml and a message for the tool, loaded through the jobs API');
  const handWritten = await kubectl('beta', [
    'create',
    'deployment',
    'web',
    '--image=docker-registry.tools.wmflabs.org/toolforge-python311-sssd-base:latest',
    '-n',
    'tool-beta',
    '--',
    'python3',
    'web.py',
  ]);
  expect(handWritten.code === 0, 'a hand-written Deployment is allowed (it has no jobs-framework labels)');
  const yaml = cli(['migrate', '--tool', 'beta', '--config', adminConfig]);
  say(indent(yaml.out));
  say(indent(yaml.err));
  const message = cli(['migrate', '--tool', 'beta', '-o', 'markdown', '--config', adminConfig]);
  say(indent(message.out.split('\n').slice(0, 14).join('\n')));
  say('    …');
  const json = cli(['migrate', '--tool', 'beta', '-o', 'json', '--config', adminConfig]);
  const plan = JSON.parse(json.out) as ToolPlan;
  const names = plan.entries.map((e) => e.name);
  expect(
    yaml.code === 0 && ['after-deadline', 'web'].every((n) => names.includes(n) && yaml.out.includes(`name: ${n}`)),
    "the kubectl-made CronJob and the hand-written Deployment are entries of beta's jobs.yaml",
  );
  expect(
    /by 2026-12-15/.test(message.out) && /toolforge jobs load jobs.yaml/.test(message.out),
    'the message gives the deadline, the file and the commands to run',
  );
  const before = ONLY_IN_RUNTIME_BETA.exec((await httpGet(`${syncUrl}/metrics`)).body)?.[1];
  say(`\n  the maintainers delete the old objects and load the file (jobs-api writes the CRs and the workloads):`);
  for (const job of plan.jobs.filter((j) => j.inJobsYaml)) {
    const plural = job.kind === 'Deployment' ? 'deployments' : 'cronjobs';
    await kubectl('beta', ['delete', plural, job.name, '-n', 'tool-beta']);
  }
  const loaded = await loadThroughApi(cp!, 'beta', plan.entries);
  say(`  loaded through the jobs API: ${loaded.join(', ')}`);
  const after = await waitFor(
    'only_in_runtime{beta} to drop',
    async () => {
      const n = ONLY_IN_RUNTIME_BETA.exec((await httpGet(`${syncUrl}/metrics`)).body)?.[1] ?? '0';
      return Number(n) < Number(before ?? 0) ? n : undefined;
    },
    20_000,
  ).catch(() => undefined);
  const metrics = await httpGet(`${syncUrl}/metrics`);
  say(
    `\n  sync /metrics:\n${indent(metricLines(metrics.body, 'toolforge_jobs_only_in_runtime', 'toolforge_jobs_foreign_workloads'))}`,
  );
  expect(
    before !== undefined && Number(before) > 0 && after === '0',
    `tool beta's only-in-runtime count drops from ${before ?? '?'} to ${after ?? '?'}`,
  );
  const rest = cli(['migrate', '--tool', 'beta', '-o', 'json', '--config', adminConfig]);
  const left = (JSON.parse(rest.out) as ToolPlan).jobs.filter((j) => loaded.includes(j.name));
  expect(left.length === 0, 'migrate lists none of the loaded jobs any more');
}

/** A job rendered exactly as jobs-api would, but created by the tool with kubectl. */
function kubectlCreateJob(tool: string, name: string) {
  return kubectl(
    tool,
    ['create', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: workloadsOf(scheduledJob(tool, name)) }),
  );
}

/** The preflight table shortened for the demo: each functional change by its reason only, cosmetic ones left out. */
function shortPreflight(table: string): string {
  const lines = table.split('\n');
  let shown = new Set<string>();
  const kept = lines.flatMap((line, i) => {
    if (!line.startsWith('    ')) {
      shown = new Set();
      return [line];
    }
    const reason = `    ${(lines[i + 1] ?? '').trim()}`;
    if (!line.startsWith('    [functional]') || shown.has(reason)) return [];
    shown.add(reason);
    return [reason];
  });
  return `${kept.join('\n')}(each functional change by its reason; \`jobs-storage preflight\` prints every field)\n`;
}

/**
 * Before `phase set storage-truth`: what jobs-api would change, job by job, if it rendered the demo's jobs (several
 * eras) from their CRs; then a lost workload rebuilt from storage with `restore`.
 */
async function preflightAndRestore(o: {
  admin: KubeApi;
  syncUrl: string;
  adminUrl: string;
  token: string;
  adminConfig: string;
}) {
  await act('Act 3b — preflight before the flip to storage-truth, and restore after a lost workload');
  // made through jobs-api today: the CR first, then the CronJob it renders, with the tool's uid from passwd (the
  // one alpha's pods run as)
  const job = scheduledJob('alpha', 'api-made');
  const cronjobs = await o.admin.request<{ items: unknown[] }>('GET', '/apis/batch/v1/namespaces/tool-alpha/cronjobs');
  const toolUid = toolUidFromObjects(cronjobs.items.map((c) => ({ kind: 'CronJob', ...(c as object) })));
  await new KubeApi(cp!.kubeConfig('jobs-api')).request(
    'POST',
    '/apis/jobs-api.toolforge.org/v1/namespaces/tool-alpha/scheduled-jobs',
    { body: crOf(job) },
  );
  const rendered = renderJobWorkloads(job, DEFAULT_RUNTIME_SETTINGS, toolUid === undefined ? {} : { toolUid });
  if (!rendered.ok) throw new Error(`render failed: ${rendered.problem.message}`);
  for (const obj of rendered.value)
    await new KubeApi(cp!.kubeConfig('alpha')).request('POST', '/apis/batch/v1/namespaces/tool-alpha/cronjobs', {
      body: obj,
      query: { fieldManager: 'jobs-api toolforge_weld' },
    });
  say('  created api-made through jobs-api (CR, then CronJob)');
  const pf = cli(['preflight', '--config', o.adminConfig]);
  say(indent(`${shortPreflight(pf.out)}${pf.err}`));
  const verdict = (tool: string, name: string) =>
    new RegExp(`^tool ${tool}:[^]*?^ {2}\\w+ ${name}: (\\w+)`, 'm').exec(pf.out)?.[1];
  expect(
    pf.code === 1 && /^ {4}\[functional\] /m.test(pf.out),
    'preflight flags the functional changes of the older eras (exit 1, as kubectl diff)',
  );
  expect(verdict('alpha', 'api-made') === 'same', 'the job made through jobs-api today is the same');
  const viaApi = await httpGet(`${o.adminUrl}/admin/v1/preflight?tool=alpha`, o.token);
  const body = JSON.parse(viaApi.body) as { totals?: { jobs: number } };
  say(`
  $ curl -H "Authorization: Bearer …" ${o.adminUrl}/admin/v1/preflight?tool=alpha   (${viaApi.status}, totals ${JSON.stringify(body.totals)})`);
  expect(viaApi.status === 200 && (body.totals?.jobs ?? 0) > 0, 'the sync admin API serves the same report');

  await kubectl('admin', ['delete', 'cronjob', 'api-made', '-n', 'tool-alpha']);
  // a gauge without a series for the tool reads 0
  const onlyInStorage = (n: number) => async () =>
    Number(
      /toolforge_jobs_only_in_storage\{tool_name="alpha"\} (\d+)/.exec(
        (await httpGet(`${o.syncUrl}/metrics`)).body,
      )?.[1] ?? 0,
    ) === n;
  await waitFor('the sync to count the lost workload', onlyInStorage(1), 30_000).catch(() => undefined);
  const dry = cli(['restore', '--tool', 'alpha', '--config', o.adminConfig]);
  say(indent(dry.out.split('\n').slice(0, 12).join('\n') + '\n    …'));
  expect(
    dry.code === 0 && /^kind: CronJob$/m.test(dry.out),
    'restore (dry run) prints the CronJob jobs-api would create',
  );
  const applied = cli(['restore', '--tool', 'alpha', '--apply', '--config', o.adminConfig]);
  say(indent(applied.out + applied.err));
  const refused = cli(['restore', '--tool', 'alpha', '--job', 'backup', '--apply', '--config', o.adminConfig]);
  say(indent(refused.out + refused.err));
  const back = await waitFor('only_in_storage back to 0', onlyInStorage(0), 30_000).catch(() => false);
  expect(
    applied.code === 0 && /^created CronJob\/api-made in tool-alpha$/m.test(applied.out) && back === true,
    'restore --apply recreates it; the sync counts it in sync again',
  );
  expect(refused.code === 1 && /workload-exists/.test(refused.err), 'and refuses a job whose workload still runs');
}

/** Stops the host processes and the control plane of acts 0-6. */
async function stopHostPlane(): Promise<void> {
  const stopping = children.splice(0);
  for (const child of stopping) child.kill('SIGTERM');
  await Promise.all(
    stopping.map(
      (c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once('exit', r))),
    ),
  );
  if (chart === undefined) await cp?.stop();
  cp = undefined;
}

async function cleanup(): Promise<void> {
  await stopHostPlane();
  await chart?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
}

/** Act 7 (`--node`): the chart's pods on a node, told through kubectl as an admin and as a tool. */
async function nodeAct(): Promise<void> {
  await act("Act 7 — as deployed: the image from the Dockerfile, the chart's pods on a node (kubelet + containerd)");
  await stopHostPlane();
  say('  a fresh control plane with a node; the image built from the Dockerfile (cached after its first build)');
  chart = await startChartOnNode({ webhookReplicas: 1, syncReplicas: 2 });
  cp = chart.cp;
  say(`  helm install with the local values -> both Deployments' pods Ready in ${chart.installToReadyMs} ms`);
  await kubectl('admin', ['get', 'pods', '-n', 'jobs-storage', '-o', 'wide']);
  const [webhookPod] = await chart.podsOf(WEBHOOK_LABEL);
  const probe = await kubectl('admin', [
    'exec',
    '-n',
    'jobs-storage',
    webhookPod ?? '',
    '--',
    'node',
    '-e',
    "let r;try{require('node:fs').writeFileSync('/x','')}catch(e){r=e.code}console.log('uid',process.getuid(),'root',r)",
  ]);
  expect(probe.out.trim() === 'uid 65534 root EROFS', 'the webhook runs as uid 65534 on a read-only root filesystem');
  const cr = {
    apiVersion: 'jobs-api.toolforge.org/v1',
    kind: 'ScheduledJob',
    metadata: { name: 'sneaky', namespace: TOOL_NS },
    spec: {},
  };
  const denied = await kubectl(TOOL, ['create', '-f', '-'], JSON.stringify(cr));
  expect(denied.code !== 0 && /managed by the Toolforge jobs API/.test(denied.err), "a tool's CR write is denied");
  const warned = await waitFor(
    'a warned CronJob',
    async () => {
      const res = await cp!.kubectl(TOOL, [
        'create',
        'cronjob',
        `direct-${Date.now()}`,
        '-n',
        TOOL_NS,
        '--image=busybox',
        '--schedule=0 * * * *',
      ]);
      return /Warning:/.test(res.stderr) ? res.stderr : undefined;
    },
    30_000,
    1_000,
  ).catch(() => '');
  say(indent(warned));
  expect(warned !== '', "a tool's kubectl-created CronJob is warned by the webhook pod, reached through the Service");
  const holder = await chart.leaseHolder();
  await chart.createUnmanagedJob('nightly');
  const by = await chart.waitForBackfill('nightly').catch(() => '');
  expect(by === holder, `a jobs-framework CronJob without a CR is backfilled by the Lease holder ${holder}`);
  await kubectl('admin', ['delete', 'pod', holder, '-n', 'jobs-storage', '--wait=false']);
  const next = await waitFor(
    'a new Lease holder',
    async () => {
      const h = await chart!.leaseHolder();
      return h !== '' && h !== holder ? h : undefined;
    },
    60_000,
    500,
  ).catch(() => '');
  await chart.createUnmanagedJob('weekly');
  const by2 = await chart.waitForBackfill('weekly').catch(() => '');
  expect(next !== '' && by2 === next, `the other sync pod takes the Lease (${next}) and backfills`);
  await kubectl('admin', ['get', 'pods', '-n', 'jobs-storage', '-l', SYNC_LABEL]);
}

process.once('SIGINT', () => {
  say('\ninterrupted; cleaning up');
  void cleanup().then(() => process.exit(130));
});

try {
  await main();
  if (onNode) await nodeAct();
  else say("\n(act 7, the chart's pods on a node: npm run demo -- --node, as root)");
  say(
    `\n${failures === 0 ? 'demo finished: every expectation held' : `demo finished with ${failures} failed expectation(s)`}`,
  );
} catch (err) {
  failures += 1;
  say(`\ndemo failed: ${err instanceof Error ? err.stack : String(err)}`);
  for (const f of readdirSync(work).filter((n) => n.endsWith('.log')))
    say(`--- ${f} (tail)\n${readFileSync(join(work, f), 'utf8').split('\n').slice(-15).join('\n')}`);
} finally {
  await cleanup();
}
process.exit(failures === 0 ? 0 : 1);
