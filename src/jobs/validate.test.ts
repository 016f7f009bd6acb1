import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ContinuousJob, Job, OneOffJob, ScheduledJob } from './model.js';
import { validateJob } from './validate.js';

const scheduled: ScheduledJob = {
  job_name: 'daily',
  tool_name: 'mytool',
  job_type: 'scheduled',
  cmd: './run.sh',
  image: { short_name: 'python3.11', type: 'standard' },
  schedule: {
    text: '@daily',
    minute: '6',
    hour: '1',
    day: '*',
    month: '*',
    day_of_week: '*',
  },
};
const continuous: ContinuousJob = {
  job_name: 'bot',
  tool_name: 'mytool',
  job_type: 'continuous',
  cmd: 'web',
  image: { short_name: 'tool-mytool/bot:latest', type: 'buildservice' },
};
const oneOff: OneOffJob = {
  job_name: 'once',
  tool_name: 'mytool',
  job_type: 'one-off',
  cmd: 'date',
  image: { short_name: 'bookworm' },
};

function issues(job: Job): string[] {
  return validateJob(job).map((i) => `${i.severity} ${i.path} ${i.code}`);
}

describe('validateJob', () => {
  test('valid jobs have no issues', () => {
    assert.deepEqual(issues(scheduled), []);
    assert.deepEqual(issues(continuous), []);
    assert.deepEqual(issues(oneOff), []);
  });

  const cases: [string, Job, string[]][] = [
    ['bad name', { ...oneOff, job_name: 'My_Job' }, ['error spec.job_name name-format']],
    ['scheduled name of 53', { ...scheduled, job_name: 'a'.repeat(53) }, ['error spec.job_name name-length']],
    [
      'legacy continuous name of 63',
      { ...continuous, job_name: 'a'.repeat(63) },
      ['warning spec.job_name legacy-name-length'],
    ],
    [
      'legacy one-off name of 60',
      { ...oneOff, job_name: 'b'.repeat(60) },
      ['warning spec.job_name legacy-name-length'],
    ],
    ['continuous name of 64', { ...continuous, job_name: 'a'.repeat(64) }, ['error spec.job_name name-length']],
    ['retry 6', { ...scheduled, retry: 6 }, ['error spec.retry range']],
    ['retry -1', { ...oneOff, retry: -1 }, ['error spec.retry range']],
    ['retry 1.5', { ...oneOff, retry: 1.5 }, ['error spec.retry type']],
    ['timeout -1', { ...scheduled, timeout: -1 }, ['error spec.timeout range']],
    ['port 0', { ...continuous, port: 0 }, ['error spec.port range']],
    ['port 65536', { ...continuous, port: 65536 }, ['error spec.port range']],
    ['replicas -1', { ...continuous, replicas: -1 }, ['error spec.replicas range']],
    [
      'http check without port',
      { ...continuous, health_check: { type: 'http', path: '/h' } },
      ['error spec.health_check health-check'],
    ],
    ['mount none on a standard image', { ...oneOff, mount: 'none' }, ['error spec.mount mount-image']],
    ['filelog with mount none', { ...continuous, mount: 'none', filelog: true }, ['error spec.filelog filelog-mount']],
    [
      'dotted name with a port',
      { ...continuous, job_name: 'my.bot', port: 80 },
      ['warning spec.job_name service-name'],
    ],
    [
      'bad minute',
      { ...scheduled, schedule: { ...scheduled.schedule, minute: '61' } },
      ['error spec.schedule.minute schedule'],
    ],
    [
      'bad day of week',
      { ...scheduled, schedule: { ...scheduled.schedule, day_of_week: '8' } },
      ['error spec.schedule.day_of_week schedule'],
    ],
    [
      'unknown macro',
      { ...scheduled, schedule: { ...scheduled.schedule, text: '@reboot' } },
      ['error spec.schedule.text schedule'],
    ],
    [
      'text and fields disagree',
      {
        ...scheduled,
        schedule: {
          text: '5 4 * * *',
          minute: '6',
          hour: '4',
          day: '*',
          month: '*',
          day_of_week: '*',
        },
      },
      ['warning spec.schedule.text schedule-text'],
    ],
    ['bad memory', { ...oneOff, memory: 'lots' }, ['error spec.memory quantity']],
    ['bad emails', { ...oneOff, emails: 'sometimes' as never }, ['error spec.emails enum']],
    ['bad protocol', { ...continuous, port: 80, port_protocol: 'sctp' as never }, ['error spec.port_protocol enum']],
    ['empty command', { ...oneOff, cmd: '' }, ['error spec.cmd required']],
  ];
  for (const [name, job, expected] of cases) {
    test(name, () => assert.deepEqual(issues(job), expected));
  }

  test('mount all on a standard image and mount none on buildservice are fine', () => {
    assert.deepEqual(issues({ ...oneOff, mount: 'all', filelog: true }), []);
    assert.deepEqual(issues({ ...continuous, mount: 'none' }), []);
  });
});
