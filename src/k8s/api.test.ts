import assert from 'node:assert/strict';
import { test } from 'node:test';
import { continueTokenOf } from './api.js';

test('the continue token is read from the start of a list body, before its items', () => {
  const head =
    '{"kind":"CronJobList","apiVersion":"batch/v1","metadata":{"resourceVersion":"42","continue":"eyJ2Ijoi","remainingItemCount":9},"items":[{"metadata":{"continue":"no"';
  assert.deepEqual(continueTokenOf(head), { known: true, token: 'eyJ2Ijoi' });
  assert.deepEqual(continueTokenOf('{"kind":"CronJobList","metadata":{"resourceVersion":"42"},"items":[]}'), {
    known: true,
    token: undefined,
  });
  assert.deepEqual(
    continueTokenOf('{"kind":"CronJobList","metadata":{"resourceVersion":"42","continue":""},"items":[]}'),
    {
      known: true,
      token: undefined,
    },
  );
  // Not there yet: no "items" key, or metadata that does not look like a list's.
  assert.deepEqual(continueTokenOf('{"kind":"CronJobList","metadata":{"resourceVersion":"42","contin'), {
    known: false,
  });
  assert.deepEqual(continueTokenOf('{"items":[],"metadata":{"continue":"x"}}'), { known: false });
});
