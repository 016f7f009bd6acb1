import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { main } from '../../cli.js';
import type { ToolPlan } from '../../migrate/index.js';

const FIXTURES = new URL('../../../test/fixtures/migrate/', import.meta.url);
const fixture = (name: string) => readFileSync(new URL(`${name}.yaml`, FIXTURES), 'utf8');

async function run(args: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { stdout: (t) => (out += t), stderr: (t) => (err += t), readStdin: () => stdin });
  return { code, out, err };
}

/** Two tools' hand-written workloads, as `kubectl get … -o yaml` of several objects gives them. */
const MIXED = [
  'kubectl-create-cronjob',
  'kubectl-create-deployment',
  'cronjob-non-toolforge-image',
  'deployment-port-probe',
]
  .map(fixture)
  .join('\n---\n');

function configFile(config: object): string {
  const file = join(mkdtempSync(join(tmpdir(), 'jobs-storage-migrate-')), 'config.yaml');
  writeFileSync(file, JSON.stringify(config));
  return file;
}

describe('jobs-storage migrate -f (offline)', () => {
  test('yaml: one jobs.yaml document per tool, in tool order, with every loadable entry; a summary per tool on stderr', async () => {
    const res = await run(['migrate', '-f', '-'], MIXED);
    assert.equal(res.code, 0, res.err);
    const docs = parseAllDocuments(res.out).map((d) => d.toJS() as Array<{ name: string }>);
    assert.equal(docs.length, 2);
    assert.match(res.out, /^# Jobs of tool mytool/);
    assert.match(res.out, /\n# Jobs of tool othertool/);
    assert.deepEqual(
      docs.map((d) => d.map((e) => e.name)),
      [['ircbot', 'nightly'], ['api']],
    );
    // kubectl's concurrencyPolicy Allow needs attention but loads; the non-Toolforge image is held back (jobs-api
    // would refuse it)
    assert.match(res.err, /^mytool: 2 job\(s\) to migrate, 1 needing attention, 2 in jobs.yaml$/m);
    assert.match(res.err, /^othertool: 2 job\(s\) to migrate, 1 needing attention, 1 in jobs.yaml$/m);
  });

  test('json: the plans grouped by tool, with the reasons a job needs attention', async () => {
    const res = await run(['migrate', '-f', '-', '-o', 'json'], MIXED);
    assert.equal(res.code, 0, res.err);
    const plans = JSON.parse(res.out) as ToolPlan[];
    assert.deepEqual(
      plans.map((p) => p.tool),
      ['mytool', 'othertool'],
    );
    const other = plans[1]?.jobs.find((j) => j.needsAttention);
    assert.equal(other?.reason, 'hand-written');
    assert.ok(other?.notes.some((n) => n.code === 'non-toolforge-image' && n.attention));
    assert.equal(other?.inJobsYaml, false);
  });

  test('markdown needs the deadline and the announcement link from the configuration (exit 2 without)', async () => {
    const missing = await run(['migrate', '-f', '-', '-o', 'markdown', '--config', configFile({})], MIXED);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /migration\.deadline: is required/);
    assert.match(missing.err, /migration\.announcementUrl: is required/);
    const config = configFile({
      migration: { deadline: '2026-12-15', announcementUrl: 'https://lists.wikimedia.org/announce/42' },
    });
    const res = await run(
      ['migrate', '-f', '-', '-o', 'markdown', '--phase', 'storage-truth', '--config', config],
      MIXED,
    );
    assert.equal(res.code, 0, res.err);
    const [mine, other] = res.out.split('\n---\n\n');
    assert.match(mine ?? '', /^# Tool `mytool`: please move 2 jobs to the jobs API by 2026-12-15/);
    assert.match(mine ?? '', /announcement: https:\/\/lists\.wikimedia\.org\/announce\/42/);
    assert.match(mine ?? '', /From 2026-12-15, the jobs service stops picking up jobs/);
    assert.match(mine ?? '', /toolforge jobs load jobs.yaml/);
    assert.match(mine ?? '', /kubectl delete cronjobs --field-selector metadata.name=nightly/);
    assert.match(other ?? '', /## Needs your attention first \(1 job\)/);
  });

  test('a bad deadline is a configuration error', async () => {
    const res = await run(
      ['migrate', '-f', '-', '--config', configFile({ migration: { deadline: '15/12/2026' } })],
      MIXED,
    );
    assert.equal(res.code, 2);
    assert.match(res.err, /migration\.deadline/);
  });

  test('an object that cannot be read as a job is listed, reported on stderr and exits 1; other namespaces are left out', async () => {
    const broken = [
      'apiVersion: batch/v1',
      'kind: CronJob',
      'metadata: {name: broken, namespace: tool-x}',
      'spec: {schedule: "0 0 * * *", jobTemplate: {spec: {template: {spec: {containers: []}}}}}',
      '---',
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata: {name: coredns, namespace: kube-system}',
    ].join('\n');
    const res = await run(['migrate', '-f', '-', '-o', 'json'], broken);
    assert.equal(res.code, 1);
    const plans = JSON.parse(res.out) as ToolPlan[];
    assert.deepEqual(
      plans.map((p) => [p.tool, p.jobs.map((j) => [j.name, j.reason])]),
      [['x', [['broken', 'unreadable']]]],
    );
    assert.match(res.err, /^error: CronJob x\/broken: cannot be read as a job/m);
    assert.match(res.err, /1 object\(s\) outside tool namespaces were left out/);
  });

  test('a file that is not YAML is bad input (exit 1, with the line)', async () => {
    const res = await run(['migrate', '-f', '-'], 'kind: [');
    assert.equal(res.code, 1);
    assert.match(res.err, /<stdin>:\d+: not valid YAML/);
  });

  test('usage: exactly one of --tool, --all, -f; --out goes with --all; --phase with -f (exit 2)', async () => {
    for (const args of [
      [],
      ['--tool', 'a', '--all', '--out', 'x'],
      ['--tool', 'a', '-f', '-'],
      ['--all'],
      ['--tool', 'a', '--out', 'x'],
      ['--all', '--out', 'x', '-o', 'json'],
      ['--tool', 'a', '--phase', 'enforce'],
    ]) {
      const res = await run(['migrate', ...args]);
      assert.equal(res.code, 2, `${args.join(' ')}: ${res.err}`);
      assert.match(res.err, /migrate/);
    }
    const badFormat = await run(['migrate', '-f', '-', '-o', 'table']);
    assert.equal(badFormat.code, 2);
  });

  test('the produced jobs.yaml is what a load reads: every entry passes the load rules', async () => {
    const res = await run(['migrate', '-f', '-'], MIXED);
    const { validateLoadFile, hasLoadErrors } = await import('../../migrate/index.js');
    for (const doc of res.out.split('---\n')) {
      const issues = validateLoadFile(parse(doc) as unknown);
      assert.equal(hasLoadErrors(issues), false, JSON.stringify(issues));
    }
  });
});
