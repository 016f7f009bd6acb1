import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setPhase } from '../../src/phase/store.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { KubeApi } from '../../src/k8s/api.js';
import { isConflict, isNotFound } from '../../src/k8s/errors.js';
import type { PhaseSource } from '../../src/phase/source.js';
import { silentLogger } from '../../src/log/logger.js';
import { Registry } from 'prom-client';
import { createSyncMetrics } from '../../src/metrics/registry.js';
import type { SyncMetrics } from '../../src/metrics/registry.js';
import type { SyncLoop } from '../../src/sync/loop.js';
import { syncParts } from '../../src/cli/compose.js';
import { startControlPlane, installJobsCrds, JOBS_STORAGE_SA } from '../../scripts/control-plane/cluster.js';
import type { ControlPlane } from '../../scripts/control-plane/cluster.js';
import { crOf, scheduledJob, waitFor, workloadsOf } from '../../scripts/control-plane/jobs.js';

/**
 * The sync under faults on a real control plane, backfilling with no grace at all: jobs-api's create/delete racing
 * the sync, a kube-apiserver restart, and how soon a watch event turns into a backfill and a gauge. Each test prints
 * what it measured; the assertions are about correctness only.
 */
const TOOLS = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7'];
const CYCLES = 504;
const NAMES_PER_TOOL = 3;
const JOBS_API_MANAGER = 'jobs-api toolforge_weld';
const ONLY_IN_RUNTIME = 'toolforge_jobs_only_in_runtime';

const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
const figures = (ms: number[]) => {
  const sorted = [...ms].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) };
};

