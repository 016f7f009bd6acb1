import assert from 'node:assert/strict';
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
import type { SyncLoop } from '../../src/sync/loop.js';
import { syncParts } from '../../src/cli/compose.js';
import { checkpointKey, decodeCheckpoint, tombstonesConfigMap } from '../../src/sync/tombstone-store.js';
import { CHECKPOINT_SLACK_MS } from '../../src/sync/tombstones.js';
import type { Checkpoint } from '../../src/sync/tombstones.js';
import { startControlPlane, installJobsCrds, JOBS_STORAGE_SA } from '../../scripts/control-plane/cluster.js';
import type { ControlPlane } from '../../scripts/control-plane/cluster.js';
import { crOf, scheduledJob, sleep, waitFor, workloadsOf } from '../../scripts/control-plane/jobs.js';

/**
 * Every sync replica replaced while jobs-api is between its two deletes (the CR gone, the workload still there): the
 * replicas that start must not write the deleted jobs back, at grace 0 and at grace 1 s. Two ways to get there:
 * the old replicas saw the deletes before they were killed (`seen-*`, jobs created just before, so only the
 * tombstones the old replicas persisted can tell), and the CRs deleted while no replica ran (`away-*`, jobs created
 * well before, which the old replicas' checkpoint saw with their CRs). Each round prints how many CRs came back.
 */
const N = 10;
const JOBS_API_MANAGER = 'jobs-api toolforge_weld';
const ROUNDS = [
  { grace: 0, tool: 'rs-g0' },
  { grace: 1, tool: 'rs-g1' },
];

interface Replica {
  name: string;
  sync: SyncLoop;
  phase: PhaseSource;
}

