import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { loadWorkload } from '../../test/fixtures/workloads/load.js';
import { diffWorkloads } from '../preflight/diff.js';
import { DEFAULT_RUNTIME_SETTINGS as SETTINGS, type KObject } from '../runtime/index.js';
import { renderJobWorkloads } from '../runtime/render.js';
import { jobFromLoadEntry, validateLoadEntry } from './load-file.js';
import { planTool, type JobMigration, type MigrationNote } from './plan.js';
import { renderJobsYaml, renderMarkdown } from './render.js';

/**
 * migrate's notes against preflight's classifier: each entry rendered as jobs-api would, compared with the running
 * workload. One fixture per kind of change the grading of issue 23 found, each with the notes it must get; and an
 * entry that runs the same, which gets none.
 */

const MIGRATE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'migrate');

function handWritten(name: string): KObject {
  return parse(readFileSync(join(MIGRATE, `${name}.yaml`), 'utf8')) as KObject;
}

/** The v1 job of `v1-scheduled-filelog`, its trailing redirects into files other than `<job>.out` / `<job>.err`. */
function v1LogsElsewhere(): KObject {
  const cron = loadWorkload('v1-scheduled-filelog') as KObject;
  const container = (
    (
      ((((cron['spec'] as KObject)['jobTemplate'] as KObject)['spec'] as KObject)['template'] as KObject)[
        'spec'
      ] as KObject
    )['containers'] as KObject[]
  )[0] as KObject;
  container['command'] = ['/bin/sh', '-c', '--', 'python3 report.py --all 1>>logs/report.log 2>>logs/report.err'];
  return cron;
}

/** The codes of the notes that come from comparing the entry's render with what runs. */
const BEHAVIOUR = /^(?:runs-differently-|mount-made-explicit$|stdout-kept$|stderr-kept$)/;

interface Case {
  tool: string;
  workloads: () => unknown[];
  /** The behaviour notes of the job, in order. */
  codes: string[];
  /** The note that names the change of this kind, word for word. */
  note?: MigrationNote;
  /** Keys the entry carries because a difference was undone in it. */
  entry?: Record<string, unknown>;
}

const CASES: Readonly<Record<string, Case>> = {
  'the stdout file moves: a v1 trailing `1>> file` is kept with filelog-stdout': {
    tool: 'mytool',
    workloads: () => [v1LogsElsewhere()],
    codes: [
      'stdout-kept',
      'stderr-kept',
      'runs-differently-command',
      'runs-differently-resources',
      'runs-differently-grace-period',
      'runs-differently-security-context',
    ],
    note: {
      code: 'stdout-kept',
      where: 'filelog-stdout',
      message:
        "written as 'filelog-stdout: logs/report.log': this job writes its stdout to /data/project/mytool/logs/report.log; jobs-api would write it to /data/project/mytool/daily-report.out",
      attention: false,
    },
    entry: { 'filelog-stdout': 'logs/report.log', 'filelog-stderr': 'logs/report.err' },
  },
  'NFS mounts disappear: a hand-written build service Deployment without a mount label gets mount: all': {
    tool: 'othertool',
    workloads: () => [handWritten('deployment-port-probe')],
    codes: [
      'mount-made-explicit',
      'runs-differently-env',
      'runs-differently-probes',
      'runs-differently-object',
      'runs-differently-grace-period',
      'runs-differently-security-context',
    ],
    note: {
      code: 'mount-made-explicit',
      where: 'mount',
      message:
        "written as 'mount: all': it has no mount-storage label, so its pods get every NFS mount (the tool's home, /data/project, …); jobs-api runs a build service image without them unless the entry says 'mount: all'",
      attention: false,
    },
    entry: { mount: 'all' },
  },
  'cpu and memory requests rise to the limit, with the new figures': {
    tool: 'mytool',
    workloads: () => [loadWorkload('v1-scheduled-filelog')],
    codes: [
      'runs-differently-command',
      'runs-differently-resources',
      'runs-differently-grace-period',
      'runs-differently-security-context',
    ],
    note: {
      code: 'runs-differently-resources',
      where: 'container.resources',
      message: 'cpu request would rise from 250m to 500m; memory request would rise from 256Mi to 512Mi',
      instead:
        "nothing, unless the tool's quota is tight: the job will reserve requests cpu 500m, memory 512Mi (from 'cpu: 0.5'); jobs-api requests what the entry's 'cpu' and 'mem' give as the limit, so write lower values to reserve less",
      attention: false,
    },
  },
  'a v1 `>/dev/null` goes to the container log': {
    tool: 'mytool',
    workloads: () => [loadWorkload('v1-continuous-nofilelog')],
    codes: [
      'runs-differently-stdout',
      'runs-differently-stderr',
      'runs-differently-command',
      'runs-differently-resources',
      'runs-differently-grace-period',
      'runs-differently-security-context',
    ],
    note: {
      code: 'runs-differently-stdout',
      where: 'container.command (stdout)',
      message: 'stdout would move from /dev/null (discarded) to the job log (toolforge jobs logs)',
      instead:
        "nothing: the output is kept in the job log ('toolforge jobs logs listener'); to discard it as before, add 'filelog: true' and 'filelog-stdout: /dev/null'",
      attention: false,
    },
  },
  "workingDir becomes the tool's home": {
    tool: 'mytool',
    workloads: () => [handWritten('kubectl-create-deployment')],
    codes: [
      'runs-differently-command',
      'runs-differently-working-dir',
      'runs-differently-resources',
      'runs-differently-strategy',
      'runs-differently-grace-period',
      'runs-differently-security-context',
    ],
    note: {
      code: 'runs-differently-working-dir',
      where: 'container.workingDir',
      message: 'the working directory would be set to /data/project/mytool',
      instead:
        "relative paths in the command start from /data/project/mytool; if the command relies on another directory, start it with 'cd DIR && '",
      attention: false,
    },
  },
  'the image variant changes': {
    tool: 'mytool',
    workloads: () => [handWritten('kubectl-create-cronjob')],
    codes: [
      'runs-differently-command',
      'runs-differently-working-dir',
      'runs-differently-image',
      'runs-differently-resources',
      'runs-differently-grace-period',
      'runs-differently-starting-deadline',
      'runs-differently-security-context',
    ],
    note: {
      code: 'runs-differently-image',
      where: 'container.image',
      message:
        'the image would change from toolforge-python311-sssd-base:latest to toolforge-python311-sssd-web:latest',
      instead:
        "nothing: jobs-api runs this variant for every job on the image named in 'image' (the same language and libraries); pick another 'image' if the job needs another one",
      attention: false,
    },
  },
  'an entry that runs exactly as the workload does gets no note': {
    tool: 'mytool',
    workloads: () => [loadWorkload('v2-continuous-buildservice-shell-less'), loadWorkload('v2-service-port-http')],
    codes: [],
  },
};

