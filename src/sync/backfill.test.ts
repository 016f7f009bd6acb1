import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
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
import { createStorageCodec, jobText } from '../storage/codec.js';
import type { JobCr } from '../storage/codec.js';
import { PROVENANCE_ANNOTATIONS } from '../storage/kinds.js';
import { Backfiller } from './backfill.js';
import type { BackfillResult, InventoryView } from './backfill.js';
import { backfillCr, backfillCrText, crEntry, readWorkloadEntry, workloadEntry } from './entries.js';
import type { EntryContext, Provenance } from './entries.js';
import { jobFingerprint } from './fingerprint.js';
import { WriterGate } from './gate.js';
import { Inventory } from './inventory.js';
import type { JobRef } from './per-tool.js';
import type { RuntimeEntry } from './reconcile.js';

const NOW = Date.parse('2026-11-26T12:00:00Z');
/** The names of every workload fixture. */
const listWorkloads = (): string[] =>
  readdirSync(fileURLToPath(new URL('../../test/fixtures/workloads/', import.meta.url)))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length));
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

/**
 * The sync's live watch, for the backfill to read before writing: the real Inventory, fed the entries its informers
 * would make of the objects they hold, with the jobs of candidates it keeps as the sync does (sync/inventory).
 */
class Watch {
  readonly inventory: Inventory;
  /** Runs before each read of a workload, e.g. to move the phase on meanwhile. */
  onRead: () => void = () => undefined;
  readonly view: InventoryView;

  constructor(private readonly settings: RuntimeSettings = DEFAULT_RUNTIME_SETTINGS) {
    this.inventory = new Inventory(settings.toolNamespacePrefix ?? 'tool-', undefined, { mayKeep: () => true });
    const inventory = this.inventory;
    this.view = {
      hasCr: (job: JobRef) => inventory.hasCr(job),
      workloadOf: (job: JobRef) => {
        this.onRead();
        return inventory.workloadOf(job);
      },
      namesOf: (namespace: string) => inventory.namesOf(namespace),
      candidates: inventory.candidates,
    };
  }

  /** The workload informer holds `workload`; with `keep`, its job is kept (the sync keeps it when it has no CR). */
  workload(workload: unknown, keep = false): RuntimeEntry {
    const { kept } = contexts(this.settings);
    const made = readWorkloadEntry(workload, kept);
    const read = made?.entry;
    assert.ok(read?.what === 'job', 'the fixture is a jobs-framework job');
    const w = read.entry.workload;
    const kind = w.kind === 'CronJob' ? 'cronjobs' : 'deployments';
    this.inventory.apply(kind, w.namespace, w.name, read, keep ? made?.job : undefined);
    return read.entry;
  }

  /** The workload informer saw the workload go. */
  workloadGone(e: RuntimeEntry): void {
    const w = e.workload;
    this.inventory.apply(w.kind === 'CronJob' ? 'cronjobs' : 'deployments', w.namespace, w.name, undefined);
  }

  /** The CR informer holds the CR of the job (as a backfill would have written it). */
  cr(workload: unknown): void {
    const { reread, kept } = contexts(this.settings);
    const read = workloadEntry(workload, reread);
    assert.ok(read?.what === 'job' && read.entry.parsed.ok);
    const prefix = this.settings.toolNamespacePrefix ?? 'tool-';
    const cr = backfillCr(read.entry.parsed.value, {}, { codec, namespacePrefix: prefix });
    const plural = cr.kind === 'ScheduledJob' ? 'scheduled-jobs' : 'continuous-jobs';
    const entry = crEntry(cr, kept);
    this.inventory.apply(plural, cr.metadata.namespace, cr.metadata.name, entry);
  }
}

interface Call {
  method: string;
  path: string;
  body?: unknown;
}

type Answer = (call: Call) => unknown;

/** The body a request sends, as an object: `body`, or the JSON text `json` parsed. */
function sent(o: { body?: unknown; json?: string } | undefined): unknown {
  return o?.json === undefined ? o?.body : JSON.parse(o.json);
}

