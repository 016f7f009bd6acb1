import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeRequest, requestText } from './fail-fast.js';

test('a REST request in RBAC terms: verb, resource with group, namespace, name', () => {
  const cases: Array<[method: string, path: string, text: string]> = [
    ['GET', '/apis/batch/v1/cronjobs?limit=100', 'list cronjobs.batch at the cluster scope'],
    ['GET', '/apis/apps/v1/deployments', 'list deployments.apps at the cluster scope'],
    ['GET', '/api/v1/services', 'list services at the cluster scope'],
    ['GET', '/api/v1/namespaces/jobs-storage/configmaps', 'list configmaps in namespace jobs-storage'],
    [
      'GET',
      '/api/v1/namespaces/jobs-storage/configmaps/jobs-storage-phase',
      'get configmaps jobs-storage-phase in namespace jobs-storage',
    ],
    [
      'POST',
      '/apis/jobs-api.toolforge.org/v1/namespaces/tool-alpha/scheduled-jobs',
      'create scheduled-jobs.jobs-api.toolforge.org in namespace tool-alpha',
    ],
    [
      'PUT',
      '/apis/jobs-api.toolforge.org/v1/namespaces/tool-alpha/scheduled-jobs/daily/status',
      'update scheduled-jobs.jobs-api.toolforge.org/status daily in namespace tool-alpha',
    ],
    [
      'DELETE',
      '/apis/batch/v1/namespaces/tool-a%2Fb/cronjobs',
      'deletecollection cronjobs.batch in namespace tool-a/b',
    ],
    [
      'POST',
      '/apis/authentication.k8s.io/v1/selfsubjectreviews',
      'create selfsubjectreviews.authentication.k8s.io at the cluster scope',
    ],
  ];
  for (const [method, path, text] of cases) assert.equal(requestText(describeRequest(method, path)), text, path);
});
