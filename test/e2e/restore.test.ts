import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { main } from '../../src/cli.js';
import type { ContinuousJob, StoredJob } from '../../src/jobs/index.js';
import { KubeApi } from '../../src/k8s/api.js';
import { isNotFound } from '../../src/k8s/errors.js';
import { renderJobWorkloads } from '../../src/runtime/render.js';
import { DEFAULT_RUNTIME_SETTINGS as S } from '../../src/runtime/settings.js';
import { installJobsCrds, startControlPlane, type ControlPlane } from '../../scripts/control-plane/cluster.js';
import { crOf, scheduledJob } from '../../scripts/control-plane/jobs.js';
import { toolPodPolicy } from '../fixtures/kyverno/tool-pod-policy.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const PATHS = (ns: string): Readonly<Record<string, string>> => ({
  CronJob: `/apis/batch/v1/namespaces/${ns}/cronjobs`,
  Deployment: `/apis/apps/v1/namespaces/${ns}/deployments`,
  Service: `/api/v1/namespaces/${ns}/services`,
  ScheduledJob: `/apis/jobs-api.toolforge.org/v1/namespaces/${ns}/scheduled-jobs`,
  ContinuousJob: `/apis/jobs-api.toolforge.org/v1/namespaces/${ns}/continuous-jobs`,
  Policy: `/apis/kyverno.io/v1/namespaces/${ns}/policies`,
});

/**
 * Kyverno's `Policy` resource type, as far as the API server needs it to store and serve the object maintain-kubeusers
 * creates: the control plane here runs no Kyverno, so its CRD (which Kyverno's chart installs) is stood in by one
 * with the same group, version and names that keeps every field.
 */
const KYVERNO_POLICY_CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'policies.kyverno.io' },
  spec: {
    group: 'kyverno.io',
    scope: 'Namespaced',
    names: { plural: 'policies', singular: 'policy', kind: 'Policy', listKind: 'PolicyList', shortNames: ['pol'] },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      },
    ],
  },
};

const GAMMA_UID = 52003;
const DELTA_UID = 52004;

