import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configSchema } from '../config/schema.js';
import { createLogger, silentLogger } from '../log/logger.js';
import type { Logger } from '../log/logger.js';
import { Registry } from 'prom-client';
import { createSharedMetrics, reportPhase } from '../metrics/registry.js';
import type { SharedMetrics } from '../metrics/registry.js';
import { KubeApiError } from '../k8s/api.js';
import type { KubeApi, ListPage, WatchEvent } from '../k8s/api.js';
import { PhaseSource } from './source.js';
import type { Phase } from './behaviour.js';

interface ConfigMap {
  metadata: { name: string; namespace: string; resourceVersion: string };
  data?: Record<string, string>;
}

/** The two calls the informer makes, scripted: list answers from `objects` (or `listError`), watches stay open. */
class FakeApi {
  objects: ConfigMap[] = [];
  listError: Error | undefined;
  lists = 0;
  private rv = 1;
  private watches: Array<{ onEvent: (e: WatchEvent<ConfigMap>) => void; fail: (err: Error) => void }> = [];

  async *listPages(): AsyncGenerator<ListPage<ConfigMap>> {
    this.lists += 1;
    if (this.listError) throw this.listError;
    yield { items: structuredClone(this.objects), resourceVersion: String(this.rv) };
  }

  watch(
    _path: string,
    _query: unknown,
    onEvent: (e: WatchEvent<ConfigMap>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      const entry = { onEvent, fail: reject };
      this.watches.push(entry);
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  emit(type: WatchEvent<ConfigMap>['type'], object: ConfigMap): void {
    this.rv += 1;
    object.metadata.resourceVersion = String(this.rv);
    if (type === 'DELETED') this.objects = this.objects.filter((o) => o.metadata.name !== object.metadata.name);
    else this.objects = [...this.objects.filter((o) => o.metadata.name !== object.metadata.name), object];
    for (const w of this.watches) w.onEvent({ type, object: structuredClone(object) });
  }

  get openWatches(): number {
    return this.watches.length;
  }

  breakWatches(err: Error): void {
    for (const w of this.watches.splice(0)) w.fail(err);
  }
}

const cm = (phase: string, name = 'jobs-storage-phase'): ConfigMap => ({
  metadata: { name, namespace: 'jobs-storage', resourceVersion: '1' },
  data: { phase },
});

function setup(objects: ConfigMap[] = [], logger: Logger = silentLogger()) {
  const api = new FakeApi();
  api.objects = objects;
  const metrics = createSharedMetrics(new Registry());
  const source = new PhaseSource({
    config: configSchema.parse({}),
    api: api as unknown as KubeApi,
    logger,
    report: (report) => reportPhase(metrics, report),
    sleep: () => new Promise((r) => setTimeout(r, 5)),
    random: () => 0.5,
  });
  return { api, metrics, source };
}

async function until(check: () => boolean | Promise<boolean>, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function gauge(metrics: SharedMetrics, which: 'phaseInfo' | 'phaseStale', phase?: Phase): Promise<number> {
  const { values } = await metrics[which].get();
  return values.find((v) => phase === undefined || v.labels['phase'] === phase)?.value ?? -1;
}

test('before the first read the phase is the configured initial one and not known, and no phase_info reads 1', async () => {
  const { source, metrics } = setup();
  assert.equal(source.current(), 'runtime-truth');
  assert.equal(source.known(), false);
  assert.equal(await gauge(metrics, 'phaseInfo', 'runtime-truth'), 0);
  const { values } = await metrics.phaseInfo.get();
  assert.deepEqual(
    values.filter((v) => v.value !== 0).map((v) => v.labels['phase']),
    [],
    'no phase is reported in force before the ConfigMap has been read',
  );
});

test('a ConfigMap that cannot be read at start reports stale and still no phase in force', async () => {
  const { api, source, metrics } = setup([cm('enforce')]);
  api.listError = new KubeApiError(503, 'unavailable');
  source.start();
  try {
    await until(async () => (await gauge(metrics, 'phaseStale')) === 1);
    const { values } = await metrics.phaseInfo.get();
    assert.deepEqual(
      values.filter((v) => v.value !== 0),
      [],
    );
    api.listError = undefined;
    await until(() => source.known());
    assert.equal(await gauge(metrics, 'phaseInfo', 'enforce'), 1);
    assert.equal(await gauge(metrics, 'phaseInfo', 'runtime-truth'), 0);
    assert.equal(await gauge(metrics, 'phaseStale'), 0);
  } finally {
    await source.stop();
  }
});

test('a ConfigMap found absent makes the initial phase known and reported', async () => {
  const { source, metrics } = setup();
  source.start();
  try {
    await until(() => source.known());
    assert.equal(await gauge(metrics, 'phaseInfo', 'runtime-truth'), 1);
  } finally {
    await source.stop();
  }
});

test('the ConfigMap value is the phase, and changes apply without restart with old → new events', async () => {
  const { api, source, metrics } = setup([cm('storage-truth'), cm('enforce', 'unrelated')]);
  const changes: string[] = [];
  source.onChange((next, previous) => changes.push(`${previous}→${next}`));
  source.start();
  try {
    await until(() => source.known());
    assert.equal(source.current(), 'storage-truth');
    assert.equal(await gauge(metrics, 'phaseInfo', 'storage-truth'), 1);
    assert.equal(await gauge(metrics, 'phaseInfo', 'runtime-truth'), 0);
    api.emit('MODIFIED', cm('enforce'));
    await until(() => source.current() === 'enforce');
    api.emit('MODIFIED', cm('enforce', 'unrelated'));
    api.emit('MODIFIED', cm('ignore-unmanaged', 'unrelated'));
    assert.deepEqual(changes, ['runtime-truth→storage-truth', 'storage-truth→enforce']);
    assert.equal(await gauge(metrics, 'phaseInfo', 'enforce'), 1);
  } finally {
    await source.stop();
  }
});

test('no ConfigMap means the initial phase, known; deleting it goes back to the initial phase', async () => {
  const { api, source } = setup();
  source.start();
  try {
    await until(() => source.known());
    assert.equal(source.current(), 'runtime-truth');
    api.emit('ADDED', cm('ignore-unmanaged'));
    await until(() => source.current() === 'ignore-unmanaged');
    api.emit('DELETED', cm('ignore-unmanaged'));
    await until(() => source.current() === 'runtime-truth');
  } finally {
    await source.stop();
  }
});

test('an invalid value keeps the last known phase and marks it stale until a valid one', async () => {
  const { api, source, metrics } = setup([cm('enforce')]);
  source.start();
  try {
    await until(() => source.known());
    api.emit('MODIFIED', cm('Enforce!'));
    await until(async () => (await gauge(metrics, 'phaseStale')) === 1);
    assert.equal(source.current(), 'enforce');
    api.emit('MODIFIED', cm('storage-truth'));
    await until(() => source.current() === 'storage-truth');
    assert.equal(await gauge(metrics, 'phaseStale'), 0);
  } finally {
    await source.stop();
  }
});

test('an invalid value at start leaves the phase unknown', async () => {
  const { source, metrics } = setup([{ ...cm('x'), data: {} }]);
  source.start();
  try {
    await until(async () => (await gauge(metrics, 'phaseStale')) === 1);
    assert.equal(source.known(), false);
  } finally {
    await source.stop();
  }
});

test('when the API cannot be read the last phase stays, stale is set, and a later read recovers', async () => {
  const { api, source, metrics } = setup([cm('storage-truth')]);
  source.start();
  try {
    await until(() => source.known());
    // The watch breaks and the relist it then needs (410) fails too.
    api.listError = new KubeApiError(503, 'unavailable');
    api.breakWatches(new KubeApiError(410, 'too old resource version', 'Expired'));
    await until(async () => (await gauge(metrics, 'phaseStale')) === 1);
    const lists = api.lists;
    await until(() => api.lists > lists + 1);
    assert.equal(source.current(), 'storage-truth');
    assert.equal(source.known(), true);
    api.listError = undefined;
    api.objects = [cm('enforce')];
    await until(() => source.current() === 'enforce');
    assert.equal(await gauge(metrics, 'phaseStale'), 0);
  } finally {
    await source.stop();
  }
});

test('a broken watch marks the phase stale and resumes: the next change arrives without a relist', async () => {
  const { api, source, metrics } = setup([cm('storage-truth')]);
  source.start();
  try {
    await until(() => source.known() && api.openWatches > 0);
    const lists = api.lists;
    api.breakWatches(new KubeApiError(500, 'stream broke'));
    await until(async () => (await gauge(metrics, 'phaseStale')) === 1);
    await until(() => api.openWatches > 0);
    api.emit('MODIFIED', cm('enforce'));
    await until(() => source.current() === 'enforce');
    assert.equal(await gauge(metrics, 'phaseStale'), 0);
    assert.equal(api.lists, lists, 'resumed from the last resourceVersion');
  } finally {
    await source.stop();
  }
});

test('the first read is logged at debug as "phase read", not as a change from the initial phase; a later change is', async () => {
  const lines: Array<{ level: string; msg: string; from?: string; to?: string; phase?: string }> = [];
  const logger = createLogger({
    level: 'debug',
    destination: { write: (line: string) => lines.push(JSON.parse(line)) },
  });
  const { api, source } = setup([cm('ignore-unmanaged')], logger);
  const changes: string[] = [];
  source.onChange((next, previous) => changes.push(`${previous}→${next}`));
  source.start();
  try {
    await until(() => source.known());
    assert.deepEqual(
      lines.filter((l) => l.msg.startsWith('phase')).map((l) => [l.level, l.msg, l.phase]),
      [['debug', 'phase read', 'ignore-unmanaged']],
    );
    api.emit('MODIFIED', cm('enforce'));
    await until(() => source.current() === 'enforce');
    const changed = lines.filter((l) => l.msg === 'phase changed');
    assert.deepEqual(
      changed.map((l) => [l.level, l.from, l.to]),
      [['info', 'ignore-unmanaged', 'enforce']],
    );
    assert.deepEqual(changes, ['runtime-truth→ignore-unmanaged', 'ignore-unmanaged→enforce']);
  } finally {
    await source.stop();
  }
});
