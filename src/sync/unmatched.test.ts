import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RuntimeEntry, StorageEntry, ToolInventory } from './reconcile.js';
import { UnmatchedSince } from './unmatched.js';

const workload = (name: string): RuntimeEntry => ({
  tool: 'alpha',
  type: 'scheduled',
  name,
  workload: {
    kind: 'CronJob',
    namespace: 'tool-alpha',
    name,
    resourceVersion: '1',
    uid: `uid-${name}`,
    createdAt: 0,
    deleting: false,
  },
  parsed: { ok: true, value: `fp-${name}` },
});

const cr = (name: string): StorageEntry => ({
  tool: 'alpha',
  type: 'scheduled',
  name,
  resourceVersion: '2',
  deleting: false,
  decoded: { ok: true, value: `fp-${name}` },
});

const inventory = (runtime: string[], storage: string[]): ToolInventory => ({
  tool: 'alpha',
  runtime: runtime.map(workload),
  storage: storage.map(cr),
  foreign: 0,
});

const sinceOf = (inv: ToolInventory) =>
  Object.fromEntries(inv.runtime.map((r) => [r.name, r.unmatchedSince ?? null] as const));

test('a runtime job without a CR is marked from the pass that first saw it so, until it has one', () => {
  const unmatched = new UnmatchedSince();
  const steps: Array<
    [now: number, record: boolean, runtime: string[], storage: string[], since: object, waiting: string[]]
  > = [
    // An on-demand plan before any pass knows nothing.
    [500, false, ['a', 'b'], ['b'], { a: null, b: null }, ['scheduled/a']],
    [1000, true, ['a', 'b'], ['b'], { a: 1000, b: null }, ['scheduled/a']],
    // Later passes and on-demand plans keep the first time.
    [2000, true, ['a', 'b'], ['b'], { a: 1000, b: null }, ['scheduled/a']],
    [2500, false, ['a', 'b'], ['b'], { a: 1000, b: null }, ['scheduled/a']],
    // The CR appears: nothing waits, and the time is forgotten.
    [3000, true, ['a', 'b'], ['a', 'b'], { a: null, b: null }, []],
    [4000, true, ['a', 'b'], ['b'], { a: 4000, b: null }, ['scheduled/a']],
  ];
  for (const [now, record, runtime, storage, since, waiting] of steps) {
    const input = inventory(runtime, storage);
    const marked = unmatched.mark(input, now, { record });
    assert.deepEqual(sinceOf(marked.inventory), since, `at ${now}`);
    assert.deepEqual([...marked.waiting], waiting, `at ${now}`);
    assert.equal(input.runtime[0]?.unmatchedSince, undefined, 'the inventory given is left as it was');
  }
});

test('the keys of the jobs a pass saw without a CR, for a checkpoint; none past the limit', () => {
  const unmatched = new UnmatchedSince();
  unmatched.mark(inventory(['a', 'b', 'c'], ['b']), 1000, { record: true });
  assert.deepEqual(unmatched.keys(2), ['alpha/scheduled/a', 'alpha/scheduled/c']);
  assert.equal(unmatched.keys(1), null);
  unmatched.mark(inventory(['a', 'b', 'c'], ['a', 'b', 'c']), 2000, { record: true });
  assert.deepEqual(unmatched.keys(1), []);
});
