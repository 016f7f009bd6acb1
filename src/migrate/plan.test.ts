import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { StoredJob } from '../jobs/index.js';
import { loadWorkload } from '../../test/fixtures/workloads/load.js';
import { DEFAULT_RUNTIME_SETTINGS as SETTINGS, type KObject } from '../runtime/index.js';
import { parseWorkload } from '../runtime/parse.js';
import { createStorageCodec } from '../storage/codec.js';
import { groupByTool, lastDirectWrite, planTool, type PlanInput } from './plan.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'migrate');

function handWritten(name: string): KObject {
  return parse(readFileSync(join(DIR, `${name}.yaml`), 'utf8')) as KObject;
}

/** The CR jobs-api (or the sync's backfill) would hold for a jobs-framework workload. */
function crFor(workload: unknown): KObject {
  const parsed = parseWorkload(workload, SETTINGS);
  if (!parsed.ok) throw new Error(parsed.problem.message);
  return createStorageCodec().encode(parsed.value.job as StoredJob) as unknown as KObject;
}

function input(over: Partial<PlanInput>): PlanInput {
  return { tool: 'mytool', phase: 'runtime-truth', workloads: [], crs: [], settings: SETTINGS, ...over };
}

describe('which jobs of a tool need migrating', () => {
  test('a jobs-framework workload without a CR: listed in every phase, with the reason of the phase', () => {
    const cron = loadWorkload('v2-scheduled-absolute-logs');
    const a = planTool(input({ workloads: [cron] }));
    assert.deepEqual(
      a.jobs.map((j) => [j.name, j.reason, j.inJobsYaml]),
      [['backup', 'not-in-storage', true]],
    );
    const c = planTool(input({ phase: 'ignore-unmanaged', workloads: [cron] }));
    assert.deepEqual(
      c.jobs.map((j) => j.reason),
      ['ignored'],
    );
    assert.equal(c.entries.length, 1);
    assert.equal(c.entries[0]?.schedule, '@monthly');
  });

  test('a jobs-framework workload that matches its CR is not listed; one edited directly is, with what differs', () => {
    const api = loadWorkload('v2-continuous-port-tcp') as KObject;
    const cr = crFor(api);
    assert.deepEqual(planTool(input({ workloads: [api], crs: [cr] })).jobs, []);
    const edited = loadWorkload('v2-continuous-port-tcp') as KObject;
    (edited['spec'] as KObject)['replicas'] = 5;
    const plan = planTool(input({ workloads: [edited], crs: [cr] }));
    assert.deepEqual(
      plan.jobs.map((j) => [j.name, j.reason]),
      [['api', 'edited-directly']],
    );
    assert.deepEqual(plan.jobs[0]?.differences, [{ field: 'replicas', before: 2, after: 5 }]);
    assert.equal(plan.entries[0]?.replicas, 5, 'the entry carries what runs');
    assert.equal(plan.jobs[0]?.deleteCommand, undefined, 'jobs-api replaces its own object on load');
  });

  test('hand-written objects are listed with their problems; webservice objects, CronJob runs and Services are not', () => {
    const plan = planTool(
      input({
        workloads: [
          handWritten('kubectl-create-cronjob'),
          handWritten('kubectl-create-deployment'),
          handWritten('job-one-off'),
          loadWorkload('webservice-deployment'),
          loadWorkload('cronjob-spawned-job'),
          loadWorkload('v2-service-port-tcp'),
          loadWorkload('v2-one-off'),
        ],
      }),
    );
    assert.deepEqual(
      plan.jobs.map((j) => [j.name, j.kind, j.reason, j.needsAttention, j.inJobsYaml]),
      [
        ['ircbot', 'Deployment', 'hand-written', false, true],
        ['nightly', 'CronJob', 'hand-written', true, true],
        ['reindex-all', 'Job', 'hand-written', true, false],
      ],
    );
    assert.deepEqual(
      plan.skipped.map((s) => s.kind),
      ['Deployment', 'Job', 'Service', 'Job'],
    );
    assert.equal(plan.needsAttention, 2);
    assert.deepEqual(
      plan.entries.map((e) => e.name),
      ['ircbot', 'nightly'],
    );
    assert.equal(
      plan.jobs[1]?.deleteCommand,
      "kubectl delete cronjobs --field-selector metadata.name=nightly -l '!app.kubernetes.io/managed-by'",
    );
  });

  test('a CR that names the image by an alias is the same job', () => {
    const api = loadWorkload('v2-continuous-port-tcp') as KObject;
    const cr = crFor(api);
    (cr['spec'] as KObject)['image'] = { short_name: 'toolforge-python311' };
    assert.deepEqual(planTool(input({ workloads: [api], crs: [cr] })).jobs, []);
  });

  test('an imitation of a jobs-framework object is hand-written; its delete command spares the one jobs-api creates', () => {
    const imitation = loadWorkload('v2-scheduled-relative-logs') as KObject;
    const labels = (imitation['metadata'] as { labels: Record<string, string> }).labels;
    labels['app.kubernetes.io/component'] = 'my-cron';
    const plan = planTool(input({ workloads: [imitation] }));
    assert.deepEqual(
      plan.jobs.map((j) => [j.name, j.reason]),
      [['nightly', 'hand-written']],
    );
    assert.equal(
      plan.jobs[0]?.deleteCommand,
      "kubectl delete cronjobs --field-selector metadata.name=nightly -l 'app.kubernetes.io/component=my-cron'",
    );
  });

  test('when: creation time and the latest direct write from managedFields (controllers and jobs-api left out)', () => {
    const plan = planTool(input({ tool: 'othertool', workloads: [handWritten('deployment-port-probe')] }));
    assert.equal(plan.jobs[0]?.created, '2025-06-06T06:06:00Z');
    assert.deepEqual(plan.jobs[0]?.lastDirectWrite, {
      manager: 'kubectl-scale',
      time: '2026-02-01T11:00:00Z',
      operation: 'Update',
    });
    assert.equal(lastDirectWrite(loadWorkload('v2-continuous-port-tcp'), ['jobs-api toolforge_weld']), undefined);
    const status = lastDirectWrite(handWritten('kubectl-create-deployment'), []);
    assert.equal(status?.manager, 'kubectl-create', 'the controller-manager status write is not a direct write');
  });

  test('an entry jobs-api would refuse, or a name taken twice, is held back from jobs.yaml and needs attention', () => {
    const cron = handWritten('kubectl-create-cronjob');
    const deployment = handWritten('kubectl-create-deployment');
    (deployment['metadata'] as KObject)['name'] = 'nightly';
    const plan = planTool(input({ workloads: [cron, deployment] }));
    assert.deepEqual(
      plan.jobs.map((j) => [j.kind, j.inJobsYaml, j.notes.some((n) => n.code === 'duplicate-name')]),
      [
        ['CronJob', true, false],
        ['Deployment', false, true],
      ],
    );
    const image = planTool(input({ tool: 'othertool', workloads: [handWritten('cronjob-non-toolforge-image')] }));
    assert.deepEqual(image.entries, []);
    assert.equal(image.jobs[0]?.inJobsYaml, false);
    assert.equal(image.needsAttention, 1);
  });

  test("a hand-written job named like one of jobs-api's jobs is held back: loading it would replace that job", () => {
    const api = loadWorkload('v2-scheduled-relative-logs') as KObject;
    const deployment = handWritten('kubectl-create-deployment');
    (deployment['metadata'] as KObject)['name'] = 'nightly';
    const plan = planTool(input({ workloads: [api, deployment], crs: [crFor(api)] }));
    assert.deepEqual(
      plan.jobs.map((j) => [
        j.kind,
        j.reason,
        j.inJobsYaml,
        j.needsAttention,
        j.notes.filter((n) => n.attention).map((n) => n.code),
      ]),
      [['Deployment', 'hand-written', false, true, ['name-taken']]],
    );
    assert.deepEqual(plan.entries, []);
  });

  test('an unreadable jobs-framework workload is listed without an entry', () => {
    const plan = planTool(input({ workloads: [loadWorkload('broken-cronjob-bad-schedule')] }));
    assert.deepEqual(
      plan.jobs.map((j) => [j.reason, j.entry, j.needsAttention]),
      [['unreadable', null, true]],
    );
  });

  test('objects of a file are grouped by tool, Lists included, CRs apart, other namespaces left out', () => {
    const cr = crFor(loadWorkload('v2-continuous-port-tcp'));
    const groups = groupByTool([
      { apiVersion: 'v1', kind: 'List', items: [handWritten('kubectl-create-cronjob'), cr] },
      handWritten('deployment-port-probe'),
      { kind: 'CronJob', metadata: { name: 'x' } },
      { kind: 'Deployment', metadata: { name: 'coredns', namespace: 'kube-system' } },
    ]);
    assert.deepEqual([...groups.keys()], ['mytool', 'othertool']);
    assert.equal(groups.get('mytool')?.workloads.length, 1);
    assert.equal(groups.get('mytool')?.crs.length, 1);
  });
});
