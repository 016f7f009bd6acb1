import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { formatProblem } from '../errors.js';
import type { ScheduledJob } from '../jobs/model.js';
import { SPEC_V1, StorageCodec, createStorageCodec } from './codec.js';
import type { Migration, RawSpec, SpecVersion } from './codec.js';
import { PROVENANCE_ANNOTATIONS } from './kinds.js';

const scheduled: ScheduledJob = {
  job_name: 'daily',
  tool_name: 'mytool',
  job_type: 'scheduled',
  cmd: './daily.sh',
  image: {
    short_name: 'python3.11',
    type: 'standard',
    aliases: ['tf-python311'],
    host: 'docker-registry.tools.wmflabs.org',
    path: 'toolforge-python311-sssd-base',
    tag: 'latest',
    state: 'stable',
  },
  schedule: { text: '@daily', minute: '13', hour: '13', day: '*', month: '*', day_of_week: '*' },
  filelog: true,
  filelog_stdout: '/data/project/mytool/daily.out',
  filelog_stderr: '/data/project/mytool/daily.err',
  emails: 'none',
  mount: 'all',
  memory: '0.5Gi',
  cpu: '0.1',
  retry: 0,
  timeout: 0,
};

describe('storage codec v1', () => {
  const codec = createStorageCodec();

  test('encodes a scheduled job the way jobs-api stores it', () => {
    const cr = codec.encode(scheduled);
    assert.equal(cr.apiVersion, 'jobs-api.toolforge.org/v1');
    assert.equal(cr.kind, 'ScheduledJob');
    assert.deepEqual(cr.metadata, { name: 'daily', namespace: 'tool-mytool' });
    assert.deepEqual(cr.spec, scheduled);
  });

  test('keeps only the set fields: an unset field is absent, not null', () => {
    const minimal = { ...scheduled };
    delete minimal.filelog;
    delete minimal.mount;
    const cr = codec.encode({ ...minimal, retry: undefined } as unknown as ScheduledJob);
    assert.equal('filelog' in cr.spec, false);
    assert.equal('mount' in cr.spec, false);
    assert.equal('retry' in cr.spec, false);
  });

  test('puts provenance in annotations, never in the spec', () => {
    const cr = codec.encode(scheduled, { annotations: { [PROVENANCE_ANNOTATIONS.backfilledBy]: 'jobs-storage-sync' } });
    assert.equal(cr.metadata.annotations?.[PROVENANCE_ANNOTATIONS.backfilledBy], 'jobs-storage-sync');
    assert.equal(
      Object.keys(cr.spec).some((k) => k.includes('jobs-storage')),
      false,
    );
  });

  test('decode ∘ encode is the identity', () => {
    const res = codec.read(codec.encode(scheduled));
    assert.ok(res.ok);
    assert.deepEqual(res.value.job, scheduled);
    assert.equal(res.value.version, 'v1');
  });

  test("reads the old image type 'buildpack' as 'buildservice'", () => {
    const cr = codec.encode(scheduled);
    const spec = cr.spec as Record<string, unknown>;
    spec['image'] = { short_name: 'tool-mytool/bot:latest', type: 'buildpack' };
    const res = codec.read(cr);
    assert.ok(res.ok, JSON.stringify(res));
    assert.equal(res.value.job.image.type, 'buildservice');
  });

  test('decodes a continuous job with a health check and drops jobs-api backfill leftovers', () => {
    const cr = {
      apiVersion: 'jobs-api.toolforge.org/v1',
      kind: 'ContinuousJob',
      metadata: { name: 'bot', namespace: 'tool-mytool' },
      spec: {
        job_name: 'bot',
        tool_name: 'mytool',
        job_type: 'continuous',
        cmd: 'bot --serve',
        image: {
          short_name: 'tool-mytool/bot:latest',
          type: 'buildservice',
          host: 'tools-harbor.wmcloud.org',
          path: 'tool-mytool/bot',
        },
        port: 8080,
        health_check: { type: 'http', path: '/healthz' },
        k8s_object: { kind: 'Deployment' },
        status_short: 'Unknown',
      },
    };
    const res = codec.read(cr);
    assert.ok(res.ok, res.ok ? '' : formatProblem(res.problem));
    assert.equal('k8s_object' in res.value.job, false);
    assert.equal('status_short' in res.value.job, false);
    assert.deepEqual(res.value.job.job_type === 'continuous' && res.value.job.health_check, {
      type: 'http',
      path: '/healthz',
    });
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['not an object', 'hello', /not a job custom resource/],
    [
      'wrong group',
      { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'x' }, spec: {} },
      /apiVersion must be in group/,
    ],
    [
      'unknown kind',
      { apiVersion: 'jobs-api.toolforge.org/v1', kind: 'OneOffJob', metadata: { name: 'x' }, spec: {} },
      /not a stored job kind/,
    ],
    [
      'retry out of range',
      { ...cr(scheduled), spec: { ...scheduled, retry: 9 } },
      /ScheduledJob tool-mytool\/daily spec\.retry: .*5/,
    ],
    ['unknown spec key', { ...cr(scheduled), spec: { ...scheduled, colour: 'red' } }, /spec: .*colour/],
    [
      'missing schedule field',
      { ...cr(scheduled), spec: { ...scheduled, schedule: { text: '@daily' } } },
      /spec\.schedule\.minute/,
    ],
    ['kind/job_type mismatch', { ...cr(scheduled), kind: 'ContinuousJob' }, /spec.*(job_type|Invalid)/],
    [
      'unknown version',
      { ...cr(scheduled), metadata: { name: 'daily', annotations: { [PROVENANCE_ANNOTATIONS.specVersion]: 'v9' } } },
      /unknown spec version 'v9'/,
    ],
  ];
  for (const [name, input, message] of bad) {
    test(`rejects ${name} with the field at fault`, () => {
      const res = codec.read(input);
      assert.equal(res.ok, false);
      if (!res.ok) assert.match(formatProblem(res.problem), message);
    });
  }
});

