import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError } from '../errors.js';
import { loadReview, reviewNames } from '../../test/fixtures/admission/load.js';
import { buildAdmissionResponse, parseAdmissionReview } from './review.js';

test('every captured fixture parses', () => {
  for (const name of reviewNames()) {
    const request = parseAdmissionReview(loadReview(name));
    assert.ok(request.uid, name);
    assert.ok(['CREATE', 'UPDATE', 'DELETE'].includes(request.operation), name);
  }
});

const broken: Array<[string, (body: Record<string, unknown>) => unknown]> = [
  ['not an object', () => 'text'],
  ['an array', () => []],
  ['another apiVersion', (b) => ({ ...b, apiVersion: 'admission.k8s.io/v1beta1' })],
  ['another kind', (b) => ({ ...b, kind: 'Review' })],
  ['no request', (b) => ({ ...b, request: undefined })],
  ['an empty uid', (b) => ({ ...b, request: { ...(b['request'] as object), uid: '' } })],
  ['an unknown operation', (b) => ({ ...b, request: { ...(b['request'] as object), operation: 'PATCH' } })],
  ['no userInfo', (b) => ({ ...b, request: { ...(b['request'] as object), userInfo: undefined } })],
  [
    'groups that are not strings',
    (b) => ({ ...b, request: { ...(b['request'] as object), userInfo: { username: 'x', groups: [1] } } }),
  ],
  [
    'a resource without version',
    (b) => ({ ...b, request: { ...(b['request'] as object), resource: { group: 'batch', resource: 'cronjobs' } } }),
  ],
  ['an object that is a string', (b) => ({ ...b, request: { ...(b['request'] as object), object: 'x' } })],
  ...(
    [
      ['metadata that is a string', { metadata: 'x' }],
      ['managedFields that is not a list', { metadata: { managedFields: { manager: 'kubectl' } } }],
      ['a managedFields entry that is null', { metadata: { managedFields: [null] } }],
      ['a manager that is a number', { metadata: { managedFields: [{ manager: 1 }] } }],
      ['ownerReferences that is an object', { metadata: { ownerReferences: { kind: 'CronJob' } } }],
      ['an ownerReference whose controller is a string', { metadata: { ownerReferences: [{ controller: 'yes' }] } }],
      ['a label value that is a number', { metadata: { labels: { 'app.kubernetes.io/managed-by': 2 } } }],
      ['a name that is an object', { metadata: { name: {} } }],
      ['a Scale selector that is a list', { status: { selector: [] } }],
    ] as const
  ).map(
    ([what, object]) =>
      [
        `an object with ${what}`,
        (b: Record<string, unknown>) => ({ ...b, request: { ...(b['request'] as object), object } }),
      ] as [string, (body: Record<string, unknown>) => unknown],
  ),
  [
    'an oldObject with managedFields null entries',
    (b) => ({ ...b, request: { ...(b['request'] as object), oldObject: { metadata: { managedFields: [null] } } } }),
  ],
  [
    'a fieldManager that is a number',
    (b) => ({ ...b, request: { ...(b['request'] as object), options: { fieldManager: 3 } } }),
  ],
  ['dryRun that is a string', (b) => ({ ...b, request: { ...(b['request'] as object), dryRun: 'true' } })],
];

for (const [what, mangle] of broken) {
  test(`a review with ${what} is an ERR_ADMISSION_DECODE input error`, () => {
    const body = loadReview('cronjob-create-kubectl') as unknown as Record<string, unknown>;
    assert.throws(
      () => parseAdmissionReview(mangle(body)),
      (err: unknown) =>
        err instanceof InputError && err.code === 'ERR_ADMISSION_DECODE' && err.message.startsWith('AdmissionReview: '),
    );
  });
}

test('an allowed response echoes the uid and omits empty warnings and status', () => {
  assert.deepEqual(buildAdmissionResponse('u-1', { allowed: true, warnings: [] }), {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: 'u-1', allowed: true },
  });
  assert.deepEqual(buildAdmissionResponse('u-2', { allowed: true, warnings: ['careful'] }).response, {
    uid: 'u-2',
    allowed: true,
    warnings: ['careful'],
  });
});

test('a denial carries a Status with code, reason and message', () => {
  const denial = { code: 403, reason: 'Forbidden', message: 'no' };
  assert.deepEqual(buildAdmissionResponse('u-3', { allowed: false, warnings: [], denial }).response, {
    uid: 'u-3',
    allowed: false,
    status: denial,
  });
});
