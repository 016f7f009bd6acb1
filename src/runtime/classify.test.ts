import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifyWorkload } from './classify.js';
import { loadWorkload } from '../../test/fixtures/workloads/load.js';

test('classifyWorkload over the fixtures', () => {
  const expected: [string, Record<string, unknown>][] = [
    [
      'pre-release-scheduled',
      {
        kind: 'job',
        jobType: 'scheduled',
        name: 'hourly-sync',
        tool: 'betatool',
        era: 'pre-release',
      },
    ],
    [
      'v1-unwrapped-continuous',
      {
        kind: 'job',
        jobType: 'continuous',
        name: 'irc-bot',
        tool: 'mytool',
        era: 'v1-unwrapped',
      },
    ],
    ['v1-scheduled-filelog', { kind: 'job', jobType: 'scheduled', era: 'v1' }],
    ['v1-new-format-scheduled', { kind: 'job', era: 'v1-new-format', tool: 'tf-test' }],
    ['v2-continuous-buildservice-shell-less', { kind: 'job', jobType: 'continuous', era: 'v2' }],
    ['v1-one-off', { kind: 'one-off-job', jobType: 'one-off', era: 'v1' }],
    ['v2-one-off', { kind: 'one-off-job', jobType: 'one-off', era: 'v2' }],
    ['v2-service-port-tcp', { kind: 'job-service', jobName: 'api', tool: 'mytool' }],
    ['cronjob-spawned-job', { kind: 'cronjob-run', cronJobName: 'backup', manual: false }],
    ['cronjob-manual-job', { kind: 'cronjob-run', cronJobName: 'backup', manual: true }],
    ['webservice-deployment', { kind: 'webservice' }],
    ['foreign-cronjob', { kind: 'foreign', jobsFrameworkLabels: false }],
  ];
  for (const [name, fields] of expected) {
    const c = classifyWorkload(loadWorkload(name)) as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(fields)) assert.equal(c[k], v, `${name}.${k}`);
    assert.equal(typeof c['reason'], 'string');
  }
});

test('a jobs-framework label set on the wrong kind is a foreign imitation', () => {
  const obj = loadWorkload('v2-continuous-nofilelog') as { kind: string };
  obj.kind = 'StatefulSet';
  assert.equal(classifyWorkload(obj).kind, 'unsupported');
  const cron = loadWorkload('v2-scheduled-absolute-logs') as {
    metadata: { labels: Record<string, string> };
  };
  cron.metadata.labels['app.kubernetes.io/component'] = 'deployments';
  assert.deepEqual(
    {
      kind: classifyWorkload(cron).kind,
      labelled: (classifyWorkload(cron) as { jobsFrameworkLabels?: boolean }).jobsFrameworkLabels,
    },
    { kind: 'foreign', labelled: true },
  );
});

test('anything else', () => {
  assert.equal(classifyWorkload(null).kind, 'unsupported');
  assert.equal(classifyWorkload({ kind: 'ConfigMap', metadata: { name: 'x' } }).kind, 'unsupported');
  assert.equal(
    classifyWorkload({
      kind: 'Service',
      metadata: { name: 'x', labels: { app: 'x' } },
    }).kind,
    'foreign',
  );
});

test('the tool comes from the configured namespace prefix, with jobs-api first-dash reading as the fallback', () => {
  const inNamespace = (namespace: string) => {
    const obj = loadWorkload('v2-scheduled-relative-logs') as { metadata: { namespace: string } };
    obj.metadata.namespace = namespace;
    return obj;
  };
  const toolOf = (c: ReturnType<typeof classifyWorkload>) => (c.kind === 'job' ? c.tool : undefined);
  assert.equal(toolOf(classifyWorkload(inNamespace('tf-tool-mytool'), 'tf-tool-')), 'mytool');
  assert.equal(toolOf(classifyWorkload(inNamespace('tf-tool-mytool'))), 'tool-mytool', "jobs-api's reading");
  assert.equal(toolOf(classifyWorkload(inNamespace('tool-mytool'), 'tf-tool-')), 'mytool', "jobs-api's reading");
  assert.equal(toolOf(classifyWorkload(inNamespace('tool-mytool'))), 'mytool');
});
