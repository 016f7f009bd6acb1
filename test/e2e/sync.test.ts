import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setPhase } from '../../src/phase/store.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { KubeApi } from '../../src/k8s/api.js';
import { isNotFound } from '../../src/k8s/errors.js';
import type { PhaseSource } from '../../src/phase/source.js';
import { silentLogger } from '../../src/log/logger.js';
import { Registry } from 'prom-client';
import { createSyncMetrics } from '../../src/metrics/registry.js';
import type { SyncMetrics } from '../../src/metrics/registry.js';
import { createStorageCodec } from '../../src/storage/codec.js';
import type { JobCr } from '../../src/storage/codec.js';
import { PROVENANCE_ANNOTATIONS as ANNOTATIONS } from '../../src/storage/kinds.js';
import type { SyncLoop } from '../../src/sync/loop.js';
import { syncHttp, syncParts } from '../../src/cli/compose.js';
import type { Common } from '../../src/cli/compose.js';
import type { RuntimeSettings } from '../../src/runtime/settings.js';
import request from 'supertest';
import { startControlPlane, installJobsCrds, JOBS_STORAGE_SA } from '../../scripts/control-plane/cluster.js';
import type { ControlPlane } from '../../scripts/control-plane/cluster.js';
import { crOf, scheduledJob, sleep, waitFor, workloadsOf } from '../../scripts/control-plane/jobs.js';

const GRACE_SECONDS = 2;
const JOBS_API_MANAGER = 'jobs-api toolforge_weld';

interface Replica {
  name: string;
  sidecar: SyncLoop;
  phase: PhaseSource;
  metrics: SyncMetrics;
  parts: Common<SyncMetrics>;
  settings: RuntimeSettings;
}