describe('sync under faults on a real control plane', { timeout: 900_000 }, () => {
  let cp: ControlPlane;
  let admin: KubeApi;
  let jobsApi: KubeApi;
  let config: Config;
  let sync: SyncLoop;
  let phase: PhaseSource;
  let metrics: SyncMetrics;
  const asTool = new Map<string, KubeApi>();

  const crs = (tool: string) => `/apis/jobs-api.toolforge.org/v1/namespaces/tool-${tool}/scheduled-jobs`;
  const cronjobs = (tool: string) => `/apis/batch/v1/namespaces/tool-${tool}/cronjobs`;
  const exists = async (path: string): Promise<boolean> => {
    try {
      await admin.request('GET', path);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  };
  const gauge = async (tool: string): Promise<number> => {
    const values = (await metrics.registry.getSingleMetric(ONLY_IN_RUNTIME)?.get())?.values ?? [];
    return values.find((v) => v.labels['tool_name'] === tool)?.value ?? 0;
  };
  /** A CronJob created directly (as `kubectl create` does: no CR), as the tool. */
  const createWorkload = async (tool: string, name: string) => {
    for (const obj of workloadsOf(scheduledJob(tool, name))) {
      await asTool.get(tool)!.request('POST', cronjobs(tool), { body: obj });
    }
  };

  /**
   * jobs-api's create (the CR, then the workload) and delete (the CR, then the workload), back to back. A CR already
   * there at the create is a deleted job the sync wrote back: it is counted, removed, and the cycle goes on.
   */
  const jobsApiCycle = async (tool: string, name: string, resurrected: string[]) => {
    const job = scheduledJob(tool, name);
    try {
      await jobsApi.request('POST', crs(tool), { body: crOf(job) });
    } catch (err) {
      if (!isConflict(err)) throw err;
      resurrected.push(`${tool}/${name}`);
      await jobsApi.request('DELETE', `${crs(tool)}/${name}`);
      await jobsApi.request('POST', crs(tool), { body: crOf(job) });
    }
    for (const obj of workloadsOf(job)) {
      await asTool.get(tool)!.request('POST', cronjobs(tool), { body: obj, query: { fieldManager: JOBS_API_MANAGER } });
    }
    await jobsApi.request('DELETE', `${crs(tool)}/${name}`);
    await asTool.get(tool)!.request('DELETE', `${cronjobs(tool)}/${name}`);
  };

  before(async () => {
    cp = await startControlPlane();
    await Promise.all([...TOOLS, 'fresh', 'restart'].map((t) => cp.addTool(t)));
    await installJobsCrds(cp);
    admin = new KubeApi(cp.kubeConfig('admin'));
    jobsApi = new KubeApi(cp.kubeConfig('jobs-api'));
    for (const t of [...TOOLS, 'fresh', 'restart']) asTool.set(t, new KubeApi(cp.kubeConfig(t)));
    config = loadConfig({
      env: {},
      overrides: {
        phase: { namespace: JOBS_STORAGE_SA.namespace },
        sync: {
          backfillGraceSeconds: 0,
          leaseNamespace: JOBS_STORAGE_SA.namespace,
          leaseDurationSeconds: 3,
          renewDeadlineSeconds: 2,
          retryPeriodSeconds: 1,
        },
      },
    });
    await setPhase(admin, config, 'runtime-truth', { by: 'e2e' });
    const api = new KubeApi(cp.kubeConfig('jobs-storage-sync'));
    metrics = createSyncMetrics(new Registry());
    const logger = silentLogger();
    ({ phase, sync } = syncParts({ config, logger, metrics, api }, { identity: 'sync-0' }));
    phase.start();
    sync.start();
    await sync.firstReconcile;
    await waitFor('the Lease', () => sync.isLeader);
  });

  after(async () => {
    await sync?.stop();
    await phase?.stop();
    await cp?.stop();
  });

  test(`${CYCLES} jobs-api create/delete cycles at grace 0 leave no resurrected CR`, async () => {
    const started = Date.now();
    const resurrected: string[] = [];
    await Promise.all(
      TOOLS.map(async (tool) => {
        for (let i = 0; i < CYCLES / TOOLS.length; i++) {
          await jobsApiCycle(tool, `race-${i % NAMES_PER_TOOL}`, resurrected);
        }
      }),
    );
    const cyclesMs = Date.now() - started;
    await sync.settled();
    // Anything the sync was going to write off the last events is written by now; the watch delivers it back.
    await new Promise((r) => setTimeout(r, 2000));
    await sync.settled();
    const left = resurrected;
    for (const tool of TOOLS) {
      const list = await admin.request<{ items: Array<{ metadata: { name: string } }> }>('GET', crs(tool));
      for (const cr of list.items) left.push(`${tool}/${cr.metadata.name}`);
    }
    const outcomes: Record<string, number> = {};
    for (const r of sync.backfillResults()) {
      const key = r.reason ? `${r.outcome}: ${r.reason}` : r.outcome;
      outcomes[key] = (outcomes[key] ?? 0) + 1;
    }
    console.log(
      'race loop: %d cycles over %d tools in %d ms; resurrected CRs: %d; backfill outcomes: %j',
      CYCLES,
      TOOLS.length,
      cyclesMs,
      left.length,
      outcomes,
    );
    assert.deepEqual(left, [], 'no CR of a deleted job came back');
    assert.equal(outcomes['created'] ?? 0, 0, 'no deleted job was ever written back, even for a moment');
  });

  test('kubectl create → CR backfilled and only-in-runtime gauge: latency (grace 0)', async () => {
    const toCr: number[] = [];
    const toGauge: number[] = [];
    let gaugeMissed = 0;
    for (let i = 0; i < 40; i++) {
      const name = `fresh-${i}`;
      const t0 = performance.now();
      await createWorkload('fresh', name);
      let gaugeAt: number | undefined;
      let crAt: number | undefined;
      const deadline = t0 + 20_000;
      while (crAt === undefined && performance.now() < deadline) {
        if (gaugeAt === undefined && (await gauge('fresh')) > 0) gaugeAt = performance.now();
        if (sync.backfillResults().some((r) => r.tool === 'fresh' && r.name === name && r.outcome === 'created'))
          crAt = performance.now();
        else await new Promise((r) => setImmediate(r));
      }
      assert.ok(crAt !== undefined, `${name} backfilled`);
      assert.ok(await exists(`${crs('fresh')}/${name}`), `${name}'s CR exists`);
      toCr.push(crAt - t0);
      if (gaugeAt === undefined) gaugeMissed += 1;
      else toGauge.push(gaugeAt - t0);
      await waitFor(`${name} in sync`, async () => (await gauge('fresh')) === 0, 20_000, 20);
    }
    console.log(
      'freshness (create returned → CR created by the sync): %j; → only-in-runtime gauge set: %j (%d too brief to see)',
      figures(toCr),
      figures(toGauge),
      gaugeMissed,
    );
  });

  test('after a kube-apiserver restart the sync converges within seconds of the API answering', async () => {
    const { downAt, readyAt } = await cp.restartApiserver({ downMs: 3000 });
    // A job created the moment the API answers again: the sync must relist, watch and backfill it.
    await waitFor('the API answering the tool', () => createWorkload('restart', 'after-restart').then(() => true));
    const created = Date.now();
    await waitFor('the CR backfilled', () => exists(`${crs('restart')}/after-restart`), 60_000, 20);
    const backfilledAt = Date.now();
    await waitFor('the gauge back to 0', async () => (await gauge('restart')) === 0, 60_000, 20);
    const gaugeAt = Date.now();
    console.log(
      'apiserver restart: down %d ms; API answered again → CR backfilled %d ms (created %d ms after ready), → gauge 0 %d ms',
      readyAt - downAt,
      backfilledAt - readyAt,
      created - readyAt,
      gaugeAt - readyAt,
    );
    assert.ok(await exists(`${crs('restart')}/after-restart`));
    assert.equal(await gauge('restart'), 0);
  });
});
