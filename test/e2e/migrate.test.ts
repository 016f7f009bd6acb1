import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { split as shlexSplit } from 'shlex';
import { parse } from 'yaml';
import { main } from '../../src/cli.js';
import { KubeApi } from '../../src/k8s/api.js';
import type { LoadEntry, ToolPlan } from '../../src/migrate/index.js';
import { installJobsCrds, startControlPlane } from '../../scripts/control-plane/cluster.js';
import type { ControlPlane } from '../../scripts/control-plane/cluster.js';
import { scheduledJob, workloadsOf } from '../../scripts/control-plane/jobs.js';
import { loadThroughApi } from '../../scripts/control-plane/load-jobs.js';

const IMAGE = 'docker-registry.tools.wmflabs.org/toolforge-python311-sssd-base:latest';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

interface ReportPlan {
  tool: string;
  jobs: Array<{ name: string; state: string; listedByApi: boolean }>;
  counts: { onlyInRuntime: number; foreign: number };
}

/** `migrate` against a real API server: a kubectl-made CronJob, hand-written workloads, API jobs, several tools. */
describe('jobs-storage migrate', { timeout: 300_000 }, () => {
  let cp: ControlPlane;
  let configFile: string;
  let work: string;

  async function report(tool: string): Promise<ReportPlan | undefined> {
    const res = await cli(['report', '-o', 'json', '--tool', tool, '--config', configFile]);
    assert.equal(res.code, 0, res.err);
    return (JSON.parse(res.out) as ReportPlan[]).find((p) => p.tool === tool);
  }

  before(async () => {
    cp = await startControlPlane();
    await Promise.all(['alpha', 'beta', 'gamma'].map((t) => cp.addTool(t)));
    await installJobsCrds(cp);
    // alpha: a jobs-framework CronJob made with kubectl (no CR), `kubectl create cronjob`, `kubectl create deployment`
    const asAlpha = new KubeApi(cp.kubeConfig('alpha'));
    for (const obj of workloadsOf(scheduledJob('alpha', 'orphan')))
      await asAlpha.request('POST', '/apis/batch/v1/namespaces/tool-alpha/cronjobs', { body: obj });
    await cp.kubectlOk('alpha', [
      'create',
      'cronjob',
      'nightly',
      `--image=${IMAGE}`,
      '--schedule=0 3 * * *',
      '-n',
      'tool-alpha',
      '--',
      'python3',
      'nightly.py',
    ]);
    await cp.kubectlOk('alpha', [
      'create',
      'deployment',
      'web',
      `--image=${IMAGE}`,
      '-n',
      'tool-alpha',
      '--',
      'python3',
      'web.py',
    ]);
    // beta: one kubectl-made jobs-framework CronJob; gamma: a job created through the API only
    const asBeta = new KubeApi(cp.kubeConfig('beta'));
    for (const obj of workloadsOf(scheduledJob('beta', 'lost')))
      await asBeta.request('POST', '/apis/batch/v1/namespaces/tool-beta/cronjobs', { body: obj });
    await loadThroughApi(cp, 'gamma', [
      { name: 'fine', command: './fine.sh', image: 'python3.11', schedule: '@daily' },
    ]);
    work = mkdtempSync(join(tmpdir(), 'jobs-storage-migrate-'));
    configFile = cp.cliConfig({
      migration: { deadline: '2026-12-15', announcementUrl: 'https://lists.wikimedia.org/announce/jobs' },
    });
  });
  after(async () => {
    await cp?.stop();
  });

  test('--all writes a folder per tool with jobs to migrate and the index, ranked; progress and a summary on stderr', async () => {
    const out = join(work, 'all');
    const res = await cli(['migrate', '--all', '--out', out, '--config', configFile]);
    assert.equal(res.code, 0, res.err);
    for (const tool of ['alpha', 'beta'])
      for (const file of ['jobs.yaml', 'message.md', 'plan.json']) assert.ok(existsSync(join(out, tool, file)), file);
    assert.equal(
      existsSync(join(out, 'gamma')),
      false,
      'a tool whose jobs are all managed through the API has no folder',
    );
    const csv = readFileSync(join(out, 'index.csv'), 'utf8').trim().split('\n');
    assert.equal(csv[0], 'tool,jobs,needsAttention,inJobsYaml,handWritten,editedDirectly,notInStorage');
    assert.deepEqual(
      csv.slice(1).map((l) => l.split(',').slice(0, 2).join(',')),
      ['alpha,3', 'beta,1', 'gamma,0'],
    );
    const md = readFileSync(join(out, 'index.md'), 'utf8');
    assert.match(md, /^# Jobs to move to the jobs API by 2026-12-15/);
    assert.match(md, /\| `alpha` \| 3 \|[^\n]*\[message\]\(alpha\/message\.md\)/);
    assert.doesNotMatch(md, /`gamma`/);
    const beta = parse(readFileSync(join(out, 'beta', 'jobs.yaml'), 'utf8')) as LoadEntry[];
    assert.deepEqual(beta, [{ command: './lost.sh', image: 'python3.11', name: 'lost', schedule: '17 3 * * *' }]);
    const plan = JSON.parse(readFileSync(join(out, 'beta', 'plan.json'), 'utf8')) as ToolPlan;
    assert.equal(plan.jobs[0]?.reason, 'not-in-storage');
    assert.match(res.err, /migrate: 0\/\d+ tools/);
    assert.match(res.err, /migrate: (\d+)\/\1 tools/);
    assert.match(res.err, /2 with jobs to migrate: 4 jobs/);

    const again = await cli(['migrate', '--all', '--out', out, '--config', configFile]);
    assert.equal(again.code, 2, 'a directory with a previous run in it is refused');
    assert.match(again.err, /is not empty/);
  });

  test('--tool prints the jobs.yaml and the message; an unknown tool is bad input', async () => {
    const yaml = await cli(['migrate', '--tool', 'alpha', '--config', configFile]);
    assert.equal(yaml.code, 0, yaml.err);
    const entries = parse(yaml.out) as LoadEntry[];
    assert.deepEqual(
      entries.map((e) => e.name),
      ['nightly', 'orphan', 'web'],
    );
    assert.deepEqual(entries[0], {
      command: 'python3 nightly.py',
      image: 'python3.11',
      name: 'nightly',
      'no-filelog': true,
      retry: 5,
      schedule: '0 3 * * *',
    });
    assert.equal(entries[2]?.continuous, true);
    assert.equal(entries[2]?.command, 'python3 web.py');
    assert.match(yaml.err, /^alpha: 3 job\(s\) to migrate, \d+ needing attention, 3 in jobs.yaml$/m);
    const md = await cli(['migrate', '--tool', 'alpha', '-o', 'markdown', '--config', configFile]);
    assert.equal(md.code, 0, md.err);
    assert.match(md.out, /^# Tool `alpha`: please move 3 jobs to the jobs API by 2026-12-15/);
    assert.match(md.out, /toolforge jobs load jobs.yaml/);
    assert.match(md.out, /kubectl delete deployments --field-selector metadata.name=web/);
    assert.match(
      md.out,
      /\| `nightly` \| CronJob \| \*\*written by hand\*\*[^\n]*\| \d{4}-\d\d-\d\d \| [^|]*kubectl-create/,
    );
    const missing = await cli(['migrate', '--tool', 'nosuch', '--config', configFile]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /no tool 'nosuch'/);
  });

  test("the notes name what changes when jobs-api runs an entry (preflight's classifier), against the server's objects", async () => {
    const res = await cli(['migrate', '--tool', 'alpha', '-o', 'json', '--config', configFile]);
    assert.equal(res.code, 0, res.err);
    const plan = JSON.parse(res.out) as ToolPlan;
    const changes = (name: string): string[] =>
      (plan.jobs.find((j) => j.name === name)?.notes ?? [])
        .map((n) => n.code)
        .filter((c) => c.startsWith('runs-differently-'));
    // jobs-api's own render, written with kubectl: the server's defaults are no change
    assert.deepEqual(changes('orphan'), []);
    // `kubectl create deployment`: the image's own working directory and variant, no shell, no resources
    assert.deepEqual(changes('web'), [
      'runs-differently-command',
      'runs-differently-working-dir',
      'runs-differently-image',
      'runs-differently-resources',
      'runs-differently-strategy',
      'runs-differently-grace-period',
      'runs-differently-security-context',
    ]);
    const md = await cli(['migrate', '--tool', 'alpha', '-o', 'markdown', '--config', configFile]);
    assert.equal(md.code, 0, md.err);
    assert.match(
      md.out,
      /- `container\.workingDir`: the working directory would be set to \/data\/project\/alpha\. \*\*Instead:\*\* relative paths in the command start from \/data\/project\/alpha/,
    );
    assert.match(
      md.out,
      /- `container\.image`: the image would change from toolforge-python311-sssd-base:latest to toolforge-python311-sssd-web:latest/,
    );
  });

  test("loading the jobs.yaml through the API and deleting the old objects empties the tool's only-in-runtime and foreign counts", async () => {
    const before = await report('alpha');
    assert.deepEqual(before?.counts && [before.counts.onlyInRuntime, before.counts.foreign], [1, 2]);
    const res = await cli(['migrate', '--tool', 'alpha', '-o', 'json', '--config', configFile]);
    assert.equal(res.code, 0, res.err);
    const plan = JSON.parse(res.out) as ToolPlan;
    // the message's own delete commands, as the tool runs them; the kubectl-made jobs-framework CronJob goes by name
    for (const job of plan.jobs) {
      if (job.deleteCommand === undefined) {
        await cp.kubectlOk('alpha', ['delete', 'cronjob', job.name, '-n', 'tool-alpha']);
        continue;
      }
      const [command, ...args] = shlexSplit(job.deleteCommand);
      assert.equal(command, 'kubectl');
      assert.match(await cp.kubectlOk('alpha', [...args, '-n', 'tool-alpha']), new RegExp(`"?${job.name}"? deleted`));
    }
    assert.deepEqual(await loadThroughApi(cp, 'alpha', plan.entries), ['nightly', 'orphan', 'web']);
    const after = await report('alpha');
    assert.deepEqual(after?.counts && [after.counts.onlyInRuntime, after.counts.foreign], [0, 0]);
    assert.deepEqual(
      after?.jobs.map((j) => [j.name, j.state, j.listedByApi]),
      [
        ['nightly', 'in-sync', true],
        ['orphan', 'in-sync', true],
        ['web', 'in-sync', true],
      ],
    );
    const rerun = await cli(['migrate', '--tool', 'alpha', '-o', 'json', '--config', configFile]);
    assert.deepEqual((JSON.parse(rerun.out) as ToolPlan).jobs, [], 'nothing left to migrate');
  });
});
