import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadWorkload } from '../../test/fixtures/workloads/load.js';
import { convertObject } from '../cli/commands/convert.js';
import type { Phase } from '../phase/behaviour.js';
import { namespaceOfTool, toolOfNamespace } from '../jobs/tenancy.js';
import { resolveJob } from '../jobs/index.js';
import type { StoredJob } from '../jobs/model.js';
import { KubeApiError } from '../k8s/api.js';
import type { KubeApi } from '../k8s/api.js';
import { silentLogger } from '../log/logger.js';
import { Registry } from 'prom-client';
import { createSyncMetrics } from '../metrics/registry.js';
import { DEFAULT_RUNTIME_SETTINGS } from '../runtime/settings.js';
import type { RuntimeSettings } from '../runtime/settings.js';
import { createStorageCodec } from '../storage/codec.js';
import type { JobCr } from '../storage/codec.js';
import { PROVENANCE_ANNOTATIONS } from '../storage/kinds.js';
import { Backfiller } from './backfill.js';
import type { BackfillResult } from './backfill.js';
import { workloadEntry } from './entries.js';
import type { EntryContext } from './entries.js';
import { jobFingerprint } from './fingerprint.js';
import type { RuntimeEntry } from './reconcile.js';

const NOW = Date.parse('2026-11-26T12:00:00Z');
const codec = createStorageCodec();

function contexts(settings: RuntimeSettings): { kept: EntryContext<string>; reread: EntryContext<StoredJob> } {
  const prefix = settings.toolNamespacePrefix ?? 'tool-';
  const namesOf = (namespace: string) => {
    const tool = toolOfNamespace(namespace, prefix);
    return tool === undefined ? undefined : { namespace, tool };
  };
  return {
    kept: { namesOf, settings, codec, keep: (job) => jobFingerprint(resolveJob(job, settings)) },
    reread: { namesOf, settings, codec, keep: (job) => job },
  };
}

/** The entry the inventory would hold for a workload, as the pass hands it to the backfill. */
function entryOf(workload: unknown, settings: RuntimeSettings = DEFAULT_RUNTIME_SETTINGS): RuntimeEntry {
  const read = workloadEntry(workload, contexts(settings).kept);
  assert.ok(read?.what === 'job', 'the fixture is a jobs-framework job');
  return read.entry;
}

interface Call {
  method: string;
  path: string;
  body?: unknown;
}

type Answer = (call: Call) => unknown;

/** An API server stand-in for single-object requests: `answer` returns the body or throws the API's error. */
function fakeApi(answer: Answer): { api: Pick<KubeApi, 'request'>; calls: Call[] } {
  const calls: Call[] = [];
  const request = (method: string, path: string, o?: { body?: unknown }) => {
    const call: Call = o?.body === undefined ? { method, path } : { method, path, body: o.body };
    calls.push(call);
    try {
      return Promise.resolve(answer(call));
    } catch (err) {
      return Promise.reject(err);
    }
  };
  return { api: { request: request as KubeApi['request'] }, calls };
}

function backfiller(
  api: Pick<KubeApi, 'request'>,
  o: {
    phase?: () => Phase;
    leader?: boolean;
    onRetry?: (tool: string, at: number) => void;
    settings?: RuntimeSettings;
    deleted?: (fresh: RuntimeEntry<unknown>) => boolean;
    random?: () => number;
    now?: () => number;
  } = {},
) {
  const settings = o.settings ?? DEFAULT_RUNTIME_SETTINGS;
  return new Backfiller({
    api,
    entries: contexts(settings).reread,
    namespacePrefix: settings.toolNamespacePrefix ?? 'tool-',
    phase: { known: () => true, current: o.phase ?? (() => 'runtime-truth') },
    isLeader: () => o.leader ?? true,
    identity: 'sync-0',
    metrics: createSyncMetrics(new Registry()),
    logger: silentLogger(),
    now: o.now ?? (() => NOW),
    ...(o.onRetry ? { onRetry: o.onRetry } : {}),
    ...(o.deleted ? { deleted: o.deleted } : {}),
    ...(o.random ? { random: o.random } : {}),
  });
}

const CR = '/apis/jobs-api.toolforge.org/v1/namespaces/tool-mytool/scheduled-jobs';
const WORKLOAD = '/apis/batch/v1/namespaces/tool-mytool/cronjobs/nightly';
const notFound = () => new KubeApiError(404, 'not found', 'NotFound');

/** jobs-api's view: the CR is missing, the workload is as listed, and the POST answers with `post`. */
const answering =
  (workload: unknown, post: () => unknown = () => ({})): Answer =>
  ({ method, path }) => {
    if (method === 'GET' && path === `${CR}/nightly`) throw notFound();
    if (method === 'GET' && path === WORKLOAD) return workload;
    if (method === 'POST' && path === CR) return post();
    throw new Error(`unexpected ${method} ${path}`);
  };

