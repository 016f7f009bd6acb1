import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ScheduledJob } from '../jobs/index.js';
import { loadWorkload } from '../../test/fixtures/workloads/load.js';
import { renderJobWorkloads } from '../runtime/render.js';
import { DEFAULT_RUNTIME_SETTINGS as S } from '../runtime/settings.js';
import { createStorageCodec } from '../storage/codec.js';
import {
  exitCodeOf,
  formatPreflightJson,
  formatPreflightTable,
  preflightJob,
  preflightReport,
  preflightTool,
  toolUidFromObjects,
} from './preflight.js';
import { parseWorkload } from '../runtime/parse.js';

const settings = { runtime: S };
const codec = createStorageCodec();

/** A job made through the API today: its CR, and the CronJob jobs-api created from it. */
const daily: ScheduledJob = {
  job_name: 'daily',
  tool_name: 'mytool',
  job_type: 'scheduled',
  cmd: './run.sh',
  image: { short_name: 'python3.11' },
  schedule: { text: '@daily', minute: '6', hour: '1', day: '*', month: '*', day_of_week: '*' },
};

function liveOf(job: ScheduledJob): Record<string, unknown> {
  const r = renderJobWorkloads(job, S, { toolUid: 52001 });
  assert.ok(r.ok);
  const cron = r.value[0];
  assert.ok(cron);
  // what the API server adds on create
  return { ...cron, metadata: { ...(cron['metadata'] as object), uid: 'u-1', resourceVersion: '7' }, status: {} };
}

