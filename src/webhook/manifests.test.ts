import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { configSchema } from '../config/schema.js';
import { renderManifestFiles, storagePolicy, validatingWebhookConfiguration } from './manifests.js';

const DIR = join(import.meta.dirname, '..', '..', 'webhook-config');
const defaults = configSchema.parse({});

function committed(name: string): unknown[] {
  return parseAllDocuments(readFileSync(join(DIR, name), 'utf8')).map((d) => d.toJS() as unknown);
}

interface Webhook {
  name: string;
  failurePolicy: string;
  sideEffects: string;
  timeoutSeconds: number;
  namespaceSelector?: unknown;
  matchConditions: { name: string; expression: string }[];
  rules: { apiGroups: string[]; resources: string[]; operations: string[] }[];
}

test('webhook-config/ is what the generator makes from the config defaults (run jobs-storage manifests)', () => {
  for (const [name, text] of Object.entries(renderManifestFiles(defaults))) {
    assert.equal(readFileSync(join(DIR, name), 'utf8'), text, `${name} is stale`);
  }
});

test('the committed lists are the configured storage writers and break-glass groups', () => {
  const [vwc] = committed('validating-webhook-configuration.yaml') as [{ webhooks: Webhook[] }];
  const protect = vwc.webhooks.find((w) => w.name.startsWith('protect-storage'));
  assert.ok(protect);
  const writerCondition = protect.matchConditions.find((c) => c.name === 'not-a-storage-writer')?.expression ?? '';
  assert.equal(
    writerCondition,
    `!(request.userInfo.username in ${JSON.stringify(defaults.identities.storageWriters).replaceAll('","', '", "')})`,
  );

  const [policy] = committed('storage-policy.yaml') as [
    { spec: { variables: { name: string; expression: string }[] } },
  ];
  const variable = (name: string) =>
    JSON.parse(policy.spec.variables.find((v) => v.name === name)?.expression ?? 'null') as unknown;
  assert.deepEqual(variable('writers'), defaults.identities.storageWriters);
  assert.deepEqual(variable('breakGlassGroups'), defaults.identities.breakGlassGroups);
});

test('both webhooks fail open (the ValidatingAdmissionPolicy is the fail-closed guard); protect-storage sees every write of the group, record-direct-writes tool namespaces and kubectl scale', () => {
  const vwc = validatingWebhookConfiguration({
    identities: defaults.identities,
    target: { url: 'https://127.0.0.1:1' },
  }) as unknown as { webhooks: Webhook[] };
  const [protect, record] = vwc.webhooks;
  assert.ok(protect && record);
  assert.deepEqual([protect.failurePolicy, protect.sideEffects, protect.timeoutSeconds], ['Ignore', 'None', 3]);
  assert.deepEqual(protect.rules[0]?.resources, ['*/*']);
  assert.deepEqual(protect.rules[0]?.operations, ['CREATE', 'UPDATE', 'DELETE']);
  assert.deepEqual([record.failurePolicy, record.sideEffects], ['Ignore', 'NoneOnDryRun']);
  assert.ok(record.timeoutSeconds <= 3);
  assert.deepEqual(record.namespaceSelector, { matchLabels: { tenancy: 'tool' } });
  assert.deepEqual(
    record.rules.map((r) => r.resources),
    [
      ['jobs', 'cronjobs'],
      ['deployments', 'deployments/scale'],
    ],
  );
  assert.match(record.matchConditions.map((c) => c.expression).join('\n'), /system:serviceaccount:kube-system:/);
});

test('a URL target gets the admission paths and the CA bundle', () => {
  const vwc = validatingWebhookConfiguration({
    identities: defaults.identities,
    target: { url: 'https://127.0.0.1:9443' },
    caBundle: 'Q0E=',
  }) as unknown as { webhooks: { clientConfig: unknown }[] };
  assert.deepEqual(
    vwc.webhooks.map((w) => w.clientConfig),
    [
      { url: 'https://127.0.0.1:9443/validate/protect-storage', caBundle: 'Q0E=' },
      { url: 'https://127.0.0.1:9443/validate/record-direct-writes', caBundle: 'Q0E=' },
    ],
  );
});

test('the policy follows a configured writer list', () => {
  const [policy] = storagePolicy({ ...defaults.identities, storageWriters: ['system:serviceaccount:x:y'] }) as [
    { spec: { variables: { name: string; expression: string }[] } },
  ];
  assert.equal(policy.spec.variables[0]?.expression, '["system:serviceaccount:x:y"]');
});
