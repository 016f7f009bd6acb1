import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadWorkload } from '../../test/fixtures/workloads/load.js';
import type { Phase } from '../phase/behaviour.js';
import { configSchema } from '../config/schema.js';
import type { StoredJob } from '../jobs/model.js';
import { KubeApiError } from '../k8s/api.js';
import type { KubeApi, ListPage, WatchEvent } from '../k8s/api.js';
import { silentLogger } from '../log/logger.js';
import { Registry } from 'prom-client';
import { createSyncMetrics } from '../metrics/registry.js';
import type { SyncMetrics } from '../metrics/registry.js';
import { parseWorkload } from '../runtime/parse.js';
import { loadRuntimeSettings } from '../runtime/settings.js';
import { createStorageCodec } from '../storage/codec.js';
import { SyncLoop } from './loop.js';

const fixedPhase = (phase: Phase) => ({
  current: () => phase,
  known: () => true,
  whenKnown: () => Promise.resolve(),
  onChange: () => () => undefined,
});

/**
 * A SyncLoop over `api` as the tests run it: default config, silent logs, fresh metrics, not elected, phase
 * runtime-truth; `o` overrides any of it (`phase` by name).
 */
function testLoop(
  api: KubeApi,
  o: Partial<Omit<ConstructorParameters<typeof SyncLoop>[0], 'phase'>> & { phase?: Phase } = {},
): SyncLoop {
  const { phase = 'runtime-truth', config = configSchema.parse({}), ...rest } = o;
  return new SyncLoop({
    config,
    logger: silentLogger(),
    metrics: createSyncMetrics(new Registry()),
    api,
    codec: createStorageCodec(),
    identity: 'test',
    elect: false,
    settings: loadRuntimeSettings(config),
    ...rest,
    phase: fixedPhase(phase),
  });
}

test('stop() returns while the lists are still refused (SIGTERM before the first sync)', async () => {
  let lists = 0;
  const api = {
    // eslint-disable-next-line require-yield
    async *listPages(): AsyncGenerator<ListPage<unknown>> {
      lists += 1;
      throw new KubeApiError(403, 'cronjobs is forbidden');
    },
  } as unknown as KubeApi;
  const config = configSchema.parse({});
  const sidecar = testLoop(api, {
    config,
  });
  sidecar.start();
  while (lists === 0) await new Promise((r) => setTimeout(r, 5));
  let timer: NodeJS.Timeout | undefined;
  const stopped = await Promise.race([
    sidecar.stop().then(() => 'stopped'),
    new Promise((r) => (timer = setTimeout(() => r('still waiting'), 3000))),
  ]);
  clearTimeout(timer);
  assert.equal(stopped, 'stopped');
  assert.equal(sidecar.synced, false);
});

/**
 * An API server stand-in: lists serve `objects` by collection path, watches stay open until stopped and can be fed
 * events through `emit`, and single-object requests go to `request`.
 */
function fakeApi(objects: Record<string, unknown[]>, request: (method: string, path: string) => unknown) {
  const watchers = new Map<string, (e: WatchEvent<unknown>) => void>();
  const api = {
    async *listPages(path: string): AsyncGenerator<ListPage<unknown>> {
      yield { items: objects[path] ?? [], resourceVersion: '1' };
    },
    async watch(path: string, _q: unknown, onEvent: (e: WatchEvent<unknown>) => void, signal: AbortSignal) {
      watchers.set(path, onEvent);
      if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    },
    async request(method: string, path: string) {
      return request(method, path);
    },
  };
  const emit = (path: string, e: WatchEvent<unknown>) => {
    const onEvent = watchers.get(path);
    if (!onEvent) throw new Error(`no watch open on ${path}`);
    onEvent(e);
  };
  return { api: api as unknown as KubeApi, emit };
}

async function gauge(metrics: SyncMetrics, name: string, tool: string): Promise<number | undefined> {
  const values = (await metrics.registry.getSingleMetric(name)?.get())?.values ?? [];
  return values.find((v) => v.labels['tool_name'] === tool)?.value;
}

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const CRONJOBS = '/apis/batch/v1/cronjobs';
const SCHEDULED_JOBS = '/apis/jobs-api.toolforge.org/v1/scheduled-jobs';

