import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { KubeApiError } from '../../k8s/api.js';
import type { RequestOptions } from '../../k8s/api.js';
import { silentLogger } from '../../log/logger.js';
import type { Logger } from '../../log/logger.js';
import { createSyncMetrics } from '../../metrics/registry.js';
import type { SyncMetrics } from '../../metrics/registry.js';
import { eventObject, REPORTING_CONTROLLER } from './decide.js';
import type { EventSubject, EventWrite } from './decide.js';
import { EventRecorder } from './recorder.js';
import type { WriteOutcome } from './recorder.js';

const NOW = Date.parse('2026-11-26T12:00:00Z');

interface Call {
  method: string;
  path: string;
  body?: unknown;
  contentType?: string | undefined;
}

/** The API server's answers, by `METHOD path`: a body, or an error to throw. Unlisted requests answer {}. */
class FakeApi {
  readonly calls: Call[] = [];
  constructor(private readonly answers: Record<string, unknown> = {}) {}
  request(method: string, path: string, options: RequestOptions = {}): Promise<never> {
    this.calls.push({ method, path, body: options.body, contentType: options.contentType });
    const answer = this.answers[`${method} ${path}`];
    if (answer instanceof Error) return Promise.reject(answer);
    return Promise.resolve((options.answer === 'discard' ? undefined : (answer ?? {})) as never);
  }
}

const subject = (name: string): EventSubject => ({
  tool: 'alpha',
  reason: 'WrittenOutsideJobsApi',
  workload: { kind: 'CronJob', namespace: 'tool-alpha', name, uid: `uid-${name}` },
});

const OPTIONS = {
  phase: 'ignore-unmanaged' as const,
  now: NOW,
  texts: { deadline: '', migrationUrl: 'https://example.org/migrate' },
  reporting: { controller: REPORTING_CONTROLLER, instance: 'sync-0' },
};

const create = (name: string): EventWrite => {
  const event = eventObject(subject(name), OPTIONS);
  return { op: 'create', key: event.metadata.name, tool: 'alpha', event };
};

const repeat = (name: string, count: number): EventWrite => {
  const event = eventObject(subject(name), OPTIONS);
  return {
    op: 'repeat',
    key: event.metadata.name,
    tool: 'alpha',
    event,
    count,
    observedAt: '2026-11-26T12:30:00.000000Z',
  };
};

const EVENTS = '/apis/events.k8s.io/v1/namespaces/tool-alpha/events';

function recorder(
  api: FakeApi,
  o: { ratePerSecond?: number; burst?: number; queueSize?: number; logger?: Logger } = {},
): { rec: EventRecorder; metrics: SyncMetrics } {
  const metrics = createSyncMetrics(new Registry());
  const rec = new EventRecorder({
    api,
    logger: o.logger ?? silentLogger(),
    metrics,
    ratePerSecond: o.ratePerSecond ?? 1000,
    burst: o.burst ?? 100,
    queueSize: o.queueSize ?? 100,
    now: () => NOW,
  });
  return { rec, metrics };
}

/** Submits and resolves with how the write ended. */
const written = (rec: EventRecorder, write: EventWrite): Promise<WriteOutcome> =>
  new Promise((resolve) => assert.ok(rec.submit(write, resolve)));

async function counts(metrics: SyncMetrics): Promise<Record<string, number>> {
  const values = (await metrics.events.get()).values;
  return Object.fromEntries(values.map((v) => [String(v.labels['result']), v.value]));
}

