import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { installJobsCrds, startControlPlane } from '../../scripts/control-plane/cluster.js';
import type { ControlPlane } from '../../scripts/control-plane/cluster.js';
import { helmTemplate } from '../../scripts/tools/binaries.js';

/**
 * The chart rendered with the tools values against a real API server with neither prometheus-operator nor the job
 * CRDs' owner changing hands: it validates, applies, and its RBAC grants exactly what is needed.
 */

/**
 * cert-manager is deployed cluster-wide on Toolforge; this control plane has none, so its two kinds get stand-in
 * CRDs (no schema) for the chart's Issuer and Certificate to be accepted.
 */
function certManagerStandIns(): object[] {
  return [
    ['issuers', 'Issuer'],
    ['certificates', 'Certificate'],
  ].map(([plural, kind]) => ({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.cert-manager.io` },
    spec: {
      group: 'cert-manager.io',
      scope: 'Namespaced',
      names: { plural, singular: kind?.toLowerCase(), kind, listKind: `${kind}List` },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  }));
}

describe('deploy/chart with the tools values on a real API server', { timeout: 300_000 }, () => {
  let cp: ControlPlane;
  let tools = '';
  const crdVersions = async () =>
    cp.kubectlOk('admin', [
      'get',
      'crd',
      'scheduled-jobs.jobs-api.toolforge.org',
      'continuous-jobs.jobs-api.toolforge.org',
      '-o',
      'jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion} {end}',
    ]);

  before(async () => {
    tools = helmTemplate({ environment: 'tools' });
    cp = await startControlPlane({ seed: false });
    // As on Toolforge: jobs-api's chart owns the job CRDs, cert-manager runs, prometheus-operator does not.
    await installJobsCrds(cp);
    await cp.apply('admin', certManagerStandIns());
    await cp.kubectlOk('admin', ['wait', '--for=condition=Established', 'crd/certificates.cert-manager.io']);
    await cp.kubectlOk('admin', ['create', 'namespace', 'jobs-storage']);
  });
  after(async () => {
    await cp?.stop();
  });

  test('kubectl apply --dry-run=server accepts every object, with no CRD and no prometheus-operator kind', async () => {
    const before = await crdVersions();
    const out = await cp.kubectlOk('admin', ['apply', '--dry-run=server', '-f', '-'], { stdin: tools });
    const lines = out.trim().split('\n');
    assert.ok(lines.length >= 20, out);
    for (const line of lines) assert.match(line, /\(server dry run\)$/);
    assert.doesNotMatch(out, /customresourcedefinition|prometheusrule|servicemonitor/i);
    assert.equal(await crdVersions(), before);
  });

  test('applied for real, the phase starts at ignore-unmanaged and the job CRDs are untouched', async () => {
    const before = await crdVersions();
    await cp.kubectlOk('admin', ['apply', '-f', '-'], { stdin: tools });
    const phase = await cp.kubectlOk('admin', [
      'get',
      'configmap',
      'jobs-storage-phase',
      '-n',
      'jobs-storage',
      '-o',
      'jsonpath={.data.phase}',
    ]);
    assert.equal(phase, 'ignore-unmanaged');
    assert.equal(await crdVersions(), before);
    const vwc = await cp.kubectlOk('admin', ['get', 'validatingwebhookconfiguration', 'jobs-storage', '-o', 'name']);
    assert.equal(vwc.trim(), 'validatingwebhookconfiguration.admissionregistration.k8s.io/jobs-storage');
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
    ['jobs-storage-admin', 'get', 'configmaps', 'jobs-storage', false],
  ];
  for (const [sa, verb, resource, ns, expected] of table) {
    test(`${sa} ${expected ? 'may' : 'may not'} ${verb} ${resource}${ns ? ` in ${ns}` : ' cluster-wide'}`, async () => {
      assert.equal(await can(sa, verb, resource, ns), expected);
    });
  }
});
