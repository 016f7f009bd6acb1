import * as k8s from '@kubernetes/client-node';
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { JSONWebKeySet } from 'jose';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { KubeApi } from '../../src/k8s/api.js';
import { STORAGE_API_VERSION, STORAGE_GROUP } from '../../src/storage/kinds.js';
import { installJobsCrds, startControlPlane } from '../../scripts/control-plane/cluster.js';
import type { ControlPlane } from '../../scripts/control-plane/cluster.js';

let cp: ControlPlane | undefined;

function plane(): ControlPlane {
  assert.ok(cp, 'control plane not started');
  return cp;
}

const cronJob = (name: string, namespace: string) =>
  JSON.stringify({
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name, namespace },
    spec: {
      schedule: '*/5 * * * *',
      jobTemplate: {
        spec: {
          template: {
            spec: {
              restartPolicy: 'Never',
              containers: [
                {
                  name: 'job',
                  image: 'docker-registry.tools.wmflabs.org/toolforge-bookworm-sssd:latest',
                  command: ['true'],
                },
              ],
            },
          },
        },
      },
    },
  });

before(async () => {
  cp = await startControlPlane();
  await Promise.all([cp.addTool('alpha'), cp.addTool('beta')]);
});

after(async () => {
  await cp?.stop();
});

test('a tool can create a CronJob in its own namespace', async () => {
  const res = await plane().kubectl('alpha', ['create', '-f', '-'], { stdin: cronJob('smoke', 'tool-alpha') });
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /cronjob\.batch\/smoke created/);
});

test("a tool cannot create a CronJob in another tool's namespace", async () => {
  const res = await plane().kubectl('alpha', ['create', '-f', '-'], { stdin: cronJob('smoke', 'tool-beta') });
  assert.notEqual(res.code, 0);
  assert.match(res.stderr, /Forbidden/);
  assert.match(res.stderr, /User "alpha"/);
});

test('jobs-api creates a ScheduledJob through the client library once the CRDs are established', async () => {
  const names = await installJobsCrds(plane());
  assert.ok(names.includes(`scheduled-jobs.${STORAGE_GROUP}`), names.join(','));

  const api = plane().kubeConfig('jobs-api').makeApiClient(k8s.CustomObjectsApi);
  const created = (await api.createNamespacedCustomObject({
    group: STORAGE_GROUP,
    version: 'v1',
    namespace: 'tool-alpha',
    plural: 'scheduled-jobs',
    body: {
      apiVersion: STORAGE_API_VERSION,
      kind: 'ScheduledJob',
      metadata: { name: 'smoke' },
      spec: {
        job_name: 'smoke',
        tool_name: 'alpha',
        job_type: 'scheduled',
        cmd: 'true',
        schedule: { text: '*/5 * * * *' },
      },
    },
  })) as { metadata?: { uid?: string; managedFields?: { manager?: string }[] } };
  assert.ok(created.metadata?.uid);

  const whoami = await plane().kubectlOk('jobs-api', ['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
  assert.equal(whoami, 'system:serviceaccount:jobs-api:jobs-api');
});

test('the ServiceAccount token verifies against the issuer JWKS', async () => {
  const token = await plane().tokenOf('jobs-api');
  const discovery = await plane().get('/.well-known/openid-configuration');
  assert.equal(discovery.status, 200, discovery.body);
  const config = JSON.parse(discovery.body) as { issuer: string; jwks_uri: string };
  assert.equal(config.issuer, plane().issuer);

  const jwks = await plane().get('/openid/v1/jwks', { token });
  assert.equal(jwks.status, 200, jwks.body);
  const keySet = createLocalJWKSet(JSON.parse(jwks.body) as JSONWebKeySet);
  const { payload } = await jwtVerify(token, keySet, { issuer: plane().issuer, audience: plane().issuer });
  assert.equal(payload.sub, 'system:serviceaccount:jobs-api:jobs-api');

  const anonymous = await plane().get('/openid/v1/jwks');
  assert.equal(anonymous.status, 200, 'JWKS must be readable without credentials');
});

test('a paginated list reads every object once, across pages, with the next page requested early', async () => {
  const api = new KubeApi(plane().kubeConfig('admin'));
  const names = Array.from({ length: 7 }, (_, i) => `paged-${i}`);
  for (const name of names)
    await api.request('POST', '/api/v1/namespaces/tool-beta/configmaps', {
      body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { n: name } },
    });
  const pages: string[][] = [];
  for await (const page of api.listPages<{ metadata: { name: string }; kind?: string }>(
    '/api/v1/namespaces/tool-beta/configmaps',
    { limit: 2, labelSelector: undefined },
  )) {
    assert.ok(
      page.items.every((cm) => cm.kind === 'ConfigMap'),
      'items carry their kind',
    );
    pages.push(page.items.map((cm) => cm.metadata.name));
  }
  const listed = pages.flat().filter((n) => n.startsWith('paged-'));
  assert.deepEqual(listed, names);
  assert.ok(pages.length >= 4, `pages: ${JSON.stringify(pages)}`);
  assert.ok(pages.every((p) => p.length <= 2));
});

test('a list stopped after its first page ends cleanly (the page requested early is dropped)', async () => {
  const api = new KubeApi(plane().kubeConfig('admin'));
  const pages = api.listPages('/api/v1/namespaces/tool-beta/configmaps', { limit: 2 });
  const first = await pages.next();
  assert.equal(first.done, false);
  await pages.return(undefined);
  assert.deepEqual(await pages.next(), { done: true, value: undefined });
});
