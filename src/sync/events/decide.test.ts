import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Phase } from '../../rollout/phases.js';
import type { RuntimeEntry, StorageEntry, ToolInventory, WorkloadRef } from '../reconcile.js';
import {
  decideEvents,
  eventNote,
  eventObject,
  eventSubjects,
  MAX_NOTE_BYTES,
  microTime,
  REPORTING_CONTROLLER,
  seriesName,
} from './decide.js';
import type { DecideOptions, EventSubject, SeriesState } from './decide.js';

const NOW = Date.parse('2026-11-26T12:00:00Z');
const GRACE = 60;
const MIN = 60_000;

const ref = (kind: WorkloadRef['kind'], name: string, o: Partial<WorkloadRef> = {}): WorkloadRef => ({
  kind,
  namespace: 'tool-alpha',
  name,
  resourceVersion: '1',
  uid: `uid-${name}`,
  createdAt: NOW - 60 * MIN,
  deleting: false,
  ...o,
});

const runtime = (name: string, o: Partial<WorkloadRef> = {}, unmatchedSince?: number): RuntimeEntry => ({
  tool: 'alpha',
  type: 'scheduled',
  name,
  workload: ref('CronJob', name, o),
  parsed: { ok: true, value: `fp-${name}` },
  ...(unmatchedSince === undefined ? {} : { unmatchedSince }),
});

const cr = (name: string): StorageEntry => ({
  tool: 'alpha',
  type: 'scheduled',
  name,
  resourceVersion: '2',
  deleting: false,
  decoded: { ok: true, value: `fp-${name}` },
});

const inventory = (o: Partial<ToolInventory>): ToolInventory => ({
  tool: 'alpha',
  runtime: [],
  storage: [],
  foreign: o.foreignWorkloads?.length ?? 0,
  ...o,
});

describe('eventSubjects: which workloads deserve an Event', () => {
  interface Case {
    name: string;
    phase: Phase;
    inv: ToolInventory;
    subjects: Array<[string, string]>;
    nextDueAt?: number;
  }
  const oldNoCr = runtime('old', {}, NOW - 10 * MIN);
  const cases: Case[] = [
    {
      name: 'runtime-truth: a jobs-framework job without a CR is backfilled, not evented; a hand-written one is',
      phase: 'runtime-truth',
      inv: inventory({ runtime: [oldNoCr], foreignWorkloads: [ref('Deployment', 'bot')] }),
      subjects: [['WrittenOutsideJobsApi', 'bot']],
    },
    {
      name: 'storage-truth: the same',
      phase: 'storage-truth',
      inv: inventory({ runtime: [oldNoCr], foreignWorkloads: [ref('CronJob', 'hand')] }),
      subjects: [['WrittenOutsideJobsApi', 'hand']],
    },
    {
      name: 'ignore-unmanaged: a jobs-framework job without a CR, past the grace period',
      phase: 'ignore-unmanaged',
      inv: inventory({ runtime: [oldNoCr, runtime('with-cr')], storage: [cr('with-cr')] }),
      subjects: [['JobNotManaged', 'old']],
    },
    {
      name: 'enforce: the same, and hand-written workloads too',
      phase: 'enforce',
      inv: inventory({ runtime: [oldNoCr], foreignWorkloads: [ref('CronJob', 'hand')] }),
      subjects: [
        ['JobNotManaged', 'old'],
        ['WrittenOutsideJobsApi', 'hand'],
      ],
    },
    {
      name: 'a job created within the grace period waits for it (jobs-api may be writing its CR)',
      phase: 'ignore-unmanaged',
      inv: inventory({ runtime: [runtime('young', { createdAt: NOW - 10_000 }, NOW - 10_000)] }),
      subjects: [],
      nextDueAt: NOW - 10_000 + GRACE * 1000,
    },
    {
      name: 'an old job that just lost its CR waits from when it was first seen without one (a delete in flight)',
      phase: 'enforce',
      inv: inventory({ runtime: [runtime('losing', {}, NOW - 5_000)] }),
      subjects: [],
      nextDueAt: NOW - 5_000 + GRACE * 1000,
    },
    {
      name: 'a job not yet marked unmatched (an on-demand plan) waits a whole grace period from now',
      phase: 'enforce',
      inv: inventory({ runtime: [runtime('unmarked')] }),
      subjects: [],
      nextDueAt: NOW + GRACE * 1000,
    },
    {
      name: 'workloads being deleted get none',
      phase: 'enforce',
      inv: inventory({
        runtime: [runtime('going', { deleting: true }, NOW - 10 * MIN)],
        foreignWorkloads: [ref('Deployment', 'hand-going', { deleting: true })],
      }),
      subjects: [],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const got = eventSubjects(c.inv, { phase: c.phase, now: NOW, graceSeconds: GRACE });
      assert.deepEqual(
        got.subjects.map((s) => [s.reason, s.workload.name]),
        c.subjects,
      );
      assert.equal(got.nextDueAt, c.nextDueAt);
    });
  }
});

