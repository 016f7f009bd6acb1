import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError } from '../errors.js';
import { groupByNamespace, sortNamespaces } from './by-namespace.js';

const obj = (namespace: string, name: string) => ({ metadata: { namespace, name } });

async function* list(objects: readonly unknown[]): AsyncGenerator<unknown> {
  for (const o of objects) {
    await Promise.resolve();
    yield o;
  }
}

async function collect(sources: AsyncIterable<unknown>[]) {
  const out: Array<[string, string[][]]> = [];
  for await (const g of groupByNamespace(sources))
    out.push([
      g.namespace,
      g.bySource.map((objs) => objs.map((o) => (o as { metadata: { name: string } }).metadata.name)),
    ]);
  return out;
}

describe('cluster-wide lists grouped by namespace', () => {
  test('objects of a namespace from every list come together, namespaces in API key order', async () => {
    const cronjobs = [obj('tool-a-b', 'c1'), obj('tool-a', 'c2'), obj('tool-c', 'c3'), obj('tool-c', 'c4')];
    const deployments = [obj('tool-a', 'd1'), obj('tool-b', 'd2')];
    const crs = [obj('tool-a-b', 's1'), obj('tool-c', 's2')];
    assert.deepEqual(await collect([list(cronjobs), list(deployments), list([]), list(crs)]), [
      ['tool-a-b', [['c1'], [], [], ['s1']]],
      ['tool-a', [['c2'], ['d1'], [], []]],
      ['tool-b', [[], ['d2'], [], []]],
      ['tool-c', [['c3', 'c4'], [], [], ['s2']]],
    ]);
  });

  test('sortNamespaces gives the same order ("a-b" before "a", as the API server sorts "a-b/…" before "a/…")', () => {
    assert.deepEqual(sortNamespaces(['tool-c', 'tool-a', 'tool-a-b', 'tool-b']), [
      'tool-a-b',
      'tool-a',
      'tool-b',
      'tool-c',
    ]);
  });

  test('a list out of namespace order ends the walk with an error rather than splitting a namespace', async () => {
    const bad = [obj('tool-b', 'x'), obj('tool-a', 'y')];
    await assert.rejects(
      collect([list(bad)]),
      (err: unknown) =>
        err instanceof AppError && err.code === 'ERR_K8S_API' && /tool-a' after 'tool-b'/.test(err.message),
    );
  });

  test('stopping early closes every list', async () => {
    let closed = 0;
    async function* tracked(objects: readonly unknown[]) {
      try {
        yield* list(objects);
      } finally {
        closed += 1;
      }
    }
    for await (const g of groupByNamespace([tracked([obj('a', '1'), obj('b', '2')]), tracked([obj('b', '3')])])) {
      assert.equal(g.namespace, 'a');
      break;
    }
    assert.equal(closed, 2);
  });
});
