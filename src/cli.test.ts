import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { main } from './cli.js';
import { VERSION } from './version.js';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

test('--version prints the version and exits 0', async () => {
  const res = await cli(['--version']);
  assert.deepEqual(res, { code: 0, out: `${VERSION}\n`, err: '' });
});

test('version -o json and -o yaml give the build info: version, node version, git commit when known', async () => {
  const json = await cli(['version', '-o', 'json']);
  assert.equal(json.code, 0);
  const info = JSON.parse(json.out) as { version: string; node: string; gitCommit?: string };
  assert.equal(info.version, VERSION);
  assert.equal(info.node, process.version);
  if (info.gitCommit !== undefined) assert.match(info.gitCommit, /^[0-9a-f]{40}$/);
  const yaml = await cli(['version', '-o', 'yaml']);
  assert.deepEqual(parseYaml(yaml.out), info);
  const text = await cli(['version']);
  assert.match(text.out, new RegExp(`^jobs-storage ${VERSION.replaceAll('.', '\\.')}.*, node ${process.version}\n$`));
});

test('a usage error is one line saying what was wrong and where the usage is, exit 2, never the whole help', async () => {
  const cases: Array<[string[], RegExp, string]> = [
    [['report', '--bogus'], /^jobs-storage: unknown option '--bogus'$/, 'jobs-storage report'],
    [
      ['phase', 'set', 'sideways'],
      /^jobs-storage: .*'sideways' is invalid for argument 'phase'/,
      'jobs-storage phase set',
    ],
    [['restore'], /^jobs-storage: required option '--tool <name>' not specified$/, 'jobs-storage restore'],
    [['nonsense'], /^jobs-storage: unknown command 'nonsense'$/, 'jobs-storage'],
    [['migrate', '--tool', 'a', '--all'], /^jobs-storage: migrate: give exactly one of/, 'jobs-storage migrate'],
    [['report', '--as-group', 'g'], /^jobs-storage: --as-group needs --as/, 'jobs-storage report'],
  ];
  for (const [args, first, command] of cases) {
    const res = await cli(args);
    assert.equal(res.code, 2, args.join(' '));
    assert.equal(res.out, '');
    const lines = res.err.trimEnd().split('\n');
    assert.equal(lines.length, 2, res.err);
    assert.match(lines[0] ?? '', first);
    assert.equal(lines[1], `see '${command} --help'`);
  }
});

test('the global flags are accepted before and after the command, and listed in its help', async () => {
  const help = await cli(['phase', 'get', '--help']);
  assert.equal(help.code, 0);
  for (const flag of ['--kubeconfig <file>', '--context <name>', '--as <user>', '--as-group <group...>', '--verbose'])
    assert.ok(help.out.includes(flag), `${flag} in:\n${help.out}`);
  for (const args of [
    ['--kubeconfig', '/nonexistent/kubeconfig', 'phase', 'get'],
    ['phase', 'get', '--kubeconfig', '/nonexistent/kubeconfig'],
  ]) {
    const res = await cli(args);
    assert.equal(res.code, 2, res.err);
    assert.match(res.err, /^jobs-storage: invalid configuration: kubeconfig \/nonexistent\/kubeconfig: ENOENT/);
  }
});
