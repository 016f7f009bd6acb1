import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PHASES, phaseBeforeKnown, phaseBehaviour } from './behaviour.js';

test('before the phase is known the webhook decides in a phase that denies no workload write', () => {
  const before = Object.fromEntries(PHASES.map((p) => [p, phaseBeforeKnown(p)]));
  assert.deepEqual(before, {
    'runtime-truth': 'runtime-truth',
    'storage-truth': 'storage-truth',
    'ignore-unmanaged': 'ignore-unmanaged',
    enforce: 'ignore-unmanaged',
  });
  for (const p of PHASES) assert.equal(phaseBehaviour(phaseBeforeKnown(p)).denyDirectJobsFrameworkWrites, false);
});
