import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { syncParts } from '../../src/cli/compose.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import type { EventObject } from '../../src/sync/events/decide.js';
import { KubeApi } from '../../src/k8s/api.js';
import { silentLogger } from '../../src/log/logger.js';
import { createSyncMetrics } from '../../src/metrics/registry.js';
import type { SyncMetrics } from '../../src/metrics/registry.js';
import type { PhaseSource } from '../../src/phase/source.js';
import { setPhase } from '../../src/phase/store.js';
import type { SyncLoop } from '../../src/sync/loop.js';
import { installJobsCrds, JOBS_STORAGE_SA, startControlPlane } from '../../scripts/control-plane/cluster.js';
import type { ControlPlane } from '../../scripts/control-plane/cluster.js';
import { scheduledJob, sleep, waitFor, workloadsOf } from '../../scripts/control-plane/jobs.js';

/**
 * The sync leader's Events where a tool's maintainers look: a tool writes a CronJob with kubectl, the sync (as its
 * chart ServiceAccount, with the chart's RBAC) writes an events.k8s.io Event on it, and the tool reads it with
 * `kubectl get events`. Tools read the Events in their own namespace, as Toolforge's tools-user role grants
 * (the control plane's stand-in for it carries that rule).
 */

const GRACE_SECONDS = 2;

interface Replica {
  sync: SyncLoop;
  phase: PhaseSource;
  metrics: SyncMetrics;
}