describe('preflightJob', () => {
  test('a job created through the API comes out the same', () => {
    const r = preflightJob(codec.encode(daily), [liveOf(daily)], settings);
    assert.equal(r.verdict, 'same', JSON.stringify(r.differences));
    assert.deepEqual([r.tool, r.job, r.kind], ['mytool', 'daily', 'ScheduledJob']);
  });

  test('a CronJob edited by hand (cpu) is functional, with the field and reason', () => {
    const live = liveOf(daily);
    const pod = (live['spec'] as any).jobTemplate.spec.template.spec; // eslint-disable-line @typescript-eslint/no-explicit-any
    pod.containers[0].resources = { requests: { cpu: '250m', memory: '512Mi' }, limits: { cpu: '1', memory: '512Mi' } };
    const r = preflightJob(codec.encode(daily), [live], settings);
    assert.equal(r.verdict, 'functional');
    assert.deepEqual(
      r.differences.map((d) => [d.field, d.live, d.rendered, d.class, d.reason]),
      [
        [
          'spec.jobTemplate.spec.template.spec.containers[0].resources.requests.cpu',
          '250m',
          '100m',
          'functional',
          'cpu request would drop from 250m to 100m',
        ],
      ],
    );
  });

  test("the tool's uid: from the live pod template, else from the settings' lookup", () => {
    assert.equal(toolUidFromObjects([loadWorkload('v2-scheduled-absolute-logs')]), 52001);
    assert.equal(toolUidFromObjects([loadWorkload('v2-scheduled-admin-patched')]), undefined);
    const patched = loadWorkload('v2-scheduled-admin-patched');
    const parsed = parseWorkload(patched, S);
    assert.ok(parsed.ok);
    const cr = codec.encode(parsed.value.job as ScheduledJob);
    const uidOf = (r: ReturnType<typeof preflightJob>): unknown =>
      r.differences.find((d) => d.field === 'spec.jobTemplate.spec.template.spec.securityContext')?.rendered;
    assert.deepEqual(uidOf(preflightJob(cr, [patched], settings)), {
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    assert.deepEqual(uidOf(preflightJob(cr, [patched], { ...settings, toolUid: () => 52001 })), {
      fsGroup: 52001,
      runAsGroup: 52001,
      runAsUser: 52001,
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  test('a CR that does not decode is an error with the reason', () => {
    const cr = { ...codec.encode(daily), spec: { ...codec.encode(daily).spec, job_type: 'continuous' } };
    const r = preflightJob(cr, [liveOf(daily)], settings);
    assert.equal(r.verdict, 'error');
    assert.equal(r.error?.code, 'cr-does-not-decode');
    assert.match(r.error?.message ?? '', /^ScheduledJob tool-mytool\/daily spec: .+/);
  });
});

describe('preflightTool and the report', () => {
  const patched = loadWorkload('v2-scheduled-admin-patched');
  const patchedCr = codec.encode({
    ...daily,
    job_name: 'sweep',
    cmd: './sweep.sh',
    image: { short_name: 'bookworm' },
    schedule: { text: '@daily', minute: '49', hour: '5', day: '*', month: '*', day_of_week: '*' },
  });
  const orphanCr = codec.encode({ ...daily, job_name: 'gone' });
  const broken = { ...codec.encode({ ...daily, job_name: 'broken' }), spec: { job_name: 'broken' } };
  const brokenLive = {
    ...liveOf(daily),
    metadata: {
      name: 'broken',
      namespace: 'tool-mytool',
      labels: { 'app.kubernetes.io/managed-by': 'toolforge-jobs-framework' },
    },
  };
  const foreign = loadWorkload('foreign-cronjob');
  const unmanaged = loadWorkload('v2-continuous-nofilelog');

  const tool = preflightTool(
    'mytool',
    [codec.encode(daily), patchedCr, orphanCr, broken],
    [liveOf(daily), patched, foreign, unmanaged, brokenLive, loadWorkload('cronjob-spawned-job')],
    settings,
  );

  test('jobs are matched by kind and name; one-sided jobs are listed apart; foreign objects and runs are not jobs', () => {
    assert.deepEqual(
      tool.jobs.map((j) => [j.job, j.verdict]),
      [
        ['daily', 'same'],
        ['sweep', 'functional'],
        ['broken', 'error'],
      ],
    );
    assert.deepEqual(tool.onlyInStorage, [{ tool: 'mytool', job: 'gone', kind: 'ScheduledJob' }]);
    assert.deepEqual(tool.onlyInRuntime, [{ tool: 'mytool', job: 'web-frontend', kind: 'ContinuousJob' }]);
    assert.deepEqual(tool.totals, {
      jobs: 3,
      same: 1,
      cosmetic: 0,
      functional: 1,
      errors: 1,
      onlyInRuntime: 1,
      onlyInStorage: 1,
    });
  });

  test('cluster-wide totals and the kubectl-diff exit code: 2 on errors, 1 on functional changes, 0 otherwise', () => {
    const clean = preflightTool(
      'other',
      [codec.encode({ ...daily, tool_name: 'other' })],
      [liveOf({ ...daily, tool_name: 'other' })],
      settings,
    );
    const report = preflightReport([tool, clean]);
    assert.deepEqual(
      report.tools.map((t) => t.tool),
      ['mytool', 'other'],
    );
    assert.equal(report.totals.jobs, 4);
    assert.equal(report.totals.same, 2);
    assert.equal(report.exitCode, 2);
    assert.equal(preflightReport([clean]).exitCode, 0);
    assert.equal(exitCodeOf({ ...report.totals, errors: 0 }), 1);
  });

  test('table: verdicts, field: live → rendered with the reason, one-sided jobs, totals; JSON round-trips', () => {
    const report = preflightReport([tool]);
    const table = formatPreflightTable(report);
    assert.match(
      table,
      /^tool mytool: 3 jobs compared: 1 same, 0 cosmetic, 1 functional, 1 errors; 1 only in runtime, 1 only in storage$/m,
    );
    assert.match(table, /^ {2}ScheduledJob sweep: functional$/m);
    assert.match(table, /^ {4}\[functional\] CronJob\/sweep spec\.schedule: @daily → 49 5 \* \* \*$/m);
    assert.match(table, /^ {8}the schedule would change from @daily to 49 5 \* \* \*$/m);
    assert.match(table, /^ {4}error \(cr-does-not-decode\): .+$/m);
    assert.match(table, /^ {2}ScheduledJob gone: only in storage/m);
    assert.match(table, /^ {2}ContinuousJob web-frontend: only in runtime/m);
    assert.match(table, /^exit code 2$/m);
    assert.deepEqual(JSON.parse(formatPreflightJson(report)), JSON.parse(JSON.stringify(report)));
  });
});
