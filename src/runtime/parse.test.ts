import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Job, JobImage } from '../jobs/index.js';
import { loadWorkload } from '../../test/fixtures/workloads/load.js';
import { parseWorkload, type ParsedWorkload } from './parse.js';
import { DEFAULT_RUNTIME_SETTINGS as S } from './settings.js';

const REG = 'docker-registry.tools.wmflabs.org';

function prebuilt(short: string, base: string, aliases: string[], state = 'stable'): JobImage {
  return {
    short_name: short,
    type: 'standard',
    aliases,
    host: REG,
    path: `${base}-sssd-web`,
    tag: 'latest',
    state,
  };
}
const PY39 = prebuilt(
  'python3.9',
  'toolforge-python39',
  ['tf-python39', 'toolforge-python39', 'toolforge-python39-sssd-base', 'toolforge-python39-sssd-web'],
  'deprecated',
);
const PY311 = prebuilt('python3.11', 'toolforge-python311', [
  'toolforge-python311',
  'toolforge-python311-sssd-base',
  'toolforge-python311-sssd-web',
]);
const PY37 = prebuilt(
  'python3.7',
  'toolforge-python37',
  ['tf-python37', 'toolforge-python37-sssd-base', 'toolforge-python37-sssd-web'],
  'deprecated',
);

function harbor(path: string): JobImage {
  return {
    short_name: `${path}:latest`,
    type: 'buildservice',
    host: 'tools-harbor.wmcloud.org',
    path,
    tag: 'latest',
    state: 'stable',
  };
}

function parsed(name: string, options = {}): ParsedWorkload {
  const result = parseWorkload(loadWorkload(name), S, options);
  assert.ok(result.ok, `expected ${name} to parse: ${JSON.stringify(result)}`);
  return result.value;
}

function codes(result: ParsedWorkload): string[] {
  return result.warnings.map((w) => w.code).sort();
}

