import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ContinuousJob } from '../jobs/index.js';
import { renderJobWorkloads } from '../runtime/render.js';
import { DEFAULT_RUNTIME_SETTINGS as S } from '../runtime/settings.js';
import { diffWorkloads } from './diff.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const api: ContinuousJob = {
  job_name: 'api',
  tool_name: 'mytool',
  job_type: 'continuous',
  cmd: './serve.sh',
  image: { short_name: 'python3.11' },
  port: 8080,
};

function rendered(job: ContinuousJob = api): Obj[] {
  const r = renderJobWorkloads(job, S, { toolUid: 52001 });
  assert.ok(r.ok);
  return r.value as Obj[];
}

function container(objects: Obj[]): Obj {
  return objects[0]?.['spec'].template.spec.containers[0];
}

function fields(live: Obj[], render: Obj[]): string[][] {
  return diffWorkloads(live, render).differences.map((d) => [d.object, d.field, d.class]);
}

describe('diffWorkloads', () => {
  test('identical objects are the same; API-server defaults, server fields and status are no difference', () => {
    const live = rendered();
    const deployment = live[0] as Obj;
    deployment['metadata'] = { ...deployment['metadata'], uid: 'u', resourceVersion: '1', generation: 2 };
    deployment['metadata'].managedFields = [{ manager: 'jobs-api toolforge_weld' }];
    deployment['status'] = { replicas: 1 };
    deployment['spec'].revisionHistoryLimit = 10;
    deployment['spec'].progressDeadlineSeconds = 600;
    deployment['spec'].template.spec.dnsPolicy = 'ClusterFirst';
    deployment['spec'].template.spec.schedulerName = 'default-scheduler';
    container(live)['terminationMessagePath'] = '/dev/termination-log';
    container(live)['imagePullPolicy'] = 'Always';
    container(live)['livenessProbe'].successThreshold = 1;
    (live[1] as Obj)['spec'].clusterIP = '10.0.0.7';
    (live[1] as Obj)['spec'].sessionAffinity = 'None';
    assert.deepEqual(fields(live, rendered()), []);
    assert.equal(diffWorkloads(live, rendered()).verdict, 'same');
  });

  test('a default the server would fill differently is a difference (imagePullPolicy of a tagged image)', () => {
    const live = rendered();
    container(live)['imagePullPolicy'] = 'IfNotPresent';
    assert.deepEqual(fields(live, rendered()), [
      ['Deployment/api', 'spec.template.spec.containers[0].imagePullPolicy', 'functional'],
    ]);
  });

  test('quantities compare by value and print in canonical form', () => {
    const live = rendered();
    container(live)['resources'] = {
      requests: { cpu: '100m', memory: '512Mi' },
      limits: { cpu: '1', memory: '536870912' },
    };
    assert.equal(diffWorkloads(live, rendered()).verdict, 'same');
    container(live)['resources'].requests.cpu = '0.25';
    const [d] = diffWorkloads(live, rendered()).differences;
    assert.deepEqual([d?.live, d?.rendered, d?.reason], ['250m', '100m', 'cpu request would drop from 250m to 100m']);
  });

  test('env entries are compared by name; a new map is compared key by key', () => {
    const live = rendered();
    container(live)['env'] = [{ name: 'HOME', value: '/data/project/mytool' }];
    delete live[0]?.['metadata'].labels;
    const labels = fields(live, rendered()).filter(([, f]) => f?.startsWith('metadata.labels'));
    assert.equal(labels.length, 9);
    assert.deepEqual(labels[0], ['Deployment/api', 'metadata.labels["toolforge"]', 'cosmetic']);
    const env = diffWorkloads(live, rendered()).differences.filter((d) => d.field.includes('.env['));
    assert.deepEqual(
      env.map((d) => [d.field, d.live, d.rendered]),
      [
        ['spec.template.spec.containers[0].env[HOME]', { name: 'HOME', value: '/data/project/mytool' }, undefined],
        ['spec.template.spec.containers[0].env[PORT]', undefined, { name: 'PORT', value: '8080' }],
      ],
    );
  });

  test('a Service on one side only is one functional difference', () => {
    const [deployment] = rendered();
    const d = diffWorkloads([deployment, ...rendered().slice(1)], [deployment]).differences;
    assert.deepEqual(
      d.map((x) => [x.object, x.field, x.class, x.reason]),
      [
        [
          'Service/api',
          '(object)',
          'functional',
          "the Service would be deleted: the job's port is no longer reachable by name",
        ],
      ],
    );
  });

  test('the command: log files apart from the command, relative paths that name the same files are cosmetic', () => {
    const render = rendered({ ...api, filelog: true });
    const live = rendered({ ...api, filelog: true });
    container(live)['command'] = ['/bin/sh', '-c', '--', 'exec 1>>api.out;exec 2>>api.err;./serve.sh'];
    assert.deepEqual(
      diffWorkloads(live, render).differences.map((d) => [d.field, d.class]),
      [['spec.template.spec.containers[0].command (paths)', 'cosmetic']],
    );
    container(live)['command'] = ['/bin/sh', '-c', '--', 'exec 1>>notify.out;exec 2>>api.err;./serve.sh'];
    assert.deepEqual(
      diffWorkloads(live, render).differences.map((d) => [d.field, d.reason]),
      [
        [
          'spec.template.spec.containers[0].command (stdout)',
          'stdout would move from /data/project/mytool/notify.out to /data/project/mytool/api.out',
        ],
      ],
    );
  });

  test('a selector change marks the job for delete-and-recreate', () => {
    const live = rendered();
    live[0]!['spec'].selector.matchLabels['app.kubernetes.io/version'] = '2';
    const d = diffWorkloads(live, rendered());
    assert.equal(d.recreate, true);
    assert.equal(d.verdict, 'cosmetic');
  });
});
