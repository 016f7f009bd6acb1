import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import {
  jobFromLoadEntry,
  validateLoadEntry,
  validateLoadFile,
  type LoadEntry,
  type LoadIssueCode,
} from './load-file.js';

const base = { name: 'worker', image: 'python3.11', command: './run.sh' };

interface Row {
  why: string;
  entry: Record<string, unknown>;
  /** Expected [path, code, severity] of every issue, in order; [] = valid. */
  issues: [string, LoadIssueCode, 'error' | 'warning'][];
}

const ROWS: Row[] = [
  { why: 'scheduled job', entry: { ...base, schedule: '@daily', retry: 2, timeout: 60 }, issues: [] },
  {
    why: 'an @-macro in capitals (jobs-api lower-cases the schedule)',
    entry: { ...base, schedule: '@DAILY' },
    issues: [],
  },
  {
    why: 'continuous job, everything',
    entry: {
      ...base,
      continuous: true,
      port: '8000/udp',
      replicas: 2,
      'health-check-script': 'true',
      mem: '1Gi',
      cpu: 0.5,
      emails: 'all',
      'no-filelog': true,
    },
    issues: [],
  },
  {
    why: 'http health check with an integer port',
    entry: { ...base, continuous: true, port: 8080, 'health-check-http': '/healthz' },
    issues: [],
  },
  {
    why: 'buildservice image with file logs on NFS',
    entry: {
      ...base,
      image: 'tool-x/x:latest',
      schedule: '0 3 * * *',
      mount: 'all',
      filelog: true,
      'filelog-stdout': 'logs/x.out',
    },
    issues: [],
  },
  {
    why: 'one-off job: accepted, but load does not create it',
    entry: { ...base, wait: 300 },
    issues: [['jobs[0]', 'one-off', 'warning']],
  },
  {
    why: 'unknown key',
    entry: { ...base, schedule: '@daily', foo: 1 },
    issues: [['jobs[0].foo', 'unknown-key', 'error']],
  },
  {
    why: 'API spelling of the command',
    entry: { name: 'w', image: 'bookworm', cmd: 'x', schedule: '@daily' },
    issues: [
      ['jobs[0].cmd', 'unknown-key', 'error'],
      ['jobs[0].command', 'required', 'error'],
    ],
  },
  {
    why: 'underscore key',
    entry: { ...base, schedule: '@daily', filelog_stdout: 'a' },
    issues: [['jobs[0].filelog_stdout', 'underscore-key', 'error']],
  },
  {
    why: 'port-protocol does not exist',
    entry: { ...base, continuous: true, port: 80, 'port-protocol': 'udp' },
    issues: [['jobs[0].port-protocol', 'unknown-key', 'error']],
  },
  {
    why: 'job_type is not written',
    entry: { ...base, job_type: 'continuous' },
    issues: [
      ['jobs[0].job_type', 'unknown-key', 'error'],
      ['jobs[0]', 'one-off', 'warning'],
    ],
  },
  {
    why: 'abbreviation',
    entry: { ...base, sched: '@daily' },
    issues: [['jobs[0].sched', 'abbreviated-key', 'warning']],
  },
  {
    why: 'ambiguous abbreviation',
    entry: { ...base, schedule: '@daily', file: 'x' },
    issues: [['jobs[0].file', 'ambiguous-key', 'error']],
  },
  {
    why: 'name pattern',
    entry: { ...base, name: 'My_Job', schedule: '@daily' },
    issues: [['jobs[0].name', 'name', 'error']],
  },
  {
    why: 'name length',
    entry: { ...base, name: 'a'.repeat(53), continuous: true },
    issues: [['jobs[0].name', 'name', 'error']],
  },
  {
    why: 'bad schedule',
    entry: { ...base, schedule: '0 25 * * *' },
    issues: [['jobs[0].schedule', 'schedule', 'error']],
  },
  {
    why: 'unknown macro',
    entry: { ...base, schedule: '@fortnightly' },
    issues: [['jobs[0].schedule', 'schedule', 'error']],
  },
  {
    why: 'schedule must be a string',
    entry: { ...base, schedule: 5 },
    issues: [
      ['jobs[0].schedule', 'value', 'error'],
      ['jobs[0]', 'one-off', 'warning'],
    ],
  },
  {
    why: 'schedule and continuous',
    entry: { ...base, schedule: '@daily', continuous: true },
    issues: [['jobs[0].continuous', 'exclusive', 'error']],
  },
  {
    why: 'port out of range',
    entry: { ...base, continuous: true, port: 70000 },
    issues: [['jobs[0].port', 'port', 'error']],
  },
  {
    why: 'port with an unknown protocol',
    entry: { ...base, continuous: true, port: '53/sctp' },
    issues: [['jobs[0].port', 'port', 'error']],
  },
  {
    why: 'port on a scheduled job',
    entry: { ...base, schedule: '@daily', port: 80 },
    issues: [['jobs[0].port', 'job-type', 'error']],
  },
  {
    why: 'retry on a continuous job',
    entry: { ...base, continuous: true, retry: 1 },
    issues: [['jobs[0].retry', 'job-type', 'error']],
  },
  {
    why: 'retry out of range',
    entry: { ...base, schedule: '@daily', retry: 6 },
    issues: [['jobs[0].retry', 'value', 'error']],
  },
  {
    why: 'timeout on a continuous job',
    entry: { ...base, continuous: true, timeout: 5 },
    issues: [['jobs[0].timeout', 'job-type', 'error']],
  },
  {
    why: 'health check on a scheduled job',
    entry: { ...base, schedule: '@daily', 'health-check-script': 'x' },
    issues: [['jobs[0].health-check-script', 'job-type', 'error']],
  },
  {
    why: 'http health check needs a port',
    entry: { ...base, continuous: true, 'health-check-http': '/' },
    issues: [['jobs[0].health-check-http', 'health-check', 'error']],
  },
  {
    why: 'bad memory quantity',
    entry: { ...base, continuous: true, mem: 'lots' },
    issues: [['jobs[0].mem', 'quantity', 'error']],
  },
  {
    why: 'negative memory',
    entry: { ...base, continuous: true, mem: '-1Gi' },
    issues: [['jobs[0].mem', 'quantity', 'error']],
  },
  { why: 'zero cpu', entry: { ...base, continuous: true, cpu: 0 }, issues: [['jobs[0].cpu', 'quantity', 'error']] },
  {
    why: 'a YAML number where the CLI takes text',
    entry: { ...base, name: 2024, command: 42, continuous: true },
    issues: [],
  },
  {
    why: 'bad cpu quantity',
    entry: { ...base, continuous: true, cpu: '1 core' },
    issues: [['jobs[0].cpu', 'quantity', 'error']],
  },
  {
    why: 'emails choice',
    entry: { ...base, continuous: true, emails: 'always' },
    issues: [['jobs[0].emails', 'value', 'error']],
  },
  {
    why: 'mount none on a standard image',
    entry: { ...base, continuous: true, mount: 'none', 'no-filelog': true },
    issues: [['jobs[0].mount', 'mount', 'error']],
  },
  {
    why: 'filelog on a buildservice image without mount',
    entry: { ...base, image: 'tool-x/x:latest', continuous: true, filelog: true },
    issues: [['jobs[0].mount', 'filelog', 'error']],
  },
  {
    why: 'log path with file logging off',
    entry: { ...base, continuous: true, 'no-filelog': true, 'filelog-stderr': 'x.err' },
    issues: [['jobs[0].filelog-stderr', 'filelog', 'error']],
  },
  {
    why: 'filelog and no-filelog',
    entry: { ...base, continuous: true, filelog: true, 'no-filelog': true },
    issues: [['jobs[0].no-filelog', 'exclusive', 'error']],
  },
  {
    why: 'legacy string value',
    entry: { ...base, continuous: true, 'no-filelog': 'true' },
    issues: [['jobs[0].no-filelog', 'legacy-value', 'warning']],
  },
  {
    why: 'continuous: false is dropped',
    entry: { ...base, schedule: '@daily', continuous: false },
    issues: [['jobs[0].continuous', 'ignored-value', 'warning']],
  },
  {
    why: 'command starting with a dash',
    entry: { ...base, command: '--help', continuous: true },
    issues: [['jobs[0].command', 'value', 'error']],
  },
  {
    why: 'missing image',
    entry: { name: 'x', command: 'y', continuous: true },
    issues: [['jobs[0].image', 'required', 'error']],
  },
];

