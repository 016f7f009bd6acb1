import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadReview } from '../../../test/fixtures/admission/load.js';
import { parseAdmissionReview } from '../review.js';
import type { AdmissionRequest, ManagedFieldsEntry } from '../review.js';
import { isSystemComponent, matchesIdentity, requestFieldManager, selectorRequires, writers } from './evidence.js';

function withFields(object: ManagedFieldsEntry[], old?: ManagedFieldsEntry[], fieldManager?: string): AdmissionRequest {
  const request = parseAdmissionReview(loadReview('cronjob-update-kubectl'));
  request.options = fieldManager === undefined ? { kind: 'UpdateOptions' } : { kind: 'UpdateOptions', fieldManager };
  request.object = { metadata: { managedFields: object } };
  request.oldObject = old === undefined ? null : { metadata: { managedFields: old } };
  return request;
}

const entry = (manager: string, time: string, extra: Partial<ManagedFieldsEntry> = {}): ManagedFieldsEntry => ({
  manager,
  operation: 'Update',
  apiVersion: 'batch/v1',
  time,
  ...extra,
});

test('identity patterns: a trailing colon is a prefix, anything else an exact name', () => {
  const patterns = ['system:serviceaccount:kube-system:', 'system:apiserver'];
  assert.ok(matchesIdentity('system:serviceaccount:kube-system:cronjob-controller', patterns));
  assert.ok(matchesIdentity('system:apiserver', patterns));
  assert.ok(!matchesIdentity('system:apiserver-other', patterns));
  assert.ok(!matchesIdentity('system:serviceaccount:tool-x:default', patterns));
});

test('system components are system:* users other than ServiceAccounts and anonymous', () => {
  assert.ok(isSystemComponent('system:kube-controller-manager'));
  assert.ok(isSystemComponent('system:node:worker-1'));
  assert.ok(!isSystemComponent('system:serviceaccount:tool-mytool:default'));
  assert.ok(!isSystemComponent('system:anonymous'));
  assert.ok(!isSystemComponent('mytool'));
});

test('the field manager comes from options first', () => {
  assert.equal(
    requestFieldManager(withFields([entry('a', '2026-01-01T00:00:00Z')], undefined, 'kubectl-edit')),
    'kubectl-edit',
  );
});

test('without options, the managedFields entry this request added or touched', () => {
  const old = [
    entry('jobs-api toolforge_weld', '2026-01-01T00:00:00Z'),
    entry('kubectl-patch', '2026-01-02T00:00:00Z'),
  ];
  const touched = [
    entry('jobs-api toolforge_weld', '2026-01-03T00:00:00Z'),
    entry('kubectl-patch', '2026-01-02T00:00:00Z'),
  ];
  assert.equal(requestFieldManager(withFields(touched, old)), 'jobs-api toolforge_weld');
  const added = [...old, entry('webservice', '2026-01-01T00:00:00Z')];
  assert.equal(requestFieldManager(withFields(added, old)), 'webservice');
});

test('without a change (same second, same manager) the newest entry; status and non-write entries are ignored', () => {
  const fields = [
    entry('kubectl-create', '2026-01-01T00:00:00Z'),
    entry('jobs-api toolforge_weld', '2026-01-01T00:00:05Z'),
    entry('kube-controller-manager', '2026-01-09T00:00:00Z', { subresource: 'status' }),
  ];
  assert.equal(requestFieldManager(withFields(fields, fields)), 'jobs-api toolforge_weld');
  assert.equal(requestFieldManager(withFields([])), undefined);
});

test('writers lists every manager that wrote the object', () => {
  const review = parseAdmissionReview(loadReview('cronjob-delete-collection-jobs-api-user-patched'));
  assert.deepEqual(writers(review.oldObject), ['jobs-api toolforge_weld', 'kubectl-patch']);
  assert.deepEqual(writers(undefined), []);
});

test('selectorRequires reads serialised label selectors', () => {
  const sel = 'app.kubernetes.io/managed-by=toolforge-jobs-framework,app.kubernetes.io/name=bot';
  assert.equal(selectorRequires(sel, 'app.kubernetes.io/managed-by', 'toolforge-jobs-framework'), true);
  assert.equal(
    selectorRequires(
      'app.kubernetes.io/managed-by==toolforge-jobs-framework',
      'app.kubernetes.io/managed-by',
      'toolforge-jobs-framework',
    ),
    true,
  );
  assert.equal(
    selectorRequires(
      'app.kubernetes.io/managed-by in (toolforge-jobs-framework),x in (a,b)',
      'app.kubernetes.io/managed-by',
      'toolforge-jobs-framework',
    ),
    true,
  );
  assert.equal(
    selectorRequires(
      'app.kubernetes.io/managed-by!=toolforge-jobs-framework',
      'app.kubernetes.io/managed-by',
      'toolforge-jobs-framework',
    ),
    false,
  );
  assert.equal(selectorRequires('app=bot', 'app.kubernetes.io/managed-by', 'toolforge-jobs-framework'), false);
  assert.equal(selectorRequires('', 'app.kubernetes.io/managed-by', 'toolforge-jobs-framework'), false);
});
