import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PrebuiltImage } from './images.js';
import { resolveImageReference, splitImageReference } from './images.js';
import type { ContinuousJob, OneOffJob } from './model.js';
import { normalizePosixPath } from './paths.js';
import { resolveJob, type ResolveSettings } from './resolve.js';

const PY311: PrebuiltImage = {
  short_name: 'python3.11',
  aliases: ['toolforge-python311', 'toolforge-python311-sssd-base', 'toolforge-python311-sssd-web'],
  state: 'stable',
  host: 'docker-registry.tools.wmflabs.org',
  path: 'toolforge-python311-sssd-web',
  tag: 'latest',
  variant_paths: ['toolforge-python311-sssd-base'],
};
const settings: ResolveSettings = {
  toolHomeBase: '/data/project',
  harborHost: 'harbor.example.org',
  registryHosts: ['docker-registry.tools.wmflabs.org', 'docker-registry.svc.toolforge.org'],
  prebuiltImages: [PY311],
};
const IMAGE = {
  short_name: 'python3.11',
  type: 'standard' as const,
  aliases: [...PY311.aliases],
  host: PY311.host,
  path: PY311.path,
  tag: 'latest',
  state: 'stable',
};

describe('resolveJob (get_resolved_core_job)', () => {
  test('standard image: mount all, filelog on, default log paths under the tool home', () => {
    const job: OneOffJob = {
      job_name: 'once',
      tool_name: 'mytool',
      job_type: 'one-off',
      cmd: 'date',
      image: { short_name: 'python3.11' },
      memory: '512Mi',
      cpu: '1',
    };
    assert.deepEqual(resolveJob(job, settings), {
      ...job,
      image: IMAGE,
      memory: '0.5Gi',
      cpu: '1.0',
      mount: 'all',
      filelog: true,
      filelog_stdout: '/data/project/mytool/once.out',
      filelog_stderr: '/data/project/mytool/once.err',
    });
  });

  test('relative log paths resolve against the tool home, absolute ones stay', () => {
    const job: OneOffJob = {
      job_name: 'j',
      tool_name: 't',
      job_type: 'one-off',
      cmd: 'x',
      image: { short_name: 'python3.11' },
      filelog_stdout: 'logs//a.out',
      filelog_stderr: '/tmp/b.err',
    };
    const r = resolveJob(job, { ...settings, toolHomeBase: '/srv/homes/' });
    assert.equal(r.filelog_stdout, '/srv/homes/t/logs/a.out');
    assert.equal(r.filelog_stderr, '/tmp/b.err');
  });

  test('filelog set to false stays off and keeps no paths', () => {
    const job: OneOffJob = {
      job_name: 'j',
      tool_name: 't',
      job_type: 'one-off',
      cmd: 'x',
      image: { short_name: 'python3.11' },
      filelog: false,
    };
    const r = resolveJob(job, settings);
    assert.equal(r.filelog, false);
    assert.equal(r.filelog_stdout, undefined);
  });

  test('buildservice image: mount none, filelog left unset', () => {
    const job: ContinuousJob = {
      job_name: 'bot',
      tool_name: 'mytool',
      job_type: 'continuous',
      cmd: 'web',
      image: { short_name: 'tool-mytool/bot:latest' },
    };
    const r = resolveJob(job, settings);
    assert.equal(r.mount, 'none');
    assert.equal(r.filelog, undefined);
    assert.deepEqual(r.image, {
      short_name: 'tool-mytool/bot:latest',
      type: 'buildservice',
      host: 'harbor.example.org',
      path: 'tool-mytool/bot',
      tag: 'latest',
      state: 'stable',
    });
  });

  test('an explicit mount is kept, the input is not modified', () => {
    const job: ContinuousJob = {
      job_name: 'bot',
      tool_name: 'mytool',
      job_type: 'continuous',
      cmd: 'web',
      image: { short_name: 'tool-mytool/bot:latest' },
      mount: 'all',
    };
    const before = structuredClone(job);
    assert.equal(resolveJob(job, settings).mount, 'all');
    assert.deepEqual(job, before);
  });
});

describe('image references (Image.from_short_name_or_url)', () => {
  test('split', () => {
    assert.deepEqual(splitImageReference('harbor.example.org/tool-x/img:v1@sha256:ab'), {
      host: 'harbor.example.org',
      project: 'tool-x',
      name: 'img',
      path: 'tool-x/img',
      tag: 'v1',
      digest: 'sha256:ab',
    });
    assert.deepEqual(splitImageReference('toolforge-python311-sssd-base:latest'), {
      host: '',
      project: '',
      name: 'toolforge-python311-sssd-base',
      path: 'toolforge-python311-sssd-base',
      tag: 'latest',
      digest: '',
    });
  });
  test('prebuilt by short name, alias, jobs variant URL and legacy-equivalent registry', () => {
    for (const ref of [
      'python3.11',
      'toolforge-python311',
      'docker-registry.tools.wmflabs.org/toolforge-python311-sssd-base:latest',
      'docker-registry.tools.wmflabs.org/toolforge-python311-sssd-web:latest',
    ]) {
      const r = resolveImageReference(ref, settings);
      assert.equal(r.match, 'prebuilt', ref);
      assert.deepEqual(r.image, IMAGE, ref);
    }
    assert.equal(
      resolveImageReference('docker-registry.svc.toolforge.org/toolforge-python311-sssd-base:latest', settings)
        .hostAlias,
      'docker-registry.svc.toolforge.org',
    );
  });
  test('harbor with digest, and unknown images', () => {
    const h = resolveImageReference('harbor.example.org/tool-x/img:latest@sha256:ab', settings);
    assert.deepEqual(h.image, {
      short_name: 'tool-x/img:latest@sha256:ab',
      type: 'buildservice',
      host: 'harbor.example.org',
      path: 'tool-x/img',
      tag: 'latest',
      state: 'stable',
      digest: 'sha256:ab',
    });
    const u = resolveImageReference('docker-registry.idontexist/randomimage:randomtag', settings);
    assert.deepEqual(u, {
      match: 'unknown',
      image: {
        short_name: 'randomimage:randomtag',
        type: 'standard',
        host: 'docker-registry.idontexist',
        path: 'randomimage',
        tag: 'randomtag',
        state: 'unknown',
        exists: false,
      },
    });
  });
});

test('normalizePosixPath is str(PurePosixPath)', () => {
  assert.equal(normalizePosixPath('a//b/./c/'), 'a/b/c');
  assert.equal(normalizePosixPath(''), '.');
  assert.equal(normalizePosixPath('//x'), '//x');
  assert.equal(normalizePosixPath('///x'), '/x');
});