describe('load file validation', () => {
  for (const row of ROWS) {
    test(row.why, () => {
      const got = validateLoadEntry(row.entry, 0).map((i) => [i.path, i.code, i.severity]);
      assert.deepEqual(got, row.issues);
    });
  }

  test('the file must be a list of mappings', () => {
    assert.deepEqual(
      validateLoadFile({ name: 'x' }).map((i) => i.code),
      ['not-a-list'],
    );
    assert.deepEqual(
      validateLoadFile(['x']).map((i) => [i.path, i.code]),
      [['jobs[0]', 'not-a-mapping']],
    );
  });

  test('duplicate names are reported at the later entry', () => {
    const issues = validateLoadFile([
      { ...base, schedule: '@daily' },
      { ...base, continuous: true },
    ]);
    assert.deepEqual(
      issues.map((i) => [i.path, i.code]),
      [['jobs[1].name', 'duplicate-name']],
    );
  });

  test('the format example of a mixed file is valid', () => {
    const text = `
- name: update-stats
  image: python3.11
  command: ./venv/bin/python update_stats.py --all
  schedule: "@daily"
  timeout: 3600
  retry: 2
  emails: onfailure
  mem: 1Gi
- name: api-worker
  image: python3.11
  command: ./venv/bin/python worker.py
  continuous: true
  port: 8000
  health-check-http: /healthz
  replicas: 2
  cpu: "0.5"
  no-filelog: true
`;
    assert.deepEqual(validateLoadFile(parse(text)), []);
  });
});

