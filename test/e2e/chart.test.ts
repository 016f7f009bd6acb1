/**
 * `helm install` of deploy/chart with the local values on a real control plane, then the product's own processes
 * (`jobs-storage webhook` and `jobs-storage sync`, spawned from bin/) run with the config file the chart installed
 * and the tokens of the chart's ServiceAccounts, i.e. with exactly the chart's RBAC. The control plane has no kubelet,
 * so the chart's pods never start; the processes run on the host, and the webhook configuration points at them with
 * webhook.url and a CA bundle (no cert-manager here).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { REPO_ROOT, baseRbacObjects, startControlPlane } from '../../scripts/control-plane/cluster.js';
import type { ControlPlane } from '../../scripts/control-plane/cluster.js';
import { crOf, scheduledJob, waitFor, workloadsOf } from '../../scripts/control-plane/jobs.js';
import { createCA, createLeaf } from '../../scripts/control-plane/pki.js';
import { freePort, spawnDaemon, stopGroup, tail } from '../../scripts/control-plane/process.js';
import type { Daemon } from '../../scripts/control-plane/process.js';
import { CHART_DIR, VALUES_DIR, runTool } from '../../scripts/tools/binaries.js';

const NS = 'jobs-storage';
const TOOL = 'alpha';
const MANAGED = 'is managed by the Toolforge jobs API';

describe(
  'the chart installed with the local values, its webhook and sync running under its RBAC',
  { timeout: 600_000 },
  () => {
    let cp: ControlPlane;
    let dir = '';
    let ca = '';
    let webhookPort = 0;
    let syncPort = 0;
    const daemons: Daemon[] = [];
    const logs = { webhook: '', sync: '' };

    const helm = (args: string[]) => {
      const res = runTool('helm', [...args, '--kubeconfig', cp.kubeconfigPath('admin')]);
      assert.equal(res.code, 0, `helm ${args.join(' ')}: ${res.stderr}`);
      return res.stdout;
    };
    const helmInstallArgs = (verb: 'install' | 'upgrade') => [
      verb,
      'jobs-storage',
      CHART_DIR,
      '--namespace',
      NS,
      '--values',
      join(VALUES_DIR, 'local.yaml'),
      '--set',
      'certManager.enabled=false',
      '--set',
      `webhook.caBundle=${Buffer.from(ca).toString('base64')}`,
      '--set',
      `webhook.url=https://127.0.0.1:${webhookPort}`,
    ];

    /** The phase the phase ConfigMap holds. */
    const storedPhase = (): Promise<string> =>
      cp.kubectlOk('admin', ['get', 'configmap', 'jobs-storage-phase', '-n', NS, '-o', 'jsonpath={.data.phase}']);

    const get = (url: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const req = https.get(url, url.startsWith('https:') ? { ca } : {}, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
      });
    const httpGet = async (url: string) => {
      const res = await fetch(url);
      return { status: res.status, body: await res.text() };
    };
    const webhookMetrics = async () => (await get(`https://127.0.0.1:${webhookPort}/metrics`)).body;
    const syncMetrics = async () => (await httpGet(`http://127.0.0.1:${syncPort}/metrics`)).body;

    /** The chart's config file as installed, with only what differs on the host: credentials, listeners, certs. */
    function hostConfig(installed: Record<string, Record<string, unknown>>, identity: string): string {
      const file = join(dir, `${identity}.yaml`);
      const config = structuredClone(installed);
      config['kubeconfig'] = cp.kubeconfigPath(identity) as unknown as Record<string, unknown>;
      Object.assign(config['webhook'] ?? {}, {
        host: '127.0.0.1',
        port: webhookPort,
        certFile: join(dir, 'webhook.crt'),
        keyFile: join(dir, 'webhook.key'),
        shutdownDelaySeconds: 0,
      });
      Object.assign(config['sync'] ?? {}, { host: '127.0.0.1', port: syncPort, identity: 'sync-0' });
      // The admin API's loopback listener: a free port, so that concurrent runs on one host do not collide.
      Object.assign(config['admin'] ?? {}, { port: 0 });
      writeFileSync(file, stringifyYaml(config));
      return file;
    }

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'jobs-storage-chart-e2e-'));
      [webhookPort, syncPort] = await Promise.all([freePort(), freePort()]);
      const caPair = await createCA(dir, 'webhook-ca', 'jobs-storage e2e webhook CA');
      const leaf = await createLeaf(dir, 'webhook', caPair, {
        commonName: '127.0.0.1',
        usage: 'server',
        ipAddresses: ['127.0.0.1'],
      });
      ca = readFileSync(caPair.certFile, 'utf8');
      writeFileSync(join(dir, 'webhook.crt'), readFileSync(leaf.certFile));
      writeFileSync(join(dir, 'webhook.key'), readFileSync(leaf.keyFile));

      cp = await startControlPlane({ seed: false });
      // The platform around the chart (tool accounts, jobs-api's identity, the namespaces); nothing of jobs-storage's.
      await cp.apply('admin', baseRbacObjects());
      await cp.addTool(TOOL);
      helm(helmInstallArgs('install'));
      await cp.kubectlOk('admin', [
        'wait',
        '--for=condition=Established',
        'crd/scheduled-jobs.jobs-api.toolforge.org',
        'crd/continuous-jobs.jobs-api.toolforge.org',
      ]);

      await cp.addServiceAccountIdentity('chart-webhook', NS, 'jobs-storage-webhook');
      await cp.addServiceAccountIdentity('chart-sync', NS, 'jobs-storage-sync');
      const installed = parseYaml(
        await cp.kubectlOk('admin', [
          'get',
          'configmap',
          'jobs-storage-config',
          '-n',
          NS,
          '-o',
          'jsonpath={.data.config\\.yaml}',
        ]),
      ) as Record<string, Record<string, unknown>>;
      const bin = join(REPO_ROOT, 'bin', 'jobs-storage.mjs');
      logs.webhook = join(dir, 'webhook.log');
      logs.sync = join(dir, 'sync.log');
      daemons.push(
        spawnDaemon(
          process.execPath,
          [bin, 'webhook', '--config', hostConfig(installed, 'chart-webhook')],
          logs.webhook,
        ),
        spawnDaemon(process.execPath, [bin, 'sync', '--config', hostConfig(installed, 'chart-sync')], logs.sync),
      );
      try {
        await waitFor(
          'the webhook ready',
          async () => (await get(`https://127.0.0.1:${webhookPort}/readyz`)).status === 200,
          60_000,
          500,
        );
        await waitFor(
          'the sync ready',
          async () => (await httpGet(`http://127.0.0.1:${syncPort}/readyz`)).status === 200,
          60_000,
          500,
        );
      } catch (err) {
        throw new Error(`${String(err)}\nwebhook log:\n${tail(logs.webhook)}\nsync log:\n${tail(logs.sync)}`);
      }
    });

    after(async () => {
      for (const d of daemons) await stopGroup(d.pid, 5_000);
      await cp?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('helm reports the release deployed, with the phase of the local values', async () => {
      assert.match(helm(['status', 'jobs-storage', '--namespace', NS]), /STATUS: deployed/);
      const phase = await storedPhase();
      assert.equal(phase, 'ignore-unmanaged');
    });

    test("a tool's kubectl write of a job CR is denied (the chart's ValidatingAdmissionPolicy)", async () => {
      const cr = {
        apiVersion: 'jobs-api.toolforge.org/v1',
        kind: 'ScheduledJob',
        metadata: { name: 'sneaky', namespace: `tool-${TOOL}` },
        spec: {},
      };
      const res = await cp.kubectl(TOOL, ['create', '-f', '-'], { stdin: JSON.stringify(cr) });
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, new RegExp(MANAGED));
    });

    test("a tool's direct CronJob reaches the webhook (under the chart's identity) and is counted", async () => {
      // The apiserver picks the webhook configuration up asynchronously: write until one write is counted.
      let n = 0;
      await waitFor(
        'a direct write counted',
        async () => {
          n += 1;
          const objs = workloadsOf(scheduledJob(TOOL, `direct-${n}`));
          await cp.kubectlOk(TOOL, ['create', '-f', '-'], {
            stdin: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objs }),
          });
          return /toolforge_jobs_direct_writes_total\{[^}]*tool_name="alpha"[^}]*\} [1-9]/.test(await webhookMetrics());
        },
        30_000,
        1_000,
      );
      assert.match(await webhookMetrics(), /toolforge_jobs_phase_info\{phase="ignore-unmanaged"\} 1/);
    });

    test('the sync holds the Lease and counts the unmanaged jobs without backfilling them (phase C)', async () => {
      await waitFor(
        'the sync to count alpha only-in-runtime',
        async () => {
          const text = await syncMetrics();
          return (
            /toolforge_jobs_sync_leader 1/.test(text) &&
            /toolforge_jobs_only_in_runtime\{tool_name="alpha"\} [1-9]/.test(text)
          );
        },
        60_000,
        1_000,
      );
      const crs = await cp.kubectlOk('admin', ['get', 'scheduled-jobs', '-n', `tool-${TOOL}`, '-o', 'name']);
      assert.equal(crs.trim(), '');
      const holder = await cp.kubectlOk('admin', [
        'get',
        'lease',
        'jobs-storage-sync',
        '-n',
        NS,
        '-o',
        'jsonpath={.spec.holderIdentity}',
      ]);
      assert.equal(holder, 'sync-0');
    });

    test("the sync serves the admin API on its loopback listener only, not on the chart's port", async () => {
      const serving = readFileSync(logs.sync, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"sync serving"'))
        .map((l) => JSON.parse(l) as { adminAddress?: { address: string; port: number } })[0];
      assert.equal(serving?.adminAddress?.address, '127.0.0.1', tail(logs.sync));
      const adminPort = serving?.adminAddress?.port ?? 0;
      assert.notEqual(adminPort, syncPort);
      assert.equal((await httpGet(`http://127.0.0.1:${adminPort}/admin/v1/status`)).status, 401);
      assert.equal((await httpGet(`http://127.0.0.1:${syncPort}/admin/v1/status`)).status, 404);
    });

    test('neither process was refused anything by the API server', () => {
      for (const file of [logs.webhook, logs.sync]) {
        assert.doesNotMatch(readFileSync(file, 'utf8'), /forbidden|\b403\b/i, `${file}:\n${tail(file)}`);
      }
    });

    test('helm upgrade keeps the phase an admin set', async () => {
      await cp.kubectlOk('admin', [
        'patch',
        'configmap',
        'jobs-storage-phase',
        '-n',
        NS,
        '-p',
        '{"data":{"phase":"enforce"}}',
      ]);
      helm(helmInstallArgs('upgrade'));
      const phase = await storedPhase();
      assert.equal(phase, 'enforce');
    });

    test('helm uninstall leaves the job CRDs, the jobs, the phase ConfigMap and the Lease', async (t) => {
      await cp.addServiceAccountIdentity('chart-jobs-api', 'jobs-api', 'jobs-api');
      await cp.apply('chart-jobs-api', [crOf(scheduledJob(TOOL, 'kept'))]);
      // The processes stop first, as their pods do: the Lease is what the sync left.
      for (const d of daemons.splice(0)) await stopGroup(d.pid, 5_000);
      helm(['uninstall', 'jobs-storage', '--namespace', NS]);
      const left = async (args: string[]) => (await cp.kubectlOk('admin', [...args, '-o', 'name'])).trim().split('\n');
      const leftInNamespace = await left(['get', 'configmaps,leases,serviceaccounts,secrets', '-n', NS]);
      t.diagnostic(`left in ${NS}: ${leftInNamespace.join(' ')}`);
      assert.ok(leftInNamespace.includes('configmap/jobs-storage-phase'), leftInNamespace.join(' '));
      assert.ok(leftInNamespace.includes('lease.coordination.k8s.io/jobs-storage-sync'), leftInNamespace.join(' '));
      assert.ok(!leftInNamespace.includes('configmap/jobs-storage-config'), 'the config file goes with the release');
      assert.deepEqual(
        await left(['get', 'crd', 'scheduled-jobs.jobs-api.toolforge.org', 'continuous-jobs.jobs-api.toolforge.org']),
        [
          'customresourcedefinition.apiextensions.k8s.io/scheduled-jobs.jobs-api.toolforge.org',
          'customresourcedefinition.apiextensions.k8s.io/continuous-jobs.jobs-api.toolforge.org',
        ],
      );
      assert.deepEqual(await left(['get', 'scheduled-jobs', '-n', `tool-${TOOL}`]), [
        'scheduledjob.jobs-api.toolforge.org/kept',
      ]);
      const phase = await storedPhase();
      assert.equal(phase, 'enforce');
    });
  },
);