describe('parseWorkload: one expected job per era', () => {
  test('pre-release: component "tool", unwrapped command, unknown (removed) image', () => {
    const r = parsed('pre-release-scheduled');
    assert.equal(r.era.id, 'pre-release');
    const expected: Job = {
      job_name: 'hourly-sync',
      tool_name: 'betatool',
      job_type: 'scheduled',
      cmd: './sync.sh',
      image: {
        short_name: 'toolforge-buster-sssd:latest',
        type: 'standard',
        host: REG,
        path: 'toolforge-buster-sssd',
        tag: 'latest',
        state: 'unknown',
        exists: false,
      },
      filelog: false,
      retry: 1,
      schedule: {
        text: '17 * * * *',
        minute: '17',
        hour: '*',
        day: '*',
        month: '*',
        day_of_week: '*',
      },
    };
    assert.deepEqual(r.job, expected);
    assert.ok(codes(r).includes('invisible-to-jobs-api'));
    assert.ok(codes(r).includes('jobs-api-cannot-parse'));
    assert.deepEqual(r.era.features, ['batch-v1beta1', 'container-named-after-job', 'home-volume']);
  });

  test('v1 before 2021-07-12: command [<cmd>] without shell', () => {
    const r = parsed('v1-unwrapped-continuous');
    assert.equal(r.era.id, 'v1-unwrapped');
    assert.deepEqual(r.job, {
      job_name: 'irc-bot',
      tool_name: 'mytool',
      job_type: 'continuous',
      cmd: '/data/project/mytool/bot.py',
      image: PY37,
      filelog: false,
    });
    assert.deepEqual(codes(r), ['filelog-made-explicit', 'image-variant', 'jobs-api-cannot-parse', 'no-resources']);
  });

  test('v1 with filelog: relative logs, batch/v1beta1, early 500m/250m cpu', () => {
    const r = parsed('v1-scheduled-filelog');
    assert.equal(r.era.id, 'v1');
    assert.deepEqual(r.job, {
      job_name: 'daily-report',
      tool_name: 'mytool',
      job_type: 'scheduled',
      cmd: 'python3 report.py --all',
      image: PY39,
      filelog: true,
      filelog_stdout: 'daily-report.out',
      filelog_stderr: 'daily-report.err',
      cpu: '0.5',
      emails: 'onfailure',
      retry: 1,
      schedule: {
        text: '0 7 * * 1-5',
        minute: '0',
        hour: '7',
        day: '*',
        month: '*',
        day_of_week: '1-5',
      },
    });
    assert.deepEqual(codes(r), ['cpu-old-default', 'image-variant', 'no-cron-annotation']);
  });

  test('v1 without filelog: "> /dev/null" redirects are kept as the log paths', () => {
    const r = parsed('v1-continuous-nofilelog');
    assert.equal(r.era.id, 'v1');
    assert.deepEqual(r.job, {
      job_name: 'listener',
      tool_name: 'mytool',
      job_type: 'continuous',
      cmd: 'node listener.js --port 9000',
      image: prebuilt(
        'node16',
        'toolforge-node16',
        ['tf-node16', 'toolforge-node16', 'toolforge-node16-sssd-base', 'toolforge-node16-sssd-web'],
        'deprecated',
      ),
      filelog: false,
      filelog_stdout: '/dev/null',
      filelog_stderr: '/dev/null',
    });
  });

  test('v1 one-off job', () => {
    const r = parsed('v1-one-off');
    assert.equal(r.job.job_type, 'one-off');
    assert.equal(r.job.cmd, 'php maintenance/reindex.php');
    assert.equal(r.job.job_type === 'one-off' ? r.job.retry : undefined, 1);
    assert.equal(r.job.emails, 'all');
  });

  test('v1 + command-new-format with filelog (jobs-api test fixture shape)', () => {
    const r = parsed('v1-new-format-scheduled');
    assert.equal(r.era.id, 'v1-new-format');
    assert.deepEqual(r.job, {
      job_name: 'test',
      tool_name: 'tf-test',
      job_type: 'scheduled',
      cmd: './restart.sh',
      image: {
        short_name: 'bullseye',
        type: 'standard',
        aliases: ['toolforge-bullseye'],
        host: REG,
        path: 'toolforge-bullseye-sssd',
        tag: 'latest',
        state: 'stable',
      },
      filelog: true,
      filelog_stdout: '/data/project/tf-test/test.out',
      filelog_stderr: '/data/project/tf-test/test.err',
      schedule: {
        text: '*/5 * * * *',
        minute: '*/5',
        hour: '*',
        day: '*',
        month: '*',
        day_of_week: '*',
      },
    });
  });

  test('v1 + command-new-format without filelog: user command with ";"', () => {
    const r = parsed('v1-new-format-continuous-nofilelog');
    assert.equal(r.job.cmd, './worker.sh --queue a ; ./notify.sh');
    assert.equal(r.job.filelog_stdout, '/dev/null');
    assert.equal(r.job.emails, 'onfinish');
  });

  test('v2 2023: relative log paths, no annotation, 500m/500m cpu read as 0.5', () => {
    const r = parsed('v2-scheduled-relative-logs');
    assert.equal(r.era.id, 'v2');
    assert.deepEqual(r.job, {
      job_name: 'nightly',
      tool_name: 'mytool',
      job_type: 'scheduled',
      cmd: './nightly.sh',
      image: PY311,
      filelog: true,
      filelog_stdout: 'nightly.out',
      filelog_stderr: 'nightly.err',
      cpu: '0.5',
      schedule: {
        text: '30 2 * * *',
        minute: '30',
        hour: '2',
        day: '*',
        month: '*',
        day_of_week: '*',
      },
    });
    assert.ok(r.era.features.includes('relative-log-paths'));
  });

  test('v2 current: configured @monthly vs actual schedule, timeout, retry, resources', () => {
    const r = parsed('v2-scheduled-absolute-logs');
    assert.deepEqual(r.job, {
      job_name: 'backup',
      tool_name: 'mytool',
      job_type: 'scheduled',
      cmd: './backup.sh --full',
      image: PY311,
      filelog: true,
      filelog_stdout: '/data/project/mytool/logs/backup.log',
      filelog_stderr: '/data/project/mytool/logs/backup.log',
      memory: '2.0Gi',
      cpu: '2.0',
      emails: 'onfailure',
      retry: 2,
      timeout: 3600,
      schedule: {
        text: '@monthly',
        minute: '54',
        hour: '14',
        day: '22',
        month: '*',
        day_of_week: '*',
      },
    });
    assert.deepEqual(codes(r), ['image-variant']);
  });

  test('v2 admin-patched 1000m/100m is the default cpu; a raw macro schedule becomes the derived time', () => {
    const r = parsed('v2-scheduled-admin-patched');
    assert.equal(r.job.cpu, undefined);
    assert.equal(r.job.memory, undefined);
    assert.deepEqual(r.job.job_type === 'scheduled' ? r.job.schedule : undefined, {
      text: '@daily',
      minute: '49',
      hour: '5',
      day: '*',
      month: '*',
      day_of_week: '*',
    });
    assert.ok(codes(r).includes('raw-macro-schedule'));
  });

  test('the cpu heuristic depends on the configured default cpu limit', () => {
    const r = parseWorkload(loadWorkload('v2-scheduled-admin-patched'), {
      ...S,
      defaultCpuLimit: '4000m',
    });
    assert.ok(r.ok);
    assert.equal(r.value.job.cpu, '1.0');
  });

  test('v2 continuous with a tcp port: the implicit tcpSocket probe is not a health check', () => {
    const r = parsed('v2-continuous-port-tcp', {
      service: loadWorkload('v2-service-port-tcp'),
    });
    assert.deepEqual(r.job, {
      job_name: 'api',
      tool_name: 'mytool',
      job_type: 'continuous',
      cmd: 'gunicorn -b 0.0.0.0:8080 app:app',
      image: PY311,
      filelog: false,
      memory: '1.0Gi',
      port: 8080,
      replicas: 2,
    });
    assert.deepEqual(codes(r), ['filelog-made-explicit']);
    for (const f of ['implicit-tcp-probe', 'minimal-selector', 'port-env', 'restarted'] as const)
      assert.ok(r.era.features.includes(f));
  });

  test('a Service that does not match the job is reported', () => {
    const service = loadWorkload('v2-service-port-tcp') as {
      spec: { ports: { port: number }[] };
    };
    const first = service.spec.ports[0];
    if (first) first.port = 9999;
    const r = parsed('v2-continuous-port-tcp', { service });
    assert.ok(codes(r).includes('service-mismatch'));
  });

  test('v2 buildservice 2023-05: command [first] + args [rest], no launcher, no mount label', () => {
    const r = parsed('v2-continuous-buildservice-split-args');
    assert.deepEqual(r.job, {
      job_name: 'ingest',
      tool_name: 'mytool',
      job_type: 'continuous',
      cmd: 'ingest --queue edits --verbose',
      image: harbor('tool-mytool/ingest'),
    });
    assert.deepEqual(codes(r), ['launcher-added-on-render', 'mount-label-missing']);
    assert.ok(r.era.features.includes('split-args'));
  });

  test('v2 buildservice with "launcher " in a shell and a script health check', () => {
    const r = parsed('v2-continuous-buildservice-launcher');
    assert.deepEqual(r.job, {
      job_name: 'consumer',
      tool_name: 'mytool',
      job_type: 'continuous',
      cmd: 'consumer --batch 50',
      image: harbor('tool-mytool/consumer'),
      memory: '0.25Gi',
      cpu: '0.5',
      emails: 'all',
      health_check: { type: 'script', script: 'test -f /tmp/healthy' },
    });
  });

  test('v2 buildservice 2026 shell-less launcher command with http health check', () => {
    const r = parsed('v2-continuous-buildservice-shell-less');
    assert.deepEqual(r.job, {
      job_name: 'webhook-receiver',
      tool_name: 'mytool',
      job_type: 'continuous',
      cmd: 'web --workers 2',
      image: harbor('tool-mytool/receiver'),
      port: 8000,
      health_check: { type: 'http', path: '/healthz' },
    });
    assert.ok(r.era.features.includes('shell-less'));
  });

  test('v2 one-off job with a quoted argument', () => {
    const r = parsed('v2-one-off');
    assert.equal(r.job.cmd, 'php reprocess.php "a b"');
    assert.equal(r.job.job_type === 'one-off' ? r.job.retry : undefined, 3);
  });

  test('a legacy 57-character continuous name parses with a warning', () => {
    const r = parsed('v2-continuous-legacy-name');
    assert.ok(r.warnings.some((w) => w.code === 'validation' && w.path === 'metadata.name'));
  });

  test('jobsApiFieldsOnly leaves filelog unset, as jobs-api does', () => {
    const r = parsed('v2-continuous-nofilelog', { jobsApiFieldsOnly: true });
    assert.equal(r.job.filelog, undefined);
    assert.ok(!codes(r).includes('filelog-made-explicit'));
  });
});

