import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PHASES } from '../phase/behaviour.js';
import type { Phase } from '../phase/behaviour.js';
import type { RuntimeEntry } from './reconcile.js';
import { keepVerdict, WriterGate, writeVerdict } from './gate.js';
import type { WriterState } from './gate.js';

/** Every state the gate can be in, with a job tombstoned or not: 5 phases (one unknown) × 2^5 = 160 rows. */
function* everyState(): Generator<{ state: WriterState; tombstoned: boolean; row: string }> {
  for (const phase of [undefined, ...PHASES] as Array<Phase | undefined>) {
    for (let bits = 0; bits < 32; bits += 1) {
      const [lease, readOnly, crsListed, crsWatched, tombstoned] = [1, 2, 4, 8, 16].map((bit) => (bits & bit) !== 0);
      const state: WriterState = {
        phase,
        lease: !!lease,
        readOnly: !!readOnly,
        crsListed: !!crsListed,
        crsWatched: !!crsWatched,
      };
      const row = [
        phase ?? 'unknown',
        lease ? 'lease' : 'no-lease',
        readOnly ? 'read-only' : 'writable',
        crsListed ? 'listed' : 'unlisted',
        crsWatched ? 'watched' : 'listed-once',
        tombstoned ? 'tombstoned' : 'live',
      ].join(' ');
      yield { state, tombstoned: !!tombstoned, row };
    }
  }
}

/**
 * The only rows in which a write happens: the phase known and backfilling, the Lease held, writable, the CRs listed,
 * the job not tombstoned; the import (CRs listed once) writes under the same conditions as the daemon.
 */
const WRITES = [
  'runtime-truth lease writable listed listed-once live',
  'runtime-truth lease writable listed watched live',
  'storage-truth lease writable listed listed-once live',
  'storage-truth lease writable listed watched live',
];

/** A replica that may write refuses a tombstoned job for that reason, not as "not the writer". */
const TOMBSTONED = WRITES.map((row) => row.replace(/ live$/, ' tombstoned'));

/**
 * The rows in which a candidate's job is kept (the tombstone column aside, which keeping does not read). Unlike a
 * write, keeping allows an unknown phase (the phase may be read after the workloads) and needs no Lease (a follower
 * may take it over); the import keeps before its CRs are listed, the daemon does not.
 */
const KEEPS = ['unknown', 'runtime-truth', 'storage-truth'].flatMap((phase) =>
  ['no-lease', 'lease'].flatMap((lease) =>
    ['unlisted listed-once', 'listed listed-once', 'listed watched'].map((crs) => `${phase} ${lease} writable ${crs}`),
  ),
);

describe('the write gate', () => {
  test('writes only with a known backfilling phase, the Lease, writable, the CRs listed and no tombstone (every combination)', () => {
    const writes: string[] = [];
    const tombstoned: string[] = [];
    let rows = 0;
    for (const { state, tombstoned: dead, row } of everyState()) {
      rows += 1;
      const verdict = writeVerdict(state, dead);
      if (verdict === 'write') writes.push(row);
      if (verdict === 'tombstoned') tombstoned.push(row);
      // The replica's standing alone (no job): a tombstone never makes it write or refuse.
      assert.equal(writeVerdict(state), verdict === 'not-the-writer' ? 'not-the-writer' : 'write', row);
    }
    assert.equal(rows, 160);
    assert.deepEqual(writes.sort(), [...WRITES].sort());
    assert.deepEqual(tombstoned.sort(), [...TOMBSTONED].sort());
  });

  test('keeps candidates with an unknown or backfilling phase, writable, once the CRs are known (every combination)', () => {
    const keeps = new Set<string>();
    for (const { state, tombstoned, row } of everyState()) {
      if (tombstoned) continue;
      if (keepVerdict(state)) keeps.add(row.replace(/ live$/, ''));
    }
    assert.deepEqual([...keeps].sort(), [...KEEPS].sort());
  });

  test('reads the phase live, holds the Lease and the CRs listed, and asks the tombstones only of a writer', () => {
    let phase: Phase = 'runtime-truth';
    let known = false;
    const asked: string[] = [];
    const gate = new WriterGate({
      phase: { known: () => known, current: () => phase },
      tombstones: {
        covers: (r) => {
          asked.push(r.name);
          return r.name === 'deleted';
        },
      },
    });
    const job = (name: string) => ({ name }) as RuntimeEntry<unknown>;
    assert.equal(gate.mayKeep(), false, 'the daemon keeps nothing before the CRs are listed');
    gate.crsListed();
    assert.equal(gate.mayKeep(), true, 'an unknown phase keeps');
    assert.equal(gate.mayWrite(), false, 'an unknown phase never writes');
    known = true;
    assert.equal(gate.mayWrite(), false, 'no Lease yet');
    assert.equal(gate.verdict(job('deleted')), 'not-the-writer');
    assert.deepEqual(asked, [], 'the tombstones are not read for a replica that may not write');
    gate.leading(true);
    assert.equal(gate.leader, true);
    assert.equal(gate.mayWrite(), true);
    assert.equal(gate.mayWrite(job('nightly')), true);
    assert.equal(gate.verdict(job('deleted')), 'tombstoned');
    phase = 'ignore-unmanaged';
    assert.equal(gate.mayWrite(), false, 'the phase moved on: jobs-api is the only writer');
    assert.equal(gate.mayKeep(), false);
    phase = 'storage-truth';
    gate.leading(false);
    assert.equal(gate.mayWrite(), false, 'the Lease lost');

    const alone = new WriterGate({ phase: { known: () => true, current: () => 'runtime-truth' }, elect: false });
    assert.equal(alone.leader, true, 'a replica that does not campaign writes alone');
    const readOnly = new WriterGate({ phase: { known: () => true, current: () => 'runtime-truth' }, readOnly: true });
    readOnly.leading(true);
    readOnly.crsListed();
    assert.equal(readOnly.mayWrite(), false);
    assert.equal(readOnly.mayKeep(), false);
  });
});
