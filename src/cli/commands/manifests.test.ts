import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { main } from '../../cli.js';
import { configSchema } from '../../config/schema.js';
import { renderManifestFiles } from '../../webhook/manifests.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'manifests-test-'));
  dirs.push(dir);
  return dir;
}

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

test('manifests writes the generated files into --out, creating it', async () => {
  const out = join(tempDir(), 'webhook-config');
  const res = await run(['manifests', '--out', out]);
  assert.equal(res.code, 0, res.err);
  const expected = renderManifestFiles(configSchema.parse({}));
  assert.deepEqual(readdirSync(out).sort(), Object.keys(expected).sort());
  for (const [name, text] of Object.entries(expected)) assert.equal(readFileSync(join(out, name), 'utf8'), text);
  assert.match(res.err, /wrote .*validating-webhook-configuration\.yaml/);
});

test('manifests --check passes on current files and fails, naming the file and writing nothing, on drift', async () => {
  const out = tempDir();
  assert.equal((await run(['manifests', '--out', out])).code, 0);
  assert.deepEqual(await run(['manifests', '--out', out, '--check']), { code: 0, out: '', err: '' });
  const file = join(out, 'storage-policy.yaml');
  writeFileSync(file, 'edited by hand\n');
  const res = await run(['manifests', '--out', out, '--check']);
  assert.equal(res.code, 1);
  assert.match(res.err, /storage-policy\.yaml is out of date; run: jobs-storage manifests/);
  assert.doesNotMatch(res.err, /validating-webhook-configuration/);
  assert.equal(readFileSync(file, 'utf8'), 'edited by hand\n');
});

test('manifests --check on a missing directory reports every file out of date', async () => {
  const res = await run(['manifests', '--out', join(tempDir(), 'absent'), '--check']);
  assert.equal(res.code, 1);
  assert.equal(res.err.match(/is out of date/g)?.length, 2);
});

test('the committed webhook-config/ passes the drift check', async () => {
  const committed = join(import.meta.dirname, '..', '..', '..', 'webhook-config');
  assert.equal((await run(['manifests', '--out', committed, '--check'])).code, 0);
});

test('manifests --help describes the command', async () => {
  const res = await run(['manifests', '--help']);
  assert.equal(res.code, 0);
  assert.match(res.out, /Usage: jobs-storage manifests \[options\]/);
  assert.match(res.out, /--out <dir>/);
  assert.match(res.out, /--check/);
});

test('an --out under a file is a usage error that names the path, not a crash', async () => {
  const parent = tempDir();
  writeFileSync(join(parent, 'file'), '');
  const res = await run(['manifests', '--out', join(parent, 'file', 'sub')]);
  assert.equal(res.code, 2);
  assert.match(res.err, /^jobs-storage: \/.*\/file\/sub\/validating-webhook-configuration\.yaml: cannot read: ENOTDIR/);
});
