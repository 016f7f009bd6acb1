import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { join } from 'node:path';
import { REPO_ROOT, startControlPlane } from '../../scripts/control-plane/cluster.js';
import type { ControlPlane } from '../../scripts/control-plane/cluster.js';

/** The shipped manifests against a real API server: they validate, and the RBAC grants exactly what is needed. */
describe('deploy/ manifests', { timeout: 180_000 }, () => {
  let cp: ControlPlane;
  const file = (name: string) => join(REPO_ROOT, 'deploy', name);

  before(async () => {
    cp = await startControlPlane({ seed: false });
  });
  after(async () => {
    await cp?.stop();
  });

  test('CRDs, namespace, phase ConfigMap and RBAC apply', async () => {
    for (const f of ['crds/scheduled-jobs.yaml', 'crds/continuous-jobs.yaml', 'namespace.yaml', 'rbac.yaml']) {
      await cp.kubectlOk('admin', ['apply', '-f', file(f)]);
    }
    const phase = await cp.kubectlOk('admin', [
      'get',
      'configmap',
      'jobs-storage-phase',
      '-n',
      'jobs-storage',
      '-o',
      'jsonpath={.data.phase}',
    ]);
    assert.equal(phase, 'runtime-truth');
  });

  test('the webhook and sync Deployments, Services and PDB pass server-side validation', async () => {
    for (const f of ['webhook.yaml', 'sync.yaml']) {
      const out = await cp.kubectlOk('admin', ['apply', '--dry-run=server', '-f', file(f)]);
      assert.match(out, /deployment\.apps\/jobs-storage-\w+ created \(server dry run\)/);
    }
  });

  const can = async (sa: string, verb: string, resource: string, ns?: string): Promise<boolean> => {
    const res = await cp.kubectl('admin', [
      'auth',
      'can-i',
      verb,
      resource,
      `--as=system:serviceaccount:jobs-storage:${sa}`,
      ...(ns ? ['-n', ns] : ['-A']),
    ]);
    return res.stdout.trim() === 'yes';
  };

  const table: Array<[string, string, string, string | undefined, boolean]> = [
    ['jobs-storage-sync', 'list', 'cronjobs.batch', undefined, true],
    ['jobs-storage-sync', 'watch', 'deployments.apps', undefined, true],
    ['jobs-storage-sync', 'list', 'services', undefined, true],
    ['jobs-storage-sync', 'create', 'scheduled-jobs.jobs-api.toolforge.org', 'tool-x', true],
    ['jobs-storage-sync', 'watch', 'continuous-jobs.jobs-api.toolforge.org', undefined, true],
    ['jobs-storage-sync', 'update', 'scheduled-jobs.jobs-api.toolforge.org', 'tool-x', false],
    ['jobs-storage-sync', 'delete', 'scheduled-jobs.jobs-api.toolforge.org', 'tool-x', false],
    ['jobs-storage-sync', 'update', 'cronjobs.batch', 'tool-x', false],
    ['jobs-storage-sync', 'delete', 'deployments.apps', 'tool-x', false],
    ['jobs-storage-sync', 'update', 'leases.coordination.k8s.io', 'jobs-storage', true],
    ['jobs-storage-sync', 'watch', 'configmaps', 'jobs-storage', true],
    ['jobs-storage-sync', 'get', 'secrets', 'jobs-storage', false],
    ['jobs-storage-webhook', 'watch', 'configmaps', 'jobs-storage', true],
    ['jobs-storage-webhook', 'list', 'cronjobs.batch', undefined, false],
    ['jobs-storage-webhook', 'create', 'scheduled-jobs.jobs-api.toolforge.org', 'tool-x', false],
  ];
  for (const [sa, verb, resource, ns, expected] of table) {
    test(`${sa} ${expected ? 'may' : 'may not'} ${verb} ${resource}${ns ? ` in ${ns}` : ' cluster-wide'}`, async () => {
      assert.equal(await can(sa, verb, resource, ns), expected);
    });
  }
});
