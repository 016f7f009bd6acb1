import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resolveJob, type ContinuousJob, type Job, type ScheduledJob } from '../jobs/index.js';
import { parseWorkload } from './parse.js';
import { renderJobWorkloads } from './render.js';
import { DEFAULT_RUNTIME_SETTINGS as S } from './settings.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function render(job: Job, toolUid?: number): Obj[] {
  const r = renderJobWorkloads(job, S, toolUid === undefined ? {} : { toolUid });
  assert.ok(r.ok, JSON.stringify(r));
  return r.value as Obj[];
}

const daily: ScheduledJob = {
  job_name: 'daily',
  tool_name: 'mytool',
  job_type: 'scheduled',
  cmd: './run.sh',
  image: { short_name: 'python3.11' },
  schedule: {
    text: '@daily',
    minute: '6',
    hour: '1',
    day: '*',
    month: '*',
    day_of_week: '*',
  },
};

describe('renderWorkloads: what current jobs-api creates', () => {
  test('scheduled, standard image: CronJob with annotation, filelog on by default, default resources', () => {
    const [cron] = render({ ...daily, timeout: 60, retry: 1 }, 52001);
    assert.equal(cron?.['apiVersion'], 'batch/v1');
    assert.deepEqual(cron?.['metadata'], {
      name: 'daily',
      namespace: 'tool-mytool',
      labels: {
        toolforge: 'tool',
        'app.kubernetes.io/managed-by': 'toolforge-jobs-framework',
        'app.kubernetes.io/created-by': 'mytool',
        'app.kubernetes.io/version': '2',
        'app.kubernetes.io/component': 'cronjobs',
        'app.kubernetes.io/name': 'daily',
        'jobs.toolforge.org/filelog': 'yes',
        'jobs.toolforge.org/emails': 'none',
        'toolforge.org/mount-storage': 'all',
      },
      annotations: { 'jobs.toolforge.org/cron-expression': '@daily' },
    });
    const spec = cron?.['spec'];
    assert.equal(spec.schedule, '6 1 * * *');
    assert.deepEqual(
      [
        spec.successfulJobsHistoryLimit,
        spec.failedJobsHistoryLimit,
        spec.concurrencyPolicy,
        spec.startingDeadlineSeconds,
      ],
      [1, 1, 'Forbid', 30],
    );
    const jobSpec = spec.jobTemplate.spec;
    assert.deepEqual(
      [jobSpec.backoffLimit, jobSpec.activeDeadlineSeconds, jobSpec.ttlSecondsAfterFinished],
      [1, 60, 30],
    );
    const pod = jobSpec.template.spec;
    assert.equal(pod.restartPolicy, 'Never');
    assert.equal(pod.terminationGracePeriodSeconds, 15);
    assert.deepEqual(pod.securityContext, {
      fsGroup: 52001,
      runAsGroup: 52001,
      runAsUser: 52001,
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const c = pod.containers[0];
    assert.equal(c.name, 'job');
    assert.equal(c.image, 'docker-registry.tools.wmflabs.org/toolforge-python311-sssd-web:latest');
    assert.equal(c.workingDir, '/data/project/mytool');
    assert.deepEqual(c.command, [
      '/bin/sh',
      '-c',
      '--',
      'exec 1>>/data/project/mytool/daily.out;exec 2>>/data/project/mytool/daily.err;./run.sh',
    ]);
    assert.deepEqual(c.resources, {
      requests: { memory: '0.5Gi', cpu: '0.1' },
      limits: { memory: '0.5Gi', cpu: '1000m' },
    });
    assert.deepEqual(pod.topologySpreadConstraints[0].labelSelector.matchLabels, {
      toolforge: 'tool',
      'app.kubernetes.io/managed-by': 'toolforge-jobs-framework',
      'app.kubernetes.io/created-by': 'mytool',
      'app.kubernetes.io/name': 'daily',
    });
  });

  test('explicit memory above 512Mi halves the request; explicit cpu is its own limit', () => {
    const [cron] = render({ ...daily, memory: '2Gi', cpu: '1500m' });
    assert.deepEqual(cron?.['spec'].jobTemplate.spec.template.spec.containers[0].resources, {
      requests: { memory: '1073741824.0', cpu: '1.5' },
      limits: { memory: '2.0Gi', cpu: '1.5' },
    });
  });

  test('continuous buildservice with port: Deployment + Service, shell-less launcher command, PORT env, probes', () => {
    const job: ContinuousJob = {
      job_name: 'bot',
      tool_name: 'mytool',
      job_type: 'continuous',
      cmd: 'web --port 8000',
      image: { short_name: 'tool-mytool/bot:latest' },
      port: 8000,
      health_check: { type: 'script', script: 'curl -f localhost:8000' },
    };
    const [deployment, service] = render(job);
    assert.equal(deployment?.['spec'].replicas, 1);
    assert.deepEqual(deployment?.['spec'].strategy, { type: 'Recreate' });
    assert.deepEqual(Object.keys(deployment?.['spec'].selector.matchLabels).sort(), [
      'app.kubernetes.io/created-by',
      'app.kubernetes.io/managed-by',
      'app.kubernetes.io/name',
      'toolforge',
    ]);
    assert.equal(deployment?.['metadata'].labels['toolforge.org/mount-storage'], 'none');
    const c = deployment?.['spec'].template.spec.containers[0];
    assert.equal(c.workingDir, undefined);
    assert.deepEqual(c.command, ['launcher', 'web', '--port', '8000']);
    assert.deepEqual(c.env, [
      { name: 'NO_HOME', value: 'a buildservice pod does not need a home env' },
      { name: 'PORT', value: '8000' },
    ]);
    assert.deepEqual(c.ports, [{ containerPort: 8000, protocol: 'TCP' }]);
    assert.deepEqual(c.startupProbe, {
      exec: { command: ['launcher', 'curl', '-f', 'localhost:8000'] },
      initialDelaySeconds: 0,
      periodSeconds: 1,
      failureThreshold: 120,
      timeoutSeconds: 5,
    });
    assert.equal(c.livenessProbe.periodSeconds, 10);
    assert.equal(deployment?.['spec'].template.spec.restartPolicy, 'Always');
    assert.deepEqual(service, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'bot',
        namespace: 'tool-mytool',
        labels: {
          toolforge: 'tool',
          'app.kubernetes.io/managed-by': 'toolforge-jobs-framework',
          'app.kubernetes.io/created-by': 'mytool',
          'app.kubernetes.io/version': '2',
          'app.kubernetes.io/component': 'deployments',
          'app.kubernetes.io/name': 'bot',
        },
      },
      spec: {
        selector: {
          toolforge: 'tool',
          'app.kubernetes.io/managed-by': 'toolforge-jobs-framework',
          'app.kubernetes.io/created-by': 'mytool',
          'app.kubernetes.io/version': '2',
          'app.kubernetes.io/component': 'deployments',
          'app.kubernetes.io/name': 'bot',
        },
        type: 'ClusterIP',
        ports: [{ protocol: 'TCP', port: 8000, targetPort: 8000 }],
      },
    });
  });

  test('a tcp port without health check gets tcpSocket probes; udp gets none', () => {
    const base: ContinuousJob = {
      job_name: 'srv',
      tool_name: 't',
      job_type: 'continuous',
      cmd: 'x',
      image: { short_name: 'bookworm' },
      port: 5000,
    };
    const tcp = render(base)[0]?.['spec'].template.spec.containers[0];
    assert.deepEqual(tcp.startupProbe.tcpSocket, { port: 5000 });
    const udp = render({ ...base, port_protocol: 'udp' })[0]?.['spec'].template.spec.containers[0];
    assert.equal(udp.startupProbe, undefined);
    assert.deepEqual(udp.ports, [{ containerPort: 5000, protocol: 'UDP' }]);
  });

  test('one-off job', () => {
    const [job] = render({
      job_name: 'once',
      tool_name: 't',
      job_type: 'one-off',
      cmd: 'date',
      image: { short_name: 'bookworm' },
      filelog: false,
      retry: 2,
    });
    assert.equal(job?.['kind'], 'Job');
    assert.deepEqual([job?.['spec'].backoffLimit, job?.['spec'].ttlSecondsAfterFinished], [2, 30]);
    assert.deepEqual(job?.['spec'].template.spec.containers[0].command, ['/bin/sh', '-c', '--', 'date']);
  });

  test('a buildservice command that shlex cannot split is an error on spec.cmd', () => {
    const r = renderJobWorkloads(
      {
        ...daily,
        image: { short_name: 'tool-mytool/x:latest' },
        cmd: 'echo "unterminated',
      },
      S,
    );
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.problem.path, 'spec.cmd');
  });
});

