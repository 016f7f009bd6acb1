import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KubeApiError } from '../k8s/api.js';
import { toolPodPolicy } from '../../test/fixtures/kyverno/tool-pod-policy.js';
import { chooseToolUid, readPodPolicyUid, uidFromPodPolicy } from './tool-uid.js';

describe('uidFromPodPolicy: the uid a tool pod policy holds its pods to', () => {
  test('the policy maintain-kubeusers writes (mutate and validate rules, anchors, numbers and strings)', () => {
    assert.deepEqual(uidFromPodPolicy(toolPodPolicy('tool-alpha', 52001)), { ok: true, value: 52001 });
  });

  test('no uid field, or several different ids, is no answer', () => {
    assert.deepEqual(uidFromPodPolicy({ spec: { rules: [{ validate: { pattern: { spec: { hostPID: false } } } }] } }), {
      ok: false,
      problem: { path: '', message: 'it sets no runAsUser, runAsGroup or fsGroup' },
    });
    const two = {
      spec: { rules: [{ validate: { pattern: { spec: { securityContext: { runAsUser: 1, fsGroup: 2 } } } } }] },
    };
    assert.deepEqual(uidFromPodPolicy(two), {
      ok: false,
      problem: { path: '', message: 'it names several ids (1, 2)' },
    });
    // a negation anchor and non-numeric patterns name no uid
    const negated = {
      spec: {
        rules: [{ validate: { pattern: { spec: { securityContext: { 'X(runAsUser)': 0, runAsGroup: '>0' } } } } }],
      },
    };
    assert.equal(uidFromPodPolicy(negated).ok, false);
  });
});

describe('readPodPolicyUid', () => {
  const api = (answer: () => unknown) => ({ request: async <T>() => answer() as T });

  test('reads the policy by name in the tool namespace', async () => {
    const paths: string[] = [];
    const found = await readPodPolicyUid(
      { request: async <T>(_m: string, path: string) => (paths.push(path), toolPodPolicy('tool-alpha', 52001) as T) },
      'tool-alpha',
    );
    assert.deepEqual(paths, ['/apis/kyverno.io/v1/namespaces/tool-alpha/policies/toolforge-kyverno-pod-policy']);
    assert.deepEqual(found.candidate, {
      uid: 52001,
      source: 'the Kyverno Policy tool-alpha/toolforge-kyverno-pod-policy',
    });
  });

  test('absent (404: no policy, or no Kyverno) and unreadable are notes, not errors', async () => {
    const missing = await readPodPolicyUid(
      api(() => {
        throw new KubeApiError(404, 'not found', 'NotFound');
      }),
      'tool-alpha',
    );
    assert.deepEqual(missing, { note: 'no Kyverno Policy tool-alpha/toolforge-kyverno-pod-policy' });
    const denied = await readPodPolicyUid(
      api(() => {
        throw new KubeApiError(403, 'policies is forbidden', 'Forbidden');
      }),
      'tool-alpha',
    );
    assert.equal(denied.candidate, undefined);
    assert.match(denied.note, /could not be read: .*forbidden/);
  });
});

describe('chooseToolUid: precedence and disagreement', () => {
  test('the first candidate wins; agreeing sources are quiet, disagreeing ones are named', () => {
    assert.deepEqual(chooseToolUid([]), {});
    assert.deepEqual(
      chooseToolUid([
        { uid: 5, source: 'the policy' },
        { uid: 5, source: 'the workloads' },
      ]),
      { uid: 5, source: 'the policy' },
    );
    assert.deepEqual(
      chooseToolUid([
        { uid: 7, source: '--uid' },
        { uid: 5, source: 'the policy' },
      ]),
      { uid: 7, source: '--uid', disagreement: '--uid says 7, the policy says 5; using 7 from --uid' },
    );
  });
});
