import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ToolSummaries } from './report.js';
import type { ToolSummary } from './report.js';

const summary = (nextDueAt?: number): ToolSummary => ({
  counts: { onlyInRuntime: 1, onlyInStorage: 0, outOfSync: 0, foreign: 0 },
  runtimeJobs: 1,
  storageJobs: 0,
  ...(nextDueAt === undefined ? {} : { nextDueAt }),
});

test('ToolSummaries: only the tools whose due time has come are due, and a retry brings a due time forward', () => {
  const s = new ToolSummaries();
  s.set('alpha', summary(1000));
  s.set('beta', summary());
  s.set('gamma', summary(5000));
  assert.deepEqual(s.due(999), { tools: [], nextAt: 1000 });
  assert.deepEqual(s.due(1000), { tools: ['alpha'], nextAt: 5000 });
  s.dueBy('gamma', 2000);
  s.dueBy('alpha', 3000);
  assert.deepEqual(s.due(2000).tools.sort(), ['alpha', 'gamma']);
  assert.equal([...s.values()].find((v) => v.nextDueAt === 2000)?.runtimeJobs, 1);
  s.set('alpha', summary());
  s.set('gamma', undefined);
  assert.deepEqual(s.due(10_000), { tools: [], nextAt: Infinity });
  assert.deepEqual([...s.tools()].sort(), ['alpha', 'beta']);
  assert.equal(s.has('gamma'), false);
});
