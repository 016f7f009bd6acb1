import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { silentLogger } from '../log/logger.js';
import { KubeApiError } from './api.js';
import type { KubeApi, ListPage, WatchEvent } from './api.js';
import { Gate } from './gate.js';
import { Informer, ObjectStore } from './informer.js';

interface Obj {
  metadata: { name: string; namespace: string; resourceVersion: string };
}

const obj = (name: string, rv: string): Obj => ({ metadata: { name, namespace: 'tool-a', resourceVersion: rv } });

/** An API server stand-in that serves pages from `objects` and runs each watch through `watchScript`. */
function fakeApi(o: {
  objects: () => Obj[];
  listError?: (call: number) => Error | undefined;
  watchScript: (call: number, emit: (e: WatchEvent<Obj>) => void, signal: AbortSignal) => Promise<void>;
  onWatch?: (query: Record<string, unknown>) => void;
}) {
  const calls = { list: 0, watch: 0, pages: 0 };
  const api = {
    async *listPages(_path: string, query: { limit: number }): AsyncGenerator<ListPage<Obj>> {
      calls.list += 1;
      const err = o.listError?.(calls.list);
      if (err) throw err;
      const all = o.objects();
      for (let i = 0; i < Math.max(1, all.length); i += query.limit) {
        calls.pages += 1;
        yield { items: all.slice(i, i + query.limit), resourceVersion: '100' };
      }
    },
    async watch(_path: string, q: Record<string, unknown>, onEvent: (e: WatchEvent<Obj>) => void, signal: AbortSignal) {
      calls.watch += 1;
      o.onWatch?.(q);
      await o.watchScript(calls.watch, onEvent, signal);
    },
  };
  return { api: api as unknown as KubeApi, calls };
}

function informer(
  api: KubeApi,
  sleeps: number[],
  extra: Partial<ConstructorParameters<typeof Informer<Obj, string>>[0]> = {},
) {
  return new Informer<Obj, string>({
    name: 'test',
    api,
    path: '/x',
    pageSize: 2,
    relistSeconds: 600,
    stallSeconds: 120,
    transform: (x) => x.metadata.resourceVersion,
    logger: silentLogger(),
    sleep: (ms) => {
      sleeps.push(ms);
      return new Promise((resolve) => setImmediate(resolve));
    },
    random: () => 1,
    ...extra,
  });
}

const waitUntil = async (cond: () => boolean, what: string) => {
  const deadline = Date.now() + 5000;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.ok(cond(), what);
};

