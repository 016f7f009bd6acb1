import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { split as shlexSplit } from 'shlex';
import { parse } from 'yaml';
import type { Phase } from '../phase/behaviour.js';
import { loadWorkload } from '../../test/fixtures/workloads/load.js';
import { DEFAULT_RUNTIME_SETTINGS as SETTINGS } from '../runtime/index.js';
import { parseWorkload } from '../runtime/parse.js';
import { createStorageCodec } from '../storage/codec.js';
import type { StoredJob } from '../jobs/index.js';
import { validateLoadFile } from './load-file.js';
import { planTool, type ToolPlan } from './plan.js';
import {
  rankTools,
  renderIndexCsv,
  renderIndexMarkdown,
  renderJobsYaml,
  renderJson,
  renderMarkdown,
  runCommand,
  toolFolder,
} from './render.js';
import { indexFiles, toolFiles } from './files.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'migrate');
const OPTIONS = {
  deadline: '2027-01-31',
  announcementUrl: 'https://lists.wikimedia.org/hyperkitty/list/cloud-announce/x',
};

function handWritten(name: string): unknown {
  return parse(readFileSync(join(DIR, `${name}.yaml`), 'utf8')) as unknown;
}

function mytool(phase: Phase = 'storage-truth'): ToolPlan {
  return planTool({
    tool: 'mytool',
    phase,
    workloads: [
      handWritten('kubectl-create-cronjob'),
      handWritten('cronjob-env-configmap'),
      handWritten('job-one-off'),
      loadWorkload('v2-scheduled-absolute-logs'),
      loadWorkload('v2-continuous-buildservice-shell-less'),
    ],
    crs: [],
    settings: SETTINGS,
  });
}

describe('jobs.yaml', () => {
  test('reads back as the same entries, valid for a load, schedules quoted, keys sorted', () => {
    const plan = mytool();
    const text = renderJobsYaml(plan);
    const back: unknown = parse(text);
    assert.deepEqual(back, plan.entries);
    assert.deepEqual(validateLoadFile(back), []);
    assert.match(text, /^ {2}schedule: "@monthly"$/m);
    assert.match(text, /^ {2}schedule: "0 3 \* \* \*"$/m);
    assert.match(text, /^ {2}cpu: "2\.0"$/m, 'a number-like string stays a string');
    for (const entry of plan.entries) assert.deepEqual(Object.keys(entry), Object.keys(entry).sort());
  });

  test('a tool with nothing to migrate gets an empty list', () => {
    assert.deepEqual(parse(renderJobsYaml({ tool: 't', entries: [] })), []);
  });
});

describe('the message to maintainers', () => {
  test('says which jobs, when, what happens at the deadline, the file and the commands', () => {
    const plan = mytool();
    const md = renderMarkdown(plan, OPTIONS);
    assert.match(md, /by 2027-01-31/);
    assert.ok(md.includes(OPTIONS.announcementUrl));
    for (const name of ['nightly', 'harvest', 'reindex-all', 'backup', 'webhook-receiver'])
      assert.ok(md.includes(`| \`${name}\` |`), name);
    assert.ok(md.includes('2025-09-01 (kubectl-client-side-apply)'), 'last direct write of harvest');
    assert.ok(md.includes('toolforge jobs load jobs.yaml'));
    assert.ok(
      md.includes("kubectl delete cronjobs --field-selector metadata.name=harvest -l '!app.kubernetes.io/managed-by'"),
    );
    assert.ok(!md.includes('metadata.name=backup'), "jobs-api's own objects are replaced by the load, not deleted");
    assert.ok(md.includes('toolforge envvars create API_TOKEN'), 'env vars → toolforge envvars');
    assert.ok(md.includes(renderJobsYaml(plan).trimEnd()), 'the jobs.yaml is in the message');
    assert.ok(md.includes("toolforge jobs run reindex-all --command='php maintenance/reindex.php --all'"));
  });

  test('the deadline paragraph follows the phase', () => {
    const a = renderMarkdown(mytool('runtime-truth'), OPTIONS);
    const c = renderMarkdown(mytool('ignore-unmanaged'), OPTIONS);
    const d = renderMarkdown(mytool('enforce'), OPTIONS);
    assert.match(a, /From 2027-01-31, the jobs service reads job definitions only from its own records/);
    assert.match(c, /are already not listed .* From 2027-01-31, creating or changing jobs-framework objects directly/);
    assert.match(d, /is refused already/);
  });

  test('a job edited directly: what runs against the record, and that direct changes are lost on the next write', () => {
    const api = loadWorkload('v2-continuous-port-tcp') as { spec: { replicas: number } };
    const parsed = parseWorkload(api, SETTINGS);
    assert.ok(parsed.ok);
    const cr = createStorageCodec().encode(parsed.value.job as StoredJob);
    api.spec.replicas = 5;
    const plan = planTool({ tool: 'mytool', phase: 'enforce', workloads: [api], crs: [cr], settings: SETTINGS });
    const md = renderMarkdown(plan, OPTIONS);
    assert.ok(md.includes('**edited directly**: runs replicas 5 (on record: 2)'));
    assert.match(md, /the direct changes are lost/);
    assert.ok(!md.includes('kubectl delete'), "jobs-api's own object is replaced by the load");
  });

  test('a tool with nothing to migrate is told so', () => {
    const plan = planTool({ tool: 'quiet', phase: 'enforce', workloads: [], crs: [], settings: SETTINGS });
    assert.match(renderMarkdown(plan, OPTIONS), /Nothing to do/);
  });

  test('the JSON is the plan', () => {
    const plan = mytool();
    assert.deepEqual(JSON.parse(renderJson(plan)), JSON.parse(JSON.stringify(plan)));
  });

  test('runCommand quotes values as a shell reads them', () => {
    const cmd = runCommand({ name: 'x', command: "echo 'a b' && ls", image: 'bookworm', 'no-filelog': true, retry: 2 });
    assert.deepEqual(shlexSplit(cmd), [
      'toolforge',
      'jobs',
      'run',
      'x',
      "--command=echo 'a b' && ls",
      '--image=bookworm',
      '--no-filelog',
      '--retry=2',
    ]);
  });
});