function planOf(c: Case): { job: JobMigration; plan: ReturnType<typeof planTool> } {
  const plan = planTool({
    tool: c.tool,
    phase: 'runtime-truth',
    workloads: c.workloads(),
    crs: [],
    settings: SETTINGS,
  });
  assert.equal(plan.jobs.length, 1, JSON.stringify(plan.jobs.map((j) => j.name)));
  const job = plan.jobs[0];
  assert.ok(job?.entry);
  return { job, plan };
}

describe("migrate names every change jobs-api's render of an entry makes (preflight's classifier)", () => {
  for (const [name, c] of Object.entries(CASES)) {
    test(name, () => {
      const { job } = planOf(c);
      assert.deepEqual(
        job.notes.filter((n) => BEHAVIOUR.test(n.code)).map((n) => n.code),
        c.codes,
      );
      if (c.note)
        assert.deepEqual(
          job.notes.find((n) => n.code === c.note?.code),
          c.note,
        );
      for (const [key, value] of Object.entries(c.entry ?? {}))
        assert.equal((job.entry as unknown as Record<string, unknown>)[key], value, key);
      assert.equal(job.inJobsYaml, true, 'the entry stays in jobs.yaml');
      assert.deepEqual(
        validateLoadEntry(job.entry, 0).filter((i) => i.severity === 'error'),
        [],
        'an amended entry still loads',
      );
    });
  }

  test('an amended entry leaves no difference of its kind: the render of the written entry keeps the files and mounts', () => {
    for (const c of [
      CASES['the stdout file moves: a v1 trailing `1>> file` is kept with filelog-stdout'],
      CASES['NFS mounts disappear: a hand-written build service Deployment without a mount label gets mount: all'],
    ]) {
      assert.ok(c);
      const { job } = planOf(c);
      assert.ok(job.entry);
      const rendered = renderJobWorkloads(jobFromLoadEntry(job.entry, c.tool), SETTINGS);
      assert.ok(rendered.ok);
      const fields = diffWorkloads(c.workloads(), rendered.value)
        .differences.filter((d) => d.class === 'functional')
        .map((d) => d.field);
      assert.equal(
        fields.filter((f) => f.includes('(stdout)') || f.includes('(stderr)') || f.includes('mount-storage')).length,
        0,
        fields.join(', '),
      );
    }
  });

  test('the message lists the changes with what to do, and the jobs.yaml carries the amendments', () => {
    const c = CASES['the stdout file moves: a v1 trailing `1>> file` is kept with filelog-stdout'];
    assert.ok(c);
    const { plan } = planOf(c);
    const md = renderMarkdown(plan, { deadline: '2026-12-15', announcementUrl: 'https://example.org/a' });
    assert.match(md, /## Other differences, for your information/);
    assert.match(md, /- `filelog-stdout`: written as 'filelog-stdout: logs\/report\.log'/);
    assert.match(
      md,
      /- `container\.resources`: cpu request would rise from 250m to 500m; memory request would rise from 256Mi to 512Mi\. \*\*Instead:\*\* nothing, unless the tool's quota is tight/,
    );
    const yaml = renderJobsYaml(plan);
    assert.match(yaml, /filelog-stdout: logs\/report\.log/);
    assert.match(yaml, /filelog-stderr: logs\/report\.err/);
  });

  test('a difference another note of the job already names is not listed twice', () => {
    // the parser's image-variant note names the image change of a jobs-framework job; the reader's working-dir note
    // the cd the hand-written entry starts with
    const v1 = planOf(CASES['cpu and memory requests rise to the limit, with the new figures'] as Case).job;
    assert.ok(v1.notes.some((n) => n.code === 'image-variant'));
    assert.ok(!v1.notes.some((n) => n.code === 'runs-differently-image'));
    const configMap = planOf({
      tool: 'mytool',
      workloads: () => [handWritten('cronjob-env-configmap')],
      codes: [],
    }).job;
    assert.ok(configMap.notes.some((n) => n.code === 'working-dir'));
    assert.deepEqual(
      configMap.notes.filter((n) => n.code === 'runs-differently-working-dir' || n.code === 'runs-differently-command'),
      [],
    );
  });
});