describe('EventRecorder', () => {
  test('creates a series with one POST of the Event to the tool namespace', async () => {
    const api = new FakeApi();
    const { rec, metrics } = recorder(api);
    const w = create('daily');
    assert.deepEqual(await written(rec, w), { written: true, count: 1, at: NOW });
    assert.deepEqual(api.calls, [{ method: 'POST', path: EVENTS, body: w.event, contentType: undefined }]);
    assert.deepEqual(await counts(metrics), { created: 1, repeated: 0, failed: 0, dropped: 0 });
  });

  test('a create that meets an existing series (409) reads its count and bumps it', async () => {
    const w = create('daily');
    const path = `${EVENTS}/${w.event.metadata.name}`;
    const api = new FakeApi({
      [`POST ${EVENTS}`]: new KubeApiError(409, 'exists', 'AlreadyExists'),
      [`GET ${path}`]: { series: { count: 6, lastObservedTime: '2026-11-26T11:00:00.000000Z' } },
    });
    const { rec, metrics } = recorder(api);
    assert.deepEqual(await written(rec, w), { written: true, count: 7, at: NOW });
    assert.deepEqual(
      api.calls.map((c) => [c.method, c.body, c.contentType]),
      [
        ['POST', w.event, undefined],
        ['GET', undefined, undefined],
        [
          'PATCH',
          { series: { count: 7, lastObservedTime: '2026-11-26T12:00:00.000000Z' } },
          'application/merge-patch+json',
        ],
      ],
    );
    assert.equal((await counts(metrics))['repeated'], 1);
  });

  test('a 409 on a series created once (no series yet) makes its count 2', async () => {
    const w = create('daily');
    const api = new FakeApi({ [`POST ${EVENTS}`]: new KubeApiError(409, 'exists', 'AlreadyExists') });
    const { rec } = recorder(api);
    assert.deepEqual(await written(rec, w), { written: true, count: 2, at: NOW });
  });

  test('a repeat PATCHes series.count and series.lastObservedTime only', async () => {
    const api = new FakeApi();
    const { rec } = recorder(api);
    const w = repeat('daily', 3);
    assert.deepEqual(await written(rec, w), { written: true, count: 3, at: NOW });
    assert.deepEqual(api.calls, [
      {
        method: 'PATCH',
        path: `${EVENTS}/${w.event.metadata.name}`,
        body: { series: { count: 3, lastObservedTime: '2026-11-26T12:30:00.000000Z' } },
        contentType: 'application/merge-patch+json',
      },
    ]);
  });

  test('a repeat of a series the API server let expire (404) creates it afresh', async () => {
    const w = repeat('daily', 3);
    const api = new FakeApi({
      [`PATCH ${EVENTS}/${w.event.metadata.name}`]: new KubeApiError(404, 'gone', 'NotFound'),
    });
    const { rec, metrics } = recorder(api);
    assert.deepEqual(await written(rec, w), { written: true, count: 1, at: NOW });
    assert.equal(api.calls[1]?.method, 'POST');
    assert.equal((api.calls[1]?.body as { eventTime: string }).eventTime, '2026-11-26T12:30:00.000000Z');
    assert.equal((await counts(metrics))['created'], 1);
  });

  test('a failure is logged with its fields and counted, and reported to the emitter', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        cb();
      },
    });
    const api = new FakeApi({ [`POST ${EVENTS}`]: new KubeApiError(403, 'forbidden: events', 'Forbidden') });
    const { rec, metrics } = recorder(api, { logger: pino({ level: 'info' }, sink) });
    const w = create('daily');
    assert.deepEqual(await written(rec, w), { written: false, at: NOW });
    assert.deepEqual(await counts(metrics), { created: 0, repeated: 0, failed: 1, dropped: 0 });
    const [line] = lines;
    assert.equal(line?.['msg'], 'could not write event');
    assert.deepEqual(
      [line?.['tool'], line?.['namespace'], line?.['event'], line?.['reason'], line?.['regarding'], line?.['op']],
      ['alpha', 'tool-alpha', w.event.metadata.name, 'WrittenOutsideJobsApi', 'CronJob/daily', 'create'],
    );
    const err = line?.['err'] as Record<string, unknown> | undefined;
    assert.deepEqual([err?.['status'], err?.['reason'], err?.['message']], [403, 'Forbidden', 'forbidden: events']);
  });

  test('submit never waits for the API server; a full queue drops the write and counts it', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const api = new FakeApi();
    const slow = {
      request: async (method: string, path: string, options?: RequestOptions) => {
        await held;
        return api.request(method, path, options);
      },
    };
    const metrics = createSyncMetrics(new Registry());
    const rec = new EventRecorder({
      api: slow,
      logger: silentLogger(),
      metrics,
      ratePerSecond: 1000,
      burst: 100,
      queueSize: 2,
    });
    const done: WriteOutcome[] = [];
    // The first is taken off the queue at once and waits on the API server; two more fit the queue; the fourth not.
    const accepted = ['a', 'b', 'c', 'd'].map((n) => rec.submit(create(n), (o) => done.push(o)));
    assert.deepEqual(accepted, [true, true, true, false]);
    assert.equal(done.length, 0, 'nothing was awaited by the caller');
    assert.equal((await counts(metrics))['dropped'], 1);
    release();
    await rec.stop();
    assert.ok(done.length >= 1, 'the write in flight finished before stop resolved');
  });

  test('writes are spaced by the token bucket: a burst at once, then one per 1/rate seconds', async () => {
    const api = new FakeApi();
    const metrics = createSyncMetrics(new Registry());
    const rec = new EventRecorder({
      api,
      logger: silentLogger(),
      metrics,
      ratePerSecond: 20,
      burst: 2,
      queueSize: 10,
    });
    const started = Date.now();
    const ends = await Promise.all(
      ['a', 'b', 'c', 'd', 'e'].map((n) => written(rec, create(n)).then(() => Date.now())),
    );
    const last = Math.max(...ends) - started;
    // Two at once, then three more at 50 ms each.
    assert.ok(last >= 140, `the fifth write came after ${last} ms`);
    assert.equal(api.calls.length, 5);
    await rec.stop();
  });

  test('stop drops what is queued and refuses more', async () => {
    const api = new FakeApi();
    const { rec, metrics } = recorder(api, { ratePerSecond: 1, burst: 1 });
    rec.submit(create('a'), () => undefined);
    rec.submit(create('b'), () => undefined);
    await rec.stop();
    assert.equal(rec.queued, 0);
    assert.equal(
      rec.submit(create('c'), () => undefined),
      false,
    );
    assert.equal(api.calls.length, 1);
    assert.equal((await counts(metrics))['dropped'], 1);
  });
});
