import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { main } from '../../src/cli.js';
import { KubeApi } from '../../src/k8s/api.js';
import { whoAmI } from '../../src/k8s/identity.js';
import { VERSION } from '../../src/version.js';
import { freePort } from '../../scripts/control-plane/process.js';
import { installJobsCrds, startControlPlane, type ControlPlane } from '../../scripts/control-plane/cluster.js';
import { scheduledJob, workloadsOf } from '../../scripts/control-plane/jobs.js';

interface Kubeconfig {
  'current-context'?: string;
  contexts: Array<{ name: string; context: { cluster: string; user: string } }>;
  clusters: Array<{ name: string; cluster: Record<string, unknown> }>;
  users: Array<{ name: string; user: Record<string, unknown> }>;
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string; seconds: number }> {
  let out = '';
  let err = '';
  const started = Date.now();
  const code = await main(args, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err, seconds: (Date.now() - started) / 1000 };
}

/**
 * The admin CLI's manners against a real API server, as kubectl's: --version, one line for a usage error, a 403 or
 * an unreachable server, --kubeconfig and --context, -o json, and phase set's history naming the API identity.
 */
describe('jobs-storage behaves like kubectl', { timeout: 300_000 }, () => {
  let cp: ControlPlane;
  let configFile: string;
  let adminName: string;

  /** A kubeconfig file holding the given identities' contexts (named after them), `current` the current one. */
  const mergedKubeconfig = (file: string, identities: string[], current: string): string => {
    const merged: Kubeconfig = { 'current-context': current, contexts: [], clusters: [], users: [] };
    for (const identity of identities) {
      const doc = parseYaml(readFileSync(cp.kubeconfigPath(identity), 'utf8')) as Kubeconfig;
      const ctx = doc.contexts.find((c) => c.name === doc['current-context']) ?? doc.contexts[0];
      assert.ok(ctx);
      const cluster = doc.clusters.find((c) => c.name === ctx.context.cluster);
      const user = doc.users.find((u) => u.name === ctx.context.user);
      assert.ok(cluster && user);
      merged.contexts.push({ name: identity, context: { cluster: `c-${identity}`, user: `u-${identity}` } });
      merged.clusters.push({ name: `c-${identity}`, cluster: cluster.cluster });
      merged.users.push({ name: `u-${identity}`, user: user.user });
    }
    const path = join(cp.dir, file);
    writeFileSync(path, JSON.stringify(merged));
    return path;
  };

  before(async () => {
    cp = await startControlPlane();
    await cp.addTool('alpha');
    await installJobsCrds(cp);
    const asTool = new KubeApi(cp.kubeConfig('alpha'));
    for (const obj of workloadsOf(scheduledJob('alpha', 'nightly')))
      await asTool.request('POST', '/apis/batch/v1/namespaces/tool-alpha/cronjobs', { body: obj });
    configFile = cp.cliConfig();
    adminName = (await whoAmI(new KubeApi(cp.kubeConfig('admin')))).username;
    assert.ok(adminName);
  });
  after(async () => {
    await cp?.stop();
  });

  test('--version prints the version, exit 0', async () => {
    const res = await cli(['--version']);
    assert.deepEqual(
      [res.code, res.out, res.err],
      [
        0,
        `${VERSION}
`,
        '',
      ],
    );
  });

  test('a usage error is one line and where the usage is, exit 2', async () => {
    const res = await cli(['phase', 'get', '--output', 'xml', '--config', configFile]);
    assert.equal(res.code, 2);
    assert.equal(
      res.err,
      "jobs-storage: option '-o, --output <format>' argument 'xml' is invalid. Allowed choices are json, yaml.\n" +
        "see 'jobs-storage phase get --help'\n",
    );
  });

  test('a tool identity is refused (403): one line naming the API identity and the verb and resource', async () => {
    for (const [args, request, code] of [
      [['phase', 'get'], 'get configmaps jobs-storage-phase in namespace jobs-storage', 1],
      [['preflight'], 'list [a-z.-]+ at the cluster scope', 2],
    ] as const) {
      const res = await cli([...args, '--kubeconfig', cp.kubeconfigPath('alpha'), '--config', configFile]);
      assert.equal(res.code, code, res.err);
      assert.ok(res.seconds < 10, `took ${res.seconds} s`);
      assert.equal(res.err.trim().split('\n').length, 1, res.err);
      assert.match(
        res.err,
        new RegExp(`^jobs-storage: ${args.join(' ')} stopped: user "alpha" may not ${request} \\(403 Forbidden: `),
      );
      assert.equal(res.out, '');
    }
  });

  test('an unreachable API server (a closed port): one line naming the server after the budget', async () => {
    const closed = join(cp.dir, 'closed-kubeconfig');
    const doc = parseYaml(readFileSync(cp.kubeconfigPath('admin'), 'utf8')) as Kubeconfig;
    const port = await freePort();
    for (const c of doc.clusters) c.cluster['server'] = `https://127.0.0.1:${port}`;
    writeFileSync(closed, JSON.stringify(doc));
    const quick = cp.cliConfig({ oneShot: { unreachableSeconds: 2 } });
    const res = await cli(['phase', 'get', '--kubeconfig', closed, '--config', quick]);
    assert.equal(res.code, 1);
    assert.ok(res.seconds >= 2 && res.seconds < 8, `took ${res.seconds} s`);
    assert.equal(
      res.err,
      `jobs-storage: cannot reach the API server at https://127.0.0.1:${port} (connect ECONNREFUSED 127.0.0.1:${port}); gave up after 2 s (oneShot.unreachableSeconds)\n`,
    );
  });

  test('--kubeconfig and --context choose the credentials, over the config file', async () => {
    const merged = mergedKubeconfig('merged-kubeconfig', ['admin', 'alpha'], 'alpha');
    const asAlpha = await cli(['phase', 'get', '--kubeconfig', merged, '--config', configFile]);
    assert.equal(asAlpha.code, 1);
    assert.match(asAlpha.err, /user "alpha" may not get configmaps/);
    const asAdmin = await cli(['--kubeconfig', merged, '--context', 'admin', 'phase', 'get', '--config', configFile]);
    assert.equal(asAdmin.code, 0, asAdmin.err);
    assert.match(asAdmin.out, /^runtime-truth \(not set/);
  });

  test('-o json: import (dry run and real) and phase get', async () => {
    const dry = await cli(['import', '--dry-run', '-o', 'json', '--config', configFile]);
    assert.equal(dry.code, 0, dry.err);
    assert.deepEqual(JSON.parse(dry.out), {
      dryRun: true,
      wouldCreate: 1,
      jobs: [{ tool: 'alpha', job: 'nightly', type: 'scheduled', result: 'create' }],
    });
    const real = await cli(['import', '-o', 'json', '--config', configFile]);
    assert.equal(real.code, 0, real.err);
    const summary = JSON.parse(real.out) as { dryRun: boolean; counts: unknown; outcomes: number; jobs: unknown[] };
    assert.equal(summary.dryRun, false);
    assert.deepEqual(summary.counts, { created: 1, existed: 0, skipped: 0, failed: 0 });
    assert.equal(summary.outcomes, 1);
    assert.deepEqual(summary.jobs, [{ tool: 'alpha', job: 'nightly', type: 'scheduled', result: 'created' }]);
    const phase = await cli(['phase', 'get', '-o', 'json', '--config', configFile]);
    assert.equal(phase.code, 0, phase.err);
    assert.deepEqual(JSON.parse(phase.out), { phase: 'runtime-truth', stored: false, history: [] });
  });

  test("phase set records the caller's API identity; enforce needs --yes when stdin is not a terminal", async () => {
    const set = await cli(['phase', 'set', 'storage-truth', '--reason', 'e2e', '-o', 'json', '--config', configFile]);
    assert.equal(set.code, 0, set.err);
    assert.equal((JSON.parse(set.out) as { by: string }).by, adminName);
    const refused = await cli(['phase', 'set', 'enforce', '--config', configFile]);
    assert.equal(refused.code, 2);
    assert.match(
      refused.err,
      /stdin is not a terminal to confirm on: add --yes to switch from storage-truth to enforce/,
    );
    const unchanged = await cli(['phase', 'get', '-o', 'json', '--config', configFile]);
    assert.equal((JSON.parse(unchanged.out) as { phase: string }).phase, 'storage-truth');
    const yes = await cli(['phase', 'set', 'enforce', '--yes', '--config', configFile]);
    assert.equal(yes.code, 0, yes.err);
    const after = await cli(['phase', 'get', '-o', 'json', '--config', configFile]);
    const state = JSON.parse(after.out) as { phase: string; history: Array<{ phase: string; by: string }> };
    assert.equal(state.phase, 'enforce');
    assert.deepEqual(
      state.history.map((h) => [h.phase, h.by]),
      [
        ['storage-truth', adminName],
        ['enforce', adminName],
      ],
    );
  });
});