describe('sync restarts on a real control plane: a deleted job stays deleted', { timeout: 900_000 }, () => {
  let cp: ControlPlane;
  let admin: KubeApi;
  let jobsApi: KubeApi;
  let awayCreatedAt = 0;
  const asTool = new Map<string, KubeApi>();
  const names = (prefix: string) => Array.from({ length: N }, (_, i) => `${prefix}-${i}`);

  const crs = (tool: string) => `/apis/jobs-api.toolforge.org/v1/namespaces/tool-${tool}/scheduled-jobs`;
  const cronjobs = (tool: string) => `/apis/batch/v1/namespaces/tool-${tool}/cronjobs`;

  const configAt = (grace: number): Config =>
    loadConfig({
      env: {},
      overrides: {
        phase: { namespace: JOBS_STORAGE_SA.namespace },
        sync: {
          backfillGraceSeconds: grace,
          leaseNamespace: JOBS_STORAGE_SA.namespace,
          leaseDurationSeconds: 3,
          renewDeadlineSeconds: 2,
          retryPeriodSeconds: 1,
        },
      },
    });

  /** Every replica started and not yet stopped: `after` kills what a failed step left running. */
  const running = new Set<Replica>();
  const startReplica = (name: string, config: Config): Replica => {
    const api = new KubeApi(cp.kubeConfig('jobs-storage-sync'));
    const metrics = createSyncMetrics(new Registry());
    const logger = silentLogger();
    const { phase, sync } = syncParts({ config, logger, metrics, api }, { identity: name });
    phase.start();
    sync.start();
    const replica = { name, sync, phase };
    running.add(replica);
    return replica;
  };
  const startReplicas = async (names: string[], config: Config): Promise<Replica[]> => {
    const replicas = names.map((n) => startReplica(n, config));
    await Promise.all(replicas.map((r) => r.sync.firstReconcile));
    await waitFor('a leader', () => replicas.some((r) => r.sync.isLeader), 30_000);
    return replicas;
  };
  /** As SIGKILL: no goodbye, no Lease released, nothing more written. */
  const killAll = async (replicas: Replica[]) => {
    for (const r of replicas) {
      r.sync.kill();
      running.delete(r);
    }
    await Promise.all(replicas.map((r) => r.phase.stop()));
  };

  /** The replicas' persisted checkpoints, by key (none before the ConfigMap exists). */
  const persisted = async (): Promise<Map<string, Checkpoint>> => {
    const { namespace, name } = tombstonesConfigMap(configAt(0));
    const out = new Map<string, Checkpoint>();
    try {
      const cm = await admin.request<{ data?: Record<string, string> }>(
        'GET',
        `/api/v1/namespaces/${namespace}/configmaps/${name}`,
      );
      for (const [key, text] of Object.entries(cm.data ?? {})) {
        const c = decodeCheckpoint(text);
        if (c) out.set(key, c);
      }
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    return out;
  };
  const persistedTombstones = async (tool: string, keys?: string[]): Promise<Set<string>> => {
    const out = new Set<string>();
    for (const [key, c] of await persisted()) {
      if (keys && !keys.includes(key)) continue;
      for (const t of c.tombstones) if (t.tool === tool) out.add(t.name);
    }
    return out;
  };

  /** jobs-api's create: the CR (its ServiceAccount), then the workload (with the tool's certificate). */
  const createThroughApi = async (tool: string, name: string) => {
    const job = scheduledJob(tool, name);
    await jobsApi.request('POST', crs(tool), { body: crOf(job) });
    for (const obj of workloadsOf(job)) {
      await asTool.get(tool)!.request('POST', cronjobs(tool), { body: obj, query: { fieldManager: JOBS_API_MANAGER } });
    }
  };
  const deleteCr = (tool: string, name: string) => jobsApi.request('DELETE', `${crs(tool)}/${name}`);
  const deleteWorkload = (tool: string, name: string) =>
    asTool.get(tool)!.request('DELETE', `${cronjobs(tool)}/${name}`);
  const crNames = async (tool: string): Promise<string[]> => {
    const list = await admin.request<{ items: Array<{ metadata: { name: string } }> }>('GET', crs(tool));
    return list.items.map((cr) => cr.metadata.name).sort();
  };

  before(async () => {
    cp = await startControlPlane();
    await Promise.all(ROUNDS.map((r) => cp.addTool(r.tool)));
    await installJobsCrds(cp);
    admin = new KubeApi(cp.kubeConfig('admin'));
    jobsApi = new KubeApi(cp.kubeConfig('jobs-api'));
    for (const r of ROUNDS) asTool.set(r.tool, new KubeApi(cp.kubeConfig(r.tool)));
    await setPhase(admin, configAt(0), 'runtime-truth', { by: 'e2e' });
    // The jobs whose CRs are deleted while no replica runs: standing long enough for a checkpoint to have seen them.
    for (const r of ROUNDS) for (const name of names('away')) await createThroughApi(r.tool, name);
    awayCreatedAt = Date.now();
    const seeds = await startReplicas(['seed-0'], configAt(0));
    // A checkpoint is as of when every informer last heard from the API server; on a cluster this quiet that is its
    // watch bookmarks (about one a minute, the first up to two minutes after the watch opened on kube-apiserver
    // 1.34), plus the slack and the 30 s refresh: about 150 s here.
    const covered = await waitFor(
      'a checkpoint that saw the away jobs with their CRs',
      async () => {
        for (const c of (await persisted()).values()) {
          if (c.at >= awayCreatedAt + CHECKPOINT_SLACK_MS && c.unmatched?.size === 0) return c;
        }
        return undefined;
      },
      300_000,
      1000,
    );
    console.log('checkpoint covering the away jobs written %d ms after they were created', covered.at - awayCreatedAt);
    await killAll(seeds);
  });

  after(async () => {
    await killAll([...running]);
    await cp?.stop();
  });

  for (const { grace, tool } of ROUNDS) {
    test(`grace ${grace} s: after every replica is replaced, no CR of ${2 * N} deleted jobs comes back`, async () => {
      const config = configAt(grace);
      const old = await startReplicas([`old-${grace}-a`, `old-${grace}-b`], config);
      for (const name of names('seen')) await createThroughApi(tool, name);
      await waitFor('the seen jobs in sync on every old replica', async () => {
        for (const r of old) {
          const plan = await r.sync.toolPlan(tool);
          const inSync = plan?.jobs.filter((j) => j.name.startsWith('seen-') && j.state === 'in-sync') ?? [];
          if (inSync.length !== N) return false;
        }
        return true;
      });

      // jobs-api's delete, stopped between its two steps: the CRs go, the workloads stay.
      for (const name of names('seen')) await deleteCr(tool, name);
      await waitFor('the old replicas tombstoned the seen jobs', async () => {
        for (const r of old) {
          const plan = await r.sync.toolPlan(tool);
          const held = plan?.jobs.filter((j) => j.name.startsWith('seen-') && j.action === 'tombstoned') ?? [];
          if (held.length !== N) return false;
        }
        return true;
      });
      const persistedBeforeKill = await waitFor(
        'the seen tombstones persisted',
        async () => {
          const held = await persistedTombstones(tool);
          return names('seen').every((n) => held.has(n)) ? held.size : undefined;
        },
        30_000,
        20,
      ).catch(() => 0);
      await killAll(old);

      // The rest of the jobs lose their CRs while no replica runs.
      for (const name of names('away')) await deleteCr(tool, name);
      const fresh = await startReplicas([`new-${grace}-a`, `new-${grace}-b`], config);
      // Well past the grace (and the Lease's takeover): whatever the new leader would backfill is written by now.
      await sleep((grace + 6) * 1000);
      await Promise.all(fresh.map((r) => r.sync.settled()));
      const back = await crNames(tool);
      const plan = await fresh.find((r) => r.sync.isLeader)?.sync.toolPlan(tool);
      const tombstoned = plan?.jobs.filter((j) => j.action === 'tombstoned').length ?? 0;
      const written = fresh.flatMap((r) =>
        r.sync.backfillResults().filter((b) => b.tool === tool && b.outcome === 'created'),
      );

      // jobs-api's delete resumes: the workloads go.
      for (const name of [...names('seen'), ...names('away')]) await deleteWorkload(tool, name);
      await sleep(3000);
      await Promise.all(fresh.map((r) => r.sync.settled()));
      const outlived = await crNames(tool);
      const freshKeys = fresh.map((r) => checkpointKey(r.name));
      const pruned = await waitFor(
        'the tombstones pruned from the new replicas’ checkpoints',
        async () => ((await persistedTombstones(tool, freshKeys)).size === 0 ? true : undefined),
        20_000,
      ).catch(() => false);
      await Promise.all(
        fresh.map(async (r) => {
          await r.sync.stop();
          await r.phase.stop();
          running.delete(r);
        }),
      );

      const seenBack = back.filter((n) => n.startsWith('seen-')).length;
      const awayBack = back.filter((n) => n.startsWith('away-')).length;
      console.log(
        'grace %d s: tombstones persisted before the kill %d/%d; CRs back after the restart: seen-then-killed %d/%d, ' +
          'deleted while no replica ran %d/%d; tombstoned in the new leader’s plan %d/%d; CRs left after the ' +
          'workloads were deleted %d/%d; tombstones pruned after: %s',
        grace,
        persistedBeforeKill,
        N,
        seenBack,
        N,
        awayBack,
        N,
        tombstoned,
        2 * N,
        outlived.length,
        2 * N,
        pruned,
      );
      assert.deepEqual(back, [], 'no deleted job was written back after the restart');
      assert.deepEqual(written, [], 'no backfill of a deleted job was even attempted successfully');
      assert.equal(tombstoned, 2 * N, 'every deleted job is tombstoned in the new leader’s plan');
      assert.deepEqual(outlived, [], 'no CR outlives its workloads');
      assert.equal(pruned, true, 'the tombstones end with the workloads');
    });
  }
});