describe('round trip: parse(render(job)) resolves to the same job', () => {
  const scheduled: ScheduledJob[] = [
    daily,
    { ...daily, filelog: false },
    {
      ...daily,
      filelog_stdout: 'logs/out.log',
      filelog_stderr: '/tmp/err.log',
      retry: 5,
      timeout: 7200,
      emails: 'all',
    },
    {
      ...daily,
      memory: '768Mi',
      cpu: '250m',
      schedule: {
        text: '*/15 * * * 1-5',
        minute: '*/15',
        hour: '*',
        day: '*',
        month: '*',
        day_of_week: '1-5',
      },
    },
    {
      ...daily,
      image: { short_name: 'tool-mytool/app:latest' },
      cmd: 'nightly --all',
      mount: 'all',
      filelog: true,
    },
    {
      ...daily,
      image: { short_name: 'php8.4' },
      emails: 'onfailure',
      cmd: 'php run.php; echo done',
    },
  ];
  const continuous: ContinuousJob[] = [
    {
      job_name: 'bot',
      tool_name: 'mytool',
      job_type: 'continuous',
      cmd: 'python3 bot.py',
      image: { short_name: 'python3.11' },
    },
    {
      job_name: 'bot',
      tool_name: 'mytool',
      job_type: 'continuous',
      cmd: 'python3 bot.py',
      image: { short_name: 'python3.11' },
      filelog: false,
      replicas: 3,
      port: 8080,
      health_check: { type: 'http', path: '/health' },
    },
    {
      job_name: 'bot',
      tool_name: 'mytool',
      job_type: 'continuous',
      cmd: 'web',
      image: { short_name: 'tool-mytool/bot:latest' },
      port: 53,
      port_protocol: 'udp',
      replicas: 0,
    },
    {
      job_name: 'bot',
      tool_name: 'mytool',
      job_type: 'continuous',
      cmd: 'worker',
      image: { short_name: 'tool-other/shared:v2' },
      health_check: { type: 'script', script: 'test -e /tmp/ok' },
      memory: '1Gi',
    },
    {
      job_name: 'bot',
      tool_name: 'mytool',
      job_type: 'continuous',
      cmd: './srv',
      image: { short_name: 'node20' },
      health_check: { type: 'script', script: 'pgrep srv' },
      cpu: '2',
    },
  ];
  const oneOff: Job[] = [
    {
      job_name: 'once',
      tool_name: 'mytool',
      job_type: 'one-off',
      cmd: 'date',
      image: { short_name: 'bookworm' },
    },
    {
      job_name: 'once',
      tool_name: 'mytool',
      job_type: 'one-off',
      cmd: 'migrate',
      image: { short_name: 'tool-mytool/app:latest' },
      retry: 4,
      emails: 'onfinish',
    },
  ];
  for (const [i, job] of [...scheduled, ...continuous, ...oneOff].entries()) {
    test(`${job.job_type} #${i}: ${job.cmd} on ${job.image.short_name}`, () => {
      const objects = render(job, 52001);
      const r = parseWorkload(objects[0], S, { service: objects[1] });
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.value.era.id, 'v2');
      assert.deepEqual(resolveJob(r.value.job, S), resolveJob(job, S));
      assert.deepEqual(
        r.value.warnings.filter((w) => w.code !== 'filelog-made-explicit'),
        [],
      );
    });
  }

  test('a buildservice command the user wrote with "launcher " comes back without it, and renders the same', () => {
    const job: ScheduledJob = {
      ...daily,
      image: { short_name: 'tool-mytool/app:latest' },
      cmd: 'launcher nightly',
    };
    const objects = render(job);
    const r = parseWorkload(objects[0], S);
    assert.ok(r.ok);
    assert.equal(r.value.job.cmd, 'nightly');
    assert.deepEqual(render(r.value.job), objects);
  });

  test('objects go to the tool namespace of the configured prefix', () => {
    const r = renderJobWorkloads({ ...daily, filelog: false }, { ...S, toolNamespacePrefix: 'tf-tool-' });
    assert.ok(r.ok);
    const namespaces = r.value.map((o) => (o['metadata'] as { namespace?: string }).namespace);
    assert.deepEqual(namespaces, [`tf-tool-${daily.tool_name}`]);
  });
});