describe('reading an entry as jobs-api does', () => {
  test('a scheduled entry: filelog sent from the image default, schedule parsed with the tool and job seed', () => {
    const entry: LoadEntry = { ...base, schedule: '@daily', mem: '1Gi', cpu: '500m', retry: 1 };
    const job = jobFromLoadEntry(entry, 'mytool');
    assert.equal(job.job_type, 'scheduled');
    assert.equal(job.filelog, true);
    assert.equal(job.memory, '1.0Gi');
    assert.equal(job.cpu, '0.5');
    assert.equal(job.job_type === 'scheduled' && job.schedule.text, '@daily');
    assert.equal(job.job_type === 'scheduled' && job.retry, 1);
  });

  test('an @-macro in capitals lands on the same time as the lower-case one', () => {
    const upper = jobFromLoadEntry({ ...base, schedule: '@DAILY' }, 'mytool');
    const lower = jobFromLoadEntry({ ...base, schedule: '@daily' }, 'mytool');
    assert.ok(upper.job_type === 'scheduled' && lower.job_type === 'scheduled');
    assert.deepEqual({ ...upper.schedule, text: '' }, { ...lower.schedule, text: '' });
    assert.equal(upper.schedule.text, '@DAILY');
  });

  test('a continuous entry: port and protocol split, health check, buildservice filelog off', () => {
    const entry: LoadEntry = {
      name: 'web',
      image: 'tool-x/web:latest',
      command: 'web',
      continuous: true,
      port: '5353/udp',
      'health-check-script': 'launcher ping',
    };
    const job = jobFromLoadEntry(entry, 'x');
    assert.deepEqual(job, {
      job_name: 'web',
      tool_name: 'x',
      cmd: 'web',
      image: { short_name: 'tool-x/web:latest' },
      filelog: false,
      job_type: 'continuous',
      port: 5353,
      port_protocol: 'udp',
      health_check: { type: 'script', script: 'launcher ping' },
    });
  });
});
