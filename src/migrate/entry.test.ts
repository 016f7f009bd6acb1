import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { quantitiesEqual } from '../jobs/index.js';
import { loadWorkload } from '../../test/fixtures/workloads/load.js';
import { DEFAULT_RUNTIME_SETTINGS as SETTINGS, type KObject } from '../runtime/index.js';
import { parseWorkload } from '../runtime/parse.js';
import { entryFromJob, sortedEntry, type EntryNoteCode } from './entry.js';
import { functionalDiff } from './functional.js';
import { hasLoadErrors, validateLoadEntry, type LoadEntry } from './load-file.js';
import { changedFields, fixtureNames, loadAndRender, podParts } from './roundtrip.test-helper.js';

function entryOf(name: string) {
  const original = loadWorkload(name) as KObject;
  const parsed = parseWorkload(original, SETTINGS);
  if (!parsed.ok) throw new Error(`${name}: ${parsed.problem.path}: ${parsed.problem.message}`);
  return { original, parsed, ...entryFromJob(parsed.value.job, SETTINGS, parsed.value.warnings) };
}

describe('every format era: entry → load → render gives back the running job', () => {
  const eras = fixtureNames('workloads').filter((n) => parseWorkload(loadWorkload(n), SETTINGS).ok);
  test('the fixtures cover every parseable era', () => {
    assert.ok(eras.length >= 18, `only ${eras.length} parseable fixtures`);
  });
  for (const name of eras) {
    test(name, () => {
      const { original, parsed, entry, notes } = entryOf(name);
      const issues = validateLoadEntry(entry, 0);
      const nameTooLong = notes.some((n) => n.code === 'name-too-long');
      assert.equal(hasLoadErrors(issues), nameTooLong, JSON.stringify(issues));
      const { objects } = loadAndRender(entry, parsed.value.job.tool_name, SETTINGS);
      const rendered = objects[0] ?? {};
      assert.equal(rendered['kind'], original['kind']);
      const reread = parseWorkload(rendered, SETTINGS);
      assert.ok(reread.ok, JSON.stringify(reread));
      const declared = changedFields(notes);
      const diff = functionalDiff(parsed.value.job, reread.value.job, SETTINGS).filter((d) => !declared.has(d.field));
      assert.deepEqual(diff, []);
      // the raw workload fields a person would look at, where the original sets them
      const before = podParts(original);
      const after = podParts(rendered);
      if (original['kind'] === 'CronJob' && !declared.has('schedule'))
        assert.equal(after.spec['schedule'], before.spec['schedule']);
      const limits = (c: KObject) => (c['resources'] as { limits?: Record<string, string> } | undefined)?.limits;
      const beforeMemory = limits(before.container)?.['memory'];
      if (beforeMemory !== undefined)
        assert.ok(quantitiesEqual(limits(after.container)?.['memory'] ?? '', beforeMemory));
      if (original['kind'] !== 'Deployment')
        assert.equal(after.owner['backoffLimit'] ?? 0, before.owner['backoffLimit'] ?? 0);
      else assert.equal(after.spec['replicas'] ?? 1, before.spec['replicas'] ?? 1);
    });
  }
});

interface Expected {
  fixture: string;
  entry: LoadEntry;
  notes: EntryNoteCode[];
}

const EXPECTED: Expected[] = [
  {
    fixture: 'v2-scheduled-absolute-logs',
    entry: {
      command: './backup.sh --full',
      cpu: '2.0',
      emails: 'onfailure',
      'filelog-stderr': 'logs/backup.log',
      'filelog-stdout': 'logs/backup.log',
      image: 'python3.11',
      mem: '2.0Gi',
      name: 'backup',
      retry: 2,
      schedule: '@monthly',
      timeout: 3600,
    },
    notes: ['timeout-cli', 'image-variant'],
  },
  {
    fixture: 'v2-continuous-port-tcp',
    entry: {
      command: 'gunicorn -b 0.0.0.0:8080 app:app',
      continuous: true,
      image: 'python3.11',
      mem: '1.0Gi',
      name: 'api',
      'no-filelog': true,
      port: 8080,
      replicas: 2,
    },
    notes: [],
  },
  {
    fixture: 'v2-continuous-buildservice-shell-less',
    entry: {
      command: 'web --workers 2',
      continuous: true,
      'health-check-http': '/healthz',
      image: 'tool-mytool/receiver:latest',
      name: 'webhook-receiver',
      port: 8000,
    },
    notes: [],
  },
  {
    fixture: 'v2-continuous-buildservice-split-args',
    entry: {
      command: 'ingest --queue edits --verbose',
      continuous: true,
      image: 'tool-mytool/ingest:latest',
      mount: 'all',
      name: 'ingest',
    },
    notes: ['mount-made-explicit', 'launcher-added'],
  },
  {
    fixture: 'v2-scheduled-admin-patched',
    entry: { command: './sweep.sh', image: 'bookworm', name: 'sweep', schedule: '@daily' },
    notes: ['image-variant', 'schedule-moves'],
  },
  {
    fixture: 'pre-release-scheduled',
    entry: {
      command: './sync.sh',
      image: 'docker-registry.tools.wmflabs.org/toolforge-buster-sssd:latest',
      name: 'hourly-sync',
      'no-filelog': true,
      retry: 1,
      schedule: '17 * * * *',
    },
    notes: ['unknown-image'],
  },
  {
    fixture: 'v1-one-off',
    entry: { command: 'php maintenance/reindex.php', emails: 'all', image: 'php7.4', name: 'reindex', retry: 1 },
    notes: ['one-off', 'image-variant'],
  },
];

describe('entries as toolforge jobs dump writes them', () => {
  for (const row of EXPECTED) {
    test(row.fixture, () => {
      const { entry, notes } = entryOf(row.fixture);
      assert.deepEqual(sortedEntry(entry), row.entry);
      assert.deepEqual(Object.keys(sortedEntry(entry)), Object.keys(row.entry));
      assert.deepEqual(
        notes.map((n) => n.code),
        row.notes,
      );
    });
  }

  test('a job whose schedule was edited directly keeps the running time, not the configured text', () => {
    const original = loadWorkload('v2-scheduled-relative-logs') as KObject;
    const annotations = (original['metadata'] as { annotations?: Record<string, string> }).annotations ?? {};
    (original['metadata'] as KObject)['annotations'] = {
      ...annotations,
      'jobs.toolforge.org/cron-expression': '0 1 * * *',
    };
    const parsed = parseWorkload(original, SETTINGS);
    assert.ok(parsed.ok);
    const { entry, notes } = entryFromJob(parsed.value.job, SETTINGS, parsed.value.warnings);
    assert.equal(entry.schedule, '30 2 * * *');
    assert.deepEqual(
      notes.map((n) => n.code),
      ['schedule-as-fields', 'image-variant'],
    );
  });
});
