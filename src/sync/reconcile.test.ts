import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PHASES } from '../phase/behaviour.js';
import type { Phase } from '../phase/behaviour.js';
import type { ScheduledJob } from '../jobs/model.js';
import { diffJobs, jobFingerprint } from './fingerprint.js';
import { reconcileTool } from './reconcile.js';
import type { JobReport, RuntimeEntry, StorageEntry, ToolInventory } from './reconcile.js';

const NOW = Date.parse('2026-11-24T12:00:00Z');
const GRACE = 60;

const job: ScheduledJob = {
  job_name: 'daily',
  tool_name: 'alpha',
  job_type: 'scheduled',
  cmd: './daily.sh',
  image: { short_name: 'python3.11' },
  schedule: { text: '@daily', minute: '13', hour: '13', day: '*', month: '*', day_of_week: '*' },
};

function runtime(
  over: Partial<RuntimeEntry['workload']> = {},
  parsed: RuntimeEntry['parsed'] = { ok: true, value: jobFingerprint(job) },
): RuntimeEntry {
  return {
    tool: 'alpha',
    type: 'scheduled',
    name: 'daily',
    parsed,
    workload: {
      kind: 'CronJob',
      namespace: 'tool-alpha',
      name: 'daily',
      resourceVersion: '100',
      uid: 'uid-1',
      createdAt: NOW - 3600_000,
      deleting: false,
      ...over,
    },
  };
}

function stored(over: Partial<StorageEntry> = {}): StorageEntry {
  return {
    tool: 'alpha',
    type: 'scheduled',
    name: 'daily',
    resourceVersion: '7',
    deleting: false,
    decoded: { ok: true, value: jobFingerprint(job) },
    ...over,
  };
}

function tombstoned(crDeleted: NonNullable<RuntimeEntry['crDeleted']>): RuntimeEntry {
  return { ...runtime(), unmatchedSince: crDeleted.at, crDeleted };
}

const driftedJob: ScheduledJob = { ...job, cmd: './other.sh', schedule: { ...job.schedule, hour: '2' } };
const drifted: RuntimeEntry['parsed'] = { ok: true, value: jobFingerprint(driftedJob) };

type Case = { runtime: RuntimeEntry[]; storage: StorageEntry[]; foreign?: number };
const CASES: Record<string, Case> = {
  'k8s only': { runtime: [runtime()], storage: [] },
  'storage only': { runtime: [], storage: [stored()] },
  'both in sync': { runtime: [runtime()], storage: [stored()] },
  'both drifted': { runtime: [runtime({}, drifted)], storage: [stored()] },
  foreign: { runtime: [], storage: [], foreign: 2 },
  'workload being deleted': { runtime: [runtime({ deleting: true })], storage: [] },
  'CR being deleted': { runtime: [], storage: [stored({ deleting: true })] },
  'within grace': { runtime: [runtime({ createdAt: NOW - 10_000 })], storage: [] },
  // Tombstones: the sync saw the job's CR deleted (jobs-api deletes the CR, then the workloads).
  'CR just seen deleted': { runtime: [tombstoned({ at: NOW - 1000, workloadUid: 'uid-1' })], storage: [] },
  'CR seen deleted before the workload was seen': { runtime: [tombstoned({ at: NOW - 1000 })], storage: [] },
  'CR seen deleted long ago, workload left': {
    runtime: [tombstoned({ at: NOW - 3600_000, workloadUid: 'uid-1' })],
    storage: [],
  },
  'workload created again after its CR was seen deleted': {
    runtime: [tombstoned({ at: NOW - 1000, workloadUid: 'uid-0' })],
    storage: [],
  },
};

interface Expect {
  state?: JobReport['state'];
  action?: JobReport['action'];
  listed?: boolean;
  backfill: number;
  counts: [onlyInRuntime: number, onlyInStorage: number, outOfSync: number, foreign: number];
}

