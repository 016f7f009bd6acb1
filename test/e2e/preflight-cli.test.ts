import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { parseAllDocuments } from 'yaml';
import { main } from '../../src/cli.js';
import { loadConfig } from '../../src/config/load.js';
import type { ContinuousJob, StoredJob } from '../../src/jobs/index.js';
import { KubeApi } from '../../src/k8s/api.js';
import { isNotFound } from '../../src/k8s/errors.js';
import { silentLogger } from '../../src/log/logger.js';
import { createSyncMetrics } from '../../src/metrics/registry.js';
import type { SyncMetrics } from '../../src/metrics/registry.js';
import type { PhaseSource } from '../../src/phase/source.js';
import type { PreflightReport } from '../../src/preflight/preflight.js';
import { loadWorkload } from '../fixtures/workloads/load.js';
import { parseWorkload } from '../../src/runtime/parse.js';
import { DEFAULT_RUNTIME_SETTINGS as S } from '../../src/runtime/settings.js';
import type { SyncLoop } from '../../src/sync/loop.js';
import { syncParts } from '../../src/cli/compose.js';
import {
  installJobsCrds,
  JOBS_STORAGE_SA,
  startControlPlane,
  type ControlPlane,
} from '../../scripts/control-plane/cluster.js';
import { crOf, scheduledJob, waitFor, workloadsOf } from '../../scripts/control-plane/jobs.js';

const PATHS = (ns: string): Readonly<Record<string, string>> => ({
  CronJob: `/apis/batch/v1/namespaces/${ns}/cronjobs`,
  Deployment: `/apis/apps/v1/namespaces/${ns}/deployments`,
  Service: `/api/v1/namespaces/${ns}/services`,
  ScheduledJob: `/apis/jobs-api.toolforge.org/v1/namespaces/${ns}/scheduled-jobs`,
  ContinuousJob: `/apis/jobs-api.toolforge.org/v1/namespaces/${ns}/continuous-jobs`,
});
const ALPHA = PATHS('tool-alpha');

const apiJob: ContinuousJob = {
  job_name: 'api',
  tool_name: 'alpha',
  job_type: 'continuous',
  cmd: 'gunicorn -b 0.0.0.0:8080 app:app',
  image: { short_name: 'python3.11' },
  port: 8080,
  filelog: false,
};
const worker: ContinuousJob = {
  job_name: 'worker',
  tool_name: 'alpha',
  job_type: 'continuous',
  cmd: 'consumer --batch 50',
  image: { short_name: 'tool-alpha/worker:latest' },
  health_check: { type: 'script', script: 'test -f /tmp/healthy' },
};

/** A workload fixture of an older era, moved to tool alpha and stripped of what the API server owns. */
function fixtureIn(name: string): Record<string, unknown> {
  const text = JSON.stringify(loadWorkload(name)).replaceAll('tf-test', 'alpha').replaceAll('mytool', 'alpha');
  const obj = JSON.parse(text) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  if (obj['apiVersion'] === 'batch/v1beta1') obj['apiVersion'] = 'batch/v1';
  for (const key of ['uid', 'resourceVersion', 'managedFields', 'creationTimestamp', 'generation'])
    delete obj['metadata'][key];
  delete obj['status'];
  return obj;
}

