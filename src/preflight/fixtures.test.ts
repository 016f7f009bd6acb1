import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { StoredJob } from '../jobs/index.js';
import { loadWorkload } from '../../test/fixtures/workloads/load.js';
import { parseWorkload } from '../runtime/parse.js';
import { renderJobWorkloads } from '../runtime/render.js';
import { DEFAULT_RUNTIME_SETTINGS as S } from '../runtime/settings.js';
import { createStorageCodec } from '../storage/codec.js';
import { classifyDifference } from './classify.js';
import { diffWorkloads, type Difference } from './diff.js';
import type { ComparedKind } from './normalize.js';
import { preflightJob } from './preflight.js';

/**
 * Every workload fixture, as the storage flip would meet it: parsed into the job a backfill stores, encoded as its
 * CR, rendered back the way jobs-api renders it now, and diffed against the fixture. The table records each
 * fixture's verdict and its functional differences (by classifier rule) — the list of what the flip changes, era by
 * era. A fixture of the current format comes out `same` (or `cosmetic` only for a restart mark jobs-api sets later).
 */

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'workloads');
const SERVICE_OF: Readonly<Record<string, string>> = {
  'v2-continuous-port-tcp': 'v2-service-port-tcp',
  'v2-continuous-buildservice-shell-less': 'v2-service-port-http',
};
const RESOURCES = ['cpu-request', 'cpu-limit', 'memory-request', 'memory-limit'];

type Expected =
  | { parse: 'error' }
  | { era: string; verdict: 'same' | 'cosmetic' | 'functional'; functional: string[]; recreate?: true };

const EXPECTED: Readonly<Record<string, Expected>> = {
  // not job definitions, or broken: nothing to preflight (the sync reports them)
  'broken-cronjob-bad-schedule': { parse: 'error' },
  'broken-cronjob-no-containers': { parse: 'error' },
  'broken-deployment-nonnumeric-port': { parse: 'error' },
  'cronjob-manual-job': { parse: 'error' },
  'cronjob-spawned-job': { parse: 'error' },
  'foreign-cronjob': { parse: 'error' },
  'webservice-deployment': { parse: 'error' },
  // pre-release (toolsbeta 2021-06): the command gains the shell, HOME env and home volume go,
  // default resources are set, 15s grace period, security context, startingDeadlineSeconds
  'pre-release-scheduled': {
    era: 'pre-release',
    verdict: 'functional',
    functional: [
      'command',
      'env',
      'volume-mounts',
      ...RESOURCES,
      'security-context',
      'grace-period',
      'volumes',
      'starting-deadline',
    ],
  },
  // v1 before 2021-07-12: as pre-release, plus the -web image variant; the full selector forces a recreate
  'v1-unwrapped-continuous': {
    era: 'v1-unwrapped',
    verdict: 'functional',
    functional: [
      'command',
      'env',
      'image',
      'volume-mounts',
      ...RESOURCES,
      'security-context',
      'grace-period',
      'volumes',
    ],
    recreate: true,
  },
  'v1-unwrapped-scheduled': {
    era: 'v1-unwrapped',
    verdict: 'functional',
    functional: [
      'command',
      'env',
      'image',
      'volume-mounts',
      ...RESOURCES,
      'security-context',
      'grace-period',
      'volumes',
      'starting-deadline',
    ],
  },
  // v1: trailing redirects become exec redirects; the 500m/250m cpu request rises to the limit
  'v1-scheduled-filelog': {
    era: 'v1',
    verdict: 'functional',
    functional: ['command', 'image', 'cpu-request', 'memory-request', 'security-context', 'grace-period'],
  },
  'v1-continuous-nofilelog': {
    era: 'v1',
    verdict: 'functional',
    functional: ['command', 'image', ...RESOURCES, 'security-context', 'grace-period'],
    recreate: true,
  },
  'v1-one-off': {
    era: 'v1',
    verdict: 'functional',
    functional: ['command', 'image', ...RESOURCES, 'security-context', 'grace-period'],
  },
  // v1 command-new-format: the command stays; resources, security context and grace period are set
  'v1-new-format-scheduled': {
    era: 'v1-new-format',
    verdict: 'functional',
    functional: [...RESOURCES, 'security-context', 'grace-period'],
  },
  'v1-new-format-continuous-nofilelog': {
    era: 'v1-new-format',
    verdict: 'functional',
    functional: ['image', ...RESOURCES, 'security-context', 'grace-period'],
    recreate: true,
  },
  // v2 2023-05: buildservice split args gain launcher and mount none (the NFS mounts go)
  'v2-continuous-buildservice-split-args': {
    era: 'v2',
    verdict: 'functional',
    functional: ['mount-storage', 'command', 'security-context'],
    recreate: true,
  },
  // v2 2023: relative log paths become absolute (cosmetic: the same files), the -web image variant
  'v2-scheduled-relative-logs': { era: 'v2', verdict: 'functional', functional: ['image', 'security-context'] },
  'v2-continuous-legacy-name': {
    era: 'v2',
    verdict: 'functional',
    functional: ['image', 'security-context'],
    recreate: true,
  },
  'v2-continuous-nofilelog': {
    era: 'v2',
    verdict: 'functional',
    functional: ['image', 'security-context'],
    recreate: true,
  },
  'v2-one-off': { era: 'v2', verdict: 'functional', functional: ['image', 'security-context'] },
  // v2 2024-02 → 2026-06: the shell around "launcher" goes, probes run through launcher
  'v2-continuous-buildservice-launcher': {
    era: 'v2',
    verdict: 'functional',
    functional: ['command', 'probes', 'security-context'],
    recreate: true,
  },
  // v2 2024-05 raw @daily: the schedule moves to a fixed minute
  'v2-scheduled-admin-patched': {
    era: 'v2',
    verdict: 'functional',
    functional: ['image', 'security-context', 'schedule'],
  },
  // v2 2024-11 → 2025: only the -web image variant jobs-api renders since 2026
  'v2-scheduled-absolute-logs': { era: 'v2', verdict: 'functional', functional: ['image'] },
  // current format (2026-06 →): the render is jobs-api's
  'v2-continuous-buildservice-shell-less': { era: 'v2', verdict: 'same', functional: [] },
  'v2-continuous-port-tcp': { era: 'v2', verdict: 'cosmetic', functional: [] },
};