test('a pass reconciles the tools that changed and publishes their gauges', async () => {
  const config = configSchema.parse({});
  const settings = loadRuntimeSettings(config);
  const workload = loadWorkload('v2-scheduled-relative-logs');
  const { api, emit } = fakeApi({ [CRONJOBS]: [workload] }, (method, path) => {
    throw new Error(`unexpected ${method} ${path}`);
  });
  const metrics = createSyncMetrics(new Registry());
  const sync = testLoop(api, {
    config,
    metrics,
    // No backfills in this phase: the job stays runtime-only until its CR appears.
    phase: 'ignore-unmanaged',
  });
  sync.start();
  try {
    await sync.firstReconcile;
    assert.equal(await gauge(metrics, 'toolforge_jobs_only_in_runtime', 'mytool'), 1);
    assert.deepEqual(
      { ...sync.status().totals },
      {
        tools: 1,
        runtimeJobs: 1,
        storageJobs: 0,
        onlyInRuntime: 1,
        onlyInStorage: 0,
        outOfSync: 0,
        foreign: 0,
        backfilled: 0,
      },
    );
    const parsed = parseWorkload(workload, settings);
    assert.ok(parsed.ok && parsed.value.job.job_type === 'scheduled');
    const cr = createStorageCodec().encode(parsed.value.job as StoredJob);
    emit(SCHEDULED_JOBS, { type: 'ADDED', object: { ...cr, metadata: { ...cr.metadata, resourceVersion: '2' } } });
    await until('the tool reconciled again', async () => (await sync.toolPlan('mytool'))?.jobs[0]?.inStorage === true);
    await until(
      'the runtime-only gauge dropped',
      async () => (await gauge(metrics, 'toolforge_jobs_only_in_runtime', 'mytool')) === undefined,
    );
    const plan = await sync.toolPlan('mytool');
    assert.equal(plan?.jobs[0]?.state, 'in-sync');
    assert.equal(sync.status().totals.storageJobs, 1);
  } finally {
    await sync.stop();
  }
});

test('the leader backfills a runtime-only job in its pass; a read-only loop only reports it', async () => {
  const config = configSchema.parse({ sync: { backfillGraceSeconds: 0 } });
  const workload = loadWorkload('v2-scheduled-relative-logs');
  for (const readOnly of [false, true]) {
    const posts: string[] = [];
    const { api } = fakeApi({ [CRONJOBS]: [workload] }, (method, path) => {
      if (method === 'GET' && path.endsWith('/cronjobs/nightly')) return workload;
      if (method === 'GET') throw new KubeApiError(404, 'not found');
      posts.push(path);
      return {};
    });
    const metrics = createSyncMetrics(new Registry());
    const sync = testLoop(api, {
      config,
      metrics,
      readOnly,
    });
    sync.start();
    try {
      await sync.firstReconcile;
      await sync.settled();
      assert.deepEqual(
        posts,
        readOnly ? [] : ['/apis/jobs-api.toolforge.org/v1/namespaces/tool-mytool/scheduled-jobs'],
      );
      assert.deepEqual(
        sync.backfillResults().map((r) => `${r.tool}/${r.name}: ${r.outcome}`),
        readOnly ? [] : ['mytool/nightly: created'],
      );
      assert.equal(sync.status().totals.backfilled, readOnly ? 0 : 1);
      assert.equal(await gauge(metrics, 'toolforge_jobs_only_in_runtime', 'mytool'), 1, `readOnly ${readOnly}`);
    } finally {
      await sync.stop();
    }
  }
});

const HOUR_MS = 3600_000;

/** A workload of `tool` (the fixture, moved to the tool's namespace). */
function workloadOf(tool: string): { metadata: Record<string, unknown> } {
  const w = loadWorkload('v2-scheduled-relative-logs') as { metadata: Record<string, unknown> };
  return { ...w, metadata: { ...w.metadata, namespace: `tool-${tool}`, uid: `uid-${tool}` } };
}

/** The CR jobs-api stores for the fixture's job in `tool`'s namespace, at `resourceVersion`. */
function crOf(tool: string, resourceVersion: string): unknown {
  const config = configSchema.parse({});
  const parsed = parseWorkload(workloadOf(tool), loadRuntimeSettings(config));
  assert.ok(parsed.ok && parsed.value.job.job_type === 'scheduled');
  const cr = createStorageCodec().encode({ ...parsed.value.job, tool_name: tool } as StoredJob);
  return { ...cr, metadata: { ...cr.metadata, namespace: `tool-${tool}`, resourceVersion } };
}

function leaderLoop(api: KubeApi, metrics: SyncMetrics, o: { graceSeconds?: number } = {}): SyncLoop {
  const config = configSchema.parse({ sync: { backfillGraceSeconds: o.graceSeconds ?? 0 } });
  return testLoop(api, {
    config,
    metrics,
    // No tick: whatever happens after the first pass happens because a watch event (or a retry) asked for it.
    intervalMs: HOUR_MS,
  });
}