describe('Backfiller', () => {
  const workload = () => loadWorkload('v2-scheduled-relative-logs') as { metadata: Record<string, unknown> };

  test('outcomes of one backfill', async () => {
    let phase: Phase = 'runtime-truth';
    const cases: Array<{
      name: string;
      answer: Answer;
      leader?: boolean;
      deleted?: boolean;
      expect: Omit<BackfillResult, 'tool' | 'name' | 'type'>;
      requests: string[];
    }> = [
      {
        name: 'created',
        answer: answering(workload()),
        expect: { outcome: 'created' },
        requests: [`GET ${CR}/nightly`, `GET ${WORKLOAD}`, `POST ${CR}`],
      },
      {
        name: 'the CR existed',
        answer: ({ path }) => (path === `${CR}/nightly` ? {} : assert.fail(`unexpected ${path}`)),
        expect: { outcome: 'existed' },
        requests: [`GET ${CR}/nightly`],
      },
      {
        name: 'the workload is gone (404)',
        answer: ({ path }) => {
          throw path === WORKLOAD || path === `${CR}/nightly` ? notFound() : new Error(path);
        },
        expect: { outcome: 'skipped', reason: 'the workload is gone' },
        requests: [`GET ${CR}/nightly`, `GET ${WORKLOAD}`],
      },
      {
        name: 'the workload is being deleted',
        answer: answering(
          Object.assign(workload(), {
            metadata: { ...workload().metadata, deletionTimestamp: '2026-11-26T11:59:00Z' },
          }),
        ),
        expect: { outcome: 'skipped', reason: 'the workload changed: being deleted or no longer a readable job' },
        requests: [`GET ${CR}/nightly`, `GET ${WORKLOAD}`],
      },
      {
        name: '409 on the POST: jobs-api created it first',
        answer: answering(workload(), () => {
          throw new KubeApiError(409, 'already exists', 'AlreadyExists');
        }),
        expect: { outcome: 'existed' },
        requests: [`GET ${CR}/nightly`, `GET ${WORKLOAD}`, `POST ${CR}`],
      },
      {
        name: 'the phase changed before the POST (the race guard)',
        answer: (call) => {
          // jobs-api became the only writer while the workload was read again.
          if (call.path === WORKLOAD) phase = 'ignore-unmanaged';
          return answering(workload())(call);
        },
        expect: { outcome: 'skipped', reason: 'not the writer in this phase' },
        requests: [`GET ${CR}/nightly`, `GET ${WORKLOAD}`],
      },
      {
        name: 'tombstoned: the CR was seen deleted while the workload was read again',
        deleted: true,
        answer: answering(workload()),
        expect: { outcome: 'skipped', reason: 'the job was deleted: its CR was seen deleted' },
        requests: [`GET ${CR}/nightly`, `GET ${WORKLOAD}`],
      },
      {
        name: 'not the leader',
        leader: false,
        answer: answering(workload()),
        expect: { outcome: 'skipped', reason: 'not the writer in this phase' },
        requests: [],
      },
    ];
    for (const c of cases) {
      phase = 'runtime-truth';
      const { api, calls } = fakeApi(c.answer);
      const b = backfiller(api, {
        phase: () => phase,
        ...(c.leader === undefined ? {} : { leader: c.leader }),
        deleted: (fresh) => (c.deleted ?? false) && fresh.workload.name === 'nightly',
      });
      const results = await b.run([entryOf(workload())]);
      assert.deepEqual(results, [{ tool: 'mytool', name: 'nightly', type: 'scheduled', ...c.expect }], c.name);
      assert.deepEqual(
        calls.map((r) => `${r.method} ${r.path}`),
        c.requests,
        c.name,
      );
      assert.equal(b.created, c.expect.outcome === 'created' ? 1 : 0, c.name);
      assert.deepEqual(b.history, results, c.name);
    }
  });

  test('outcomes are counted however many there are; the history keeps the last few thousand', async () => {
    const { api } = fakeApi(({ method, path }) =>
      method === 'GET' && path.startsWith(`${CR}/`) ? {} : assert.fail(`unexpected ${method} ${path}`),
    );
    const b = backfiller(api);
    const template = workload();
    const entries = Array.from({ length: 12_001 }, (_, i) =>
      entryOf({ ...template, metadata: { ...template.metadata, name: `job-${i}` } }),
    );
    const results = await b.run(entries);
    assert.equal(results.length, 12_001);
    assert.deepEqual(b.outcomes, { created: 0, existed: 12_001, skipped: 0, failed: 0 });
    assert.equal(b.history.length, 5000);
    assert.equal(b.history.at(-1)?.name, 'job-12000');
  });

  test('a 5xx fails the backfill and schedules a retry, which waits for its time', async () => {
    const retries: Array<[string, number]> = [];
    const { api, calls } = fakeApi(
      answering(workload(), () => {
        throw new KubeApiError(503, 'etcd is unavailable', 'ServiceUnavailable');
      }),
    );
    const b = backfiller(api, { onRetry: (tool, at) => retries.push([tool, at]), random: () => 0.5 });
    const entry = entryOf(workload());
    const results = await b.run([entry]);
    assert.equal(results[0]?.outcome, 'failed');
    assert.match(results[0]?.reason ?? '', /etcd is unavailable/);
    // The first retry comes within a second: 250 ms fixed + half of 250 ms jitter.
    assert.deepEqual(retries, [['mytool', NOW + 375]]);
    assert.deepEqual(b.retryTimes([entry]), [NOW + 375]);
    const before = calls.length;
    assert.deepEqual(await b.run([entry]), [], 'not retried before its time');
    assert.equal(calls.length, before);
    b.retain('mytool', new Set());
    assert.deepEqual(b.retryTimes([entry]), [], 'a job no longer waiting for its CR forgets its retry');
  });

  test('retries back off: jittered, under a second at first, doubling up to 30 s', async () => {
    let now = NOW;
    let jitter = 0;
    const { api } = fakeApi(
      answering(workload(), () => {
        throw new KubeApiError(503, 'etcd is unavailable', 'ServiceUnavailable');
      }),
    );
    const b = backfiller(api, { random: () => jitter, now: () => now });
    const entry = entryOf(workload());
    const delays: number[] = [];
    for (const r of [0, 0.999, 0, 0.5, 0, 0, 0, 0, 0, 1 - 1e-9]) {
      jitter = r;
      await b.run([entry]);
      const [at] = b.retryTimes([entry]);
      assert.ok(at !== undefined);
      delays.push(at - now);
      now = at;
    }
    assert.deepEqual(delays, [250, 1000, 1000, 3000, 4000, 8000, 15000, 15000, 15000, 30000]);
  });

  test('the CR written is jobs-api encoding with the provenance annotations', async () => {
    let posted: JobCr | undefined;
    const { api } = fakeApi(answering(workload(), () => ({})));
    const capture: Pick<KubeApi, 'request'> = {
      request: ((method: string, path: string, o?: { body?: unknown }) => {
        if (method === 'POST') posted = o?.body as JobCr;
        return api.request(method, path, o);
      }) as KubeApi['request'],
    };
    await backfiller(capture).run([entryOf(workload())]);
    assert.equal(posted?.kind, 'ScheduledJob');
    assert.equal(posted?.metadata.namespace, 'tool-mytool');
    assert.deepEqual(posted?.metadata.annotations, {
      [PROVENANCE_ANNOTATIONS.backfilledBy]: 'sync-0',
      [PROVENANCE_ANNOTATIONS.backfilledAt]: '2026-11-26T12:00:00.000Z',
      [PROVENANCE_ANNOTATIONS.sourceVersions]: JSON.stringify({ 'CronJob/nightly': '610023311' }),
    });
  });
});

