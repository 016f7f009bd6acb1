import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RuntimeEntry, StorageEntry, ToolInventory } from './reconcile.js';
import { Tombstones } from './tombstones.js';

const NOW = Date.parse('2026-11-26T12:00:00Z');

const workload = (name: string, uid: string, createdAt = NOW - 60_000): RuntimeEntry => ({
  tool: 'alpha',
  type: 'scheduled',
  name,
  parsed: { ok: true, value: `fp-${name}` },
  workload: { kind: 'CronJob', namespace: 'tool-alpha', name, resourceVersion: '1', uid, createdAt, deleting: false },
});

const cr = (name: string): StorageEntry => ({
  tool: 'alpha',
  type: 'scheduled',
  name,
  resourceVersion: '2',
  deleting: false,
  decoded: { ok: true, value: `fp-${name}` },
});

const inv = (runtime: RuntimeEntry[], storage: StorageEntry[] = []): ToolInventory => ({
  tool: 'alpha',
  runtime,
  storage,
  foreign: 0,
});

const marked = (t: Tombstones, i: ToolInventory, now = NOW) =>
  t
    .mark(i, now, { record: true })
    .runtime.filter((r) => r.crDeleted !== undefined)
    .map((r) => r.name);

test('a CR seen deleted tombstones its workload until the workload is gone', () => {
  const t = new Tombstones();
  const w = workload('a', 'uid-a');
  t.crGone(w, w, NOW);
  assert.deepEqual(marked(t, inv([w, workload('b', 'uid-b')])), ['a']);
  assert.equal(t.covers(w), true);
  assert.deepEqual(marked(t, inv([])), [], 'the workload is gone');
  assert.equal(t.covers(w), false, 'forgotten with its workload');
});

test('a workload created again (a new uid) or a CR created again ends the tombstone', () => {
  const t = new Tombstones();
  const w = workload('a', 'uid-a');
  t.crGone(w, w, NOW);
  assert.deepEqual(marked(t, inv([workload('a', 'uid-a2')])), []);
  assert.equal(t.covers(w), false);
  t.crGone(w, w, NOW);
  assert.deepEqual(marked(t, inv([w], [cr('a')])), []);
  assert.equal(t.covers(w), false);
});

test('a CR deleted before its workload was seen covers a workload created no later than the delete', () => {
  const t = new Tombstones();
  const w = workload('a', 'uid-a');
  t.crGone(w, undefined, NOW);
  assert.deepEqual(marked(t, inv([])), [], 'waits for the workload to show');
  assert.deepEqual(marked(t, inv([w])), ['a']);
  const later = workload('a', 'uid-later', NOW + 5000);
  assert.equal(t.covers(later), false, 'created after the delete: another workload');
  const t2 = new Tombstones();
  t2.crGone(w, undefined, NOW);
  assert.deepEqual(marked(t2, inv([]), NOW + 61_000), [], 'a workload that never shows is forgotten');
  assert.equal(t2.covers(w), false);
});

test('an on-demand plan reads the tombstones without pruning them', () => {
  const t = new Tombstones();
  const w = workload('a', 'uid-a');
  t.crGone(w, w, NOW);
  t.mark(inv([]), NOW, { record: false });
  assert.equal(t.covers(w), true);
});