const subject = (name: string, reason: EventSubject['reason'] = 'WrittenOutsideJobsApi'): EventSubject => ({
  tool: 'alpha',
  reason,
  workload: ref('CronJob', name),
});

const OPTIONS: DecideOptions = {
  phase: 'ignore-unmanaged',
  now: NOW,
  repeatSeconds: 1800,
  retrySeconds: 60,
  texts: { deadline: '2026-12-15', migrationUrl: 'https://wikitech.wikimedia.org/wiki/Help:Toolforge/Jobs_framework' },
  reporting: { controller: REPORTING_CONTROLLER, instance: 'jobs-storage-sync-0' },
};

describe('decideEvents: what is written now, given what was written', () => {
  const s = subject('hand');
  const key = seriesName(s, OPTIONS.phase);
  interface Case {
    name: string;
    state?: SeriesState;
    write: 'create' | 'repeat' | 'none';
    count?: number;
    nextDueAt: number;
  }
  const cases: Case[] = [
    {
      name: 'never written: the series is created, looked at again when a failure would be retried',
      write: 'create',
      nextDueAt: NOW + MIN,
    },
    {
      name: 'written less than repeatSeconds ago: nothing, due at the repeat',
      state: { count: 1, at: NOW - 10 * MIN, pending: false, failed: false },
      write: 'none',
      nextDueAt: NOW + 20 * MIN,
    },
    {
      name: 'written repeatSeconds ago: observed again, count 2 (the first repeat of a series)',
      state: { count: 1, at: NOW - 30 * MIN, pending: false, failed: false },
      write: 'repeat',
      count: 2,
      nextDueAt: NOW + MIN,
    },
    {
      name: 'a series observed 4 times: the next is 5',
      state: { count: 4, at: NOW - 31 * MIN, pending: false, failed: false },
      write: 'repeat',
      count: 5,
      nextDueAt: NOW + MIN,
    },
    {
      name: 'a write in flight: nothing, looked at again when its failure would be retried',
      state: { count: 0, at: NOW - 1000, pending: true, failed: false },
      write: 'none',
      nextDueAt: NOW + MIN,
    },
    {
      name: 'a create that failed 10 s ago: nothing until retrySeconds',
      state: { count: 0, at: NOW - 10_000, pending: false, failed: true },
      write: 'none',
      nextDueAt: NOW + 50_000,
    },
    {
      name: 'a create that failed a minute ago: created again',
      state: { count: 0, at: NOW - MIN, pending: false, failed: true },
      write: 'create',
      nextDueAt: NOW + MIN,
    },
    {
      name: 'a repeat that failed a minute ago: repeated again with the next count',
      state: { count: 3, at: NOW - MIN, pending: false, failed: true },
      write: 'repeat',
      count: 4,
      nextDueAt: NOW + MIN,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const series = new Map<string, SeriesState>(c.state ? [[key, c.state]] : []);
      const { writes, live, nextDueAt } = decideEvents([s], series, OPTIONS);
      assert.deepEqual([...live], [key]);
      assert.equal(nextDueAt, c.nextDueAt);
      if (c.write === 'none') return assert.deepEqual(writes, []);
      assert.equal(writes.length, 1);
      const [w] = writes;
      assert.equal(w?.op, c.write);
      assert.equal(w?.key, key);
      assert.equal(w?.event.metadata.name, key);
      if (w?.op === 'repeat') {
        assert.equal(w.count, c.count);
        assert.equal(w.observedAt, '2026-11-26T12:00:00.000000Z');
      }
    });
  }

  test('series of objects no longer subjects are not live (the emitter forgets them)', () => {
    const gone = seriesName(subject('gone'), OPTIONS.phase);
    const series = new Map<string, SeriesState>([[gone, { count: 1, at: NOW, pending: false, failed: false }]]);
    const { writes, live } = decideEvents([s], series, OPTIONS);
    assert.deepEqual([...live], [key]);
    assert.deepEqual(
      writes.map((w) => w.key),
      [key],
    );
  });
});

