import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildInfo, gitCommitOf } from './version.js';

const SHA = 'a'.repeat(40);
const OTHER = 'b'.repeat(40);

function checkout(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'version-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, '.git', path, '..'), { recursive: true });
    writeFileSync(join(root, '.git', path), text);
  }
  return root;
}

test('the git commit of a checkout: a detached HEAD, a loose ref, a packed ref; none without .git', () => {
  assert.equal(gitCommitOf(checkout({ HEAD: `${SHA}\n` })), SHA);
  assert.equal(gitCommitOf(checkout({ HEAD: 'ref: refs/heads/main\n', 'refs/heads/main': `${SHA}\n` })), SHA);
  assert.equal(
    gitCommitOf(
      checkout({
        HEAD: 'ref: refs/heads/main\n',
        'packed-refs': `# pack-refs\n${OTHER} refs/heads/x\n${SHA} refs/heads/main\n`,
      }),
    ),
    SHA,
  );
  assert.equal(gitCommitOf(mkdtempSync(join(tmpdir(), 'version-'))), undefined);
});

test('build info: the version, the running Node.js and the commit only when known', () => {
  const root = mkdtempSync(join(tmpdir(), 'version-'));
  assert.deepEqual(Object.keys(buildInfo(root)), ['version', 'node']);
  assert.equal(buildInfo(root).node, process.version);
  assert.equal(buildInfo(checkout({ HEAD: SHA })).gitCommit, SHA);
});
