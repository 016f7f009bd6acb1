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
});

test('expired keys are dropped and the size is bounded', () => {
  const keys = new RecentKeys(1000, 3);
  for (const k of ['a', 'b', 'c', 'd']) keys.firstSeen(k, 0);
  assert.equal(keys.size, 3);
  assert.equal(keys.firstSeen('a', 1), true, 'the oldest key was evicted to make room');
  keys.firstSeen('e', 5000);
  assert.equal(keys.size, 1);
});