describe('the index over tools', () => {
  const other = planTool({
    tool: 'othertool',
    phase: 'storage-truth',
    workloads: [handWritten('deployment-port-probe'), handWritten('cronjob-non-toolforge-image')],
    crs: [],
    settings: SETTINGS,
  });
  const quiet = planTool({ tool: 'quiet', phase: 'storage-truth', workloads: [], crs: [], settings: SETTINGS });
  const tied = planTool({
    tool: 'atool',
    phase: 'storage-truth',
    workloads: [handWritten('kubectl-create-deployment'), handWritten('kubectl-create-cronjob')].map((o) => {
      const obj = o as { metadata: { namespace: string } };
      obj.metadata.namespace = 'tool-atool';
      return obj;
    }),
    crs: [],
    settings: SETTINGS,
  });

  test('ranks by jobs to migrate, then by needing attention, then by name', () => {
    assert.deepEqual(
      rankTools([quiet, tied, other, mytool()]).map((p) => [p.tool, p.jobs.length, p.needsAttention]),
      [
        ['mytool', 5, 3],
        ['atool', 2, 1],
        ['othertool', 2, 1],
        ['quiet', 0, 0],
      ],
    );
  });

  test('CSV and Markdown', () => {
    const csv = renderIndexCsv([quiet, other, mytool()]);
    assert.deepEqual(csv.trimEnd().split('\n'), [
      'tool,jobs,needsAttention,inJobsYaml,handWritten,editedDirectly,notInStorage',
      'mytool,5,3,4,3,0,2',
      'othertool,2,1,1,2,0,0',
      'quiet,0,0,0,0,0,0',
    ]);
    const md = renderIndexMarkdown([quiet, other, mytool()], OPTIONS);
    assert.match(md, /2 tools, 7 jobs, 4 needing attention/);
    assert.ok(md.indexOf('`mytool`') < md.indexOf('`othertool`'));
    assert.ok(!md.includes('`quiet`'), 'tools with nothing to migrate are left out of the Markdown index');
    assert.ok(md.includes('[message](mytool/message.md)'));
  });
});

describe('the files of migrate --all', () => {
  test('one folder per tool with jobs to migrate, and the index', () => {
    const quiet = planTool({ tool: 'quiet', phase: 'enforce', workloads: [], crs: [], settings: SETTINGS });
    const plan = mytool();
    const files = [...toolFiles(plan, OPTIONS), ...toolFiles(quiet, OPTIONS), ...indexFiles([plan, quiet], OPTIONS)];
    assert.deepEqual(
      files.map((f) => f.path),
      ['mytool/jobs.yaml', 'mytool/message.md', 'mytool/plan.json', 'index.csv', 'index.md'],
    );
    assert.equal(files[0]?.content, renderJobsYaml(plan));
  });

  test('a tool name never escapes its folder', () => {
    assert.equal(toolFolder('../etc'), '%2E.%2Fetc');
    assert.equal(toolFolder('a/b'), 'a%2Fb');
    assert.equal(toolFolder('mytool'), 'mytool');
  });
});
