import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadWorkload } from '../../test/fixtures/workloads/load.js';
import { DEFAULT_RUNTIME_SETTINGS } from '../runtime/settings.js';
import { createStorageCodec } from '../storage/codec.js';
import { Inventory } from './inventory.js';
import { readWorkloadEntry } from './entries.js';
import type { InventoryEntry } from './entries.js';
import type { RuntimeEntry, StorageEntry } from './reconcile.js';

const workload = (name: string, kind: 'CronJob' | 'Deployment'): RuntimeEntry => ({
  tool: 'alpha',
  type: kind === 'CronJob' ? 'scheduled' : 'continuous',
  name,
  workload: {
    kind,
    namespace: 'tool-alpha',
    name,
    resourceVersion: '1',
    uid: `uid-${name}`,
    createdAt: 0,
    deleting: false,
  },
  parsed: { ok: true, value: `fp-${name}` },
});

const cr = (name: string, type: 'scheduled' | 'continuous'): StorageEntry => ({
  tool: 'alpha',
  type,
  name,
  resourceVersion: '2',
  deleting: false,
  decoded: { ok: true, value: `fp-${name}` },
});

const job = (entry: RuntimeEntry): InventoryEntry => ({ what: 'job', entry });
const foreign = (name: string, kind: 'CronJob' | 'Deployment'): InventoryEntry => ({
  what: 'foreign',
  workload: workload(name, kind).workload,
});

