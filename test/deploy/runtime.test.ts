/**
 * One runtime: the node the image ships (the Dockerfile's FROM lines) is the node the tests, the demo and the
 * benchmarks run on (.node-version, through scripts/tools/node.mjs), the one `engines` admits and the one the types
 * describe.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

const pinned = read('.node-version').trim();
const major = Number(pinned.split('.')[0]);
const pkg = JSON.parse(read('package.json')) as {
  engines: { node: string };
  devDependencies: Record<string, string>;
};

test('.node-version names a full version of an even (LTS) line', () => {
  assert.match(pinned, /^\d+\.\d+\.\d+$/);
  assert.equal(major % 2, 0, `node ${pinned} is not of an LTS line`);
});

test("the Dockerfile's every stage starts from the pinned node line", () => {
  const froms = read('Dockerfile')
    .split('\n')
    .filter((l) => l.startsWith('FROM '));
  assert.ok(froms.length > 0);
  for (const from of froms) assert.match(from, new RegExp(`^FROM docker\\.io/library/node:${major}-bookworm-slim\\b`));
});

test('engines admits the pinned node and the types are of its line', () => {
  assert.equal(pkg.engines.node, `>=${major}`);
  assert.match(pkg.devDependencies['@types/node'] ?? '', new RegExp(`^\\^${major}\\.`));
});

test('the suite runs on the pinned node, or on the line JOBS_STORAGE_NODE_VERSION names', () => {
  const wanted = process.env['JOBS_STORAGE_NODE_VERSION'] ?? pinned;
  assert.equal(process.version, `v${wanted}`);
});