function differencesOf(
  name: string,
): { era: string; differences: Difference[]; verdict: string; recreate: boolean } | null {
  const obj = loadWorkload(name);
  const parsed = parseWorkload(obj, S);
  if (!parsed.ok) return null;
  const service = SERVICE_OF[name];
  const live = service === undefined ? [obj] : [obj, loadWorkload(service)];
  if (parsed.value.job.job_type === 'one-off') {
    // one-off jobs are not stored: compared with the render directly
    const rendered = renderJobWorkloads(parsed.value.job, S, { toolUid: 52001 });
    assert.ok(rendered.ok);
    const d = diffWorkloads(live, rendered.value);
    return { era: parsed.value.era.id, ...d };
  }
  const cr = createStorageCodec().encode(parsed.value.job as StoredJob);
  const result = preflightJob(cr, live, { runtime: S });
  assert.notEqual(result.verdict, 'error', JSON.stringify(result.error));
  return {
    era: parsed.value.era.id,
    differences: result.differences,
    verdict: result.verdict,
    recreate: result.recreate,
  };
}

function functionalRules(differences: readonly Difference[]): string[] {
  return [
    ...new Set(
      differences
        .filter((d) => d.class === 'functional')
        .map((d) => classifyDifference(d.object.split('/')[0] as ComparedKind, d.field, d.live, d.rendered).rule),
    ),
  ];
}

describe('preflight over every workload fixture', () => {
  test('every fixture has an expected outcome', () => {
    const names = readdirSync(FIXTURES)
      .filter((f) => f.endsWith('.yaml') && !f.startsWith('v2-service-'))
      .map((f) => f.slice(0, -'.yaml'.length));
    assert.deepEqual(names.sort(), Object.keys(EXPECTED).sort());
  });

  for (const [name, expected] of Object.entries(EXPECTED)) {
    test(name, () => {
      const result = differencesOf(name);
      if ('parse' in expected) {
        assert.equal(result, null, 'not a job definition: nothing to preflight');
        return;
      }
      assert.ok(result);
      assert.equal(result.era, expected.era);
      assert.equal(result.verdict, expected.verdict);
      assert.deepEqual(functionalRules(result.differences).sort(), [...expected.functional].sort());
      assert.equal(result.recreate, expected.recreate === true);
    });
  }

  test("the ticket's cases: cpu request raised to the limit, NFS mounts removed, @daily moved to a fixed minute", () => {
    const reasons = (name: string): string[] => (differencesOf(name)?.differences ?? []).map((d) => d.reason);
    assert.ok(reasons('v1-scheduled-filelog').includes('cpu request would rise from 250m to 500m'));
    assert.ok(
      reasons('v2-continuous-buildservice-split-args').includes(
        "the NFS mounts would be removed (mount-storage no label, volume-admission's default all → none)",
      ),
    );
    assert.ok(reasons('v2-scheduled-admin-patched').includes('the schedule would change from @daily to 49 5 * * *'));
    assert.ok(
      reasons('v2-continuous-legacy-name').some(
        (r) => r.startsWith('the selector') && r.includes('deletes and recreates'),
      ),
    );
  });
});
