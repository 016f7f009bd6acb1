import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main } from '../../src/cli.js';
import { KubeApi } from '../../src/k8s/api.js';
import { installJobsCrds, JOBS_STORAGE_SA, startControlPlane } from '../../scripts/control-plane/cluster.js';
import type { ControlPlane } from '../../scripts/control-plane/cluster.js';
import { crOf, scheduledJob, workloadsOf } from '../../scripts/control-plane/jobs.js';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

/** The admin CLI against a real API server: phase get/set, the initial import, the per-tool report. */
describe('jobs-storage import, report and phase', { timeout: 300_000 }, () => {
  let cp: ControlPlane;
  let configFile: string;

  before(async () => {
    cp = await startControlPlane();
    await cp.addTool('alpha');
    await installJobsCrds(cp);
    const admin = new KubeApi(cp.kubeConfig('admin'));
    const asTool = new KubeApi(cp.kubeConfig('alpha'));
    for (const name of ['one', 'two']) {
      for (const obj of workloadsOf(scheduledJob('alpha', name))) {
        await asTool.request('POST', '/apis/batch/v1/namespaces/tool-alpha/cronjobs', { body: obj });
      }
    }
    const stored = scheduledJob('alpha', 'stored');
    await admin.request('POST', '/apis/jobs-api.toolforge.org/v1/namespaces/tool-alpha/scheduled-jobs', {
      body: crOf(stored),
    });
    for (const obj of workloadsOf(stored)) {
      await asTool.request('POST', '/apis/batch/v1/namespaces/tool-alpha/cronjobs', { body: obj });
    }
    const dir = mkdtempSync(join(tmpdir(), 'jobs-storage-operate-'));
    configFile = join(dir, 'config.yaml');
    writeFileSync(
      configFile,
      JSON.stringify({
        logLevel: 'warn',
        kubeconfig: cp.kubeconfigPath('admin'),
        phase: { namespace: JOBS_STORAGE_SA.namespace },
      }),
    );
  });
  after(async () => {
    await cp?.stop();
  });

  test('phase get reports the initial phase until one is set; set records who and why', async () => {
    const before = await cli(['phase', 'get', '--config', configFile]);
    assert.equal(before.code, 0);
    assert.match(before.out, /^runtime-truth \(not set/);
    const set = await cli(['phase', 'set', 'storage-truth', '--reason', 'e2e', '--config', configFile]);
    assert.equal(set.code, 0, set.err);
    assert.match(set.out, /\(unset\) → storage-truth/);
    const after = await cli(['phase', 'get', '--config', configFile]);
    assert.match(after.out, /^storage-truth\n/);
    assert.match(after.out, /→ storage-truth by .*: e2e/);
    const bad = await cli(['phase', 'set', 'sideways', '--config', configFile]);
    assert.equal(bad.code, 2);
  });

  test('import --dry-run lists what it would create and creates nothing', async () => {
    const res = await cli(['import', '--dry-run', '--config', configFile]);
    assert.equal(res.code, 0, res.err);
    assert.match(res.out, /alpha\s+one\s+scheduled\s+create/);
    assert.match(res.out, /would create 2 job definition\(s\)/);
    const crs = await cp.kubectlOk('admin', ['get', 'scheduled-jobs', '-n', 'tool-alpha', '-o', 'name']);
    assert.equal(crs.trim().split('\n').length, 1);
  });

  test('import creates the missing CRs once; a second run creates none', async () => {
    const first = await cli(['import', '--config', configFile]);
    assert.equal(first.code, 0, first.err);
    assert.match(first.out, /created 2, already present 0, skipped 0, failed 0/);
    const crs = await cp.kubectlOk('admin', ['get', 'scheduled-jobs', '-n', 'tool-alpha', '-o', 'name']);
    assert.equal(crs.trim().split('\n').length, 3);
    const second = await cli(['import', '--config', configFile]);
    assert.match(second.out, /created 0, already present 0, skipped 0, failed 0/);
  });

  test('report shows every job in sync and listed', async () => {
    const res = await cli(['report', '-o', 'json', '--config', configFile]);
    assert.equal(res.code, 0, res.err);
    const plans = JSON.parse(res.out) as Array<{
      tool: string;
      jobs: Array<{ name: string; state: string; listedByApi: boolean }>;
    }>;
    const alpha = plans.find((p) => p.tool === 'alpha');
    assert.deepEqual(
      alpha?.jobs.map((j) => [j.name, j.state, j.listedByApi]),
      [
        ['one', 'in-sync', true],
        ['stored', 'in-sync', true],
        ['two', 'in-sync', true],
      ],
    );
  });
});
