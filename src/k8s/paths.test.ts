import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CONFIGMAPS, LEASES, collectionPath, objectPath } from './paths.js';

test('core resources live under /api, grouped ones under /apis', () => {
  assert.equal(collectionPath(CONFIGMAPS, 'jobs-storage'), '/api/v1/namespaces/jobs-storage/configmaps');
  assert.equal(collectionPath(LEASES), '/apis/coordination.k8s.io/v1/leases');
  assert.equal(
    objectPath({ group: 'batch', version: 'v1', plural: 'cronjobs' }, 'tool-a', 'nightly'),
    '/apis/batch/v1/namespaces/tool-a/cronjobs/nightly',
  );
});

test('a name or namespace cannot change which resource a path addresses', () => {
  assert.equal(objectPath(CONFIGMAPS, 'ns', '../secrets/x'), '/api/v1/namespaces/ns/configmaps/..%2Fsecrets%2Fx');
  assert.equal(collectionPath(CONFIGMAPS, 'a/b'), '/api/v1/namespaces/a%2Fb/configmaps');
});
