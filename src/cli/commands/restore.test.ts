import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ContinuousJob } from '../../jobs/index.js';
import { DEFAULT_RUNTIME_SETTINGS } from '../../runtime/settings.js';
import { crOf, scheduledJob, workloadsOf } from '../../../scripts/control-plane/jobs.js';
import { selectRestores } from './restore.js';

const settings = { runtime: DEFAULT_RUNTIME_SETTINGS, toolUid: () => 52503 };
const lostDaily = scheduledJob('alpha', 'daily');
const running = scheduledJob('alpha', 'nightly');
const web: ContinuousJob = {
  job_name: 'web',
  tool_name: 'alpha',
  job_type: 'continuous',
  cmd: 'serve',
  image: { short_name: 'python3.11' },
  port: 8000,
};
const crs = [crOf(lostDaily), crOf(running), crOf(web)];

describe('restore: which jobs a run takes', () => {
  test('without --job: every job whose workload is missing; a job half there is refused', () => {
    const service = workloadsOf(web).find((o) => o['kind'] === 'Service');
    const { plans, missing } = selectRestores(crs, [...workloadsOf(running), service], [], settings);
    assert.deepEqual(missing, []);
    assert.deepEqual(
      plans.map((p) => (p.ok ? [p.value.job, p.value.objects.map((o) => o['kind'])] : [p.problem.job, p.problem.code])),
      [
        ['daily', ['CronJob']],
        ['web', 'workload-exists'],
      ],
    );
  });

  test('with --job: the named jobs, a running one refused with the reason, an unknown name reported missing', () => {
    const { plans, missing } = selectRestores(crs, workloadsOf(running), ['nightly', 'web', 'nope'], settings);
    assert.deepEqual(missing, ['nope']);
    const [nightly, webPlan] = plans;
    assert.ok(nightly && !nightly.ok);
    assert.equal(nightly.problem.code, 'workload-exists');
    assert.match(nightly.problem.message, /^CronJob\/nightly still exists/);
    assert.ok(webPlan?.ok);
    assert.deepEqual(
      webPlan.value.objects.map((o) => o['kind']),
      ['Deployment', 'Service'],
    );
  });

  test('a CR that does not decode is refused with the reason', () => {
    const broken = { ...crOf(lostDaily), spec: { cmd: 42 } };
    const { plans } = selectRestores([broken], [], [], settings);
    assert.equal(plans.length, 1);
    assert.ok(plans[0] && !plans[0].ok);
    assert.equal(plans[0].problem.code, 'cr-does-not-decode');
    assert.notEqual(plans[0].problem.message, '');
  });
});
