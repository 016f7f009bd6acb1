import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { loadWorkload } from '../../test/fixtures/workloads/load.js';
import { classifyWorkload } from './classify.js';
import { parseWorkload } from './parse.js';
import { readWorkload } from './read.js';
import { DEFAULT_RUNTIME_SETTINGS } from './settings.js';

const FIXTURES = readdirSync(dirname(fileURLToPath(import.meta.resolve('../../test/fixtures/workloads/load.ts'))))
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => f.slice(0, -'.yaml'.length));

test('readWorkload reads every fixture as classify and parse do on their own', () => {
  assert.ok(FIXTURES.length > 20);
  let parsed = 0;
  for (const prefix of ['tool-', 'tf-tool-']) {
    const settings = { ...DEFAULT_RUNTIME_SETTINGS, toolNamespacePrefix: prefix };
    for (const name of FIXTURES) {
      const obj = loadWorkload(name);
      const read = readWorkload(obj, settings);
      assert.deepEqual(read.class, classifyWorkload(obj, prefix), name);
      if (read.class.kind === 'job') {
        assert.deepEqual(read.parsed, parseWorkload(obj, settings), name);
        parsed += 1;
      } else {
        assert.equal(read.parsed, undefined, `${name}: only job definitions are parsed`);
      }
    }
  }
  assert.ok(parsed > 10);
});

test('readWorkload never throws on what is not a Kubernetes object', () => {
  for (const value of [null, 42, 'CronJob', [], {}, { kind: 7 }]) {
    assert.deepEqual(readWorkload(value, DEFAULT_RUNTIME_SETTINGS), {
      class: { kind: 'unsupported', reason: 'not a Kubernetes object (no kind)' },
    });
  }
});