// The whole decision table: phase × situation. Rows that every phase shares are written once; each phase lists
// only where it differs, so the table reads as the design's phase table.
const SAME_IN_EVERY_PHASE = {
  'both in sync': { state: 'in-sync', action: 'none', listed: true, backfill: 0, counts: [0, 0, 0, 0] },
  'both drifted': { state: 'out-of-sync', action: 'none', listed: true, backfill: 0, counts: [0, 0, 1, 0] },
  foreign: { backfill: 0, counts: [0, 0, 0, 2] },
  'workload being deleted': {
    state: 'only-in-runtime',
    action: 'skip-deleting',
    listed: false,
    backfill: 0,
    counts: [0, 0, 0, 0],
  },
  'CR being deleted': {
    state: 'only-in-storage',
    action: 'skip-deleting',
    listed: false,
    backfill: 0,
    counts: [0, 0, 0, 0],
  },
} satisfies Partial<Record<keyof typeof CASES, Expect>>;

const TOMBSTONED_UNCOUNTED: Expect = {
  state: 'only-in-runtime',
  action: 'tombstoned',
  listed: true,
  backfill: 0,
  counts: [0, 0, 0, 0],
};
const IGNORED: Expect = {
  state: 'only-in-runtime',
  action: 'ignore',
  listed: false,
  backfill: 0,
  counts: [1, 0, 0, 0],
};

const BACKFILLING = {
  ...SAME_IN_EVERY_PHASE,
  'k8s only': { state: 'only-in-runtime', action: 'backfill', listed: true, backfill: 1, counts: [1, 0, 0, 0] },
  'within grace': { state: 'only-in-runtime', action: 'wait-grace', listed: true, backfill: 0, counts: [0, 0, 0, 0] },
  // Never backfilled; not counted while jobs-api's delete may still be in flight, reported after.
  'CR just seen deleted': TOMBSTONED_UNCOUNTED,
  'CR seen deleted before the workload was seen': TOMBSTONED_UNCOUNTED,
  'CR seen deleted long ago, workload left': {
    state: 'only-in-runtime',
    action: 'tombstoned',
    listed: true,
    backfill: 0,
    counts: [1, 0, 0, 0],
  },
  // A new uid: another workload than the one whose CR went away.
  'workload created again after its CR was seen deleted': {
    state: 'only-in-runtime',
    action: 'wait-grace',
    listed: true,
    backfill: 0,
    counts: [0, 0, 0, 0],
  },
} satisfies Partial<Record<keyof typeof CASES, Expect>>;

const IGNORING = {
  ...SAME_IN_EVERY_PHASE,
  'k8s only': { state: 'only-in-runtime', action: 'ignore', listed: false, backfill: 0, counts: [1, 0, 0, 0] },
  'within grace': { state: 'only-in-runtime', action: 'ignore', listed: false, backfill: 0, counts: [1, 0, 0, 0] },
  'storage only': { state: 'only-in-storage', action: 'report', listed: true, backfill: 0, counts: [0, 1, 0, 0] },
  // No backfills in these phases: a tombstone changes nothing.
  'CR just seen deleted': IGNORED,
  'CR seen deleted before the workload was seen': IGNORED,
  'CR seen deleted long ago, workload left': IGNORED,
  'workload created again after its CR was seen deleted': IGNORED,
} satisfies Record<keyof typeof CASES, Expect>;

const EXPECTED: Record<Phase, Record<keyof typeof CASES, Expect>> = {
  // Runtime is the truth: jobs-api lists what runs, so a CR without a workload is not listed.
  'runtime-truth': {
    ...BACKFILLING,
    'storage only': { state: 'only-in-storage', action: 'report', listed: false, backfill: 0, counts: [0, 1, 0, 0] },
  },
  'storage-truth': {
    ...BACKFILLING,
    'storage only': { state: 'only-in-storage', action: 'report', listed: true, backfill: 0, counts: [0, 1, 0, 0] },
  },
  'ignore-unmanaged': IGNORING,
  enforce: IGNORING,
};

