import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { EarliestTimer } from './earliest-timer.js';

test('an earlier time moves the timer, a later one changes nothing, and it fires once', async () => {
  const fired: string[] = [];
  const timer = new EarliestTimer();
  const now = Date.now();
  timer.arm(now + 200, () => fired.push('late'));
  timer.arm(now + 20, () => fired.push('early'));
  timer.arm(now + 100, () => fired.push('later than armed'));
  await sleep(300);
  assert.deepEqual(fired, ['early']);
  timer.arm(Date.now() + 10, () => fired.push('again'));
  await sleep(60);
  assert.deepEqual(fired, ['early', 'again']);
});

test('clear disarms it', async () => {
  const fired: string[] = [];
  const timer = new EarliestTimer({ unref: true });
  timer.arm(Date.now() + 10, () => fired.push('x'));
  timer.clear();
  await sleep(50);
  assert.deepEqual(fired, []);
});
