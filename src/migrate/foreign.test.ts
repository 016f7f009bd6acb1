import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { split as shlexSplit } from 'shlex';
import { parse } from 'yaml';
import { quantitiesEqual, resolveImageReference } from '../jobs/index.js';
import { loadWorkload } from '../../test/fixtures/workloads/load.js';
import { DEFAULT_RUNTIME_SETTINGS as SETTINGS, type KObject } from '../runtime/index.js';
import { parseWorkload } from '../runtime/parse.js';
import { convertForeign, type ProblemCode } from './foreign.js';
import { validateLoadEntry, type LoadEntry } from './load-file.js';
import { fixtureNames, loadAndRender, podParts } from './roundtrip.test-helper.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'migrate');

function fixture(name: string): KObject {
  return parse(readFileSync(join(DIR, `${name}.yaml`), 'utf8')) as KObject;
}

interface Row {
  fixture: string;
  entry: LoadEntry;
  /** Codes of the problems that need a person, in order. */
  attention: ProblemCode[];
  /** Codes of the other problems (what changes, nothing to do), in order. */
  notes: ProblemCode[];
}

const ROWS: Row[] = [
  {
    fixture: 'kubectl-create-cronjob',
    entry: {
      name: 'nightly',
      command: 'python3 nightly.py --all',
      image: 'python3.11',
      retry: 5,
      schedule: '0 3 * * *',
      'no-filelog': true,
    },
    attention: ['concurrency-policy'],
    notes: ['retry-capped', 'restart-policy'],
  },
  {
    fixture: 'kubectl-create-deployment',
    entry: { name: 'ircbot', command: 'python3 bot.py', image: 'python3.11', continuous: true, 'no-filelog': true },
    attention: [],
    notes: [],
  },
  {
    fixture: 'cronjob-env-configmap',
    entry: {
      name: 'harvest',
      command: 'cd /data/project/mytool/harvest && python3 harvest.py --config /etc/harvest/config.ini',
      image: 'python3.11',
      mem: '1.0Gi',
      cpu: '1.0',
      retry: 2,
      schedule: '*/30 * * * *',
      'no-filelog': true,
    },
    attention: ['custom-volume', 'env-vars'],
    notes: ['working-dir', 'resources'],
  },
  {
    fixture: 'deployment-two-containers',
    entry: {
      name: 'queue-worker',
      command: './worker.sh --redis localhost:6379',
      image: 'bookworm',
      continuous: true,
      'no-filelog': true,
    },
    attention: ['several-containers'],
    notes: [],
  },
  {
    fixture: 'cronjob-non-toolforge-image',
    entry: {
      name: 'weekly-dump',
      command: 'python /app/dump.py',
      image: 'python:3.12-slim',
      mem: '2.0Gi',
      schedule: '@weekly',
      'no-filelog': true,
    },
    attention: ['non-toolforge-image'],
    notes: ['resources', 'schedule'],
  },
  {
    fixture: 'job-one-off',
    entry: {
      name: 'reindex-all',
      command: 'php maintenance/reindex.php --all',
      image: 'php8.2',
      retry: 2,
      'no-filelog': true,
    },
    attention: ['timeout-one-off', 'one-off'],
    notes: [],
  },
  {
    fixture: 'deployment-port-probe',
    entry: {
      name: 'api',
      command: 'web',
      image: 'tool-othertool/api:latest',
      mem: '0.75Gi',
      cpu: '0.5',
      continuous: true,
      replicas: 2,
      port: 8000,
      'health-check-http': '/healthz',
    },
    attention: [],
    notes: ['resources', 'probe-timing'],
  },
  {
    fixture: 'cronjob-concurrency-replace',
    entry: {
      name: 'refresh-cache',
      command: './refresh.sh && touch last-refresh',
      image: 'bookworm',
      retry: 1,
      schedule: '15 * * * *',
      timeout: 3600,
      'no-filelog': true,
    },
    attention: ['concurrency-policy'],
    notes: [],
  },
  {
    fixture: 'deployment-buildservice-hardened',
    entry: { name: 'consumer', command: 'consume --batch 50', image: 'tool-mytool/consumer:latest', continuous: true },
    attention: ['init-containers', 'node-placement', 'security-context', 'security-context'],
    notes: [],
  },
];