describe('reconcile decision table', () => {
  for (const phase of PHASES) {
    for (const [name, c] of Object.entries(CASES)) {
      test(`${phase} × ${name}`, () => {
        const inv: ToolInventory = { tool: 'alpha', runtime: c.runtime, storage: c.storage, foreign: c.foreign ?? 0 };
        const plan = reconcileTool(inv, { phase, now: NOW, graceSeconds: GRACE });
        const want = EXPECTED[phase][name];
        assert.ok(want, `no expectation for ${phase} × ${name}`);
        const { onlyInRuntime, onlyInStorage, outOfSync, foreign } = plan.counts;
        assert.deepEqual([onlyInRuntime, onlyInStorage, outOfSync, foreign], want.counts, 'counts');
        assert.equal(plan.backfill.length, want.backfill, 'backfill');
        if (want.state) {
          assert.equal(plan.jobs.length, 1);
          const [report] = plan.jobs;
          assert.equal(report?.state, want.state);
          assert.equal(report?.action, want.action);
          assert.equal(report?.listedByApi, want.listed, 'listed by the API');
        } else {
          assert.equal(plan.jobs.length, 0);
        }
      });
    }
  }
});

describe('reconcile details', () => {
  test('a drifted job is out of sync; the fields that differ come from diffing both jobs', () => {
    const plan = reconcileTool(
      { tool: 'alpha', runtime: [runtime({}, drifted)], storage: [stored()], foreign: 0 },
      { phase: 'storage-truth', now: NOW, graceSeconds: GRACE },
    );
    assert.equal(plan.jobs[0]?.state, 'out-of-sync');
    assert.equal(plan.jobs[0]?.definitionDiffers, true);
    assert.deepEqual(diffJobs(job, driftedJob), [
      { field: 'cmd', storage: './daily.sh', runtime: './other.sh' },
      { field: 'schedule.hour', storage: '13', runtime: '2' },
    ]);
  });

  test('grace expiry is reported so the caller can re-check then', () => {
    const plan = reconcileTool(
      { tool: 'alpha', runtime: [runtime({ createdAt: NOW - 10_000 })], storage: [], foreign: 0 },
      { phase: 'runtime-truth', now: NOW, graceSeconds: GRACE },
    );
    assert.equal(plan.nextDueAt, NOW - 10_000 + GRACE * 1000);
  });

  test('an old workload that just lost its CR waits a full grace period (jobs-api deletes the CR first)', () => {
    const r = { ...runtime(), unmatchedSince: NOW - 1000 };
    const plan = reconcileTool(
      { tool: 'alpha', runtime: [r], storage: [], foreign: 0 },
      { phase: 'runtime-truth', now: NOW, graceSeconds: GRACE },
    );
    assert.equal(plan.jobs[0]?.action, 'wait-grace');
    assert.equal(plan.backfill.length, 0);
    assert.equal(plan.nextDueAt, NOW - 1000 + GRACE * 1000);
  });

  test('an unparsable workload is reported with its reason and never backfilled', () => {
    const plan = reconcileTool(
      {
        tool: 'alpha',
        runtime: [runtime({}, { ok: false, problem: { path: 'spec.schedule', message: 'missing' } })],
        storage: [],
        foreign: 0,
      },
      { phase: 'runtime-truth', now: NOW, graceSeconds: GRACE },
    );
    assert.equal(plan.backfill.length, 0);
    assert.equal(plan.jobs[0]?.state, 'unreadable');
    assert.equal(plan.jobs[0]?.reason, 'spec.schedule: missing');
    assert.deepEqual(plan.counts, { onlyInRuntime: 1, onlyInStorage: 0, outOfSync: 0, foreign: 0 });
  });

  test('a scheduled and a continuous job of the same name are different jobs', () => {
    const cont = {
      ...runtime(),
      type: 'continuous' as const,
      workload: { ...runtime().workload, kind: 'Deployment' as const },
    };
    const plan = reconcileTool(
      { tool: 'alpha', runtime: [cont], storage: [stored()], foreign: 0 },
      { phase: 'storage-truth', now: NOW, graceSeconds: GRACE },
    );
    assert.deepEqual(plan.counts, { onlyInRuntime: 1, onlyInStorage: 1, outOfSync: 0, foreign: 0 });
  });

  test('records whether the workload changed since the resourceVersion noted on the CR', () => {
    const plan = reconcileTool(
      {
        tool: 'alpha',
        runtime: [runtime({ resourceVersion: '200' })],
        storage: [stored({ recordedSourceVersions: { 'CronJob/daily': '100' } })],
        foreign: 0,
      },
      { phase: 'storage-truth', now: NOW, graceSeconds: GRACE },
    );
    assert.equal(plan.jobs[0]?.changedSinceRecorded, true);
    assert.equal(plan.jobs[0]?.state, 'in-sync');
  });

  test('images compare by the name the user chose, not by registry details', () => {
    const resolvedImage = {
      ...job,
      image: {
        short_name: 'python3.11',
        host: 'docker-registry.tools.wmflabs.org',
        path: 'toolforge-python311-sssd-base',
        state: 'stable',
        aliases: ['tf-python311'],
      },
    };
    assert.deepEqual(diffJobs(job, resolvedImage), []);
    assert.deepEqual(diffJobs(job, { ...job, image: { short_name: 'node18' } }), [
      { field: 'image.short_name', storage: 'python3.11', runtime: 'node18' },
    ]);
  });

  test('fingerprints are equal exactly when the jobs are: key order, unset fields and registry details aside', () => {
    const reordered: ScheduledJob = {
      schedule: { day_of_week: '*', month: '*', day: '*', hour: '13', minute: '13', text: '@daily' },
      image: { short_name: 'python3.11', host: 'docker-registry.tools.wmflabs.org', aliases: ['tf-python311'] },
      cmd: './daily.sh',
      job_type: 'scheduled',
      tool_name: 'alpha',
      job_name: 'daily',
      timeout: undefined,
    };
    assert.equal(jobFingerprint(reordered), jobFingerprint(job));
    assert.notEqual(jobFingerprint({ ...job, retry: 1 }), jobFingerprint(job));
    assert.equal(jobFingerprint({ ...job, cpu: null } as unknown as ScheduledJob), jobFingerprint(job));
    assert.notEqual(jobFingerprint({ ...job, filelog: false }), jobFingerprint(job));
    assert.notEqual(jobFingerprint({ ...job, future_field: 'x' } as ScheduledJob), jobFingerprint(job));
    assert.notEqual(
      jobFingerprint({ ...job, cmd: '1' }),
      jobFingerprint({ ...job, cmd: 1 } as unknown as ScheduledJob),
    );
    assert.notEqual(
      jobFingerprint({ ...job, image: { short_name: 'python3.11', digest: 'sha256:1' } }),
      jobFingerprint(job),
    );
  });

  test('a continuous job with a port but no Service is out of sync', () => {
    const cont = {
      job_name: 'web',
      tool_name: 'alpha',
      job_type: 'continuous',
      cmd: './serve',
      image: { short_name: 'node18' },
      port: 8000,
    } as const;
    const fingerprint = jobFingerprint(cont);
    const plan = reconcileTool(
      {
        tool: 'alpha',
        runtime: [
          {
            ...runtime({ kind: 'Deployment', name: 'web' }, { ok: true, value: fingerprint }),
            type: 'continuous',
            name: 'web',
            exposesPort: true,
            hasService: false,
          },
        ],
        storage: [stored({ type: 'continuous', name: 'web', decoded: { ok: true, value: fingerprint } })],
        foreign: 0,
      },
      { phase: 'storage-truth', now: NOW, graceSeconds: GRACE },
    );
    assert.equal(plan.jobs[0]?.state, 'out-of-sync');
    assert.deepEqual(plan.jobs[0]?.diff, [{ field: 'service', storage: 'present', runtime: 'missing' }]);
  });
});
