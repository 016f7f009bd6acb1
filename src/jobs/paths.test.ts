import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalizePosixPath } from './paths.js';

/** PurePosixPath's rule spelled out with no shortcut, to check the fast path against. */
function reference(path: string): string {
  const root = path.startsWith('//') && !path.startsWith('///') ? '//' : path.startsWith('/') ? '/' : '';
  const joined = `${root}${path
    .split('/')
    .filter((p) => p !== '' && p !== '.')
    .join('/')}`;
  return joined === '' ? '.' : joined;
}

test('normalizePosixPath agrees with PurePosixPath on every combination of tricky parts', () => {
  const parts = ['', '.', '..', 'a', '.b', 'c.', 'job.out'];
  const paths = new Set<string>();
  for (const lead of ['', '/', '//', '///'])
    for (const x of parts)
      for (const y of parts)
        for (const trail of ['', '/', '/.']) paths.add(`${lead}${x}/${y}${trail}`).add(`${lead}${x}${trail}`);
  for (const path of paths) assert.equal(normalizePosixPath(path), reference(path), JSON.stringify(path));
  assert.equal(normalizePosixPath('/data/project/tool/job.out'), '/data/project/tool/job.out');
  assert.equal(normalizePosixPath('logs//x.err'), 'logs/x.err');
});