function storedFrom(obj: unknown): StoredJob {
  const parsed = parseWorkload(obj, S);
  assert.ok(parsed.ok, JSON.stringify(parsed));
  return parsed.value.job as StoredJob;
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

/**
 * `jobs-storage preflight` and `restore` as an admin on a real control plane, jobs of four eras, with a sync running
 * beside them: after a restore the sync counts the job in sync.
 */
describe('jobs-storage preflight and restore', { timeout: 300_000 }, () => {
  let cp: ControlPlane;
  let admin: KubeApi;
  let configFile: string;
  let sidecar: SyncLoop;
  let phase: PhaseSource;
  let metrics: SyncMetrics;

  const create = (obj: Record<string, unknown>, ns = 'tool-alpha') =>
    admin.request('POST', PATHS(ns)[String(obj['kind'])] ?? '', { body: obj });
  const gauge = async (name: string, tool: string): Promise<number> => {
    const m = (await metrics.registry.getSingleMetric(name)?.get())?.values.find((v) => v.labels['tool_name'] === tool);
    return m?.value ?? 0;
  };
  const exists = async (path: string): Promise<boolean> => {
    try {
      await admin.request('GET', path);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  };

  before(async () => {
    cp = await startControlPlane();
    await Promise.all([cp.addTool('alpha'), cp.addTool('beta')]);
    await installJobsCrds(cp);
    admin = new KubeApi(cp.kubeConfig('admin'));
    // the current era, made through the API: CR first, then the workloads jobs-api renders
    for (const job of [scheduledJob('alpha', 'daily'), apiJob, worker] as StoredJob[]) {
      await create(crOf(job) as unknown as Record<string, unknown>);
      for (const obj of workloadsOf(job)) await create(obj);
    }
    const beta = scheduledJob('beta', 'hourly');
    await create(crOf(beta) as unknown as Record<string, unknown>, 'tool-beta');
    for (const obj of workloadsOf(beta)) await create(obj, 'tool-beta');
    // three older eras, backfilled into storage from what runs
    for (const name of [
      'v1-new-format-scheduled',
      'v2-scheduled-admin-patched',
      'v2-continuous-buildservice-split-args',
    ]) {
      const obj = fixtureIn(name);
      await create(crOf(storedFrom(obj)) as unknown as Record<string, unknown>);
      await create(obj);
    }
    configFile = cp.cliConfig();
    // the sync, as it runs beside jobs-api: reports only
    const config = loadConfig({ env: {}, overrides: { phase: { namespace: JOBS_STORAGE_SA.namespace } } });
    const api = new KubeApi(cp.kubeConfig('jobs-storage-sync'));
    metrics = createSyncMetrics(new Registry());
    const logger = silentLogger();
    ({ phase, sync: sidecar } = syncParts(
      { config, logger, metrics, api },
      { identity: 'sync-e2e', elect: false, readOnly: true },
    ));
    phase.start();
    sidecar.start();
    await sidecar.firstReconcile;
  });
  after(async () => {
    await sidecar?.stop();
    await phase?.stop();
    await cp?.stop();
  });

  test('preflight over jobs of four eras: the API-made ones same, the older ones functional, exit code 1', async () => {
    const res = await cli(['preflight', '-o', 'json', '--config', configFile]);
    assert.equal(res.code, 1, res.err);
    const report = JSON.parse(res.out) as PreflightReport;
    assert.deepEqual(
      report.tools.map((t) => t.tool),
      ['alpha', 'beta'],
    );
    const verdicts = Object.fromEntries(
      report.tools.flatMap((t) => t.jobs.map((j) => [`${t.tool}/${j.job}`, j.verdict])),
    );
    assert.deepEqual(verdicts, {
      'alpha/daily': 'same',
      'alpha/api': 'same',
      'alpha/worker': 'same',
      'alpha/test': 'functional',
      'alpha/sweep': 'functional',
      'alpha/ingest': 'functional',
      'beta/hourly': 'same',
    });
    assert.deepEqual(report.totals, {
      jobs: 7,
      same: 4,
      cosmetic: 0,
      functional: 3,
      errors: 0,
      onlyInRuntime: 0,
      onlyInStorage: 0,
    });

    const table = await cli(['preflight', '--tool', 'alpha', '--config', configFile]);
    assert.equal(table.code, 1, table.err);
    assert.match(table.out, /^ {2}ScheduledJob daily: same$/m);
    assert.match(table.out, /^ {4}\[functional\] CronJob\/sweep spec\.schedule: @daily → \d+ \d+ \* \* \*$/m);
    assert.match(table.out, /^ {8}the NFS mounts would be removed/m);
    assert.match(table.out, /^total: 6 jobs compared: 3 same, 0 cosmetic, 3 functional, 0 errors;/m);

    const beta = await cli(['preflight', '--tool', 'beta', '--config', configFile]);
    assert.equal(beta.code, 0, beta.err);
    assert.match(beta.out, /^exit code 0$/m);
    assert.equal((await cli(['preflight', '--tool', 'Not_A_Tool', '--config', configFile])).code, 2);
  });

  test('restore: a dry run creates nothing; --apply recreates a deleted CronJob and Deployment + Service, refuses a job whose workload exists, and the sync counts them in sync', async () => {
    await admin.request('DELETE', `${ALPHA['CronJob']}/daily`);
    await admin.request('DELETE', `${ALPHA['Deployment']}/api`);
    await admin.request('DELETE', `${ALPHA['Service']}/api`);
    await waitFor(
      'the sync to see two jobs only in storage',
      async () => (await gauge('toolforge_jobs_only_in_storage', 'alpha')) === 2,
    );
    const lost = await cli(['preflight', '--tool', 'alpha', '--config', configFile]);
    assert.match(lost.out, /^ {2}ScheduledJob daily: only in storage/m);
    assert.match(lost.out, /^ {2}ContinuousJob api: only in storage/m);

    const dry = await cli(['restore', '--tool', 'alpha', '--config', configFile]);
    assert.equal(dry.code, 0, dry.err);
    assert.deepEqual(
      parseAllDocuments(dry.out).map((d) => {
        const o = d.toJS() as { kind: string; metadata: { name: string; namespace: string } };
        return `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;
      }),
      ['CronJob/tool-alpha/daily', 'Deployment/tool-alpha/api', 'Service/tool-alpha/api'],
    );
    assert.equal(await exists(`${ALPHA['CronJob']}/daily`), false, 'a dry run creates nothing');

    const before = await admin.request<{ metadata: { resourceVersion: string } }>(
      'GET',
      `${ALPHA['Deployment']}/worker`,
    );
    const refused = await cli(['restore', '--tool', 'alpha', '--job', 'worker', '--apply', '--config', configFile]);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /refused alpha\/worker \(workload-exists\): Deployment\/worker still exists/);
    assert.equal(refused.out, '');
    const after = await admin.request<{ metadata: { resourceVersion: string } }>(
      'GET',
      `${ALPHA['Deployment']}/worker`,
    );
    assert.equal(
      after.metadata.resourceVersion,
      before.metadata.resourceVersion,
      'the existing Deployment was not touched',
    );

    // alpha's remaining workload (worker) was rendered without a uid and alpha has no pod policy: the uid is given
    const noUid = await cli(['restore', '--tool', 'alpha', '--apply', '--config', configFile]);
    assert.equal(noUid.code, 1);
    assert.match(noUid.err, /^refused alpha\/daily \(uid-unknown\)/m);
    assert.equal(await exists(`${ALPHA['CronJob']}/daily`), false, 'a refused restore creates nothing');
    const applied = await cli(['restore', '--tool', 'alpha', '--apply', '--uid', '52001', '--config', configFile]);
    assert.equal(applied.code, 0, applied.err);
    assert.equal(
      applied.out,
      'created CronJob/daily in tool-alpha\ncreated Deployment/api in tool-alpha\ncreated Service/api in tool-alpha\n',
    );
    // The sync reconciles on each watch event, so it may see the Deployment a moment before its Service: wait for
    // both gauges to settle, then hold them to 0.
    await waitFor(
      'only_in_storage and out_of_sync back to 0',
      async () =>
        (await gauge('toolforge_jobs_only_in_storage', 'alpha')) === 0 &&
        (await gauge('toolforge_jobs_out_of_sync', 'alpha')) === 0,
    );
    assert.equal(await gauge('toolforge_jobs_only_in_storage', 'alpha'), 0);
    assert.equal(await gauge('toolforge_jobs_out_of_sync', 'alpha'), 0);
    const plan = await sidecar.toolPlan('alpha');
    assert.deepEqual(
      plan?.jobs.filter((j) => j.name === 'daily' || j.name === 'api').map((j) => [j.name, j.state]),
      [
        ['api', 'in-sync'],
        ['daily', 'in-sync'],
      ],
    );

    const again = await cli(['preflight', '--tool', 'alpha', '-o', 'json', '--config', configFile]);
    const alpha = (JSON.parse(again.out) as PreflightReport).tools[0];
    assert.deepEqual(alpha?.onlyInStorage, []);
    assert.equal(alpha?.jobs.find((j) => j.job === 'daily')?.verdict, 'same');
    assert.equal(alpha?.jobs.find((j) => j.job === 'api')?.verdict, 'same');
  });
});
