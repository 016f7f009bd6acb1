import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenBucket } from './token-bucket.js';

test('a full bucket gives its burst at once, then one token per 1/rate seconds', () => {
  const bucket = new TokenBucket(5, 3, 0);
  assert.deepEqual([bucket.take(0), bucket.take(0), bucket.take(0)], [0, 0, 0]);
  assert.equal(bucket.take(0), 200, 'the next token comes after 1/5 s');
  assert.equal(bucket.take(100), 100, 'half of it has refilled after 100 ms');
  assert.equal(bucket.take(200), 0);
  assert.equal(bucket.take(200), 200);
});

test('a quiet spell refills to the burst, not beyond', () => {
  const bucket = new TokenBucket(5, 2, 0);
  bucket.take(0);
  bucket.take(0);
  const taken = [60_000, 60_000, 60_000].map((t) => bucket.take(t));
  assert.deepEqual(taken, [0, 0, 200]);
});

test('a clock that goes back refills nothing and takes nothing away', () => {
  const bucket = new TokenBucket(1, 1, 10_000);
  assert.equal(bucket.take(10_000), 0);
  assert.equal(bucket.take(5_000), 1000);
  assert.equal(bucket.take(11_000), 0);
});

test('a rate or burst that cannot work is a TypeError', () => {
  assert.throws(() => new TokenBucket(0, 1, 0), TypeError);
  assert.throws(() => new TokenBucket(1, 0, 0), TypeError);
});
