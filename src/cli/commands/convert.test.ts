import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { main } from '../../cli.js';
import { formatProblem } from '../../errors.js';
import { createStorageCodec } from '../../storage/codec.js';
import type { ConvertEntry } from './convert.js';

const FIXTURES = new URL('../../../test/fixtures/workloads/', import.meta.url);
const fixture = (name: string) => new URL(name, FIXTURES).pathname;

async function run(args: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { stdout: (t) => (out += t), stderr: (t) => (err += t), readStdin: () => stdin });
  return { code, out, err };
}

async function convertJson(file: string): Promise<{ code: number; entries: ConvertEntry[]; err: string }> {
  const res = await run(['convert', '-f', fixture(file), '-o', 'json']);
  return { code: res.code, entries: JSON.parse(res.out) as ConvertEntry[], err: res.err };
}

describe('jobs-storage convert', () => {
  test('a CronJob written by jobs-api v2 becomes the ScheduledJob jobs-api would read back', async () => {
    const { code, entries } = await convertJson('v2-scheduled-absolute-logs.yaml');
    assert.equal(code, 0);
    assert.equal(entries.length, 1);
    const [e] = entries;
    assert.ok(e?.cr);
    const cr = e.cr;
    assert.equal(e.outcome, 'job');
    assert.deepEqual(e.source, { kind: 'CronJob', namespace: 'tool-mytool', name: 'backup' });
    assert.equal(cr.apiVersion, 'jobs-api.toolforge.org/v1');
    assert.equal(cr.kind, 'ScheduledJob');
    assert.deepEqual(cr.metadata.name, 'backup');
    assert.deepEqual(cr.metadata.namespace, 'tool-mytool');
    const spec = cr.spec ?? {};
    assert.equal(spec['job_type'], 'scheduled');
    assert.equal(spec['cmd'], './backup.sh --full');
    assert.deepEqual(spec['schedule'], {
      text: '@monthly',
      minute: '54',
      hour: '14',
      day: '22',
      month: '*',
      day_of_week: '*',
    });
    // What jobs-api stores has no keys its model would refuse (extra="forbid"); our v1 schema mirrors it.
    const decoded = createStorageCodec().read(cr);
    assert.ok(decoded.ok, decoded.ok ? '' : formatProblem(decoded.problem));
    assert.equal(Object.keys(spec).includes('k8s_object'), false);
  });

  const eras: Array<[string, 'ScheduledJob' | 'ContinuousJob']> = [
    ['pre-release-scheduled.yaml', 'ScheduledJob'],
    ['v1-unwrapped-scheduled.yaml', 'ScheduledJob'],
    ['v1-unwrapped-continuous.yaml', 'ContinuousJob'],
    ['v1-scheduled-filelog.yaml', 'ScheduledJob'],
    ['v1-continuous-nofilelog.yaml', 'ContinuousJob'],
    ['v1-new-format-scheduled.yaml', 'ScheduledJob'],
    ['v1-new-format-continuous-nofilelog.yaml', 'ContinuousJob'],
    ['v2-scheduled-relative-logs.yaml', 'ScheduledJob'],
    ['v2-scheduled-admin-patched.yaml', 'ScheduledJob'],
    ['v2-continuous-nofilelog.yaml', 'ContinuousJob'],
    ['v2-continuous-port-tcp.yaml', 'ContinuousJob'],
    ['v2-continuous-legacy-name.yaml', 'ContinuousJob'],
    ['v2-continuous-buildservice-launcher.yaml', 'ContinuousJob'],
    ['v2-continuous-buildservice-shell-less.yaml', 'ContinuousJob'],
    ['v2-continuous-buildservice-split-args.yaml', 'ContinuousJob'],
  ];
  for (const [file, kind] of eras) {
    test(`${file} converts to a ${kind} the storage codec reads back`, async () => {
      const { code, entries } = await convertJson(file);
      assert.equal(code, 0);
      const jobs = entries.filter((e) => e.outcome === 'job');
      assert.equal(jobs.length, 1);
      assert.equal(jobs[0]?.cr?.kind, kind);
      assert.ok(createStorageCodec().read(jobs[0]?.cr).ok);
    });
  }

  const unmanaged: Array<[string, RegExp]> = [
    ['foreign-cronjob.yaml', /^foreign: /],
    ['webservice-deployment.yaml', /^webservice: /],
    ['cronjob-spawned-job.yaml', /^cronjob-run: /],
    ['cronjob-manual-job.yaml', /^cronjob-run: /],
    ['v2-one-off.yaml', /^one-off-job: /],
    ['v1-one-off.yaml', /^one-off-job: /],
    ['v2-service-port-tcp.yaml', /^job-service: /],
  ];
  for (const [file, reason] of unmanaged) {
    test(`${file} is classified unmanaged with its reason`, async () => {
      const { code, entries } = await convertJson(file);
      assert.equal(code, 0);
      assert.ok(entries.length > 0);
      for (const e of entries) {
        assert.equal(e.outcome, 'unmanaged');
        assert.match(e.reason ?? '', reason);
        assert.equal(e.cr, undefined);
      }
    });
  }

  const broken: Array<[string, RegExp]> = [
    ['broken-cronjob-no-containers.yaml', /containers/],
    ['broken-deployment-nonnumeric-port.yaml', /containers\[0\]\.ports\[0\]\.containerPort/],
    ['broken-cronjob-bad-schedule.yaml', /schedule/],
  ];
  for (const [file, field] of broken) {
    test(`${file} is an error naming the field and the file line (exit 1)`, async () => {
      const res = await run(['convert', '-f', fixture(file), '-o', 'json']);
      assert.equal(res.code, 1);
      const [e] = JSON.parse(res.out) as ConvertEntry[];
      assert.equal(e?.outcome, 'error');
      assert.match(e?.reason ?? '', field);
      assert.match(e?.reason ?? '', new RegExp(`${file.replace('.', '\\.')}:\\d+`));
      assert.match(res.err, /^error: /m);
    });
  }

  test('YAML output: one document per CR, comments for the rest', async () => {
    const stdin = ['v2-scheduled-absolute-logs.yaml', 'foreign-cronjob.yaml']
      .map((f) => readFileSync(fixture(f), 'utf8'))
      .join('\n---\n');
    const res = await run(['convert', '-f', '-'], stdin);
    assert.equal(res.code, 0);
    const docs = res.out.split(/^---$/m).map((d) => parse(d) as { kind?: string } | null);
    assert.equal(docs[0]?.kind, 'ScheduledJob');
    assert.equal(docs[1], null);
    assert.match(res.out, /# CronJob tool-mytool\/my-own-cron: unmanaged \(foreign: /);
  });

  test('every fixture converts without a crash, and a List of all of them keeps one entry per object', async () => {
    const items = readdirSync(FIXTURES)
      .filter((f) => f.endsWith('.yaml'))
      .flatMap((f) => readFileSync(new URL(f, FIXTURES), 'utf8').split(/^---$/m))
      .map((d) => parse(d) as unknown)
      .filter((d) => d !== null);
    const res = await run(
      ['convert', '-f', '-', '-o', 'json'],
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
    );
    const entries = JSON.parse(res.out) as ConvertEntry[];
    assert.equal(entries.length, items.length);
    assert.equal(res.code, 1, 'the broken fixtures make it exit 1');
  });

  test('a file that is not YAML or JSON gets one line naming the file and line', async () => {
    const res = await run(['convert', '-f', '-'], 'kind: CronJob\nmetadata: {name: [\n');
    assert.equal(res.code, 1);
    assert.match(res.err, /^jobs-storage: <stdin>:\d+: not valid YAML or JSON: [^\n]+\n$/);
  });

  test('usage errors exit 2 with usage text', async () => {
    for (const args of [
      ['convert'],
      ['convert', '-f', 'x', '-o', 'toml'],
      ['frobnicate'],
      ['convert', '--bogus'],
      [],
    ]) {
      const res = await run(args);
      assert.equal(res.code, 2, `jobs-storage ${args.join(' ')}`);
      // No arguments at all: the help. A usage error: one line, and where the usage is.
      if (args.length === 0) assert.match(res.err, /^Usage: jobs-storage/);
      else assert.match(res.err, /^jobs-storage: [^\n]+\nsee 'jobs-storage( convert)? --help'\n$/);
    }
    const missing = await run(['convert', '-f', '/nonexistent/workloads.yaml']);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /\/nonexistent\/workloads\.yaml: cannot read/);
  });
});