test('a watch event reconciles its tool without waiting for the next tick', async () => {
  const { api, emit } = fakeApi({}, (method, path) => {
    throw new Error(`unexpected ${method} ${path}`);
  });
  const metrics = createSyncMetrics(new Registry());
  const config = configSchema.parse({});
  const sync = testLoop(api, {
    config,
    metrics,
    phase: 'ignore-unmanaged',
    intervalMs: HOUR_MS,
  });
  sync.start();
  try {
    await sync.firstReconcile;
    assert.equal(await gauge(metrics, 'toolforge_jobs_only_in_runtime', 'alpha'), undefined);
    emit(CRONJOBS, { type: 'ADDED', object: workloadOf('alpha') });
    await until('the gauge set by the event', async () => (await gauge(metrics, ONLY_IN_RUNTIME, 'alpha')) === 1);
    emit(SCHEDULED_JOBS, { type: 'ADDED', object: crOf('alpha', '5') });
    await until('the gauge cleared', async () => (await gauge(metrics, ONLY_IN_RUNTIME, 'alpha')) === undefined);
  } finally {
    await sync.stop();
  }
});

const ONLY_IN_RUNTIME = 'toolforge_jobs_only_in_runtime';

test('one hung request does not hold back another tool’s backfill or gauges', async () => {
  let release: () => void = () => undefined;
  const hung = new Promise<void>((resolve) => (release = resolve));
  const posts: string[] = [];
  const { api, emit } = fakeApi({ [CRONJOBS]: [workloadOf('alpha')] }, async (method, path) => {
    // alpha's first read hangs (a frozen connection); everything else answers at once.
    if (path.includes('/tool-alpha/')) await hung;
    if (method === 'GET' && path.endsWith('/cronjobs/nightly')) return workloadOf(path.split('/')[5]?.slice(5) ?? '');
    if (method === 'GET') throw new KubeApiError(404, 'not found');
    posts.push(path);
    return {};
  });
  const metrics = createSyncMetrics(new Registry());
  const sync = leaderLoop(api, metrics);
  sync.start();
  try {
    await sync.firstReconcile;
    emit(CRONJOBS, { type: 'ADDED', object: workloadOf('beta') });
    await until('beta backfilled while alpha hangs', () => posts.length === 1);
    assert.deepEqual(posts, ['/apis/jobs-api.toolforge.org/v1/namespaces/tool-beta/scheduled-jobs']);
    emit(SCHEDULED_JOBS, { type: 'ADDED', object: crOf('beta', '6') });
    await until('beta’s gauge cleared', async () => (await gauge(metrics, ONLY_IN_RUNTIME, 'beta')) === undefined);
    assert.equal((await sync.toolPlan('beta'))?.jobs[0]?.state, 'in-sync');
    assert.deepEqual(
      sync.backfillResults().map((r) => `${r.tool}: ${r.outcome}`),
      ['beta: created'],
      'alpha is still in flight',
    );
  } finally {
    release();
    await sync.stop();
  }
  assert.deepEqual(posts.length, 2, 'alpha went on once its request answered');
});

test('a job whose CR is seen deleted is not backfilled while its workload remains (grace 0)', async () => {
  const posts: string[] = [];
  const w = workloadOf('alpha');
  const { api, emit } = fakeApi({ [CRONJOBS]: [w], [SCHEDULED_JOBS]: [crOf('alpha', '5')] }, (method, path) => {
    if (method === 'GET' && path.endsWith('/cronjobs/nightly')) return w;
    if (method === 'GET') throw new KubeApiError(404, 'not found');
    posts.push(path);
    return {};
  });
  const metrics = createSyncMetrics(new Registry());
  const sync = leaderLoop(api, metrics);
  sync.start();
  try {
    await sync.firstReconcile;
    // jobs-api deletes the CR first; the workload's delete comes later.
    emit(SCHEDULED_JOBS, { type: 'DELETED', object: crOf('alpha', '7') });
    await until('the job tombstoned', async () => (await sync.toolPlan('alpha'))?.jobs[0]?.action === 'tombstoned');
    await sync.settled();
    assert.deepEqual(posts, []);
    assert.equal(await gauge(metrics, ONLY_IN_RUNTIME, 'alpha'), undefined, 'jobs-api may still be deleting it');
    // A workload created again under the same name (a new uid) is another job: it is backfilled.
    emit(CRONJOBS, {
      type: 'MODIFIED',
      object: { ...w, metadata: { ...w.metadata, uid: 'uid-new', resourceVersion: '9' } },
    });
    await until('the new workload backfilled', () => posts.length === 1);
  } finally {
    await sync.stop();
  }
});

