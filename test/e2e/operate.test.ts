import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main } from '../../src/cli.js';
import { KubeApi } from '../../src/k8s/api.js';
import { installJobsCrds, JOBS_STORAGE_SA, startControlPlane } from '../../scripts/control-plane/cluster.js';
import type { ControlPlane } from '../../scripts/control-plane/cluster.js';
import { REPO_ROOT } from '../../scripts/control-plane/cluster.js';
import { crOf, scheduledJob, waitFor, workloadsOf } from '../../scripts/control-plane/jobs.js';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

/** The admin CLI against a real API server: phase get/set, the initial import, the per-tool report. */
describe('jobs-storage import, report and phase', { timeout: 300_000 }, () => {
  let cp: ControlPlane;
  let configFile: string;
  let dir: string;
  const SYNC_SA = `system:serviceaccount:${JOBS_STORAGE_SA.namespace}:${JOBS_STORAGE_SA.name}`;

  /** A config file like the admin's, with another identity's kubeconfig. */
  const configAs = (identity: string) => {
    const file = join(dir, `${identity}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        logLevel: 'warn',
        kubeconfig: cp.kubeconfigPath(identity),
        phase: { namespace: JOBS_STORAGE_SA.namespace },
      }),
    );
    return file;
  };

  before(async () => {
    cp = await startControlPlane();
    await cp.addTool('alpha');
    await installJobsCrds(cp);
    const admin = new KubeApi(cp.kubeConfig('admin'));
    const asTool = new KubeApi(cp.kubeConfig('alpha'));
    for (const name of ['one', 'two']) {
      for (const obj of workloadsOf(scheduledJob('alpha', name))) {
        await asTool.request('POST', '/apis/batch/v1/namespaces/tool-alpha/cronjobs', { body: obj });
      }
    }
    const stored = scheduledJob('alpha', 'stored');
    await admin.request('POST', '/apis/jobs-api.toolforge.org/v1/namespaces/tool-alpha/scheduled-jobs', {
      body: crOf(stored),
    });
    for (const obj of workloadsOf(stored)) {
      await asTool.request('POST', '/apis/batch/v1/namespaces/tool-alpha/cronjobs', { body: obj });
    }
    // The guard every import meets on Toolforge: only storage writers and break-glass groups may write job CRs.
    await cp.kubectlOk('admin', ['apply', '-f', join(REPO_ROOT, 'webhook-config', 'storage-policy.yaml')]);
    dir = mkdtempSync(join(tmpdir(), 'jobs-storage-operate-'));
    configFile = cp.cliConfig();
  });
  after(async () => {
    await cp?.stop();
  });

  test('phase get reports the initial phase until one is set; set records who and why', async () => {
    const before = await cli(['phase', 'get', '--config', configFile]);
    assert.equal(before.code, 0);
    assert.match(before.out, /^runtime-truth \(not set/);
    const set = await cli(['phase', 'set', 'storage-truth', '--reason', 'e2e', '--config', configFile]);
    assert.equal(set.code, 0, set.err);
    assert.match(set.out, /\(unset\) → storage-truth/);
    const after = await cli(['phase', 'get', '--config', configFile]);
    assert.match(after.out, /^storage-truth\n/);
    assert.match(after.out, /→ storage-truth by .*: e2e/);
    const bad = await cli(['phase', 'set', 'sideways', '--config', configFile]);
    assert.equal(bad.code, 2);
  });

  test('import --dry-run lists what it would create and creates nothing', async () => {
    const res = await cli(['import', '--dry-run', '--config', configFile]);
    assert.equal(res.code, 0, res.err);
    assert.match(res.out, /alpha\s+one\s+scheduled\s+create/);
    assert.match(res.out, /would create 2 job definition\(s\)/);
    const crs = await cp.kubectlOk('admin', ['get', 'scheduled-jobs', '-n', 'tool-alpha', '-o', 'name']);
    assert.equal(crs.trim().split('\n').length, 1);
  });

  test('import creates the missing CRs once; a second run creates none', async () => {
    const first = await cli(['import', '--config', configFile]);
    assert.equal(first.code, 0, first.err);
    assert.match(first.out, /created 2, already present 0, skipped 0, failed 0/);
    const crs = await cp.kubectlOk('admin', ['get', 'scheduled-jobs', '-n', 'tool-alpha', '-o', 'name']);
    assert.equal(crs.trim().split('\n').length, 3);
    const second = await cli(['import', '--config', configFile]);
    assert.match(second.out, /created 0, already present 0, skipped 0, failed 0/);
  });

  test('report shows every job in sync and listed', async () => {
    const res = await cli(['report', '-o', 'json', '--config', configFile]);
    assert.equal(res.code, 0, res.err);
    const plans = JSON.parse(res.out) as Array<{
      tool: string;
      jobs: Array<{ name: string; state: string; listedByApi: boolean }>;
    }>;
    const alpha = plans.find((p) => p.tool === 'alpha');
    assert.deepEqual(
      alpha?.jobs.map((j) => [j.name, j.state, j.listedByApi]),
      [
        ['one', 'in-sync', true],
        ['stored', 'in-sync', true],
        ['two', 'in-sync', true],
      ],
    );
  });

  test('report as a ServiceAccount without rights stops within seconds, naming it and the refused list', async () => {
    await cp.apply('admin', [
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'nobody', namespace: 'default' } },
    ]);
    await cp.addServiceAccountIdentity('nobody', 'default', 'nobody');
    const started = Date.now();
    const res = await cli(['report', '--config', configAs('nobody')]);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(res.code, 1, res.out);
    assert.ok(seconds < 10, `took ${seconds} s`);
    assert.equal(res.err.trim().split('\n').length, 1, res.err);
    assert.match(
      res.err,
      /report stopped: user "system:serviceaccount:default:nobody" may not (list|get) \S+ (at the cluster scope|in namespace \S+) \(403 Forbidden/,
    );
  });

  test('import by a cluster admin outside system:masters writes nothing and names the identity; as the sync ServiceAccount it imports', async () => {
    await cp.apply('admin', [
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'ops-admin', namespace: 'default' } },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: 'ops-admin-cluster-admin' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ kind: 'ServiceAccount', name: 'ops-admin', namespace: 'default' }],
      },
    ]);
    await cp.addServiceAccountIdentity('ops-admin', 'default', 'ops-admin');
    const asOpsAdmin = configAs('ops-admin');
    // The policy is in force for this identity: a server-side dry run of a CR is denied.
    await waitFor('the storage policy denies ops-admin', async () => {
      const r = await cp.kubectl('ops-admin', ['create', '--dry-run=server', '-f', '-'], {
        stdin: JSON.stringify(crOf(scheduledJob('alpha', 'probe'))),
      });
      return r.code !== 0 && r.stderr.includes('ValidatingAdmissionPolicy') ? true : undefined;
    });
    const asTool = new KubeApi(cp.kubeConfig('alpha'));
    for (const obj of workloadsOf(scheduledJob('alpha', 'three'))) {
      await asTool.request('POST', '/apis/batch/v1/namespaces/tool-alpha/cronjobs', { body: obj });
    }
    const crNames = async () =>
      (await cp.kubectlOk('admin', ['get', 'scheduled-jobs', '-n', 'tool-alpha', '-o', 'name'])).trim().split('\n');

    const refused = await cli(['import', '--config', asOpsAdmin]);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /"system:serviceaccount:default:ops-admin" is neither/);
    assert.match(refused.err, new RegExp(`'jobs-storage import --as ${SYNC_SA}'`));
    assert.doesNotMatch(refused.err, /toolforge jobs/, 'not the message meant for tool maintainers');
    assert.ok(!(await crNames()).includes('scheduledjob.jobs-api.toolforge.org/three'));

    const imported = await cli(['import', '--as', SYNC_SA, '--config', asOpsAdmin]);
    assert.equal(imported.code, 0, imported.err);
    assert.match(imported.out, /alpha\s+three\s+scheduled\s+created/);
    assert.match(imported.out, /created 1, already present 0, skipped 0, failed 0/);
    assert.ok((await crNames()).includes('scheduledjob.jobs-api.toolforge.org/three'));
  });
});