/** Jobs whose objects carry strings YAML 1.1 reads as other types: the filelog label `yes`, command args. */
function jobsOf(tool: string): StoredJob[] {
  const worker: ContinuousJob = {
    job_name: 'worker',
    tool_name: tool,
    job_type: 'continuous',
    cmd: 'consumer on 0777 1:30 yes 2001-12-14 0o17',
    image: { short_name: `tool-${tool}/worker:latest` },
  };
  return [{ ...scheduledJob(tool, 'daily', { cmd: 'yes' }), filelog: true } as StoredJob, worker];
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

function podSpecOf(obj: Obj): Obj {
  return obj['kind'] === 'CronJob' ? obj['spec'].jobTemplate.spec.template.spec : obj['spec'].template.spec;
}

function idsOf(obj: Obj): number[] {
  const sc = podSpecOf(obj)['securityContext'] as Obj;
  return [sc['runAsUser'], sc['runAsGroup'], sc['fsGroup']];
}

/**
 * `jobs-storage restore` on a real control plane for tools whose every workload is gone: its YAML goes through
 * `kubectl apply --dry-run=server`, and the restored pods run as the tool's uid from the tool's Kyverno pod policy,
 * or from --uid; without either, --apply refuses.
 */
describe('jobs-storage restore: kubectl-safe YAML and the tool uid', { timeout: 300_000 }, () => {
  let cp: ControlPlane;
  let admin: KubeApi;
  let configFile: string;

  const create = (obj: Obj, ns: string) => admin.request('POST', PATHS(ns)[String(obj['kind'])] ?? '', { body: obj });
  const get = async (kind: string, ns: string, name: string): Promise<Obj | undefined> => {
    try {
      return await admin.request<Obj>('GET', `${PATHS(ns)[kind] ?? ''}/${name}`);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };

  before(async () => {
    cp = await startControlPlane();
    await Promise.all([cp.addTool('gamma'), cp.addTool('delta')]);
    await installJobsCrds(cp);
    admin = new KubeApi(cp.kubeConfig('admin'));
    await cp.kubectlOk('admin', ['apply', '-f', '-'], { stdin: JSON.stringify(KYVERNO_POLICY_CRD) });
    await cp.kubectlOk('admin', ['wait', '--for=condition=Established', 'crd/policies.kyverno.io', '--timeout=60s']);
    // jobs made through jobs-api (CR, then the workloads with the tool uid), then every workload lost
    for (const [tool, uid] of [
      ['gamma', GAMMA_UID],
      ['delta', DELTA_UID],
    ] as const) {
      const ns = `tool-${tool}`;
      for (const job of jobsOf(tool)) {
        await create(crOf(job) as unknown as Obj, ns);
        const rendered = renderJobWorkloads(job, S, { toolUid: uid });
        assert.ok(rendered.ok);
        for (const obj of rendered.value) await create(obj, ns);
        for (const obj of rendered.value)
          await admin.request('DELETE', `${PATHS(ns)[String(obj['kind'])]}/${job.job_name}`);
      }
    }
    // maintain-kubeusers' pod policy for gamma only
    await cp.kubectlOk('admin', ['apply', '-n', 'tool-gamma', '-f', '-'], {
      stdin: JSON.stringify(toolPodPolicy('tool-gamma', GAMMA_UID)),
    });
    configFile = cp.cliConfig();
  });

  after(async () => {
    await cp?.stop();
  });

  test('restore -o yaml pipes into kubectl apply --dry-run=server: accepted (the YAML 1.2 printing was refused)', async () => {
    const dry = await cli(['restore', '--tool', 'gamma', '--config', configFile]);
    assert.equal(dry.code, 0, dry.err);
    assert.match(dry.out, /jobs\.toolforge\.org\/filelog: "yes"/);
    const docs = parseAllDocuments(dry.out).map((d) => d.toJS() as Obj);
    assert.deepEqual(
      docs.map((o) => `${o['kind']}/${o['metadata'].name}`),
      ['CronJob/daily', 'Deployment/worker'],
    );
    const applied = await cp.kubectl('admin', ['apply', '--dry-run=server', '-o', 'json', '-f', '-'], {
      stdin: dry.out,
    });
    assert.equal(applied.code, 0, applied.stderr);
    // what the API server made of it: the same strings
    const items = (JSON.parse(applied.stdout) as { items: Obj[] }).items;
    const daily = items.find((o) => o['kind'] === 'CronJob');
    assert.equal(daily?.['metadata'].labels['jobs.toolforge.org/filelog'], 'yes');
    const worker = items.find((o) => o['kind'] === 'Deployment');
    assert.deepEqual(podSpecOf(worker ?? {})['containers'][0].command, [
      'launcher',
      ...'consumer on 0777 1:30 yes 2001-12-14 0o17'.split(' '),
    ]);
    assert.equal(await get('CronJob', 'tool-gamma', 'daily'), undefined, 'a dry run creates nothing');

    // the same objects printed as plain YAML 1.2, as restore printed them before: kubectl refuses them
    const plain = docs.map((o) => `---\n${stringify(o)}`).join('');
    const refused = await cp.kubectl('admin', ['apply', '--dry-run=server', '-f', '-'], { stdin: plain });
    assert.notEqual(refused.code, 0);
    assert.match(
      refused.stderr,
      /cannot unmarshal bool into Go struct field ObjectMeta\.metadata\.labels of type string/,
    );
    assert.match(
      refused.stderr,
      /cannot unmarshal bool into Go struct field Container\.spec\.template\.spec\.containers\.command/,
    );
  });

  test('all workloads gone: the uid comes from the Kyverno pod policy, in the dry run and in what --apply creates', async () => {
    const dry = await cli(['restore', '--tool', 'gamma', '-o', 'json', '--config', configFile]);
    assert.equal(dry.code, 0, dry.err);
    assert.match(
      dry.err,
      /^uid of tool 'gamma': 52003 from the Kyverno Policy tool-gamma\/toolforge-kyverno-pod-policy$/m,
    );
    for (const o of (JSON.parse(dry.out) as { items: Obj[] }).items)
      if (o['kind'] !== 'Service') assert.deepEqual(idsOf(o), [GAMMA_UID, GAMMA_UID, GAMMA_UID]);

    const other = await cli(['restore', '--tool', 'gamma', '--uid', '4242', '--config', configFile]);
    assert.match(
      other.err,
      /^warning: tool 'gamma': uid sources disagree: --uid says 4242, the Kyverno Policy tool-gamma\/toolforge-kyverno-pod-policy says 52003; using 4242 from --uid$/m,
    );
    assert.match(other.out, /^# uid 4242 from --uid$/m);

    const applied = await cli(['restore', '--tool', 'gamma', '--apply', '--config', configFile]);
    assert.equal(applied.code, 0, applied.err);
    assert.equal(applied.out, 'created CronJob/daily in tool-gamma\ncreated Deployment/worker in tool-gamma\n');
    for (const [kind, name] of [
      ['CronJob', 'daily'],
      ['Deployment', 'worker'],
    ] as const) {
      const obj = await get(kind, 'tool-gamma', name);
      assert.deepEqual(idsOf(obj ?? {}), [GAMMA_UID, GAMMA_UID, GAMMA_UID], `${kind}/${name}`);
    }
  });

  test('no pod policy and no --uid: --apply refuses and creates nothing; with --uid it creates', async () => {
    const refused = await cli(['restore', '--tool', 'delta', '--apply', '--config', configFile]);
    assert.equal(refused.code, 1);
    assert.equal(refused.out, '');
    assert.match(
      refused.err,
      /^uid of tool 'delta': unknown \(no --uid, no Kyverno Policy tool-delta\/toolforge-kyverno-pod-policy, no remaining workload records it\)$/m,
    );
    assert.match(
      refused.err,
      /^refused delta\/daily \(uid-unknown\): the uid of tool 'delta' is unknown, .*pass --uid N/m,
    );
    assert.match(refused.err, /^refused delta\/worker \(uid-unknown\)/m);
    assert.equal(await get('CronJob', 'tool-delta', 'daily'), undefined);
    assert.equal(await get('Deployment', 'tool-delta', 'worker'), undefined);

    const applied = await cli([
      'restore',
      '--tool',
      'delta',
      '--apply',
      '--uid',
      String(DELTA_UID),
      '--config',
      configFile,
    ]);
    assert.equal(applied.code, 0, applied.err);
    assert.match(applied.err, /^uid of tool 'delta': 52004 from --uid$/m);
    assert.deepEqual(idsOf((await get('CronJob', 'tool-delta', 'daily')) ?? {}), [DELTA_UID, DELTA_UID, DELTA_UID]);
    assert.deepEqual(idsOf((await get('Deployment', 'tool-delta', 'worker')) ?? {}), [DELTA_UID, DELTA_UID, DELTA_UID]);
    const usage = await cli(['restore', '--tool', 'delta', '--uid', 'root', '--config', configFile]);
    assert.equal(usage.code, 2);
  });
});
