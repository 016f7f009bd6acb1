import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ContinuousJob, StoredJob } from '../../src/jobs/index.js';
import { KubeApi } from '../../src/k8s/api.js';
import { preflightReport, preflightTool, type ToolPreflight } from '../../src/preflight/preflight.js';
import { applyRestore, restorePlan } from '../../src/preflight/restore.js';
import { loadWorkload } from '../fixtures/workloads/load.js';
import { parseWorkload } from '../../src/runtime/parse.js';
import { DEFAULT_RUNTIME_SETTINGS as S } from '../../src/runtime/settings.js';
import { installJobsCrds, startControlPlane, type ControlPlane } from '../../scripts/control-plane/cluster.js';
import { crOf, scheduledJob, workloadsOf } from '../../scripts/control-plane/jobs.js';

const NS = 'tool-alpha';
const PATHS: Readonly<Record<string, string>> = {
  CronJob: `/apis/batch/v1/namespaces/${NS}/cronjobs`,
  Deployment: `/apis/apps/v1/namespaces/${NS}/deployments`,
  Service: `/api/v1/namespaces/${NS}/services`,
  ScheduledJob: `/apis/jobs-api.toolforge.org/v1/namespaces/${NS}/scheduled-jobs`,
  ContinuousJob: `/apis/jobs-api.toolforge.org/v1/namespaces/${NS}/continuous-jobs`,
};

const api: ContinuousJob = {
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

/** Preflight and restore against a real API server: its defaults, its canonical quantities, its 409s. */
describe('preflight and restore on a real control plane', { timeout: 300_000 }, () => {
  let cp: ControlPlane;
  let admin: KubeApi;

  async function list(kind: string): Promise<unknown[]> {
    const items: unknown[] = [];
    for await (const page of admin.listPages<unknown>(PATHS[kind] ?? '', { limit: 50 })) items.push(...page.items);
    return items;
  }

  async function preflight(): Promise<ToolPreflight> {
    const crs = [...(await list('ScheduledJob')), ...(await list('ContinuousJob'))];
    const objects = [...(await list('CronJob')), ...(await list('Deployment')), ...(await list('Service'))];
    return preflightTool('alpha', crs, objects, { runtime: S });
  }

  async function create(obj: Record<string, unknown>): Promise<void> {
    await admin.request('POST', PATHS[String(obj['kind'])] ?? '', { body: obj });
  }

  before(async () => {
    cp = await startControlPlane();
    await cp.addTool('alpha');
    await installJobsCrds(cp);
    admin = new KubeApi(cp.kubeConfig('admin'));
    // made through the API today: CR first, then the workloads jobs-api renders
    for (const job of [scheduledJob('alpha', 'daily'), api, worker] as StoredJob[]) {
      await create(crOf(job) as unknown as Record<string, unknown>);
      for (const obj of workloadsOf(job)) await create(obj);
    }
    // older eras, backfilled into storage from what runs
    for (const name of [
      'v1-new-format-scheduled',
      'v2-scheduled-admin-patched',
      'v2-continuous-buildservice-split-args',
    ]) {
      const obj = fixtureIn(name);
      await create(crOf(storedFrom(obj)) as unknown as Record<string, unknown>);
      await create(obj);
    }
  });
  after(async () => {
    await cp?.stop();
  });

  test('jobs made through the API are the same; older eras show their functional changes; exit code 1', async () => {
    const tool = await preflight();
    const verdicts = Object.fromEntries(tool.jobs.map((j) => [j.job, j.verdict]));
    assert.deepEqual(
      verdicts,
      {
        daily: 'same',
        api: 'same',
        worker: 'same',
        test: 'functional',
        sweep: 'functional',
        ingest: 'functional',
      },
      JSON.stringify(tool.jobs.filter((j) => j.verdict !== 'functional').map((j) => j.differences)),
    );
    const reasons = tool.jobs.flatMap((j) => j.differences.map((d) => d.reason));
    assert.ok(
      reasons.some((r) => /^the schedule would change from @daily to \d+ \d+ \* \* \*$/.test(r)),
      reasons.join('\n'),
    );
    assert.ok(
      reasons.some((r) => r.startsWith('the NFS mounts would be removed')),
      reasons.join('\n'),
    );
    assert.equal(preflightReport([tool]).exitCode, 1);
  });

  test('restore --apply recreates a deleted CronJob, and a deleted Deployment and Service; preflight then says same', async () => {
    await admin.request('DELETE', `${PATHS['CronJob']}/daily`);
    await admin.request('DELETE', `${PATHS['Deployment']}/api`);
    await admin.request('DELETE', `${PATHS['Service']}/api`);
    const lost = await preflight();
    assert.deepEqual(lost.onlyInStorage.map((j) => j.job).sort(), ['api', 'daily']);

    for (const [kind, name] of [
      ['ScheduledJob', 'daily'],
      ['ContinuousJob', 'api'],
    ] as const) {
      const cr = await admin.request<unknown>('GET', `${PATHS[kind]}/${name}`);
      const plan = restorePlan(cr, [], { runtime: S });
      assert.ok(plan.ok, JSON.stringify(plan));
      const outcomes = await applyRestore(admin, plan);
      assert.ok(
        outcomes.every((o) => o.outcome === 'created'),
        JSON.stringify(outcomes),
      );
    }
    const restored = await preflight();
    assert.deepEqual(restored.onlyInStorage, []);
    const verdicts = Object.fromEntries(restored.jobs.map((j) => [j.job, j.verdict]));
    assert.equal(verdicts['daily'], 'same');
    assert.equal(verdicts['api'], 'same');
  });

  test('restore refuses a job whose workload exists, and a create that meets an existing object is reported, not updated', async () => {
    const cr = await admin.request<unknown>('GET', `${PATHS['ContinuousJob']}/worker`);
    const existing = await admin.request<unknown>('GET', `${PATHS['Deployment']}/worker`);
    const refused = restorePlan(cr, [existing], { runtime: S });
    assert.ok(!refused.ok);
    assert.equal(refused.problem.code, 'workload-exists');

    const plan = restorePlan(cr, [], { runtime: S });
    assert.ok(plan.ok);
    const before = (existing as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
    const outcomes = await applyRestore(admin, plan);
    assert.deepEqual(
      outcomes.map((o) => o.outcome),
      ['exists'],
    );
    const after = await admin.request<{ metadata: { resourceVersion: string } }>(
      'GET',
      `${PATHS['Deployment']}/worker`,
    );
    assert.equal(after.metadata.resourceVersion, before, 'the existing Deployment was not touched');
  });
});