describe('convert previews the CR the sync writes', () => {
  const fixtures = [
    'v2-scheduled-relative-logs',
    'v2-scheduled-absolute-logs',
    'v2-continuous-port-tcp',
    'v2-continuous-buildservice-launcher',
    'v1-scheduled-filelog',
    'pre-release-scheduled',
  ];
  for (const prefix of ['tool-', 'tf-tool-']) {
    test(`same CR for the same workload, less who wrote it and when (namespace prefix ${prefix})`, async () => {
      const settings: RuntimeSettings = { ...DEFAULT_RUNTIME_SETTINGS, toolNamespacePrefix: prefix };
      for (const name of fixtures) {
        const workload = loadWorkload(name) as {
          kind: string;
          metadata: { name: string; namespace: string; resourceVersion?: string };
        };
        const tool = toolOfNamespace(workload.metadata.namespace, 'tool-', { jobsApiFallback: true }) ?? '';
        workload.metadata.namespace = namespaceOfTool(tool, prefix);
        workload.metadata.resourceVersion ??= '42';
        const previewed = convertObject(workload, settings, codec, prefix);
        assert.equal(previewed.outcome, 'job', name);

        let posted: JobCr | undefined;
        const plural = workload.kind === 'CronJob' ? 'cronjobs' : 'deployments';
        const group = workload.kind === 'CronJob' ? 'batch' : 'apps';
        const path = `/apis/${group}/v1/namespaces/${workload.metadata.namespace}/${plural}/${workload.metadata.name}`;
        const { api } = fakeApi(({ method, path: p, body }) => {
          if (method === 'GET' && p === path) return workload;
          if (method === 'GET') throw notFound();
          posted = body as JobCr;
          return {};
        });
        const [result] = await backfiller(api, { settings }).run([entryOf(workload, settings)]);
        assert.equal(result?.outcome, 'created', name);
        const annotations = { ...posted?.metadata.annotations };
        delete annotations[PROVENANCE_ANNOTATIONS.backfilledBy];
        delete annotations[PROVENANCE_ANNOTATIONS.backfilledAt];
        assert.deepEqual({ ...posted, metadata: { ...posted?.metadata, annotations } }, previewed.cr, name);
      }
    });
  }
});
