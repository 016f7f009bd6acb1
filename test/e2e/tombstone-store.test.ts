import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Registry } from 'prom-client';
import { KubeApi } from '../../src/k8s/api.js';
import { silentLogger } from '../../src/log/logger.js';
import { createSyncMetrics } from '../../src/metrics/registry.js';
import { TombstoneStore, checkpointKey, decodeCheckpoint, encodeCheckpoint } from '../../src/sync/tombstone-store.js';
import type { Checkpoint } from '../../src/sync/tombstones.js';
import { startControlPlane, JOBS_STORAGE_SA } from '../../scripts/control-plane/cluster.js';
import type { ControlPlane } from '../../scripts/control-plane/cluster.js';
import { waitFor } from '../../scripts/control-plane/jobs.js';

/**
 * A replica removes another replica's checkpoint only if it is stale in the ConfigMap as it is when the removal
 * lands: a replica that comes back after a long outage and writes its key between the judgement and the write keeps
 * it (the removal is conditioned on the resourceVersion it was judged on).
 */
// The name the chart's Role lets the sync write (tombstonesConfigMap of the default config).
const NAME = 'jobs-storage-sync-tombstones';
const NS = JOBS_STORAGE_SA.namespace;
const PATH = `/api/v1/namespaces/${NS}/configmaps/${NAME}`;
const ELEVEN_MINUTES = 11 * 60_000;

let cp: ControlPlane;
let admin: KubeApi;

const checkpointAt = (at: number): Checkpoint => ({ at, unmatched: new Set(), tombstones: [] });
const data = async (): Promise<Record<string, string>> =>
  (await admin.request<{ data?: Record<string, string> }>('GET', PATH)).data ?? {};

function store(identity: string): TombstoneStore {
  return new TombstoneStore({
    api: new KubeApi(cp.kubeConfig('jobs-storage-sync')),
    namespace: NS,
    name: NAME,
    identity,
    logger: silentLogger(),
    metrics: createSyncMetrics(new Registry()),
    checkpoint: () => checkpointAt(Date.now()),
  });
}

/** Writes `identity`'s checkpoint as of `at` straight into the ConfigMap, as that replica would. */
const writeAs = (identity: string, at: number) =>
  admin.request('PATCH', PATH, {
    body: { data: { [checkpointKey(identity)]: encodeCheckpoint(checkpointAt(at)) } },
    contentType: 'application/merge-patch+json',
  });

before(async () => {
  cp = await startControlPlane();
  admin = new KubeApi(cp.kubeConfig('admin'));
  await admin.request('POST', `/api/v1/namespaces/${NS}/configmaps`, {
    body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: NAME, namespace: NS }, data: {} },
  });
});

after(async () => {
  await cp?.stop();
});

test('a checkpoint unrefreshed for 10 minutes is removed by the next write of another replica', async () => {
  await writeAs('gone', Date.now() - ELEVEN_MINUTES);
  const a = store('a');
  await a.load();
  a.changed();
  const after = await waitFor('a wrote and removed the stale key', async () => {
    const d = await data();
    return d[checkpointKey('a')] !== undefined && d[checkpointKey('gone')] === undefined ? d : undefined;
  });
  await a.stop();
  assert.deepEqual(Object.keys(after), [checkpointKey('a')]);
});

test('a replica that comes back between the judgement and the write keeps its fresh checkpoint', async () => {
  await writeAs('back', Date.now() - ELEVEN_MINUTES);
  const b = store('b');
  await b.load(); // judges `back` stale from this read
  const fresh = Date.now();
  await writeAs('back', fresh); // `back` returns and writes before b's write lands
  b.changed();
  const after = await waitFor('b wrote its key', async () => {
    const d = await data();
    return d[checkpointKey('b')] !== undefined ? d : undefined;
  });
  await b.stop();
  const kept = after[checkpointKey('back')];
  assert.ok(kept !== undefined, "the returning replica's key is still there");
  assert.equal(decodeCheckpoint(kept)?.at, fresh, 'with the checkpoint it wrote when it came back');
});
