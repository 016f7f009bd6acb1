import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { STORAGE_CATEGORY, STORAGE_GROUP, STORAGE_KINDS, STORAGE_VERSION } from './kinds.js';

interface Crd {
  metadata: { name: string };
  spec: {
    group: string;
    scope: string;
    names: { kind: string; plural: string; singular: string; categories: string[] };
    versions: Array<{
      name: string;
      served: boolean;
      storage: boolean;
      additionalPrinterColumns: Array<{ name: string; jsonPath: string }>;
    }>;
  };
}

for (const kind of STORAGE_KINDS) {
  test(`deploy/crds/${kind.plural}.yaml keeps jobs-api's names for ${kind.kind}`, () => {
    const crd = parse(readFileSync(new URL(`../../deploy/crds/${kind.plural}.yaml`, import.meta.url), 'utf8')) as Crd;
    assert.equal(crd.metadata.name, `${kind.plural}.${STORAGE_GROUP}`);
    assert.equal(crd.spec.group, STORAGE_GROUP);
    assert.equal(crd.spec.scope, 'Namespaced');
    assert.deepEqual(crd.spec.names, {
      kind: kind.kind,
      plural: kind.plural,
      singular: kind.singular,
      categories: [STORAGE_CATEGORY],
    });
    assert.equal(crd.spec.versions.length, 1);
    const [v] = crd.spec.versions;
    assert.equal(v?.name, STORAGE_VERSION);
    assert.equal(v?.served && v.storage, true);
    const columns = v?.additionalPrinterColumns.map((c) => c.name) ?? [];
    assert.ok(columns.includes('Type') && columns.includes('Image') && columns.includes('Age'));
    assert.ok(columns.includes(kind.jobType === 'scheduled' ? 'Schedule' : 'Replicas'));
  });
}