describe('Events on workloads not managed through the jobs API, on a real control plane', { timeout: 600_000 }, () => {
  let cp: ControlPlane;
  let admin: KubeApi;
  let config: Config;
  let replica: Replica | undefined;

  const eventsOf = async (tool: string, name: string): Promise<EventObject[]> => {
    const list = await admin.request<{ items: EventObject[] }>(
      'GET',
      `/apis/events.k8s.io/v1/namespaces/tool-${tool}/events`,
    );
    return list.items.filter((e) => e.regarding.name === name);
  };

  async function startReplica(identity: string): Promise<Replica> {
    const metrics = createSyncMetrics(new Registry());
    const api = new KubeApi(cp.kubeConfig('jobs-storage-sync'));
    const { phase, sync } = syncParts({ config, logger: silentLogger(), metrics, api }, { identity });
    phase.start();
    sync.start();
    await sync.firstReconcile;
    await waitFor(`${identity} leads`, () => sync.isLeader || undefined);
    return { sync, phase, metrics };
  }

  async function stopReplica(r: Replica | undefined): Promise<void> {
    await r?.sync.stop();
    await r?.phase.stop();
  }

  before(async () => {
    cp = await startControlPlane();
    await Promise.all([cp.addTool('alpha'), cp.addTool('beta')]);
    await installJobsCrds(cp);
    admin = new KubeApi(cp.kubeConfig('admin'));
    config = loadConfig({
      env: {},
      overrides: {
        phase: { namespace: JOBS_STORAGE_SA.namespace },
        migration: { deadline: '2026-12-15' },
        sync: {
          backfillGraceSeconds: GRACE_SECONDS,
          leaseNamespace: JOBS_STORAGE_SA.namespace,
          leaseDurationSeconds: 3,
          renewDeadlineSeconds: 2,
          retryPeriodSeconds: 1,
        },
      },
    });
    await setPhase(admin, config, 'ignore-unmanaged', { by: 'e2e' });
    // Written before the sync ever ran: the first pass finds it.
    await cp.kubectlOk('alpha', [
      'create',
      'cronjob',
      'before-sync',
      '-n',
      'tool-alpha',
      '--image=docker-registry.tools.wmflabs.org/toolforge-python311-sssd-base:latest',
      '--schedule=*/10 * * * *',
      '--',
      '/bin/true',
    ]);
    replica = await startReplica('sync-0');
  });

  after(async () => {
    await stopReplica(replica);
    await cp?.stop();
  });

  test("a tool's `kubectl create cronjob` → the tool sees the Event with `kubectl get events`", async () => {
    await cp.kubectlOk('alpha', [
      'create',
      'cronjob',
      'hand',
      '-n',
      'tool-alpha',
      '--image=docker-registry.tools.wmflabs.org/toolforge-python311-sssd-base:latest',
      '--schedule=*/5 * * * *',
      '--',
      './hand.sh',
    ]);
    const printed = await waitFor('the Event on cronjob/hand in kubectl get events', async () => {
      const out = await cp.kubectlOk('alpha', ['get', 'events', '-n', 'tool-alpha']);
      return out.includes('cronjob/hand') ? out : undefined;
    });
    console.log(`$ kubectl get events -n tool-alpha   # as tool alpha\n${printed}`);
    const line = printed.split('\n').find((l) => l.includes('cronjob/hand')) ?? '';
    assert.match(line, /\bWarning\b/);
    assert.match(line, /\bWrittenOutsideJobsApi\b/);
    assert.match(
      line,
      /CronJob "hand" was written directly \(kubectl or a script\), not through the Toolforge jobs API/,
    );
    assert.match(line, /From 2026-12-15, creating or changing jobs-framework objects directly/);
    assert.match(line, /'toolforge jobs run hand --schedule \.\.\.'/);
    assert.match(line, /How: https:\/\/wikitech\.wikimedia\.org\/wiki\/Help:Toolforge\/Jobs_framework/);

    const [event] = await eventsOf('alpha', 'hand');
    const cronjob = await admin.request<{ metadata: { uid: string } }>(
      'GET',
      '/apis/batch/v1/namespaces/tool-alpha/cronjobs/hand',
    );
    assert.deepEqual(event?.regarding, {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      name: 'hand',
      namespace: 'tool-alpha',
      uid: cronjob.metadata.uid,
    });
    assert.deepEqual(
      [event?.type, event?.action, event?.reportingController, event?.reportingInstance],
      ['Warning', 'Reconcile', 'jobs-storage.toolforge.org/sync', 'sync-0'],
    );
    const created = (await replica!.metrics.events.get()).values.find((v) => v.labels['result'] === 'created');
    assert.ok((created?.value ?? 0) >= 2, 'hand and before-sync');
  });

  test('a workload written before the sync started gets its Event from the first pass', async () => {
    const [event] = await waitFor('the Event on before-sync', async () => {
      const found = await eventsOf('alpha', 'before-sync');
      return found.length > 0 ? found : undefined;
    });
    assert.equal(event?.reason, 'WrittenOutsideJobsApi');
  });

  test('a jobs-framework CronJob without a CR in ignore-unmanaged gets JobNotManaged, after the grace period', async () => {
    await cp.kubectlOk('alpha', ['create', '-f', '-'], {
      stdin: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: workloadsOf(scheduledJob('alpha', 'labelled')) }),
    });
    const [event] = await waitFor('the Event on labelled', async () => {
      const found = await eventsOf('alpha', 'labelled');
      return found.length > 0 ? found : undefined;
    });
    assert.equal(event?.reason, 'JobNotManaged');
    assert.match(event?.note ?? '', /carries Toolforge jobs framework labels, but the jobs API has no record of it/);
    assert.match(event?.note ?? '', /'toolforge jobs load jobs\.yaml'/);
    const out = await cp.kubectlOk('alpha', [
      'get',
      'events',
      '-n',
      'tool-alpha',
      '--field-selector',
      'reason=JobNotManaged',
    ]);
    assert.match(out, /cronjob\/labelled/);
  });

  test('more passes write no second Event; a new leader bumps the same series (count 2)', async () => {
    // Changes to the CronJob make the sync reconcile the tool again, several times.
    for (let i = 0; i < 3; i++) {
      await cp.kubectlOk('alpha', ['annotate', '--overwrite', 'cronjob', 'hand', '-n', 'tool-alpha', `touch=${i}`]);
      await sleep(300);
    }
    await sleep(1000);
    const once = await eventsOf('alpha', 'hand');
    assert.equal(once.length, 1, 'one Event object');
    assert.equal(once[0]?.series, undefined, 'observed once so far');

    // A restarted sync (or another replica taking over) meets the series it did not write: it is observed again.
    await stopReplica(replica);
    replica = await startReplica('sync-1');
    const bumped = await waitFor('the series of hand observed again', async () => {
      const found = await eventsOf('alpha', 'hand');
      return found[0]?.series?.count === 2 ? found : undefined;
    });
    assert.equal(bumped.length, 1, 'still one Event object');
    assert.equal(bumped[0]?.metadata.name, once[0]?.metadata.name);
    assert.ok(bumped[0]?.series?.lastObservedTime);
    // `get events` shows the series count in its wide COUNT column; `kubectl events` as "(x2 over ...)".
    const wide = await cp.kubectlOk('alpha', [
      'get',
      'events',
      '-n',
      'tool-alpha',
      '-o',
      'wide',
      '--field-selector',
      'involvedObject.name=hand',
    ]);
    console.log(`$ kubectl get events -n tool-alpha -o wide --field-selector involvedObject.name=hand\n${wide}`);
    assert.match(wide.split('\n').find((l) => l.includes('cronjob/hand')) ?? '', /\s2\s+hand\.[0-9a-f]{16}\s*$/);
    const events = await cp.kubectlOk('alpha', ['events', '-n', 'tool-alpha', '--for', 'cronjob/hand']);
    console.log(`$ kubectl events -n tool-alpha --for cronjob/hand\n${events}`);
    assert.match(events, /\(x2 over [^)]+\)\s+Warning\s+WrittenOutsideJobsApi\s+CronJob\/hand/);
  });

  test("a tool cannot see another tool's Events", async () => {
    const denied = await cp.kubectl('beta', ['get', 'events', '-n', 'tool-alpha']);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /forbidden/i);
    const own = await cp.kubectlOk('beta', ['get', 'events', '-n', 'tool-beta']);
    assert.doesNotMatch(own, /cronjob\/hand|cronjob\/labelled/);
  });

  test('deleting the workload leaves no new writes for it (its series is forgotten)', async () => {
    await cp.kubectlOk('alpha', ['delete', 'cronjob', 'before-sync', '-n', 'tool-alpha']);
    await sleep(1500);
    const created = async () =>
      (await replica!.metrics.events.get()).values.find((v) => v.labels['result'] === 'created')?.value ?? 0;
    const before = await created();
    await cp.kubectlOk('alpha', ['annotate', '--overwrite', 'cronjob', 'hand', '-n', 'tool-alpha', 'touch=again']);
    await sleep(1500);
    assert.equal(await created(), before);
  });
});