/** An API server stand-in for single-object requests: `answer` returns the body or throws the API's error. */
function fakeApi(answer: Answer): { api: Pick<KubeApi, 'request'>; calls: Call[] } {
  const calls: Call[] = [];
  const request = (method: string, path: string, o?: { body?: unknown; json?: string }) => {
    const body = sent(o);
    const call: Call = body === undefined ? { method, path } : { method, path, body };
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
  watch: Watch,
  o: {
    phase?: () => Phase;
    leader?: boolean;
    onRetry?: (tool: string, at: number) => void;
    settings?: RuntimeSettings;
    deleted?: (fresh: RuntimeEntry<unknown>) => boolean;
    random?: () => number;
    now?: () => number;
    inFlight?: number;
  } = {},
) {
  const settings = o.settings ?? DEFAULT_RUNTIME_SETTINGS;
  const deleted = o.deleted;
  const gate = new WriterGate({
    phase: { known: () => true, current: o.phase ?? (() => 'runtime-truth') },
    ...(deleted ? { tombstones: { covers: deleted } } : {}),
  });
  gate.leading(o.leader ?? true);
  gate.crsListed();
  return new Backfiller({
    api,
    gate,
    inventory: watch.view,
    codec,
    settings,
    namespacePrefix: settings.toolNamespacePrefix ?? 'tool-',
    identity: 'sync-0',
    metrics: createSyncMetrics(new Registry()),
    logger: silentLogger(),
    now: o.now ?? (() => NOW),
    ...(o.onRetry ? { passes: { dueBy: o.onRetry } } : {}),
    ...(o.random ? { random: o.random } : {}),
    ...(o.inFlight === undefined ? {} : { inFlight: o.inFlight }),
  });
}

const CR = '/apis/jobs-api.toolforge.org/v1/namespaces/tool-mytool/scheduled-jobs';
const WORKLOAD = '/apis/batch/v1/namespaces/tool-mytool/cronjobs/nightly';
const notFound = () => new KubeApiError(404, 'not found', 'NotFound');

/** The API server's view: the workload is as listed (for a read), and the POST answers with `post`. */
const answering =
  (workload: unknown, post: () => unknown = () => ({})): Answer =>
  ({ method, path }) => {
    if (method === 'GET' && path === WORKLOAD) return workload;
    if (method === 'POST' && path === CR) return post();
    throw new Error(`unexpected ${method} ${path}`);
  };

describe('Backfiller', () => {
  const workload = () => loadWorkload('v2-scheduled-relative-logs') as { metadata: Record<string, unknown> };
  const deleting = () =>
    Object.assign(workload(), { metadata: { ...workload().metadata, deletionTimestamp: '2026-11-26T11:59:00Z' } });
  const young = () =>
    Object.assign(workload(), {
      metadata: { ...workload().metadata, creationTimestamp: new Date(NOW - 5000).toISOString() },
    });
  const newer = () => Object.assign(workload(), { metadata: { ...workload().metadata, resourceVersion: '610023999' } });

  test('outcomes of one backfill: the live watch is read, not the API server; a POST never overwrites', async () => {
    let phase: Phase = 'runtime-truth';
    const cases: Array<{
      name: string;
      answer: Answer;
      /** What the watch holds when the backfill runs (default: the workload as listed, its job kept, no CR). */
      watch?: (w: Watch, b: Backfiller, listed: RuntimeEntry) => void;
      leader?: boolean;
      deleted?: boolean;
      expect: Omit<BackfillResult, 'tool' | 'name' | 'type'>;
      requests: string[];
    }> = [
      {
        name: 'created',
        answer: answering(workload()),
        expect: { outcome: 'created' },
        requests: [`POST ${CR}`],
      },
      {
        name: 'the CR existed (the CR informer holds it)',
        answer: ({ path }) => assert.fail(`unexpected ${path}`),
        watch: (w) => w.cr(workload()),
        expect: { outcome: 'existed' },
        requests: [],
      },
      {
        name: 'the workload is gone (the workload informer saw it go)',
        answer: ({ path }) => assert.fail(`unexpected ${path}`),
        watch: (w, _, listed) => w.workloadGone(listed),
        expect: { outcome: 'skipped', reason: 'the workload is gone' },
        requests: [],
      },
      {
        name: 'the workload is being deleted',
        answer: answering(workload()),
        watch: (w) => w.workload(deleting(), true),
        expect: { outcome: 'skipped', reason: 'the workload changed: being deleted or no longer a readable job' },
        requests: [],
      },
      {
        name: '409 on the POST: jobs-api created it first',
        answer: answering(workload(), () => {
          throw new KubeApiError(409, 'already exists', 'AlreadyExists');
        }),
        expect: { outcome: 'existed' },
        requests: [`POST ${CR}`],
      },
      {
        name: 'the phase changed before the POST (the race guard)',
        answer: answering(workload()),
        watch: (w) => {
          // jobs-api became the only writer while the workload was read again.
          w.onRead = () => (phase = 'ignore-unmanaged');
        },
        expect: { outcome: 'skipped', reason: 'not the writer in this phase' },
        requests: [],
      },
      {
        name: 'tombstoned: the CR was seen deleted while the workload stood',
        deleted: true,
        answer: answering(workload()),
        expect: { outcome: 'skipped', reason: 'the job was deleted: its CR was seen deleted' },
        requests: [],
      },
      {
        name: 'not the leader',
        leader: false,
        answer: answering(workload()),
        expect: { outcome: 'skipped', reason: 'not the writer in this phase' },
        requests: [],
      },
      {
        name: 'no job kept (listed while the phase did not backfill): the workload is read once',
        answer: answering(workload()),
        watch: (w, _, listed) => w.inventory.candidates.release(listed),
        expect: { outcome: 'created' },
        requests: [`GET ${WORKLOAD}`, `POST ${CR}`],
      },
      {
        name: 'no job kept, and the read answers 404',
        answer: ({ path }) => {
          throw path === WORKLOAD ? notFound() : new Error(path);
        },
        watch: (w, _, listed) => w.inventory.candidates.release(listed),
        expect: { outcome: 'skipped', reason: 'the workload is gone' },
        requests: [`GET ${WORKLOAD}`],
      },
      {
        name: 'no job kept, and the read finds it being deleted',
        answer: answering(deleting()),
        watch: (w, _, listed) => w.inventory.candidates.release(listed),
        expect: { outcome: 'skipped', reason: 'the workload changed: being deleted or no longer a readable job' },
        requests: [`GET ${WORKLOAD}`],
      },
      {
        name: 'a workload created seconds ago (jobs-api may be deleting its job right now) is read once',
        answer: answering(young()),
        watch: (w) => w.workload(young(), true),
        expect: { outcome: 'created' },
        requests: [`GET ${WORKLOAD}`, `POST ${CR}`],
      },
      {
        name: 'the job kept is of an older resourceVersion than the watch holds: the workload is read once',
        answer: answering(newer()),
        watch: (w) => w.workload(newer()),
        expect: { outcome: 'created' },
        requests: [`GET ${WORKLOAD}`, `POST ${CR}`],
      },
    ];
    for (const c of cases) {
      phase = 'runtime-truth';
      const { api, calls } = fakeApi(c.answer);
      const watch = new Watch();
      const b = backfiller(api, watch, {
        phase: () => phase,
        ...(c.leader === undefined ? {} : { leader: c.leader }),
        deleted: (fresh) => (c.deleted ?? false) && fresh.workload.name === 'nightly',
      });
      const listed = watch.workload(workload(), true);
      c.watch?.(watch, b, listed);
      const results = await b.run([listed]);
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

  test('a CR written is not written again before the watch sees it; a job no longer awaited loses what was kept', async () => {
    const { api, calls } = fakeApi(answering(workload()));
    const requests = () => calls.splice(0).map((r) => `${r.method} ${r.path}`);
    const watch = new Watch();
    const b = backfiller(api, watch);
    const listed = watch.workload(workload(), true);
    const created = [{ tool: 'mytool', name: 'nightly', type: 'scheduled', outcome: 'created' }];
    assert.deepEqual(await b.run([listed]), created);
    assert.deepEqual(requests(), [`POST ${CR}`]);
    // A pass before the CR's watch event plans the job again: nothing is written, nothing counted.
    assert.deepEqual(await b.run([listed]), []);
    assert.deepEqual(requests(), []);
    assert.deepEqual(b.outcomes, { created: 1, existed: 0, skipped: 0, failed: 0 });
    // Once the watch holds the CR, a backfill (there should be none) finds it there.
    watch.cr(workload());
    assert.deepEqual(await b.run([listed]), [{ ...created[0], outcome: 'existed' }]);
    assert.deepEqual(requests(), []);

    // A job that no longer waits for a CR (the pass's retain) loses the job kept for it: a later backfill reads it.
    const again = new Watch();
    const b2 = backfiller(api, again);
    const kept = again.workload(workload(), true);
    b2.retain('mytool', new Set());
    assert.deepEqual(await b2.run([kept]), created);
    assert.deepEqual(requests(), [`GET ${WORKLOAD}`, `POST ${CR}`]);
  });

  test('at most inFlight write at once, across calls, in the order they were dispatched', async () => {
    const posted: string[] = [];
    const waiting: Array<() => void> = [];
    let open = 0;
    let most = 0;
    const request = (method: string, path: string, o?: { json?: string }) => {
      assert.equal(`${method} ${path}`, `POST ${CR}`);
      posted.push((sent(o) as { metadata: { name: string } }).metadata.name);
      open += 1;
      most = Math.max(most, open);
      return new Promise<undefined>((resolve) =>
        waiting.push(() => {
          open -= 1;
          resolve(undefined);
        }),
      );
    };
    const watch = new Watch();
    const b = backfiller({ request: request as KubeApi['request'] }, watch, { inFlight: 3 });
    const template = workload();
    const entries = Array.from({ length: 9 }, (_, i) =>
      watch.workload({ ...template, metadata: { ...template.metadata, name: `job-${i}` } }, true),
    );
    const first = b.run(entries.slice(0, 5));
    const second = b.run(entries.slice(5));
    assert.equal(b.pending, 9);
    while (posted.length < 9 || waiting.length > 0) {
      await new Promise((resolve) => setImmediate(resolve));
      waiting.shift()?.();
    }
    const names = (results: BackfillResult[]) => results.map((r) => `${r.name} ${r.outcome}`);
    assert.deepEqual(
      names(await first),
      ['job-0', 'job-1', 'job-2', 'job-3', 'job-4'].map((n) => `${n} created`),
    );
    assert.deepEqual(
      names(await second),
      ['job-5', 'job-6', 'job-7', 'job-8'].map((n) => `${n} created`),
    );
    assert.deepEqual(
      posted,
      entries.map((e) => e.name),
    );
    assert.equal(most, 3);
    assert.equal(b.pending, 0);
  });

  test('outcomes are counted however many there are; the history keeps the last few thousand', async () => {
    const { api } = fakeApi(({ method, path }) => assert.fail(`unexpected ${method} ${path}`));
    const watch = new Watch();
    const b = backfiller(api, watch);
    const template = workload();
    const entries = Array.from({ length: 12_001 }, (_, i) => {
      const w = { ...template, metadata: { ...template.metadata, name: `job-${i}` } };
      watch.cr(w);
      return watch.workload(w, true);
    });
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
    const watch = new Watch();
    const b = backfiller(api, watch, { onRetry: (tool, at) => retries.push([tool, at]), random: () => 0.5 });
    const entry = watch.workload(workload(), true);
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
    const watch = new Watch();
    const b = backfiller(api, watch, { random: () => jitter, now: () => now });
    const entry = watch.workload(workload(), true);
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
      request: ((method: string, path: string, o?: { body?: unknown; json?: string }) => {
        if (method === 'POST') posted = sent(o) as JobCr;
        return api.request(method, path, o);
      }) as KubeApi['request'],
    };
    const watch = new Watch();
    const b = backfiller(capture, watch);
    await b.run([watch.workload(workload(), true)]);
    assert.equal(posted?.kind, 'ScheduledJob');
    assert.equal(posted?.metadata.namespace, 'tool-mytool');
    assert.deepEqual(posted?.metadata.annotations, {
      [PROVENANCE_ANNOTATIONS.backfilledBy]: 'sync-0',
      [PROVENANCE_ANNOTATIONS.backfilledAt]: '2026-11-26T12:00:00.000Z',
      [PROVENANCE_ANNOTATIONS.sourceVersions]: JSON.stringify({ 'CronJob/nightly': '610023311' }),
    });
  });
});

describe('the CR a backfill POSTs, built as text from the job kept as JSON', () => {
  test('is the text of the CR jobs-api encoding gives, for every workload fixture and namespace prefix', () => {
    let compared = 0;
    for (const prefix of ['tool-', 'tf-tool-']) {
      const settings: RuntimeSettings = { ...DEFAULT_RUNTIME_SETTINGS, toolNamespacePrefix: prefix };
      for (const name of listWorkloads()) {
        const workload = loadWorkload(name) as { metadata: { namespace: string } };
        const tool = toolOfNamespace(workload.metadata.namespace, 'tool-', { jobsApiFallback: true }) ?? '';
        workload.metadata.namespace = namespaceOfTool(tool, prefix);
        const read = workloadEntry(workload, contexts(settings).reread);
        if (read?.what !== 'job' || !read.entry.parsed.ok) continue;
        const job = read.entry.parsed.value;
        const provenances: Provenance[] = [
          {},
          { backfilledBy: 'sync-0', backfilledAt: '2026-11-26T12:00:00.000Z' },
          {
            backfilledBy: 'sync-0',
            backfilledAt: '2026-11-26T12:00:00.000Z',
            source: { kind: 'CronJob', name: 'a"b', resourceVersion: '42' },
          },
        ];
        for (const provenance of provenances) {
          assert.equal(
            backfillCrText(jobText(job), provenance, { codec, namespacePrefix: prefix }),
            JSON.stringify(backfillCr(job, provenance, { codec, namespacePrefix: prefix })),
            `${name} (${prefix})`,
          );
          compared += 1;
        }
      }
    }
    // Every stored job fixture (scheduled and continuous, every era), not a few.
    assert.ok(compared >= 3 * 2 * 10, `only ${compared} comparisons`);
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

        // The job kept from the watch, and the workload read again when none is kept: the same CR either way.
        for (const kept of [true, false]) {
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
          const watch = new Watch(settings);
          const b = backfiller(api, watch, { settings });
          const [result] = await b.run([watch.workload(workload, kept)]);
          assert.equal(result?.outcome, 'created', name);
          const annotations = { ...posted?.metadata.annotations };
          delete annotations[PROVENANCE_ANNOTATIONS.backfilledBy];
          delete annotations[PROVENANCE_ANNOTATIONS.backfilledAt];
          assert.deepEqual({ ...posted, metadata: { ...posted?.metadata, annotations } }, previewed.cr, name);
        }
      }
    });
  }
});