describe('sync sidecar on a real control plane', { timeout: 600_000 }, () => {
  let cp: ControlPlane;
  let admin: KubeApi;
  let config: Config;
  const replicas: Replica[] = [];

  const crPath = (tool: string, name: string) =>
    `/apis/jobs-api.toolforge.org/v1/namespaces/tool-${tool}/scheduled-jobs/${name}`;
  const getCr = async (tool: string, name: string): Promise<JobCr | undefined> => {
    try {
      return await admin.request<JobCr>('GET', crPath(tool, name));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };
  const kubectlCreate = (tool: string, objects: object[]) =>
    cp.kubectlOk(tool, ['create', '-f', '-'], {
      stdin: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
    });
  /** jobs-api's create order: the CR (its ServiceAccount) first, then the workload with the tool's certificate. */
  const createThroughApi = async (tool: string, name: string) => {
    const job = scheduledJob(tool, name);
    const jobsApi = new KubeApi(cp.kubeConfig('jobs-api'));
    await jobsApi.request('POST', `/apis/jobs-api.toolforge.org/v1/namespaces/tool-${tool}/scheduled-jobs`, {
      body: crOf(job),
    });
    const asTool = new KubeApi(cp.kubeConfig(tool));
    for (const obj of workloadsOf(job)) {
      await asTool.request('POST', `/apis/batch/v1/namespaces/tool-${tool}/cronjobs`, {
        body: obj,
        query: { fieldManager: JOBS_API_MANAGER },
      });
    }
    return job;
  };
  const gauge = async (metrics: SyncMetrics, name: string, tool: string): Promise<number> => {
    const m = (await metrics.registry.getSingleMetric(name)?.get())?.values.find((v) => v.labels['tool_name'] === tool);
    return m?.value ?? 0;
  };
  const leader = () => replicas.find((r) => r.sidecar.isLeader);
  const switchPhase = async (phase: Parameters<typeof setPhase>[2]) => {
    await setPhase(admin, config, phase, { by: 'e2e' });
    await waitFor(`all replicas in phase ${phase}`, () => replicas.every((r) => r.phase.current() === phase));
  };

  function startReplica(name: string): Replica {
    const api = new KubeApi(cp.kubeConfig('jobs-storage-sync'));
    const metrics = createSyncMetrics(new Registry());
    const logger = silentLogger();
    const parts = { config, logger, metrics, api };
    const { phase, sync: sidecar, settings } = syncParts(parts, { identity: name });
    phase.start();
    sidecar.start();
    const r = { name, sidecar, phase, metrics, parts, settings };
    replicas.push(r);
    return r;
  }

  before(async () => {
    cp = await startControlPlane();
    await Promise.all([cp.addTool('alpha'), cp.addTool('beta')]);
    await installJobsCrds(cp);
    admin = new KubeApi(cp.kubeConfig('admin'));
    config = loadConfig({
      env: {},
      overrides: {
        phase: { namespace: JOBS_STORAGE_SA.namespace },
        sync: {
          backfillGraceSeconds: GRACE_SECONDS,
          leaseNamespace: JOBS_STORAGE_SA.namespace,
          leaseDurationSeconds: 3,
          renewDeadlineSeconds: 2,
          retryPeriodSeconds: 1,
        },
      },
    });
    await setPhase(admin, config, 'runtime-truth', { by: 'e2e' });
    await kubectlCreate('alpha', workloadsOf(scheduledJob('alpha', 'pre-existing')));
    startReplica('sync-0');
    await replicas[0]?.sidecar.firstReconcile;
    await waitFor('a leader', () => leader());
  });

  after(async () => {
    await Promise.all(
      replicas.map(async (r) => {
        await r.sidecar.stop();
        await r.phase.stop();
      }),
    );
    await cp?.stop();
  });

  test('a job that existed before the sidecar started (found by the initial list) is backfilled', async () => {
    const cr = await waitFor('backfilled CR pre-existing', () => getCr('alpha', 'pre-existing'));
    assert.equal(cr.spec['cmd'], './pre-existing.sh');
  });

  test('a kubectl-created jobs-framework CronJob is backfilled in runtime-truth', async () => {
    await kubectlCreate('alpha', workloadsOf(scheduledJob('alpha', 'kc-a')));
    const cr = await waitFor('backfilled CR kc-a', () => getCr('alpha', 'kc-a'));
    assert.equal(cr.metadata.annotations?.[ANNOTATIONS.backfilledBy], leader()?.name);
    const cronjob = await admin.request<{ metadata: { resourceVersion: string } }>(
      'GET',
      '/apis/batch/v1/namespaces/tool-alpha/cronjobs/kc-a',
    );
    assert.deepEqual(JSON.parse(cr.metadata.annotations?.[ANNOTATIONS.sourceVersions] ?? '{}'), {
      'CronJob/kc-a': cronjob.metadata.resourceVersion,
    });
    const decoded = createStorageCodec().read(cr);
    assert.ok(decoded.ok);
    assert.equal(decoded.value.job.cmd, './kc-a.sh');
    assert.equal(decoded.value.job.job_type === 'scheduled' && decoded.value.job.schedule.text, '17 3 * * *');
    await waitFor(
      'only_in_runtime back to 0',
      async () => (await gauge(leader()!.metrics, 'toolforge_jobs_only_in_runtime', 'alpha')) === 0,
    );
  });

  test('a job created through the API (CR first, then workload) is never double-created', async () => {
    await createThroughApi('alpha', 'api-made');
    const first = await getCr('alpha', 'api-made');
    assert.ok(first);
    await sleep((GRACE_SECONDS + 2) * 1000);
    const again = await getCr('alpha', 'api-made');
    assert.equal(again?.metadata.uid, first.metadata.uid);
    assert.equal(again?.metadata.annotations?.[ANNOTATIONS.backfilledBy], undefined);
    const plan = await leader()!.sidecar.toolPlan('alpha');
    assert.equal(plan?.jobs.find((j) => j.name === 'api-made')?.state, 'in-sync');
  });

  test('deleting through the API (CR first, then workload) never resurrects the CR', async () => {
    await createThroughApi('alpha', 'to-delete');
    await sleep(500);
    const jobsApi = new KubeApi(cp.kubeConfig('jobs-api'));
    await jobsApi.request('DELETE', crPath('alpha', 'to-delete'));
    await sleep(300);
    await cp.kubectlOk('alpha', ['delete', 'cronjob', 'to-delete', '-n', 'tool-alpha']);
    await sleep((GRACE_SECONDS + 2) * 1000);
    assert.equal(await getCr('alpha', 'to-delete'), undefined);
  });

  test('a CR deleted while its workload stays is never backfilled again: the job is tombstoned', async () => {
    await createThroughApi('alpha', 'cr-removed');
    const plan = async () => (await leader()?.sidecar.toolPlan('alpha'))?.jobs.find((j) => j.name === 'cr-removed');
    await waitFor('cr-removed in sync', async () => (await plan())?.state === 'in-sync');
    // Someone else than jobs-api deletes the CR; nobody deletes the workload.
    await admin.request('DELETE', crPath('alpha', 'cr-removed'));
    await waitFor('cr-removed tombstoned', async () => (await plan())?.action === 'tombstoned');
    await sleep((GRACE_SECONDS + 2) * 1000);
    assert.equal(await getCr('alpha', 'cr-removed'), undefined);
    assert.equal((await plan())?.action, 'tombstoned');
    const written = leader()!
      .sidecar.backfillResults()
      .filter((r) => r.name === 'cr-removed' && r.outcome === 'created');
    assert.deepEqual(written, []);
    await cp.kubectlOk('alpha', ['delete', 'cronjob', 'cr-removed', '-n', 'tool-alpha']);
    await waitFor('cr-removed gone from the plan', async () => (await plan()) === undefined);
  });

  test('a kubectl edit of an API-created CronJob is reported out of sync with the changed field', async () => {
    await createThroughApi('alpha', 'edited');
    await cp.kubectlOk('alpha', [
      'patch',
      'cronjob',
      'edited',
      '-n',
      'tool-alpha',
      '--type=merge',
      '-p',
      '{"spec":{"schedule":"45 3 * * *"}}',
    ]);
    const report = await waitFor('out-of-sync report', async () => {
      const job = (await leader()?.sidecar.toolPlan('alpha'))?.jobs.find((j) => j.name === 'edited');
      return job?.state === 'out-of-sync' ? job : undefined;
    });
    assert.deepEqual(report.diff, [{ field: 'schedule.minute', storage: '17', runtime: '45' }]);
    assert.equal(report.changedSinceRecorded, undefined);
    await waitFor(
      'out_of_sync{alpha} = 1',
      async () => (await gauge(leader()!.metrics, 'toolforge_jobs_out_of_sync', 'alpha')) === 1,
    );
  });

  test('switching runtime-truth → storage-truth changes nothing observable but the phase', async () => {
    const snapshot = async () => {
      const crs = await admin.request<{ items: JobCr[] }>('GET', '/apis/jobs-api.toolforge.org/v1/scheduled-jobs');
      const cronjobs = await admin.request<{ items: Array<{ metadata: { name: string; resourceVersion: string } }> }>(
        'GET',
        '/apis/batch/v1/cronjobs',
      );
      const l = leader()!;
      const metrics = (await l.metrics.registry.metrics())
        .split('\n')
        .filter(
          (line) =>
            line.startsWith('toolforge_jobs_') &&
            !line.startsWith('toolforge_jobs_phase_info') &&
            !line.includes('last_success') &&
            !line.includes('sync_duration'),
        );
      const { phase: _phase, lastSyncAt: _at, lastSyncSeconds: _s, ...status } = l.sidecar.status();
      return {
        crs: crs.items.map((c) => `${c.metadata.namespace}/${c.metadata.name}@${c.metadata.resourceVersion}`).sort(),
        cronjobs: cronjobs.items.map((c) => `${c.metadata.name}@${c.metadata.resourceVersion}`).sort(),
        plans: await l.sidecar.allPlans(),
        status,
        metrics,
      };
    };
    const before = await snapshot();
    await switchPhase('storage-truth');
    await sleep(1500);
    const after = await snapshot();
    assert.deepEqual(after, before);
    assert.equal(leader()?.sidecar.status().phase, 'storage-truth');
  });

  test('storage-truth still backfills kubectl-created jobs', async () => {
    await kubectlCreate('beta', workloadsOf(scheduledJob('beta', 'kc-b')));
    await waitFor('backfilled CR kc-b', () => getCr('beta', 'kc-b'));
  });

  test('ignore-unmanaged does not store kubectl-created jobs and counts them per tool', async () => {
    await switchPhase('ignore-unmanaged');
    await kubectlCreate('beta', workloadsOf(scheduledJob('beta', 'kc-c')));
    await waitFor(
      'only_in_runtime{beta} = 1',
      async () => (await gauge(leader()!.metrics, 'toolforge_jobs_only_in_runtime', 'beta')) === 1,
    );
    await sleep((GRACE_SECONDS + 2) * 1000);
    assert.equal(await getCr('beta', 'kc-c'), undefined);
    assert.equal(await gauge(leader()!.metrics, 'toolforge_jobs_only_in_runtime', 'beta'), 1);
    assert.equal(await gauge(leader()!.metrics, 'toolforge_jobs_only_in_runtime', 'alpha'), 0);
    const job = (await leader()!.sidecar.toolPlan('beta'))?.jobs.find((j) => j.name === 'kc-c');
    assert.equal(job?.action, 'ignore');
    assert.equal(job?.listedByApi, false);
    await switchPhase('runtime-truth');
  });

  test('the admin API verifies real service-account tokens against the cluster issuer keys', async (t) => {
    const ns = JOBS_STORAGE_SA.namespace;
    await cp.apply('admin', [
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'an-admin', namespace: ns } },
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'someone-else', namespace: ns } },
    ]);
    const audience = config.admin.audience;
    const l = leader()!;
    // Served as the sync serves it: the admin API on its loopback listener, probes and metrics on the other.
    const servers = await syncHttp(
      {
        ...l.parts,
        config: {
          ...config,
          sync: { ...config.sync, host: '0.0.0.0', port: 0 },
          admin: {
            ...config.admin,
            host: '127.0.0.1',
            port: 0,
            allowedSubjects: [`system:serviceaccount:${ns}:an-admin`],
          },
        },
      },
      l.sidecar,
      l.settings,
    );
    t.after(() => servers.close());
    const app = `http://127.0.0.1:${(servers.admin.address() as AddressInfo).port}`;
    const probe = `http://127.0.0.1:${(servers.probe.address() as AddressInfo).port}`;
    const token = (sa: string, aud = audience) => cp.createToken(ns, sa, { audience: aud, expirationSeconds: 600 });
    await request(probe)
      .get('/admin/v1/status')
      .set('authorization', `Bearer ${await token('an-admin')}`)
      .expect(404);
    await request(probe).get('/readyz').expect(200);
    const ok = await request(app)
      .get('/admin/v1/tools/alpha')
      .set('authorization', `Bearer ${await token('an-admin')}`)
      .expect(200);
    assert.ok(
      ok.body.jobs.some(
        (j: { name: string; inRuntime: boolean; inStorage: boolean }) =>
          j.name === 'kc-a' && j.inRuntime && j.inStorage,
      ),
    );
    const status = await request(app)
      .get('/admin/v1/status')
      .set('authorization', `Bearer ${await token('an-admin')}`)
      .expect(200);
    assert.equal(status.body.leader, true);
    await request(app)
      .get('/admin/v1/status')
      .set('authorization', `Bearer ${await token('someone-else')}`)
      .expect(403);
    await request(app)
      .get('/admin/v1/status')
      .set('authorization', `Bearer ${await token('an-admin', 'kubernetes')}`)
      .expect(401);
    await request(app).get('/admin/v1/status').expect(401);
  });

  test('two replicas never both write, and killing the leader hands over', async () => {
    startReplica('sync-1');
    await replicas[1]?.sidecar.firstReconcile;
    await sleep(2000);
    assert.equal(replicas.filter((r) => r.sidecar.isLeader).length, 1, 'exactly one leader');
    const first = leader()!;
    await kubectlCreate('alpha', workloadsOf(scheduledJob('alpha', 'kc-two')));
    const cr = await waitFor('backfilled CR kc-two', () => getCr('alpha', 'kc-two'));
    assert.equal(cr.metadata.annotations?.[ANNOTATIONS.backfilledBy], first.name);
    await sleep(1000);
    const writes = await Promise.all(
      replicas.map(
        async (r) =>
          (await r.metrics.registry.getSingleMetric('toolforge_jobs_synced_to_storage_total')?.get())?.values.reduce(
            (n, v) => n + v.value,
            0,
          ) ?? 0,
      ),
    );
    const follower = replicas.find((r) => r !== first)!;
    assert.equal(writes[replicas.indexOf(follower)], 0, 'the follower wrote nothing');

    first.sidecar.kill();
    replicas.splice(replicas.indexOf(first), 1);
    await waitFor('the follower takes over', () => follower.sidecar.isLeader, 15_000);
    await kubectlCreate('alpha', workloadsOf(scheduledJob('alpha', 'kc-after')));
    const next = await waitFor('backfilled CR kc-after', () => getCr('alpha', 'kc-after'));
    assert.equal(next.metadata.annotations?.[ANNOTATIONS.backfilledBy], follower.name);
    await first.phase.stop();
  });
});
