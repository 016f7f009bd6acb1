import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError } from '../errors.js';
import { parseObjects, readObjects } from './input.js';

test('reads several YAML documents and skips empty ones', () => {
  const objs = parseObjects(
    'kind: CronJob\nmetadata: {name: a}\n---\n---\nkind: Deployment\nmetadata: {name: b}\n',
    'f.yaml',
  );
  assert.deepEqual(
    objs.map((o) => [(o.value as { kind: string }).kind, o.location]),
    [
      ['CronJob', 'f.yaml:1'],
      ['Deployment', 'f.yaml:5'],
    ],
  );
});

test('expands kind: List and JSON arrays', () => {
  const list = parseObjects(
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ kind: 'A' }, { kind: 'B' }] }),
    'l.json',
  );
  assert.deepEqual(
    list.map((o) => o.location),
    ['l.json:1 items[0]', 'l.json:1 items[1]'],
  );
  const typed = parseObjects('kind: CronJobList\nitems:\n- kind: CronJob\n', 'c.yaml');
  assert.equal(typed.length, 1);
  const arr = parseObjects('[{"kind": "A"}, {"kind": "B"}]', 'a.json');
  assert.equal(arr.length, 2);
});

test('a syntax error names the file and the line', () => {
  assert.throws(
    () => parseObjects('kind: CronJob\nmetadata:\n  name: a\n   bad: [unclosed\n', 'broken.yaml'),
    (err: unknown) =>
      err instanceof InputError &&
      err.code === 'ERR_INPUT_PARSE' &&
      /^broken\.yaml:\d+: not valid YAML or JSON: /.test(err.message) &&
      !err.message.includes('\n'),
  );
  assert.throws(
    () => parseObjects('{"kind": "A",,}', 'x.json'),
    (err: unknown) => err instanceof InputError && err.message.startsWith('x.json:1: not valid YAML or JSON'),
  );
});

test('a missing file is a read error naming the file', () => {
  assert.throws(
    () => readObjects('/nonexistent/file.yaml'),
    (err: unknown) =>
      err instanceof InputError &&
      err.code === 'ERR_INPUT_READ' &&
      err.message.startsWith('/nonexistent/file.yaml: cannot read'),
  );
});

test('reads stdin for "-"', () => {
  const objs = readObjects('-', () => 'kind: CronJob\n');
  assert.equal(objs[0]?.location, '<stdin>:1');
});
