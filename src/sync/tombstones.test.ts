import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RuntimeEntry, StorageEntry, ToolInventory } from './reconcile.js';
import { CHECKPOINT_SLACK_MS, Tombstones } from './tombstones.js';
import type { Checkpoint } from './tombstones.js';

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

const checkpoint = (at: number, unmatched: string[] | null, tombstones: Checkpoint['tombstones'] = []): Checkpoint => ({
  at,
  unmatched: unmatched && new Set(unmatched),
  tombstones,
});

/**
 * After a restart: which workloads found without a CR the restored checkpoints tombstone. The checkpoint was taken
 * at NOW - 10 min; the workload's CR (if any) is as listed now.
 */
test('a restart restores persisted tombstones and tombstones what went away while no replica ran', () => {
  const AT = NOW - 600_000;
  const old = AT - CHECKPOINT_SLACK_MS - 60_000;
  const cases: Array<{ case: string; w: RuntimeEntry; crNow?: boolean; c: Checkpoint[]; want: string | undefined }> = [
    {
      case: 'with its CR at the checkpoint, without one now',
      w: workload('a', 'uid-a', old),
      c: [checkpoint(AT, [])],
      want: 'away',
    },
    { case: 'with its CR now', w: workload('a', 'uid-a', old), crNow: true, c: [checkpoint(AT, [])], want: undefined },
    {
      case: 'without a CR at the checkpoint too (a backfill candidate)',
      w: workload('a', 'uid-a', old),
      c: [checkpoint(AT, ['alpha/scheduled/a'])],
      want: undefined,
    },
    {
      case: 'created within the slack before the checkpoint (maybe not watched yet)',
      w: workload('a', 'uid-a', AT - CHECKPOINT_SLACK_MS + 1000),
      c: [checkpoint(AT, [])],
      want: undefined,
    },
    {
      case: 'created after the checkpoint',
      w: workload('a', 'uid-a', AT + 1000),
      c: [checkpoint(AT, [])],
      want: undefined,
    },
    {
      case: 'a checkpoint that kept no unmatched jobs (too many) is no evidence',
      w: workload('a', 'uid-a', old),
      c: [checkpoint(AT, null)],
      want: undefined,
    },
    {
      case: 'one checkpoint saw it unmatched, a later one with its CR: the later one tells',
      w: workload('a', 'uid-a', old),
      c: [checkpoint(AT - 60_000, ['alpha/scheduled/a']), checkpoint(AT, [])],
      want: 'away',
    },
    {
      case: 'a persisted tombstone of this workload',
      w: workload('a', 'uid-a', AT + 1000),
      c: [checkpoint(AT, null, [{ tool: 'alpha', type: 'scheduled', name: 'a', at: AT + 2000, workloadUid: 'uid-a' }])],
      want: 'seen',
    },
    {
      case: 'a persisted tombstone of another workload of that name (created again since)',
      w: workload('a', 'uid-a2', AT + 1000),
      c: [checkpoint(AT, null, [{ tool: 'alpha', type: 'scheduled', name: 'a', at: AT - 1000, workloadUid: 'uid-a' }])],
      want: undefined,
    },
    {
      case: 'a persisted tombstone of a workload not seen at the delete, created before it',
      w: workload('a', 'uid-a', AT - 5000),
      c: [checkpoint(AT, null, [{ tool: 'alpha', type: 'scheduled', name: 'a', at: NOW - 1000 }])],
      want: 'seen',
    },
  ];
  for (const k of cases) {
    const t = new Tombstones();
    t.restore(k.c);
    const [r] = t.mark(inv([k.w], k.crNow ? [cr('a')] : []), NOW, { record: true }).runtime;
    const got = r?.crDeleted === undefined ? undefined : r.crDeleted.away ? 'away' : 'seen';
    assert.equal(got, k.want, k.case);
    assert.equal(t.covers(k.w), k.want !== undefined, `${k.case}: the write path's last check agrees`);
    if (k.want === 'away') assert.equal(r?.crDeleted?.at, AT, `${k.case}: dated at the checkpoint`);
  }
});

test('restored evidence is spent by the first pass; held tombstones round-trip', () => {
  const AT = NOW - 600_000;
  const t = new Tombstones();
  t.restore([checkpoint(AT, [])]);
  const old = workload('a', 'uid-a', AT - 120_000);
  assert.deepEqual(
    t.mark(inv([old]), NOW, { record: false }).runtime.filter((r) => r.crDeleted),
    [],
    'an on-demand plan applies no evidence',
  );
  t.restored();
  assert.deepEqual(marked(t, inv([old])), [], 'after the first pass a workload without a CR is a candidate again');

  const w = workload('b', 'uid-b');
  t.crGone(w, w, NOW);
  assert.equal(t.size, 1);
  assert.deepEqual(t.held(), [{ tool: 'alpha', type: 'scheduled', name: 'b', at: NOW, workloadUid: 'uid-b' }]);
  const next = new Tombstones();
  next.restore([checkpoint(NOW, [], t.held())]);
  assert.equal(next.covers(w), true);
  assert.deepEqual(next.tools(), ['alpha']);
});
