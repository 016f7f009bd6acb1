import assert from 'node:assert/strict';
import { test } from 'node:test';
import { namespaceOfTool, toolOfNamespace } from './tenancy.js';

test('namespaceOfTool puts the prefix before the tool', () => {
  assert.equal(namespaceOfTool('mytool'), 'tool-mytool');
  assert.equal(namespaceOfTool('mytool', 'tf-tool-'), 'tf-tool-mytool');
});

test('toolOfNamespace: the configured prefix, and jobs-api first-dash reading only when asked', () => {
  const cases: Array<[namespace: string | undefined, prefix: string, fallback: boolean, tool: string | undefined]> = [
    ['tool-mytool', 'tool-', false, 'mytool'],
    ['tool-my-tool', 'tool-', false, 'my-tool'],
    ['tool-', 'tool-', false, undefined],
    ['kube-system', 'tool-', false, undefined],
    ['default', 'tool-', false, undefined],
    [undefined, 'tool-', false, undefined],
    ['tf-tool-mytool', 'tf-tool-', false, 'mytool'],
    ['tool-mytool', 'tf-tool-', false, undefined],
    // jobs-api's reading: everything after the first dash.
    ['kube-system', 'tool-', true, 'system'],
    ['tool-mytool', 'tf-tool-', true, 'mytool'],
    ['tf-tool-mytool', 'tf-tool-', true, 'mytool'],
    ['tf-tool-mytool', 'tool-', true, 'tool-mytool'],
    ['default', 'tool-', true, undefined],
    ['trailing-', 'tool-', true, undefined],
    [undefined, 'tool-', true, undefined],
  ];
  for (const [namespace, prefix, jobsApiFallback, tool] of cases) {
    assert.equal(
      toolOfNamespace(namespace, prefix, { jobsApiFallback }),
      tool,
      `${namespace ?? 'undefined'} with prefix ${prefix}, fallback ${jobsApiFallback}`,
    );
  }
});
