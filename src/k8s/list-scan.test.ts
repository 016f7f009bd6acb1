import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KubeApiError } from './errors.js';
import { continueTokenOf, PageItems, scanList, scanPage } from './list-scan.js';

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

test('a list body is scanned into its fields and the byte ranges of its items, each parsed as it is read', () => {
  const body = Buffer.from(
    ' {"kind":"CronJobList","apiVersion":"batch/v1","metadata":{"resourceVersion":"42","continue":"c"},' +
      '"items":[ {"metadata":{"name":"a\\"}{[","namespace":"tool-é"},"spec":{"x":[1,{"y":"]"}]}} , {"metadata":{"name":"b\\\\"}},3,"s",null ]}\n',
  );
  const list = scanList(body);
  assert.deepEqual(list.fields, {
    kind: 'CronJobList',
    apiVersion: 'batch/v1',
    metadata: { resourceVersion: '42', continue: 'c' },
  });
  const items = list.items;
  const texts: string[] = [];
  for (let i = 0; i < items.length; i += 2) texts.push(body.toString('utf8', items[i], items[i + 1]));
  assert.deepEqual(
    texts.map((t) => JSON.parse(t) as unknown),
    [
      { metadata: { name: 'a"}{[', namespace: 'tool-é' }, spec: { x: [1, { y: ']' }] } },
      { metadata: { name: 'b\\' } },
      3,
      's',
      null,
    ],
  );
  const seen: unknown[] = [];
  const parsed = [...new PageItems<unknown>(body, items, (item) => seen.push(item))];
  assert.equal(parsed.length, 5);
  assert.deepEqual(seen, parsed);

  assert.deepEqual(scanList(Buffer.from('{"items":null,"metadata":{}}')), { fields: { metadata: {} }, items: [] });
  assert.deepEqual(scanList(Buffer.from('{"items":[]}')), { fields: {}, items: [] });
  assert.deepEqual(scanList(Buffer.from('{}')), { fields: {}, items: [] });
});

test('a list body that is not a JSON list is a clear API error, not a crash', () => {
  for (const text of [
    '',
    'null',
    '[1]',
    '{"items":[{"a":1}',
    '{"items":[{"a":"1}]}',
    '{"items":[1 2]}',
    '{"items":5}',
    '{"a":1} x',
    '{"a" 1}',
    '{a:1}',
  ]) {
    assert.throws(
      () => scanList(Buffer.from(text)),
      (err: unknown) => err instanceof KubeApiError && err.code === 'ERR_K8S_API' && /not valid JSON/.test(err.message),
      text,
    );
  }
  // An item that is itself broken fails when it is reached, with the same error.
  const body = Buffer.from('{"items":[{"a":1},{"b":tru}]}');
  const pages = new PageItems(body, scanList(body).items, () => undefined);
  assert.throws(
    () => [...pages],
    (err: unknown) => err instanceof KubeApiError && /not valid JSON at byte 18/.test(err.message),
  );
});

test('a scanned page stamps each item with the kind and apiVersion of its list, and keeps its version and token', () => {
  const body = Buffer.from(
    '{"kind":"CronJobList","apiVersion":"batch/v1","metadata":{"resourceVersion":"7","continue":"next"},' +
      '"items":[{"metadata":{"name":"a"}},{"kind":"Other","apiVersion":"v9","metadata":{"name":"b"}}]}',
  );
  const page = scanPage<{ kind?: string; apiVersion?: string; metadata: { name: string } }>(body);
  assert.equal(page.resourceVersion, '7');
  assert.equal(page.continueToken, 'next');
  assert.equal(page.items.length, 2);
  assert.deepEqual(
    [...page.items],
    [
      { kind: 'CronJob', apiVersion: 'batch/v1', metadata: { name: 'a' } },
      { kind: 'Other', apiVersion: 'v9', metadata: { name: 'b' } },
    ],
  );
  // The last page: an empty token is no token; a list without a List kind stamps nothing.
  const last = scanPage<unknown>(Buffer.from('{"kind":"Odd","metadata":{"continue":""},"items":[{"a":1}]}'));
  assert.equal(last.continueToken, undefined);
  assert.equal(last.resourceVersion, '');
  assert.deepEqual([...last.items], [{ a: 1 }]);
});

test("a page is read once: its body's memory is given back when an iteration reaches the end", () => {
  const items = Array.from({ length: 2000 }, (_, i) => ({
    metadata: { name: `job-${i}` },
    spec: { pad: 'x'.repeat(40) },
  }));
  // A page's body read from a response is a Buffer of its own (Buffer.concat), not a slice of Node's pool (bodies of
  // less than half the pool's size are).
  const body = Buffer.concat([Buffer.from(JSON.stringify({ kind: 'CronJobList', apiVersion: 'batch/v1', items }))]);
  assert.ok(body.length > 128 * 1024);
  const page = scanPage<{ metadata: { name: string } }>(body);

  // An iteration stopped early leaves the page as it was.
  for (const item of page.items) {
    assert.equal(item.metadata.name, 'job-0');
    break;
  }
  assert.ok(body.length > 128 * 1024);

  const names = [...page.items].map((item) => item.metadata.name);
  assert.equal(names.length, 2000);
  assert.equal(names[1999], 'job-1999');
  assert.equal(body.length, 0, 'the body was given back');
  assert.equal(body.buffer.byteLength, 0);
  assert.throws(() => [...page.items], TypeError);

  // A small body carved from Node's shared pool is left alone: other Buffers share its memory.
  const small = Buffer.from('{"items":[{"a":1}]}');
  const neighbour = Buffer.from('still here');
  assert.deepEqual([...scanPage<unknown>(small).items], [{ a: 1 }]);
  assert.equal(small.toString(), '{"items":[{"a":1}]}');
  assert.equal(neighbour.toString(), 'still here');
});