describe('Informer', () => {
  test('lists every page, then applies watch events to the store', async () => {
    const { api } = fakeApi({
      objects: () => [obj('a', '1'), obj('b', '2'), obj('c', '3')],
      watchScript: async (call, emit, signal) => {
        if (call === 1) {
          emit({ type: 'MODIFIED', object: obj('a', '4') });
          emit({ type: 'DELETED', object: obj('b', '5') });
          emit({ type: 'BOOKMARK', object: obj('', '6') });
        }
        await new Promise((r) => signal.addEventListener('abort', r));
      },
    });
    const changes: string[] = [];
    const inf = informer(api, [], { onChange: (ns, name, e) => changes.push(`${ns}/${name}=${e ?? '-'}`) });
    inf.start();
    await inf.waitForSync();
    await waitUntil(() => inf.store.size === 2, 'events applied');
    const held = [...inf.store.entries()].map(([ns, name, e]) => [`${ns}/${name}`, e]);
    assert.deepEqual(Object.fromEntries(held), { 'tool-a/a': '4', 'tool-a/c': '3' });
    assert.ok(changes.includes('tool-a/b=-'));
    await inf.stop();
  });

  test('a watch that keeps dying right after the list backs off further each time', async () => {
    const { api, calls } = fakeApi({
      objects: () => [obj('a', '1')],
      watchScript: async () => {
        throw new KubeApiError(403, 'watch is forbidden');
      },
    });
    const sleeps: number[] = [];
    const errors: string[] = [];
    const inf = informer(api, sleeps, { onError: (stage) => errors.push(stage) });
    inf.start();
    await waitUntil(() => sleeps.length >= 5, 'five backoffs');
    await inf.stop();
    assert.ok(
      sleeps.every((ms, i) => i === 0 || ms >= (sleeps[i - 1] ?? 0)),
      `growing: ${sleeps.join(',')}`,
    );
    assert.ok((sleeps[4] ?? 0) > (sleeps[0] ?? 0), 'grew');
    assert.ok(
      errors.every((s) => s === 'watch'),
      'counted as watch errors',
    );
    assert.equal(calls.list, 1, 'a failed watch resumes; it does not relist');
    assert.ok(calls.watch >= 5);
  });

  test('a watch that fails resumes from the last resourceVersion it saw, without a relist', async () => {
    const resumedFrom: unknown[] = [];
    const { api, calls } = fakeApi({
      objects: () => [obj('a', '1')],
      watchScript: async (call, emit, signal) => {
        if (call === 1) {
          emit({ type: 'MODIFIED', object: obj('a', '7') });
          throw new KubeApiError(0, 'socket hang up');
        }
        await new Promise((r) => signal.addEventListener('abort', r));
      },
      onWatch: (query) => resumedFrom.push(query['resourceVersion']),
    });
    const inf = informer(api, []);
    inf.start();
    await waitUntil(() => calls.watch >= 2, 'watch resumed');
    await inf.stop();
    assert.equal(calls.list, 1);
    assert.deepEqual(resumedFrom, ['100', '7']);
    assert.equal(inf.store.get('tool-a', 'a'), '7');
  });

  test('a single 410 relists at once; repeated 410s back off', async () => {
    const { api, calls } = fakeApi({
      objects: () => [obj('a', '1')],
      watchScript: async () => {
        throw new KubeApiError(410, 'too old resource version', 'Expired');
      },
    });
    const sleeps: number[] = [];
    const errors: string[] = [];
    const inf = informer(api, sleeps, { onError: (stage) => errors.push(stage) });
    inf.start();
    await waitUntil(() => calls.list >= 4, 'relisted');
    await inf.stop();
    assert.ok(sleeps.length < calls.list, 'the first 410 did not wait');
    assert.ok(sleeps.length > 0, 'repeated 410s did');
    assert.deepEqual(errors, [], 'an expired resourceVersion is not an error');
  });

  test('list errors are reported as list errors and retried with backoff', async () => {
    const { api } = fakeApi({
      objects: () => [obj('a', '1')],
      listError: (call) => (call < 3 ? new KubeApiError(500, 'etcd unavailable') : undefined),
      watchScript: async (_c, _e, signal) => {
        await new Promise((r) => signal.addEventListener('abort', r));
      },
    });
    const sleeps: number[] = [];
    const errors: string[] = [];
    const inf = informer(api, sleeps, { onError: (stage) => errors.push(stage) });
    inf.start();
    await inf.waitForSync();
    await inf.stop();
    assert.deepEqual(errors, ['list', 'list']);
    assert.equal(sleeps.length, 2);
  });

  test('a silent watch is presumed stalled and the resource relisted', async () => {
    const { api, calls } = fakeApi({
      objects: () => [obj('a', '1')],
      watchScript: async (_c, _e, signal) => {
        await new Promise((r) => signal.addEventListener('abort', r));
      },
    });
    const inf = informer(api, [], { stallSeconds: 1 });
    inf.start();
    await waitUntil(() => calls.list >= 2, 'relisted after the stall');
    await inf.stop();
  });

  test('a page that fails while the previous one is being transformed is a list error, not a crash', async () => {
    let lists = 0;
    const api = {
      async *listPages(): AsyncGenerator<ListPage<Obj>> {
        lists += 1;
        yield { items: [obj('a', '1')], resourceVersion: '100' };
        if (lists === 1) throw new KubeApiError(410, 'continue token expired', 'Expired');
        yield { items: [obj('b', '2')], resourceVersion: '100' };
      },
      async watch(_p: string, _q: unknown, _e: unknown, signal: AbortSignal) {
        await new Promise((r) => signal.addEventListener('abort', r));
      },
    } as unknown as KubeApi;
    const inf = informer(api, [], {
      // A transform slow enough for the next page to fail before it is awaited.
      transform: (x) => {
        const until = Date.now() + 20;
        while (Date.now() < until);
        return x.metadata.resourceVersion;
      },
    });
    inf.start();
    await inf.waitForSync();
    await inf.stop();
    assert.equal(lists, 2, 'relisted after the failed page');
    assert.equal(inf.store.size, 2);
  });

  test('a relist keeps the entries of objects whose resourceVersion is unchanged, and reports only changes', async () => {
    let list = 0;
    const { api, calls } = fakeApi({
      objects: () => [obj('a', '1'), obj('b', String(10 + list++))],
      watchScript: async () => undefined,
    });
    const transformed: string[] = [];
    const changes: string[] = [];
    const inf = informer(api, [], {
      relistSeconds: 0,
      transform: (x) => {
        transformed.push(x.metadata.name);
        return x.metadata.resourceVersion;
      },
      unchanged: (x, previous) => x.metadata.resourceVersion === previous,
      onChange: (_ns, name, e) => changes.push(`${name}=${e ?? '-'}`),
    });
    inf.start();
    await waitUntil(() => calls.list >= 3, 'relisted twice');
    await inf.stop();
    assert.equal(transformed.filter((n) => n === 'a').length, 1, 'a is transformed once');
    assert.ok(transformed.filter((n) => n === 'b').length >= 3, 'b on every list');
    assert.deepEqual(
      changes.filter((c) => c.startsWith('a=')),
      ['a=1'],
    );
  });

  test('a relist reports what it no longer lists and what changed, in place, and keeps the rest', async () => {
    let list = 0;
    const lists = [
      [obj('a', '1'), obj('b', '2'), obj('c', '3')],
      [obj('a', '1'), obj('c', '4'), obj('d', '5')],
    ];
    const { api, calls } = fakeApi({
      objects: () => lists[Math.min(list++, 1)] ?? [],
      watchScript: async () => undefined,
    });
    const changes: string[] = [];
    const inf = informer(api, [], {
      relistSeconds: 0,
      unchanged: (x, previous) => x.metadata.resourceVersion === previous,
      onChange: (_ns, name, e) => changes.push(`${name}=${e ?? '-'}`),
    });
    inf.start();
    await waitUntil(() => calls.list >= 3, 'relisted twice');
    await inf.stop();
    assert.deepEqual(changes, ['a=1', 'b=2', 'c=3', 'c=4', 'd=5', 'b=-']);
    assert.deepEqual(
      [...inf.store.entries()].map(([, name, e]) => `${name}=${e}`),
      ['a=1', 'c=4', 'd=5'],
    );
  });

  test('informers sharing a relist gate list together the first time, then relist one at a time', async () => {
    const active = { first: 0, relists: 0 };
    const most = { first: 0, relists: 0 };
    const listed = new Map<string, number>();
    const api = {
      async *listPages(path: string): AsyncGenerator<ListPage<Obj>> {
        const n = (listed.get(path) ?? 0) + 1;
        listed.set(path, n);
        const kind = n === 1 ? 'first' : 'relists';
        active[kind] += 1;
        most[kind] = Math.max(most[kind], active[kind]);
        try {
          for (let page = 0; page < 3; page++) {
            await new Promise((r) => setTimeout(r, 2));
            yield { items: [obj(`${path}-${page}`, '1')], resourceVersion: '1' };
          }
        } finally {
          active[kind] -= 1;
        }
      },
      async watch() {
        await new Promise((r) => setTimeout(r, 1));
      },
    } as unknown as KubeApi;
    const relistGate = new Gate(1);
    const informers = ['/a', '/b', '/c'].map((path) => informer(api, [], { path, relistSeconds: 0, relistGate }));
    for (const inf of informers) inf.start();
    await waitUntil(() => [...listed.values()].every((n) => n >= 4) && listed.size === 3, 'each relisted thrice');
    await Promise.all(informers.map((inf) => inf.stop()));
    assert.equal(most.first, 3, 'the first lists run together');
    assert.equal(most.relists, 1, 'relists take turns');
  });

  test('an informer waiting for its relist turn keeps watching until the turn comes', async () => {
    let releaseA!: () => void;
    const aHeld = new Promise<void>((resolve) => (releaseA = resolve));
    const lists = { '/a': 0, '/b': 0 };
    let bRelistedAfterA = false;
    let aReleased = false;
    const api = {
      async *listPages(path: '/a' | '/b'): AsyncGenerator<ListPage<Obj>> {
        const n = ++lists[path];
        // /b's first list ends after /a has taken the first turn; /a's second list holds the turn until released.
        if (path === '/b' && n === 1) await new Promise((r) => setTimeout(r, 30));
        if (path === '/a' && n === 2) await aHeld;
        if (path === '/b' && n === 2) bRelistedAfterA = aReleased;
        yield { items: [obj(`${path}-listed`, String(n))], resourceVersion: '1' };
      },
      async watch(path: string, _q: unknown, emit: (e: WatchEvent<Obj>) => void, signal: AbortSignal) {
        if (path === '/b') emit({ type: 'ADDED', object: obj('late', '9') });
        if (!signal.aborted) await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
      },
    } as unknown as KubeApi;
    const relistGate = new Gate(1);
    const [a, b] = (['/a', '/b'] as const).map((path) => informer(api, [], { path, relistSeconds: 0, relistGate }));
    a!.start();
    b!.start();
    await waitUntil(() => lists['/a'] === 2 && b!.store.get('tool-a', 'late') !== undefined, '/b watching');
    assert.equal(lists['/b'], 1, '/b waits for its turn while /a relists');
    assert.equal(b!.store.get('tool-a', 'late'), '9', "what /b's watch delivers meanwhile is applied at once");
    aReleased = true;
    releaseA();
    await waitUntil(() => lists['/b'] >= 2, '/b relisted');
    await Promise.all([a!.stop(), b!.stop()]);
    assert.ok(bRelistedAfterA, "/b relisted only once /a's relist had ended");
  });

  test('with watch false it lists once, never watches, and keeps the list until stopped', async () => {
    const { api, calls } = fakeApi({
      objects: () => [obj('a', '1'), obj('b', '2'), obj('c', '3')],
      watchScript: async () => {
        throw new Error('watched');
      },
    });
    const inf = informer(api, [], { watch: false });
    inf.start();
    await inf.waitForSync();
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(
      [...inf.store.entries()].map(([, name, e]) => `${name}=${e}`),
      ['a=1', 'b=2', 'c=3'],
    );
    assert.deepEqual({ list: calls.list, watch: calls.watch }, { list: 1, watch: 0 });
    await inf.stop();
  });
});

describe('ObjectStore', () => {
  test('a sweep deletes what was neither set nor kept since it began, and reuses the slots it frees', () => {
    const store = new ObjectStore<string>();
    store.set('ns-1', 'a', 'A');
    store.set('ns-1', 'b', 'B');
    store.set('ns-2', 'c', 'C');
    store.beginSweep();
    store.keep('ns-1', 'a');
    store.set('ns-2', 'c', 'C2');
    store.keep('ns-2', 'missing');
    assert.deepEqual(store.sweep(), [['ns-1', 'b']]);
    assert.equal(store.size, 2);
    assert.equal(store.has('ns-1', 'b'), false);
    store.set('ns-3', 'e', 'E');
    assert.deepEqual(
      [...store.entries()],
      [
        ['ns-1', 'a', 'A'],
        ['ns-2', 'c', 'C2'],
        ['ns-3', 'e', 'E'],
      ],
    );
    store.beginSweep();
    assert.deepEqual(store.sweep().length, 3);
    assert.equal(store.size, 0);
    assert.equal(store.get('ns-1', 'a'), undefined);
  });
});