test('a tool whose grace period ends is reconciled then, with no event and no tick', async () => {
  const posts: string[] = [];
  const w = workloadOf('alpha');
  const fresh = { ...w, metadata: { ...w.metadata, creationTimestamp: new Date().toISOString() } };
  const { api } = fakeApi(
    { [CRONJOBS]: [fresh, workloadOf('beta')], [SCHEDULED_JOBS]: [crOf('beta', '5')] },
    (method, path) => {
      if (method === 'GET' && path.endsWith('/tool-alpha/cronjobs/nightly')) return fresh;
      if (method === 'GET') throw new KubeApiError(404, 'not found');
      posts.push(path);
      return {};
    },
  );
  const metrics = createSyncMetrics(new Registry());
  const sync = leaderLoop(api, metrics, { graceSeconds: 1 });
  sync.start();
  try {
    await sync.firstReconcile;
    await sync.settled();
    assert.deepEqual(posts, [], 'within its grace period');
    assert.equal((await sync.toolPlan('alpha'))?.jobs[0]?.action, 'wait-grace');
    assert.equal(await gauge(metrics, ONLY_IN_RUNTIME, 'alpha'), undefined, 'not counted within its grace');
    await until('alpha backfilled once its grace ended', () => posts.length === 1);
    assert.deepEqual(posts, ['/apis/jobs-api.toolforge.org/v1/namespaces/tool-alpha/scheduled-jobs']);
    assert.equal((await sync.toolPlan('beta'))?.jobs[0]?.state, 'in-sync');
  } finally {
    await sync.stop();
  }
});

test('a retry in flight past its retry time does not make the passes spin', async () => {
  let posts = 0;
  let release: () => void = () => undefined;
  const hung = new Promise<void>((resolve) => (release = resolve));
  const w = workloadOf('alpha');
  const { api } = fakeApi({ [CRONJOBS]: [w] }, async (method, path) => {
    if (method === 'GET' && path.endsWith('/cronjobs/nightly')) return w;
    if (method === 'GET') throw new KubeApiError(404, 'not found');
    posts += 1;
    // The first write fails; its retry hangs (a frozen connection) until released.
    if (posts === 1) throw new KubeApiError(500, 'etcd timeout');
    await hung;
    return {};
  });
  const metrics = createSyncMetrics(new Registry());
  const sync = leaderLoop(api, metrics);
  const passes = async () => (await metrics.syncDuration.get()).values.find((v) => v.metricName?.endsWith('_count'));
  sync.start();
  try {
    await sync.firstReconcile;
    await until('the retry in flight', () => posts === 2);
    const before = (await passes())?.value ?? 0;
    await new Promise((r) => setTimeout(r, 500));
    const during = ((await passes())?.value ?? 0) - before;
    assert.ok(during <= 2, `${during} passes while the retry hung`);
  } finally {
    release();
    await sync.stop();
  }
  assert.deepEqual(
    sync.backfillResults().map((r) => r.outcome),
    ['failed', 'created'],
  );
});

test('without a CR watch (the import) the CRs are listed once; a job written is not written again by later passes', async () => {
  const config = configSchema.parse({ sync: { backfillGraceSeconds: 0 } });
  const posts: string[] = [];
  const watched: string[] = [];
  const written = workloadOf('alpha');
  const { api, emit } = fakeApi(
    { [CRONJOBS]: [written, workloadOf('beta')], [SCHEDULED_JOBS]: [crOf('beta', '5')] },
    (method, path) => {
      if (method === 'GET') return path.includes('tool-alpha') ? written : workloadOf('beta');
      posts.push(path);
      return crOf('alpha', '7');
    },
  );
  const watching = api.watch.bind(api);
  api.watch = (path, query, onEvent, signal) => {
    watched.push(path);
    return watching(path, query, onEvent, signal);
  };
  const sync = testLoop(api, {
    config,
    watchCrs: false,
  });
  sync.start();
  try {
    await sync.firstReconcile;
    await sync.settled();
    assert.deepEqual(posts, ['/apis/jobs-api.toolforge.org/v1/namespaces/tool-alpha/scheduled-jobs']);
    assert.ok(watched.includes(CRONJOBS), 'the workloads are watched');
    assert.ok(!watched.some((p) => p.startsWith('/apis/jobs-api.toolforge.org/')), `CRs watched: ${watched.join()}`);
    // A change of the workload makes a pass over its tool: the CR was written, and no watch will deliver it.
    emit(CRONJOBS, {
      type: 'MODIFIED',
      object: { ...written, metadata: { ...written.metadata, resourceVersion: '9' } },
    });
    await until('the tool reconciled again', async () => (await sync.toolPlan('alpha')) !== undefined);
    await new Promise((r) => setTimeout(r, 50));
    await sync.settled();
    assert.equal(posts.length, 1);
    assert.deepEqual(
      sync.backfillResults().map((r) => `${r.tool}/${r.name}: ${r.outcome}`),
      ['alpha/nightly: created'],
    );
  } finally {
    await sync.stop();
  }
});
