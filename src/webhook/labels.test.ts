import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OTHER, ToolLabels, kindLabel, operationLabel, resourceLabel } from './labels.js';

test('kind, operation and resource labels come from closed sets; anything else is other', () => {
  assert.equal(kindLabel('CronJob'), 'CronJob');
  assert.equal(kindLabel('Deployment'), 'Deployment');
  assert.equal(kindLabel('Scale'), OTHER);
  assert.equal(kindLabel('x'.repeat(5000)), OTHER);
  assert.equal(operationLabel('UPDATE'), 'UPDATE');
  assert.equal(operationLabel('PATCH'), OTHER);
  assert.equal(resourceLabel('scheduled-jobs'), 'scheduled-jobs');
  assert.equal(resourceLabel('continuous-jobs/status'), 'continuous-jobs/status');
  assert.equal(resourceLabel('deployments/scale'), 'deployments/scale');
  assert.equal(resourceLabel('invented-jobs'), OTHER);
});

test('tool labels keep the first max tools and count the rest under other', () => {
  const tools = new ToolLabels(2);
  assert.equal(tools.label('a'), 'a');
  assert.equal(tools.label('b'), 'b');
  assert.equal(tools.label('c'), OTHER);
  assert.equal(tools.label('a'), 'a');
  assert.equal(tools.size, 2);
  assert.throws(() => new ToolLabels(0), TypeError);
});

test('tool labels only for valid tool namespaces: never longer than 63 characters, the rest under other', () => {
  const tools = new ToolLabels(10_000, 'tool-');
  assert.equal(tools.label('mytool'), 'mytool');
  assert.equal(tools.label('a'.repeat(58)), 'a'.repeat(58)); // tool-aaa… is 63 characters
  for (const tool of ['a'.repeat(59), 'x'.repeat(16 * 1024), 'MyTool', 'my_tool', 'my.tool', 'mytool-', ''])
    assert.equal(tools.label(tool), OTHER, tool.slice(0, 80));
  assert.equal(tools.size, 2);
  const prefixed = new ToolLabels(10_000, 'tf-tool-');
  assert.equal(prefixed.label('mytool'), 'mytool');
  assert.equal(prefixed.label('a'.repeat(56)), OTHER); // tf-tool-aaa… is 64 characters
});
