import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { loadWorkload } from '../../test/fixtures/workloads/load.js';
import { toolOfNamespace } from '../jobs/tenancy.js';
import type { StoredJob } from '../jobs/model.js';
import { DEFAULT_RUNTIME_SETTINGS } from '../runtime/settings.js';
import { createStorageCodec } from '../storage/codec.js';
import { Candidates } from './candidates.js';
import { readWorkloadEntry } from './entries.js';
import type { EntryContext } from './entries.js';
import type { RuntimeEntry } from './reconcile.js';

const ctx: EntryContext<StoredJob> = {
  namesOf: (namespace) => {
    const tool = toolOfNamespace(namespace, 'tool-');
    return tool === undefined ? undefined : { namespace, tool };
  },
  settings: DEFAULT_RUNTIME_SETTINGS,
  codec: createStorageCodec(),
  keep: (job) => job,
};

/** Every workload fixture that reads into a stored job, with its entry. */
function storedJobs(): Array<{ name: string; entry: RuntimeEntry<unknown>; job: StoredJob }> {
  return readdirSync(fileURLToPath(new URL('../../test/fixtures/workloads/', import.meta.url)))
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => {
      const name = f.slice(0, -'.yaml'.length);
      const read = readWorkloadEntry(loadWorkload(name), ctx);
      return read?.entry.what === 'job' && read.job ? [{ name, entry: read.entry.entry, job: read.job }] : [];
    });
}

describe('Candidates', () => {
  test('a held job gives back its JSON text exactly, for every workload fixture', () => {
    const jobs = storedJobs();
    assert.ok(jobs.length >= 5, 'several fixtures read into stored jobs');
    const candidates = new Candidates();
    for (const { name, entry, job } of jobs) {
      candidates.hold(entry, job);
      const held = candidates.heldJob(entry);
      assert.ok(held, name);
      assert.equal(held.json, JSON.stringify(job), name);
      assert.deepEqual(
        { ...held, json: undefined },
        {
          json: undefined,
          job_type: job.job_type,
          job_name: job.job_name,
          tool_name: job.tool_name,
          resourceVersion: entry.workload.resourceVersion,
        },
        name,
      );
    }
  });

  test('jobs without an image, with fields after it left undefined, or with the image last keep their text', () => {
    const [first] = storedJobs();
    assert.ok(first);
    const candidates = new Candidates();
    const { image, ...noImage } = first.job;
    const variants: unknown[] = [
      noImage,
      { ...noImage, image },
      { ...first.job, cmd: undefined, port: undefined },
      { image, job_name: first.job.job_name },
    ];
    for (const variant of variants) {
      candidates.hold(first.entry, variant as StoredJob);
      assert.equal(candidates.heldJob(first.entry)?.json, JSON.stringify(variant));
    }
  });

  test('a held job is forgotten once released or once its CR is seen; a newer read replaces it', () => {
    const [a, b] = storedJobs();
    assert.ok(a && b);
    const candidates = new Candidates();
    candidates.hold(a.entry, a.job);
    candidates.hold(b.entry, b.job);
    candidates.release(a.entry);
    assert.equal(candidates.heldJob(a.entry), undefined);
    candidates.crSeen(b.entry);
    assert.equal(candidates.heldJob(b.entry), undefined);
    const newer = { ...a.entry, workload: { ...a.entry.workload, resourceVersion: '999999' } };
    candidates.hold(a.entry, a.job);
    candidates.hold(newer, { ...a.job, cmd: 'changed' });
    assert.equal(candidates.heldJob(a.entry)?.resourceVersion, '999999');
    assert.equal(candidates.heldJob(a.entry)?.json, JSON.stringify({ ...a.job, cmd: 'changed' }));
  });
});
