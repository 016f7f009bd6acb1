import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecentKeys } from './recent-keys.js';

test('a key is first seen once per window', () => {
  const keys = new RecentKeys(1000, 10);
  assert.equal(keys.firstSeen('a', 0), true);
  assert.equal(keys.firstSeen('a', 999), false);
  assert.equal(keys.firstSeen('b', 999), true);
  assert.equal(keys.firstSeen('a', 1000), true);
  assert.equal(keys.firstSeen('a', 1500), false);
  assert.equal(keys.firstSeen('b', 1500), false, 'remembered across a generation change');
  assert.equal(keys.firstSeen('b', 2000), true);
});

test('the size stays bounded; the oldest keys are forgotten first', () => {
  const keys = new RecentKeys(60_000, 4);
  for (const k of ['a', 'b', 'c', 'd', 'e']) keys.firstSeen(k, 0);
  assert.ok(keys.size <= 4, String(keys.size));
  assert.equal(keys.firstSeen('e', 1), false);
  assert.equal(keys.firstSeen('a', 1), true);
});

test('stays cheap at its full size (no per-call cost growing with the number of keys)', () => {
  const keys = new RecentKeys(30_000, 50_000);
  const started = performance.now();
  for (let i = 0; i < 200_000; i++) keys.firstSeen(`CREATE/batch/cronjobs/tool-x/job/${i}`, 0);
  assert.ok(keys.size <= 50_000);
  assert.ok(performance.now() - started < 2000, `${performance.now() - started} ms for 200,000 calls`);
});