/** The user command a hand-written container runs: `sh -c SCRIPT` → SCRIPT's words, else command + args. */
function argvOf(container: KObject, buildservice: boolean): string[] {
  const argv = [
    ...((container['command'] as string[] | undefined) ?? []),
    ...((container['args'] as string[] | undefined) ?? []),
  ];
  if (/sh$/.test(argv[0] ?? '') && argv[1] === '-c') return shlexSplit(argv[2] ?? '');
  return buildservice && argv[0] === 'launcher' ? argv.slice(1) : argv;
}

/** Schedule, retries, deadline, replicas, port, health check and memory of the original, in the rendered workload. */
function assertSameRunSettings(original: KObject, rendered: KObject): void {
  const before = podParts(original);
  const after = podParts(rendered);
  if (original['kind'] === 'CronJob') {
    if (!String(before.spec['schedule']).startsWith('@')) assert.equal(after.spec['schedule'], before.spec['schedule']);
    assert.equal(after.owner['activeDeadlineSeconds'], before.owner['activeDeadlineSeconds']);
  }
  if (original['kind'] !== 'Deployment')
    assert.equal(after.owner['backoffLimit'], Math.min(Number(before.owner['backoffLimit'] ?? 6), 5));
  else {
    assert.equal(after.spec['replicas'] ?? 1, before.spec['replicas'] ?? 1);
    assert.deepEqual(after.container['ports'] ?? [], before.container['ports'] ?? []);
    const live = before.container['livenessProbe'] as KObject | undefined;
    if (live?.['httpGet'] !== undefined)
      assert.deepEqual((after.container['livenessProbe'] as KObject)['httpGet'], live['httpGet']);
  }
  assertSameResources(before.container, after.container);
}

/** The memory and cpu limits of the original container, in the rendered one (memory defaults to 512Mi). */
function assertSameResources(beforeContainer: KObject, afterContainer: KObject): void {
  const before = { container: beforeContainer };
  const after = { container: afterContainer };
  const memory = (before.container['resources'] as { limits?: { memory?: string } } | undefined)?.limits?.memory;
  const renderedMemory = (after.container['resources'] as { limits: { memory: string } }).limits.memory;
  assert.ok(quantitiesEqual(renderedMemory, memory ?? '512Mi'), `${renderedMemory} vs ${String(memory)}`);
  const cpu = (before.container['resources'] as { limits?: { cpu?: string } } | undefined)?.limits?.cpu;
  const renderedCpu = (after.container['resources'] as { limits: { cpu: string } }).limits.cpu;
  if (cpu !== undefined) assert.ok(quantitiesEqual(renderedCpu, cpu), `${renderedCpu} vs ${cpu}`);
}

describe('hand-written workloads → jobs.yaml entries', () => {
  test('every fixture of test/fixtures/migrate has a row', () => {
    assert.deepEqual(fixtureNames('migrate'), ROWS.map((r) => r.fixture).sort());
  });

  for (const row of ROWS) {
    test(row.fixture, () => {
      const original = fixture(row.fixture);
      const result = convertForeign(original, SETTINGS);
      assert.ok(result.ok, JSON.stringify(result));
      assert.deepEqual(result.value.entry, row.entry);
      assert.deepEqual(
        result.value.problems.filter((p) => p.attention).map((p) => p.code),
        row.attention,
      );
      assert.deepEqual(
        result.value.problems.filter((p) => !p.attention).map((p) => p.code),
        row.notes,
      );
      assert.equal(result.value.needsAttention, row.attention.length > 0);
      for (const p of result.value.problems) {
        assert.ok(p.reason.length > 0 && p.instead.length > 0, `${p.code} says why and what to do`);
      }
      const issues = validateLoadEntry(row.entry, 0).filter((i) => i.severity === 'error');
      assert.deepEqual(issues, []);
    });
  }
});