describe('series names', () => {
  test('one per object, reason and phase; deterministic', () => {
    const s = subject('hand');
    const name = seriesName(s, 'enforce');
    assert.match(name, /^hand\.[0-9a-f]{16}$/);
    assert.equal(seriesName(subject('hand'), 'enforce'), name, 'the same inputs give the same name');
    assert.notEqual(seriesName(s, 'ignore-unmanaged'), name, 'a phase switch starts a new series');
    assert.notEqual(seriesName(subject('hand', 'JobNotManaged'), 'enforce'), name, 'another reason, another series');
    const recreated = { ...s, workload: { ...s.workload, uid: 'another-uid' } };
    assert.notEqual(seriesName(recreated, 'enforce'), name, 'an object created again (new uid), another series');
  });

  test('a 253-character object name still gives a valid name', () => {
    const long = `${'a'.repeat(240)}.${'b'.repeat(12)}`;
    const name = seriesName({ ...subject('x'), workload: { ...subject('x').workload, name: long } }, 'enforce');
    assert.ok(name.length <= 253, String(name.length));
    assert.match(name, /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
  });
});

describe('the Event', () => {
  test('names the workload, its tool namespace, the reason, the phase text, the command and the migration URL', () => {
    const s = subject('daily');
    const event = eventObject(s, OPTIONS);
    assert.deepEqual(
      { ...event, note: undefined },
      {
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: {
          name: seriesName(s, 'ignore-unmanaged'),
          namespace: 'tool-alpha',
          labels: { 'app.kubernetes.io/managed-by': 'jobs-storage' },
        },
        eventTime: '2026-11-26T12:00:00.000000Z',
        reportingController: 'jobs-storage.toolforge.org/sync',
        reportingInstance: 'jobs-storage-sync-0',
        action: 'Reconcile',
        reason: 'WrittenOutsideJobsApi',
        regarding: {
          apiVersion: 'batch/v1',
          kind: 'CronJob',
          name: 'daily',
          namespace: 'tool-alpha',
          uid: 'uid-daily',
        },
        note: undefined,
        type: 'Warning',
      },
    );
    assert.equal(
      event.note,
      'CronJob "daily" was written directly (kubectl or a script), not through the Toolforge jobs API. ' +
        "Jobs created outside the jobs API are already not listed by 'toolforge jobs list' and cannot be managed with " +
        "'toolforge jobs'. From 2026-12-15, creating or changing jobs-framework objects directly (with kubectl or " +
        "scripts) is refused. To move it, create it with 'toolforge jobs run daily --schedule ...' (or an entry in " +
        "jobs.yaml and 'toolforge jobs load jobs.yaml'), then 'kubectl delete cronjob daily'. " +
        'How: https://wikitech.wikimedia.org/wiki/Help:Toolforge/Jobs_framework',
    );
  });

  test('a jobs-framework job without a CR is told to load it; a Deployment is apps/v1', () => {
    const s: EventSubject = { tool: 'alpha', reason: 'JobNotManaged', workload: ref('Deployment', 'bot') };
    const event = eventObject(s, { ...OPTIONS, phase: 'enforce', texts: { ...OPTIONS.texts, deadline: '' } });
    assert.equal(event.regarding.apiVersion, 'apps/v1');
    assert.equal(
      event.note,
      'Deployment "bot" carries Toolforge jobs framework labels, but the jobs API has no record of it. ' +
        "Creating or changing jobs-framework objects directly is refused already. Hand-written objects still run, but 'toolforge jobs' does not know them: they get none of its fixes, logs or status. " +
        "To manage it with 'toolforge jobs' again, put it in a jobs.yaml and run 'toolforge jobs load jobs.yaml' " +
        '(the jobs API replaces this Deployment with its own). ' +
        'How: https://wikitech.wikimedia.org/wiki/Help:Toolforge/Jobs_framework',
    );
  });

  test('the note says what happens at the deadline in each phase; an unset deadline reads as such', () => {
    const s = subject('daily');
    const texts = { ...OPTIONS.texts, deadline: '' };
    assert.match(eventNote(s, 'runtime-truth', texts), /From the migration deadline, the jobs service reads job/);
    assert.match(eventNote(s, 'storage-truth', texts), /From the migration deadline, the jobs service stops picking/);
    assert.match(eventNote(s, 'ignore-unmanaged', OPTIONS.texts), /From 2026-12-15, creating or changing/);
    assert.match(eventNote(s, 'enforce', texts), /is refused already/);
  });

  test('a long name fits the 1 kB note: the commands say <name>', () => {
    const name = 'n'.repeat(253);
    const s = { ...subject('x'), workload: { ...subject('x').workload, name } };
    const note = eventNote(s, 'runtime-truth', OPTIONS.texts);
    assert.ok(Buffer.byteLength(note) <= MAX_NOTE_BYTES, String(Buffer.byteLength(note)));
    assert.match(note, /'toolforge jobs run <name> --schedule \.\.\.'/);
    assert.ok(note.includes(name), 'the name is still in the first sentence');
  });

  test('MicroTime has six fractional digits', () => {
    assert.equal(microTime(Date.parse('2026-01-02T03:04:05.678Z')), '2026-01-02T03:04:05.678000Z');
  });
});