describe('parseWorkload: errors name the field', () => {
  const cases: [string, string, RegExp][] = [
    ['broken-cronjob-no-containers', 'spec.jobTemplate.spec.template.spec.containers', /at least one container/],
    [
      'broken-deployment-nonnumeric-port',
      'spec.template.spec.containers[0].ports[0].containerPort',
      /must be an integer/,
    ],
    ['broken-cronjob-bad-schedule', 'spec.schedule', /Invalid value '25', expected 0-23/],
    ['cronjob-spawned-job', 'metadata.ownerReferences', /run of CronJob 'backup'/],
    ['cronjob-manual-job', 'metadata.ownerReferences', /run of CronJob 'backup'/],
    ['foreign-cronjob', 'metadata.labels["app.kubernetes.io/managed-by"]', /not an object written by jobs-api/],
    ['webservice-deployment', 'metadata.labels["app.kubernetes.io/managed-by"]', /not an object written by jobs-api/],
    ['v2-service-port-tcp', 'kind', /must be CronJob, Deployment or Job/],
  ];
  for (const [name, path, message] of cases) {
    test(name, () => {
      const r = parseWorkload(loadWorkload(name), S);
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.equal(r.problem.path, path);
      assert.match(r.problem.message, message);
    });
  }

  test('hand-broken objects', () => {
    const base = (): Record<string, unknown> => loadWorkload('v2-scheduled-absolute-logs') as Record<string, unknown>;
    const at = (o: Record<string, unknown>): Record<string, unknown> =>
      (
        (
          ((o['spec'] as Record<string, unknown>)['jobTemplate'] as Record<string, unknown>)['spec'] as Record<
            string,
            unknown
          >
        )['template'] as Record<string, Record<string, unknown[]>>
      )['spec']?.['containers']?.[0] as Record<string, unknown>;
    const table: [string, (o: Record<string, unknown>) => void, string][] = [
      [
        'command not a list',
        (o) => {
          at(o)['command'] = 'echo';
        },
        'spec.jobTemplate.spec.template.spec.containers[0].command',
      ],
      [
        'no command',
        (o) => {
          delete at(o)['command'];
        },
        'spec.jobTemplate.spec.template.spec.containers[0].command',
      ],
      [
        'bad memory',
        (o) => {
          (at(o)['resources'] as Record<string, Record<string, string>>)['limits'] = { memory: 'lots' };
        },
        'spec.jobTemplate.spec.template.spec.containers[0].resources.limits.memory',
      ],
      [
        'bad emails',
        (o) => {
          ((o['metadata'] as Record<string, Record<string, string>>)['labels'] ?? {})['jobs.toolforge.org/emails'] =
            'sometimes';
        },
        'metadata.labels["jobs.toolforge.org/emails"]',
      ],
      [
        'retry 9',
        (o) => {
          (((o['spec'] as Record<string, unknown>)['jobTemplate'] as Record<string, Record<string, unknown>>)['spec'] ??
            {})['backoffLimit'] = 9;
        },
        'spec.jobTemplate.spec.backoffLimit',
      ],
      [
        'bad annotation',
        (o) => {
          (o['metadata'] as Record<string, unknown>)['annotations'] = {
            'jobs.toolforge.org/cron-expression': '@sometimes',
          };
        },
        'metadata.annotations["jobs.toolforge.org/cron-expression"]',
      ],
      [
        'no namespace',
        (o) => {
          delete (o['metadata'] as Record<string, unknown>)['namespace'];
        },
        'metadata.namespace',
      ],
      [
        'version label not a number',
        (o) => {
          ((o['metadata'] as Record<string, Record<string, string>>)['labels'] ?? {})['app.kubernetes.io/version'] =
            'two';
        },
        'metadata.labels["app.kubernetes.io/version"]',
      ],
    ];
    for (const [label, mutate, path] of table) {
      const o = base();
      mutate(o);
      const r = parseWorkload(o, S);
      assert.equal(r.ok, false, label);
      if (!r.ok) assert.equal(r.problem.path, path, label);
    }
  });

  test('non-objects never throw', () => {
    for (const input of [
      null,
      undefined,
      42,
      'CronJob',
      [],
      { kind: 'CronJob' },
      { kind: 'Deployment', metadata: 'x' },
    ]) {
      assert.equal(parseWorkload(input, S).ok, false);
    }
  });

  test('the input object is not modified', () => {
    const obj = loadWorkload('v2-continuous-buildservice-launcher');
    const copy = structuredClone(obj);
    parseWorkload(obj, S);
    assert.deepEqual(obj, copy);
  });

  test('the tool comes from the configured namespace prefix, falling back to the part after the first dash', () => {
    const obj = loadWorkload('v2-scheduled-absolute-logs') as { metadata: { namespace: string } };
    const tool = (namespace: string, toolNamespacePrefix?: string) => {
      const result = parseWorkload(
        { ...obj, metadata: { ...obj.metadata, namespace } },
        { ...S, ...(toolNamespacePrefix ? { toolNamespacePrefix } : {}) },
      );
      return result.ok ? result.value.job.tool_name : result.problem.message;
    };
    assert.equal(tool('tool-alpha'), 'alpha');
    assert.equal(tool('tf-tool-alpha', 'tf-tool-'), 'alpha');
    assert.equal(tool('tf-tool-alpha'), 'tool-alpha', "jobs-api's own reading without a configured prefix");
  });
});