describe('Inventory', () => {
  test('indexes each tool’s workloads, CRs, foreign workloads and Services', () => {
    const inv = new Inventory('tool-');
    inv.apply('cronjobs', 'tool-alpha', 'daily', job(workload('daily', 'CronJob')));
    inv.apply('deployments', 'tool-alpha', 'web', job({ ...workload('web', 'Deployment'), exposesPort: true }));
    inv.apply('deployments', 'tool-alpha', 'hand-made', foreign('hand-made', 'Deployment'));
    inv.apply('scheduled-jobs', 'tool-alpha', 'daily', { what: 'cr', entry: cr('daily', 'scheduled') });
    inv.apply('cronjobs', 'kube-system', 'other', job(workload('other', 'CronJob')));
    assert.deepEqual(inv.toolNames(), ['alpha']);
    const alpha = inv.inventoryOf('alpha');
    assert.deepEqual(alpha.runtime.map((r) => [r.name, r.hasService]).sort(), [
      ['daily', undefined],
      ['web', false],
    ]);
    assert.deepEqual(
      alpha.storage.map((s) => s.name),
      ['daily'],
    );
    assert.equal(alpha.foreign, 1);
    assert.deepEqual(
      alpha.foreignWorkloads?.map((w) => [w.kind, w.name, w.uid]),
      [['Deployment', 'hand-made', 'uid-hand-made']],
    );

    inv.apply('services', 'tool-alpha', 'web', { what: 'service' });
    assert.equal(inv.inventoryOf('alpha').runtime.find((r) => r.name === 'web')?.hasService, true);
  });

  test('a job that turns foreign is no longer a job, and a tool with nothing left is gone', () => {
    const inv = new Inventory('tool-');
    inv.apply('cronjobs', 'tool-alpha', 'daily', job(workload('daily', 'CronJob')));
    inv.apply('cronjobs', 'tool-alpha', 'daily', foreign('daily', 'CronJob'));
    assert.deepEqual(inv.inventoryOf('alpha').runtime, []);
    assert.equal(inv.inventoryOf('alpha').foreign, 1);
    inv.takeDirty();
    inv.apply('cronjobs', 'tool-alpha', 'daily', undefined);
    assert.deepEqual(inv.toolNames(), []);
    assert.deepEqual(inv.takeDirty(), ['alpha'], 'the emptied tool is reconciled once more, to clear its gauges');
  });

  test('entries share one namespace and tool string per tool', () => {
    const inv = new Inventory('tool-');
    assert.equal(inv.namesOf('tool-alpha'), inv.namesOf('tool-alpha'));
    assert.deepEqual(inv.namesOf('tool-alpha'), { namespace: 'tool-alpha', tool: 'alpha' });
    assert.equal(inv.namesOf('default'), undefined);
  });

  test('a CR leaving the inventory is heard with the job’s workload as held then', () => {
    const gone: Array<[string, string | undefined]> = [];
    const inv = new Inventory('tool-', (j, w) => gone.push([`${j.tool}/${j.type}/${j.name}`, w?.workload.uid]));
    inv.apply('cronjobs', 'tool-alpha', 'daily', job(workload('daily', 'CronJob')));
    inv.apply('scheduled-jobs', 'tool-alpha', 'daily', { what: 'cr', entry: cr('daily', 'scheduled') });
    inv.apply('continuous-jobs', 'tool-alpha', 'web', { what: 'cr', entry: cr('web', 'continuous') });
    assert.equal(inv.hasCr({ tool: 'alpha', type: 'scheduled', name: 'daily' }), true);
    inv.apply('scheduled-jobs', 'tool-alpha', 'daily', { what: 'cr', entry: cr('daily', 'scheduled') });
    assert.deepEqual(gone, [], 'an update is no delete');
    inv.apply('scheduled-jobs', 'tool-alpha', 'daily', undefined);
    inv.apply('continuous-jobs', 'tool-alpha', 'web', undefined);
    inv.apply('continuous-jobs', 'tool-alpha', 'never-held', undefined);
    assert.deepEqual(gone, [
      ['alpha/scheduled/daily', 'uid-daily'],
      ['alpha/continuous/web', undefined],
    ]);
    assert.equal(inv.hasCr({ tool: 'alpha', type: 'scheduled', name: 'daily' }), false);
  });

  test('keeps the job read from a workload without a CR while the gate lets it, until its CR is seen', () => {
    let keep = false;
    const inv = new Inventory('tool-', undefined, { mayKeep: () => keep });
    const ctx = {
      namesOf: (namespace: string) => inv.namesOf(namespace),
      settings: DEFAULT_RUNTIME_SETTINGS,
      codec: createStorageCodec(),
      keep: () => 'fp',
    };
    const object = loadWorkload('v2-scheduled-relative-logs') as { metadata: { namespace: string; name: string } };
    const { namespace, name } = object.metadata;
    // Reading is pure: the same object gives the same entry and job, and nothing is kept by reading.
    const read = readWorkloadEntry(object, ctx);
    assert.deepEqual(readWorkloadEntry(object, ctx), read);
    assert.ok(read?.entry.what === 'job' && read.job);
    const ref = read.entry.entry;
    assert.equal(inv.candidates.heldJob(ref), undefined);
    inv.apply('cronjobs', namespace, name, read.entry, read.job);
    assert.equal(inv.candidates.heldJob(ref), undefined, 'the gate does not let the sync keep it');
    keep = true;
    inv.apply('cronjobs', namespace, name, read.entry, read.job);
    assert.equal(inv.candidates.heldJob(ref)?.resourceVersion, ref.workload.resourceVersion);
    assert.equal(inv.candidates.heldJob(ref)?.json, JSON.stringify(read.job));
    inv.candidates.wrote(ref);
    assert.equal(inv.candidates.written(ref), true);
    const crOf = { what: 'cr', entry: { ...cr(ref.name, 'scheduled'), tool: ref.tool } } as const;
    inv.apply('scheduled-jobs', namespace, name, crOf);
    assert.equal(inv.candidates.heldJob(ref), undefined, 'its CR seen');
    assert.equal(inv.candidates.written(ref), false, 'the CR written is now in the watch');
    inv.apply('cronjobs', namespace, name, read.entry, read.job);
    assert.equal(inv.candidates.heldJob(ref), undefined, 'a workload with a CR is no candidate');
  });
});
