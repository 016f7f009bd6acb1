import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import type { ContinuousJob, ScheduledJob } from '../jobs/index.js';
import { KubeApiError } from '../k8s/api.js';
import { DEFAULT_RUNTIME_SETTINGS as S } from '../runtime/settings.js';
import { createStorageCodec } from '../storage/codec.js';
import { applyRestore, formatRestorePlan, restorePlan } from './restore.js';

const codec = createStorageCodec();
const settings = { runtime: S, toolUid: (tool: string) => (tool === 'mytool' ? 52001 : undefined) };

const scheduled: ScheduledJob = {
  job_name: 'backup',
  tool_name: 'mytool',
  job_type: 'scheduled',
  cmd: './backup.sh --full',
  image: { short_name: 'python3.11' },
  schedule: { text: '@monthly', minute: '54', hour: '14', day: '22', month: '*', day_of_week: '*' },
  retry: 2,
  timeout: 3600,
};
const continuous: ContinuousJob = {
  job_name: 'api',
  tool_name: 'mytool',
  job_type: 'continuous',
  cmd: 'gunicorn -b 0.0.0.0:8080 app:app',
  image: { short_name: 'python3.11' },
  port: 8080,
  replicas: 2,
  filelog: false,
};
const buildservice: ContinuousJob = {
  job_name: 'worker',
  tool_name: 'mytool',
  job_type: 'continuous',
  cmd: 'consumer --batch 50',
  image: { short_name: 'tool-mytool/worker:latest' },
};

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function planned(job: ScheduledJob | ContinuousJob): Obj[] {
  const plan = restorePlan(codec.encode(job), [], settings);
  assert.ok(plan.ok, JSON.stringify(plan));
  return plan.value.objects as Obj[];
}

describe('restorePlan: the objects jobs-api would create, per job type', () => {
  test('scheduled: one CronJob with the schedule, timeout, retries and the tool uid', () => {
    const [cron, ...rest] = planned(scheduled);
    assert.equal(rest.length, 0);
    assert.equal(cron?.['kind'], 'CronJob');
    assert.deepEqual([cron?.['metadata'].name, cron?.['metadata'].namespace], ['backup', 'tool-mytool']);
    assert.equal(cron?.['spec'].schedule, '54 14 22 * *');
    const jobSpec = cron?.['spec'].jobTemplate.spec;
    assert.deepEqual([jobSpec.backoffLimit, jobSpec.activeDeadlineSeconds], [2, 3600]);
    assert.equal(jobSpec.template.spec.securityContext.runAsUser, 52001);
  });

  test('without a known uid the plan says so', () => {
    const known = restorePlan(codec.encode(scheduled), [], settings);
    assert.ok(known.ok);
    assert.deepEqual(known.value.warnings, []);
    const unknown = restorePlan(codec.encode({ ...scheduled, tool_name: 'other' }), [], settings);
    assert.ok(unknown.ok);
    assert.deepEqual(unknown.value.warnings, [
      "the uid of tool 'other' is unknown: the pods get no runAsUser, runAsGroup or fsGroup (jobs-api sets them from passwd)",
    ]);
    assert.equal(
      (unknown.value.objects[0] as Obj | undefined)?.['spec'].jobTemplate.spec.template.spec.securityContext.runAsUser,
      undefined,
    );
  });

  test('continuous with a port: Deployment and Service; buildservice without: a Deployment with mount none', () => {
    assert.deepEqual(
      planned(continuous).map((o) => o['kind']),
      ['Deployment', 'Service'],
    );
    const [deployment] = planned(buildservice);
    assert.equal(deployment?.['metadata'].labels['toolforge.org/mount-storage'], 'none');
    assert.deepEqual(deployment?.['spec'].template.spec.containers[0].command, [
      'launcher',
      'consumer',
      '--batch',
      '50',
    ]);
  });

  test('dry-run output: a YAML stream or a JSON List of the objects', () => {
    const plans = [
      restorePlan(codec.encode(scheduled), [], settings),
      restorePlan(codec.encode(continuous), [], settings),
    ];
    const docs = parseAllDocuments(formatRestorePlan(plans, 'yaml')).map((d) => d.toJS() as Obj);
    assert.deepEqual(
      docs.map((d) => `${d['kind']}/${d['metadata'].name}`),
      ['CronJob/backup', 'Deployment/api', 'Service/api'],
    );
    const list = parseYaml(formatRestorePlan(plans, 'json')) as Obj;
    assert.equal(list['kind'], 'List');
    assert.deepEqual(list['items'], docs);
  });

  test('dry-run YAML keeps every string a string for kubectl (YAML 1.1): filelog labels, arbitrary commands', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.constantFrom('yes', 'on', '0777', '1:30', 'no', '2001-12-14', '0o17', '~'), fc.string()),
        fc.boolean(),
        (cmd, filelog) => {
          const plan = restorePlan(codec.encode({ ...scheduled, cmd: cmd.trim() || 'yes', filelog }), [], settings);
          if (!plan.ok) return; // a command jobs-api refuses to render is not the point here
          const text = formatRestorePlan([plan], 'yaml');
          const docs = parseAllDocuments(text, { version: '1.1' }).map((d) => d.toJS() as Obj);
          assert.deepEqual(docs, JSON.parse(JSON.stringify(plan.value.objects)), text);
        },
      ),
      { numRuns: 200 },
    );
    const withLog = restorePlan(codec.encode({ ...scheduled, filelog: true }), [], settings);
    assert.ok(withLog.ok);
    assert.match(formatRestorePlan([withLog], 'yaml'), /jobs\.toolforge\.org\/filelog: "yes"/);
  });

  test('with requireUid, a job whose tool uid is unknown is refused, saying what to pass', () => {
    const strict = {
      ...settings,
      requireUid: true,
      uidHint: 'no Kyverno Policy tool-other/toolforge-kyverno-pod-policy',
    };
    const plan = restorePlan(codec.encode({ ...scheduled, tool_name: 'other' }), [], strict);
    assert.ok(!plan.ok);
    assert.equal(plan.problem.code, 'uid-unknown');
    assert.equal(
      plan.problem.message,
      "the uid of tool 'other' is unknown, and jobs-api runs its pods as that uid (no Kyverno Policy tool-other/toolforge-kyverno-pod-policy): pass --uid N, the uid of the tool's account in passwd",
    );
    assert.ok(restorePlan(codec.encode(scheduled), [], strict).ok, 'a known uid is planned');
  });

  test('refuses a CR that does not decode, with the reason', () => {
    const cr = { ...codec.encode(scheduled), spec: { job_name: 'backup', job_type: 'scheduled' } };
    const plan = restorePlan(cr, [], settings);
    assert.equal(plan.ok, false);
    assert.ok(!plan.ok);
    assert.equal(plan.problem.code, 'cr-does-not-decode');
    assert.match(plan.problem.message, /^ScheduledJob tool-mytool\/backup spec/);
  });

  test('refuses a job whose workload (or any of its objects) still exists', () => {
    const [deployment, service] = planned(continuous);
    for (const existing of [[deployment], [service]]) {
      const plan = restorePlan(codec.encode(continuous), existing, settings);
      assert.ok(!plan.ok);
      assert.equal(plan.problem.code, 'workload-exists');
      assert.match(plan.problem.message, /still exists: restore only creates the workloads of a job that has none$/);
    }
  });
});