describe('round trip: the loaded entry renders a workload that runs what the hand-written one ran', () => {
  for (const row of ROWS) {
    test(row.fixture, () => {
      const original = fixture(row.fixture);
      const result = convertForeign(original, SETTINGS);
      assert.ok(result.ok && result.value.entry !== null);
      const entry = result.value.entry;
      const { objects } = loadAndRender(entry, result.value.tool, SETTINGS);
      const rendered = objects[0] ?? {};
      assert.equal(rendered['kind'], original['kind']);
      const before = podParts(original);
      const after = podParts(rendered);
      // image: the same Toolforge image (or the same reference, for one that is not)
      const imageOf = (c: KObject) => resolveImageReference(String(c['image']), SETTINGS).image.short_name;
      assert.equal(imageOf(after.container), imageOf(before.container));
      // command: the words the original ran (in its working directory)
      const reread = parseWorkload(rendered, SETTINGS);
      assert.ok(reread.ok, JSON.stringify(reread));
      const buildservice = entry.image.includes('/');
      const words = shlexSplit(reread.value.job.cmd);
      const dir = before.container['workingDir'];
      const expected = argvOf(before.container, buildservice);
      const cd = typeof dir === 'string' && dir !== `/data/project/${result.value.tool}` ? ['cd', dir, '&&'] : [];
      assert.deepEqual(words, [...cd, ...expected]);
      assert.equal(reread.value.job.filelog === true, false, 'hand-written jobs logged to stdout, and still do');
      assertSameRunSettings(original, rendered);
    });
  }
});

describe('objects that are not jobs, and bad input', () => {
  test('webservice objects and CronJob runs are not jobs', () => {
    const web = convertForeign(loadWorkload('webservice-deployment'), SETTINGS);
    assert.deepEqual(web.ok ? 'converted' : web.problem.code === 'not-a-job', true);
    const run = convertForeign(loadWorkload('cronjob-spawned-job'), SETTINGS);
    assert.deepEqual(run.ok ? 'converted' : run.problem.code === 'not-a-job', true);
    const service = convertForeign(loadWorkload('v2-service-port-tcp'), SETTINGS);
    assert.deepEqual(service.ok ? 'converted' : service.problem.code === 'not-a-job', true);
  });

  test('a probe on a named port is the health check of that port', () => {
    const original = fixture('deployment-port-probe');
    const container = podParts(original).container;
    (container['ports'] as KObject[])[0] = { containerPort: 8000, name: 'http', protocol: 'TCP' };
    for (const probe of ['livenessProbe', 'readinessProbe'])
      (container[probe] as { httpGet: KObject }).httpGet['port'] = 'http';
    const result = convertForeign(original, SETTINGS);
    assert.ok(result.ok);
    assert.equal(result.value.entry?.['health-check-http'], '/healthz');
    assert.equal(result.value.needsAttention, false);
  });

  test("a probe on another port than the job's is not a health check jobs-api can run", () => {
    const original = fixture('deployment-port-probe');
    const container = podParts(original).container;
    for (const probe of ['livenessProbe', 'readinessProbe'])
      (container[probe] as { httpGet: KObject }).httpGet['port'] = 9090;
    const result = convertForeign(original, SETTINGS);
    assert.ok(result.ok);
    assert.equal(result.value.entry?.['health-check-http'], undefined);
    assert.deepEqual(
      result.value.problems.filter((p) => p.attention).map((p) => p.code),
      ['probe'],
    );
  });

  test('a container without a command gets no entry, and says why', () => {
    const original = fixture('kubectl-create-deployment');
    const container = podParts(original).container;
    delete container['command'];
    const result = convertForeign(original, SETTINGS);
    assert.ok(result.ok);
    assert.equal(result.value.entry, null);
    assert.deepEqual(
      result.value.problems.map((p) => p.code),
      ['no-command'],
    );
    assert.equal(result.value.needsAttention, true);
  });

  test('bad input is an error result, never a throw', () => {
    for (const bad of [
      null,
      'x',
      { kind: 'CronJob' },
      { kind: 'Deployment', metadata: { name: 'a', namespace: 'tool-x' } },
    ]) {
      const result = convertForeign(bad, SETTINGS);
      assert.equal(result.ok, false);
    }
  });
});
