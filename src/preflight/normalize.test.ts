import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadWorkload } from '../../test/fixtures/workloads/load.js';
import { canonicalQuantity, normalizeWorkload } from './normalize.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('canonicalQuantity', () => {
  const TABLE: [string, 'cpu' | 'memory', string][] = [
    ['0.1', 'cpu', '100m'],
    ['100m', 'cpu', '100m'],
    ['1000m', 'cpu', '1'],
    ['1.0', 'cpu', '1'],
    ['0.25', 'cpu', '250m'],
    ['2', 'cpu', '2'],
    ['0.5Gi', 'memory', '512Mi'],
    ['512Mi', 'memory', '512Mi'],
    ['536870912', 'memory', '512Mi'],
    ['1073741824.0', 'memory', '1Gi'],
    ['1.0Gi', 'memory', '1Gi'],
    ['1G', 'memory', '1000000000'],
    ['abc', 'memory', 'abc'],
  ];
  for (const [input, unit, expected] of TABLE) {
    test(`${unit} ${input} → ${expected}`, () => assert.equal(canonicalQuantity(input, unit), expected));
  }
});

describe('normalizeWorkload', () => {
  test('drops what the API server owns, keeps what jobs-api sent, fills defaults; the input is not modified', () => {
    const obj = loadWorkload('v2-service-port-tcp') as Obj;
    const before = JSON.stringify(obj);
    const n = normalizeWorkload(obj) as Obj;
    assert.equal(JSON.stringify(obj), before);
    assert.deepEqual(Object.keys(n['metadata']).sort(), ['labels', 'name', 'namespace']);
    assert.equal(n['status'], undefined);
    assert.equal(n['spec'].clusterIP, undefined);
    assert.equal(n['spec'].ipFamilies, undefined);
    assert.deepEqual(n['spec'].ports, [{ port: 8080, protocol: 'TCP', targetPort: 8080 }]);
  });

  test("a one-off Job loses the Job controller's selector and labels", () => {
    const n = normalizeWorkload(loadWorkload('v2-one-off')) as Obj;
    assert.equal(n['spec'].selector, undefined);
    assert.ok(!('batch.kubernetes.io/controller-uid' in (n['spec'].template.metadata.labels as object)));
  });

  test('defaults fill only what is missing: a rendered object gains them, a live value stays', () => {
    const n = normalizeWorkload({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'x' },
      spec: { strategy: { type: 'Recreate' }, template: { spec: { containers: [{ name: 'job', image: 'a:1' }] } } },
    }) as Obj;
    assert.deepEqual(n['spec'].strategy, { type: 'Recreate' });
    assert.equal(n['spec'].replicas, 1);
    assert.equal(n['spec'].template.spec.terminationGracePeriodSeconds, 30);
    assert.equal(n['spec'].template.spec.containers[0].imagePullPolicy, 'IfNotPresent');
    const rolling = normalizeWorkload({ kind: 'Deployment', metadata: { name: 'y' }, spec: { replicas: 3 } }) as Obj;
    assert.deepEqual(rolling['spec'].strategy, {
      type: 'RollingUpdate',
      rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' },
    });
  });

  test('not an object: an empty object, no crash', () => {
    assert.deepEqual(normalizeWorkload('nope'), {});
    assert.deepEqual(normalizeWorkload(null), {});
  });
});