describe('applyRestore: create only', () => {
  /** A fake API server: answers by method and path from a table, and records every request. */
  function fakeApi(answers: Record<string, number>) {
    const calls: [string, string][] = [];
    return {
      calls,
      api: {
        async request<T>(method: string, path: string): Promise<T> {
          calls.push([method, path]);
          const status = answers[`${method} ${path}`] ?? 201;
          if (status >= 300)
            throw new KubeApiError(
              status,
              `HTTP ${status} for ${path}`,
              status === 409 ? 'AlreadyExists' : 'Forbidden',
            );
          return {} as T;
        },
      },
    };
  }

  test('POSTs each object to its collection in the tool namespace', async () => {
    const plan = restorePlan(codec.encode(continuous), [], settings);
    assert.ok(plan.ok);
    const { api, calls } = fakeApi({});
    const outcomes = await applyRestore(api, plan);
    assert.deepEqual(calls, [
      ['POST', '/apis/apps/v1/namespaces/tool-mytool/deployments'],
      ['POST', '/api/v1/namespaces/tool-mytool/services'],
    ]);
    assert.deepEqual(outcomes, [
      { object: 'Deployment/api', outcome: 'created' },
      { object: 'Service/api', outcome: 'created' },
    ]);
  });

  test('a 409 is reported as exists and never retried as an update; other errors are reported with the reason', async () => {
    const plan = restorePlan(codec.encode(continuous), [], settings);
    assert.ok(plan.ok);
    const { api, calls } = fakeApi({
      'POST /apis/apps/v1/namespaces/tool-mytool/deployments': 409,
      'POST /api/v1/namespaces/tool-mytool/services': 403,
    });
    const outcomes = await applyRestore(api, plan);
    assert.ok(calls.every(([method]) => method === 'POST'));
    assert.equal(calls.length, 2);
    assert.deepEqual(outcomes, [
      { object: 'Deployment/api', outcome: 'exists', message: 'already exists: left unchanged' },
      { object: 'Service/api', outcome: 'failed', message: 'HTTP 403 for /api/v1/namespaces/tool-mytool/services' },
    ]);
  });

  test('a CronJob goes to batch/v1', async () => {
    const plan = restorePlan(codec.encode(scheduled), [], settings);
    assert.ok(plan.ok);
    const { api, calls } = fakeApi({});
    await applyRestore(api, plan);
    assert.deepEqual(calls, [['POST', '/apis/batch/v1/namespaces/tool-mytool/cronjobs']]);
  });
});
