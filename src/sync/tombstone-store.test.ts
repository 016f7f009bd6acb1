import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configSchema } from '../config/schema.js';
import {
  checkpointKey,
  decodeCheckpoint,
  encodeCheckpoint,
  staleKeys,
  tombstonesConfigMap,
} from './tombstone-store.js';
import type { Checkpoint } from './tombstones.js';

const NOW = Date.parse('2026-11-26T12:00:00Z');

test('a checkpoint reads back as written', () => {
  const c: Checkpoint = {
    at: NOW,
    unmatched: new Set(['alpha/scheduled/b', 'alpha/continuous/a']),
    tombstones: [
      { tool: 'alpha', type: 'scheduled', name: 'x', at: NOW - 5, workloadUid: 'uid-x' },
      { tool: 'beta', type: 'continuous', name: 'y', at: NOW - 7 },
      { tool: 'beta', type: 'scheduled', name: 'z', at: NOW - 9, workloadUid: 'uid-z', away: true },
    ],
  };
  assert.deepEqual(decodeCheckpoint(encodeCheckpoint(c)), c);
  const none: Checkpoint = { at: NOW, unmatched: null, tombstones: [] };
  assert.deepEqual(decodeCheckpoint(encodeCheckpoint(none)), none);
});

test('text this version does not read is no checkpoint; malformed rows are skipped', () => {
  for (const text of ['', 'nope', '{}', '{"v":2,"at":1,"unmatched":[],"tombstones":[]}', '[]', 'null']) {
    assert.equal(decodeCheckpoint(text), undefined, text);
  }
  const c = decodeCheckpoint('{"v":1,"at":5,"unmatched":["a/scheduled/x",3],"tombstones":[["a","scheduled"],7]}');
  assert.deepEqual(c, { at: 5, unmatched: new Set(['a/scheduled/x']), tombstones: [] });
});

test("another replica's checkpoint unrefreshed for 10 minutes is stale; its own and unreadable keys are kept", () => {
  const text = (at: number) => encodeCheckpoint({ at, unmatched: new Set(), tombstones: [] });
  const data = {
    mine: text(NOW - 3_600_000),
    fresh: text(NOW - 60_000),
    gone: text(NOW - 601_000),
    future: 'a format of a later version',
  };
  assert.deepEqual(staleKeys(data, 'mine', NOW), ['gone']);
});

test('the ConfigMap is named after the Lease, beside it; keys are the identities as a ConfigMap allows', () => {
  const config = configSchema.parse({ sync: { leaseNamespace: 'ns', leaseName: 'lease' } });
  assert.deepEqual(tombstonesConfigMap(config), { namespace: 'ns', name: 'lease-tombstones' });
  assert.equal(checkpointKey('jobs-storage-sync-6f7d9-abcde'), 'jobs-storage-sync-6f7d9-abcde');
  assert.equal(checkpointKey('host:a/b'), 'host_a_b');
  assert.equal(checkpointKey(''), '_');
});
