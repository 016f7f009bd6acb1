import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_NAMESPACE_LENGTH, isToolNamespace, namespaceOfTool, toolOfNamespace } from './tenancy.js';

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

test('isToolNamespace: a DNS-1123 label of at most 63 characters, the prefix and a non-empty tool name', () => {
  const longest = `tool-${'a'.repeat(MAX_NAMESPACE_LENGTH - 'tool-'.length)}`;
  const cases: Array<[namespace: string | undefined, prefix: string, valid: boolean]> = [
    ['tool-mytool', 'tool-', true],
    ['tool-my-tool', 'tool-', true],
    ['tool-0', 'tool-', true],
    ['tool-a1-b2', 'tool-', true],
    ['tool--x', 'tool-', true], // a valid namespace name, so a tool part of '-x' counts
    [longest, 'tool-', true],
    [`${longest}a`, 'tool-', false], // 64 characters
    [`tool-${'x'.repeat(16 * 1024)}`, 'tool-', false],
    ['tool-', 'tool-', false], // no tool name
    ['tool-MyTool', 'tool-', false], // uppercase
    ['TOOL-mytool', 'tool-', false],
    ['tool-my_tool', 'tool-', false], // underscore
    ['tool-my.tool', 'tool-', false], // a DNS-1123 subdomain, not a label
    ['tool-mytool-', 'tool-', false], // ends with '-'
    ['tool-my tool', 'tool-', false],
    ['tool-mytool\n', 'tool-', false],
    ['tool-mytöol', 'tool-', false],
    ['tools-mytool', 'tool-', false], // wrong prefix
    ['foo-mytool', 'tool-', false],
    ['kube-system', 'tool-', false],
    ['mytool', 'tool-', false],
    ['', 'tool-', false],
    [undefined, 'tool-', false],
    ['tf-tool-mytool', 'tf-tool-', true],
    ['tool-mytool', 'tf-tool-', false],
    ['tf-tool-', 'tf-tool-', false],
  ];
  for (const [namespace, prefix, valid] of cases) {
    assert.equal(
      isToolNamespace(namespace, prefix),
      valid,
      `${namespace?.slice(0, 80) ?? 'undefined'} with prefix ${prefix}`,
    );
  }
});
