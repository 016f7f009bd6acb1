import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ToolInventory, WorkloadRef } from '../reconcile.js';
import type { EventWrite } from './decide.js';
import { ToolEvents } from './emitter.js';
import type { EventSink, WriteOutcome } from './recorder.js';

const T0 = Date.parse('2026-11-26T12:00:00Z');
const REPEAT = 1800;

/** A sink that holds each write until the test ends it. */
class HeldSink implements EventSink {
  readonly writes: Array<{ write: EventWrite; done: (o: WriteOutcome) => void }> = [];
  cleared = 0;
  accept = true;
  submit(write: EventWrite, done: (o: WriteOutcome) => void): boolean {
    if (!this.accept) return false;
    this.writes.push({ write, done });
    return true;
  }
  clear(): void {
    this.cleared += 1;
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
}

const foreign = (name: string): WorkloadRef => ({
  kind: 'CronJob',
  namespace: 'tool-alpha',
  name,
  resourceVersion: '1',
  uid: `uid-${name}`,
  createdAt: T0,
  deleting: false,
});

const inventory = (...names: string[]): ToolInventory => ({
  tool: 'alpha',
  runtime: [],
  storage: [],
  foreign: names.length,
  foreignWorkloads: names.map(foreign),
});

function emitter(): { events: ToolEvents; sink: HeldSink; clock: { now: number } } {
  const sink = new HeldSink();
  const clock = { now: T0 };
  const events = new ToolEvents({
    sink,
    identity: 'sync-0',
    texts: { deadline: '', migrationUrl: 'https://example.org/migrate' },
    repeatSeconds: REPEAT,
    graceSeconds: 60,
    now: () => clock.now,
  });
  return { events, sink, clock };
}

describe('ToolEvents', () => {
  test('only the leader writes', () => {
    const { events, sink } = emitter();
    assert.equal(events.observe(inventory('hand'), 'enforce'), undefined);
    assert.equal(sink.writes.length, 0);
    events.leading(true);
    events.observe(inventory('hand'), 'enforce');
    assert.deepEqual(
      sink.writes.map((w) => [w.write.op, w.write.event.regarding.name]),
      [['create', 'hand']],
    );
  });

  test('one series per object: passes while a write is in flight and after it add nothing until the repeat', () => {
    const { events, sink, clock } = emitter();
    events.leading(true);
    events.observe(inventory('hand'), 'enforce');
    events.observe(inventory('hand'), 'enforce');
    assert.equal(sink.writes.length, 1, 'in flight: not written twice');
    clock.now += 1000;
    sink.writes[0]?.done({ written: true, count: 1, at: clock.now });
    clock.now += 10_000;
    const due = events.observe(inventory('hand'), 'enforce');
    assert.equal(sink.writes.length, 1);
    assert.equal(due, T0 + 1000 + REPEAT * 1000, 'due again at the repeat');
    clock.now = T0 + 1000 + REPEAT * 1000;
    events.observe(inventory('hand'), 'enforce');
    const second = sink.writes[1]?.write;
    assert.equal(second?.op, 'repeat');
    assert.equal(second?.op === 'repeat' && second.count, 2);
    assert.equal(second?.event.metadata.name, sink.writes[0]?.write.event.metadata.name, 'the same series');
  });

  test('a failed or dropped write is tried again after a minute', () => {
    const { events, sink, clock } = emitter();
    events.leading(true);
    sink.accept = false;
    const dropped = events.observe(inventory('hand'), 'enforce');
    assert.equal(dropped, clock.now + 60_000, 'the pass that dropped it makes the tool due again at the retry');
    sink.accept = true;
    events.observe(inventory('hand'), 'enforce');
    assert.equal(sink.writes.length, 0, 'not at once');
    clock.now += 60_000;
    const handed = events.observe(inventory('hand'), 'enforce');
    assert.equal(sink.writes[0]?.write.op, 'create');
    assert.equal(handed, clock.now + 60_000, 'a write handed over makes the tool due again at its retry');
    sink.writes[0]?.done({ written: false, at: clock.now });
    clock.now += 59_000;
    events.observe(inventory('hand'), 'enforce');
    assert.equal(sink.writes.length, 1);
    clock.now += 1_000;
    events.observe(inventory('hand'), 'enforce');
    assert.equal(sink.writes[1]?.write.op, 'create');
  });

  test('a phase switch starts a new series; an object gone is forgotten', () => {
    const { events, sink } = emitter();
    events.leading(true);
    events.observe(inventory('hand', 'other'), 'ignore-unmanaged');
    sink.writes.forEach((w) => w.done({ written: true, count: 1, at: T0 }));
    assert.equal(events.size, 2);
    events.observe(inventory('hand'), 'enforce');
    assert.equal(events.size, 1);
    const [a, , c] = sink.writes.map((w) => w.write);
    assert.equal(c?.op, 'create');
    assert.equal(c?.event.regarding.name, 'hand');
    assert.notEqual(c?.event.metadata.name, a?.event.metadata.name);
    events.observe(inventory(), 'enforce');
    assert.equal(events.size, 0);
  });

  test('losing the Lease forgets every series and drops the queued writes', () => {
    const { events, sink } = emitter();
    events.leading(true);
    events.observe(inventory('hand'), 'enforce');
    events.leading(false);
    assert.equal(events.size, 0);
    assert.equal(sink.cleared, 1);
    events.observe(inventory('hand'), 'enforce');
    assert.equal(sink.writes.length, 1, 'a follower writes nothing');
  });
});
