/**
 * The chart's life on a real control plane started as `npm run cluster:up` starts it (startControlPlane with its
 * default seeding: the platform's identities and the chart's own ServiceAccounts and RBAC): the README's local path
 * (`helm install` with the local values right after `cluster:up`), then jobs-api writing ScheduledJobs and
 * ContinuousJobs, an upgrade to the toolsbeta values (which do not install the job CRDs) and `helm uninstall`. No step
 * may delete a job CRD, and so none may delete a job.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CHART_RELEASE, startControlPlane } from '../../scripts/control-plane/cluster.js';
import type { ControlPlane } from '../../scripts/control-plane/cluster.js';
import { crOf, scheduledJob } from '../../scripts/control-plane/jobs.js';
import { freePort } from '../../scripts/control-plane/process.js';
import { CHART_DIR, VALUES_DIR, runTool } from '../../scripts/tools/binaries.js';
import type { ContinuousJob } from '../../src/jobs/model.js';

const NS = CHART_RELEASE.namespace;
const RELEASE = CHART_RELEASE.name;
const TOOLS = ['alpha', 'beta'];
const JOBS_PER_TOOL = 3;
const CRDS = ['scheduled-jobs.jobs-api.toolforge.org', 'continuous-jobs.jobs-api.toolforge.org'];

function continuousJob(tool: string, name: string): ContinuousJob {
  return {
    job_name: name,
    tool_name: tool,
    job_type: 'continuous',
    cmd: `./${name}.sh`,
    image: { short_name: 'python3.11' },
  };
}

interface Counts {
  scheduled: number;
  continuous: number;
}

describe('the chart on a control plane started as `npm run cluster:up` does', { timeout: 600_000 }, () => {
  let cp: ControlPlane;
  /** The local environment's overrides of the README: no cert-manager here, the webhook (if any) on the host. */
  let localOverrides: string[] = [];

  const helm = (args: string[]) => {
    const res = runTool('helm', [...args, '--kubeconfig', cp.kubeconfigPath('admin')]);
    assert.equal(res.code, 0, `helm ${args.join(' ')}: ${res.stdout}${res.stderr}`);
    return res.stdout;
  };
  const chartArgs = (verb: 'install' | 'upgrade', env: 'local' | 'toolsbeta') => [
    verb,
    RELEASE,
    CHART_DIR,
    '--namespace',
    NS,
    '--values',
    join(VALUES_DIR, `${env}.yaml`),
    ...localOverrides.flatMap((s) => ['--set', s]),
  ];

  async function countCrs(): Promise<Counts> {
    const count = async (plural: string) => {
      const res = await cp.kubectl('admin', ['get', plural, '--all-namespaces', '-o', 'name']);
      // A missing CRD is a missing resource type (or, right after its deletion, a NotFound list): no job is left.
      if (res.code !== 0 && /doesn't have a resource type|could not find the requested resource/.test(res.stderr)) {
        return 0;
      }
      assert.equal(res.code, 0, res.stderr);
      return res.stdout.split('\n').filter((l) => l.trim() !== '').length;
    };
    return { scheduled: await count('scheduled-jobs'), continuous: await count('continuous-jobs') };
  }

  async function existingCrds(): Promise<string[]> {
    const out = await cp.kubectlOk('admin', ['get', 'crd', '-o', 'name']);
    return CRDS.filter((name) => out.split('\n').includes(`customresourcedefinition.apiextensions.k8s.io/${name}`));
  }

  async function phase(): Promise<string> {
    return cp.kubectlOk('admin', ['get', 'configmap', 'jobs-storage-phase', '-n', NS, '-o', 'jsonpath={.data.phase}']);
  }

  const want: Counts = { scheduled: TOOLS.length * JOBS_PER_TOOL, continuous: TOOLS.length * JOBS_PER_TOOL };

  before(async () => {
    // As scripts/cluster.ts `up` does: the default seeding, then the tools.
    cp = await startControlPlane();
    for (const tool of TOOLS) await cp.addTool(tool);
    const ca = readFileSync(cp.caFile);
    localOverrides = [
      'certManager.enabled=false',
      `webhook.caBundle=${ca.toString('base64')}`,
      // Nothing listens there: the webhook configuration fails open (failurePolicy Ignore); the policy still holds.
      `webhook.url=https://127.0.0.1:${await freePort()}`,
    ];
  });
  after(async () => {
    await cp?.stop();
  });

  test("the README's local path: helm install with the local values succeeds right after cluster:up", async () => {
    const out = helm(chartArgs('install', 'local'));
    assert.match(out, /STATUS: deployed/);
    // The seeded ServiceAccounts and RBAC now belong to the release...
    const manifest = helm(['get', 'manifest', RELEASE, '--namespace', NS]);
    for (const kind of ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']) {
      assert.match(manifest, new RegExp(`kind: ${kind}\\n`), kind);
    }
    // ...and the seeded identities keep working under them.
    await cp.kubectlOk('admin', ['wait', '--for=condition=Established', ...CRDS.map((c) => `crd/${c}`)]);
    const canList = await cp.kubectl('jobs-storage-sync', ['auth', 'can-i', 'list', 'scheduled-jobs', '-A']);
    assert.equal(canList.stdout.trim(), 'yes', canList.stderr);
    assert.equal(await phase(), 'ignore-unmanaged');
  });

  test('jobs-api writes ScheduledJobs and ContinuousJobs on the CRDs the local values installed', async (t) => {
    const crs = TOOLS.flatMap((tool) =>
      Array.from({ length: JOBS_PER_TOOL }, (_, i) => [
        crOf(scheduledJob(tool, `daily-${i}`)),
        crOf(continuousJob(tool, `worker-${i}`)),
      ]).flat(),
    );
    await cp.apply('jobs-api', crs);
    const counts = await countCrs();
    t.diagnostic(`after install with the local values: ${JSON.stringify(counts)}`);
    assert.deepEqual(counts, want);
    assert.deepEqual(await existingCrds(), CRDS);
  });

  test('helm upgrade to the toolsbeta values (crds.install off) deletes neither a CRD nor a job', async (t) => {
    await cp.kubectlOk('admin', [
      'patch',
      'configmap',
      'jobs-storage-phase',
      '-n',
      NS,
      '-p',
      '{"data":{"phase":"enforce"}}',
    ]);
    const before = await countCrs();
    const out = helm(chartArgs('upgrade', 'toolsbeta'));
    assert.match(out, /STATUS: deployed/);
    const manifest = helm(['get', 'manifest', RELEASE, '--namespace', NS]);
    assert.doesNotMatch(manifest, /kind: CustomResourceDefinition/, 'the toolsbeta release renders no CRD');
    const counts = await countCrs();
    t.diagnostic(`before the upgrade: ${JSON.stringify(before)}; after: ${JSON.stringify(counts)}`);
    assert.deepEqual(await existingCrds(), CRDS);
    assert.deepEqual(counts, want);
    assert.equal(await phase(), 'enforce', 'the upgrade leaves the phase an admin set');
  });

  test('helm uninstall deletes neither a CRD nor a job, and leaves the phase ConfigMap', async (t) => {
    const before = await countCrs();
    helm(['uninstall', RELEASE, '--namespace', NS]);
    const counts = await countCrs();
    t.diagnostic(`before the uninstall: ${JSON.stringify(before)}; after: ${JSON.stringify(counts)}`);
    assert.deepEqual(await existingCrds(), CRDS);
    assert.deepEqual(counts, want);
    assert.equal(await phase(), 'enforce');
    // The chart's own objects are gone (the release is), e.g. the admission policy and the webhook configuration.
    const left = await cp.kubectl('admin', ['get', 'validatingadmissionpolicy', 'jobs-storage-protect-storage']);
    assert.notEqual(left.code, 0);
  });

  test('a new install with the local values adopts the kept CRDs and keeps the phase and the jobs', async (t) => {
    helm(chartArgs('install', 'local'));
    const counts = await countCrs();
    t.diagnostic(`after a new install: ${JSON.stringify(counts)}`);
    assert.deepEqual(counts, want);
    assert.match(helm(['get', 'manifest', RELEASE, '--namespace', NS]), /kind: CustomResourceDefinition/);
    assert.equal(await phase(), 'enforce');
  });
});