function cr(job: ScheduledJob) {
  return createStorageCodec().encode(job);
}

describe('spec versions and migrations', () => {
  // A test-only older layout: flat image URL, schedule as a string, different key names.
  const v0Schema = z
    .object({
      name: z.string(),
      tool: z.string(),
      type: z.enum(['scheduled', 'continuous']),
      command: z.string(),
      imagename: z.string(),
      schedule: z.string().optional(),
    })
    .strict();
  const V0: SpecVersion = { name: 'v0', schema: v0Schema as unknown as z.ZodType<RawSpec> };
  const v0ToV1: Migration = {
    from: 'v0',
    to: 'v1',
    migrate(spec) {
      const [host = '', rest = ''] = String(spec['imagename']).split(/\/(.*)/s);
      const [path = rest, tag = 'latest'] = rest.split(':');
      const fields = String(spec['schedule'] ?? '').split(' ');
      const out: RawSpec = {
        job_name: spec['name'],
        tool_name: spec['tool'],
        job_type: spec['type'],
        cmd: spec['command'],
        image: { short_name: path, host, path, tag },
      };
      if (spec['type'] === 'scheduled') {
        out['schedule'] = {
          text: spec['schedule'],
          minute: fields[0],
          hour: fields[1],
          day: fields[2],
          month: fields[3],
          day_of_week: fields[4],
        };
      }
      return out;
    },
  };
  const codec = new StorageCodec({ versions: [V0, SPEC_V1], migrations: [v0ToV1], current: 'v1' });
  const v0Cr = {
    apiVersion: 'jobs-api.toolforge.org/v1',
    kind: 'ScheduledJob',
    metadata: { name: 'old', namespace: 'tool-mytool', annotations: { [PROVENANCE_ANNOTATIONS.specVersion]: 'v0' } },
    spec: {
      name: 'old',
      tool: 'mytool',
      type: 'scheduled',
      command: 'run.sh',
      imagename: 'registry.example/bookworm:latest',
      schedule: '5 4 * * *',
    },
  };

  test('reads an older version through its migration to the current one', () => {
    const res = codec.read(v0Cr);
    assert.ok(res.ok, res.ok ? '' : formatProblem(res.problem));
    assert.equal(res.value.migratedFrom, 'v0');
    assert.equal(res.value.version, 'v1');
    assert.deepEqual(res.value.job, {
      job_name: 'old',
      tool_name: 'mytool',
      job_type: 'scheduled',
      cmd: 'run.sh',
      image: { short_name: 'bookworm', host: 'registry.example', path: 'bookworm', tag: 'latest' },
      schedule: { text: '5 4 * * *', minute: '5', hour: '4', day: '*', month: '*', day_of_week: '*' },
    });
  });

  test('migrations are pure: the input CR is not modified', () => {
    const before = structuredClone(v0Cr);
    codec.read(v0Cr);
    assert.deepEqual(v0Cr, before);
  });

  test('validates against the old schema before migrating', () => {
    const res = codec.read({ ...v0Cr, spec: { ...v0Cr.spec, command: 42 } });
    assert.equal(res.ok, false);
    if (!res.ok) assert.match(formatProblem(res.problem), /spec\.command: .*\(spec version v0\)/);
  });

  test('a migration that yields an invalid current spec is reported, not returned', () => {
    const broken = new StorageCodec({
      versions: [V0, SPEC_V1],
      migrations: [{ from: 'v0', to: 'v1', migrate: () => ({ job_type: 'scheduled' }) }],
      current: 'v1',
    });
    const res = broken.read(v0Cr);
    assert.equal(res.ok, false);
  });

  test('misconfigured registries are rejected at construction', () => {
    assert.throws(() => new StorageCodec({ versions: [V0], migrations: [], current: 'v1' }), TypeError);
    assert.throws(() => new StorageCodec({ versions: [SPEC_V1], migrations: [v0ToV1], current: 'v1' }), TypeError);
  });

  test('read gives the job, or a coded problem whose text names the object', () => {
    const good = codec.read(codec.encode(scheduled));
    assert.ok(good.ok);
    assert.deepEqual(good.value.job, scheduled);
    const cr = { ...codec.encode(scheduled), kind: 'OneOffJob' };
    const read = codec.read(cr);
    assert.ok(!read.ok);
    assert.equal(read.problem.code, 'ERR_STORAGE_DECODE');
    assert.match(
      formatProblem(read.problem),
      /^OneOffJob tool-mytool\/daily: kind 'OneOffJob' is not a stored job kind$/,
    );
  });
});
