import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError } from '../errors.js';
import type { ListPage } from '../k8s/api.js';
import { DEFAULT_RUNTIME_SETTINGS } from '../runtime/settings.js';
import { crOf, scheduledJob, workloadsOf } from '../../scripts/control-plane/jobs.js';
import { readPreflight } from './read.js';

/**
 * The cluster-wide read merges five lists by namespace. These lists are served from memory in the API server's
 * storage-key order (`<namespace>/<name>`), split into small pages so that namespaces straddle page boundaries; the
 * reads against a real API server are in test/e2e/preflight-cli.test.ts.
 */
function served(byPath: Record<string, unknown[]>, pageSize: number) {
  const asked: string[] = [];
  return {
    asked,
    async *listPages<T>(path: string): AsyncGenerator<ListPage<T>> {
      asked.push(path);
      const items = byPath[path] ?? [];
      for (let i = 0; i < items.length || i === 0; i += pageSize) {
        await Promise.resolve();
        yield { items: items.slice(i, i + pageSize) as T[], resourceVersion: '1' };
      }
    },
  };
}

function job(tool: string, name: string, ns = `tool-${tool}`): { cr: unknown; cronjob: unknown } {
  const j = scheduledJob(tool, name);
  const cr = crOf(j) as unknown as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  cr['metadata']['namespace'] = ns;
  const cronjob = workloadsOf(j)[0] as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  cronjob['metadata']['namespace'] = ns;
  return { cr, cronjob };
}

const SCHEDULED = '/apis/jobs-api.toolforge.org/v1/scheduled-jobs';
const CRONJOBS = '/apis/batch/v1/cronjobs';

describe('readPreflight: the cluster-wide lists merged by namespace', () => {
  test('every tool gets exactly its own objects, whatever the page boundaries; other namespaces are skipped', async () => {
    // storage-key order: 'tool-a-b/' sorts before 'tool-a/' ('-' < '/')
    const jobs = [
      job('a-b', 'one'),
      job('a-b', 'two'),
      job('a', 'one'),
      job('a', 'two'),
      job('a', 'three'),
      job('c', 'x'),
    ];
    const onlyCr = job('d', 'lost');
    const onlyWorkload = job('e', 'orphan');
    const system = job('x', 'sys', 'kube-system');
    const api = served(
      {
        [SCHEDULED]: [...jobs.map((j) => j.cr), onlyCr.cr],
        [CRONJOBS]: [system.cronjob, ...jobs.map((j) => j.cronjob), onlyWorkload.cronjob],
      },
      2,
    );
    const report = await readPreflight(api, { runtime: DEFAULT_RUNTIME_SETTINGS }, { pageSize: 2 });
    assert.equal(api.asked.length, 5, 'both CR kinds, CronJobs, Deployments and Services, each listed once');
    assert.deepEqual(
      report.tools.map((t) => [t.tool, t.jobs.map((j) => `${j.job}:${j.verdict}`).sort()]),
      [
        ['a', ['one:same', 'three:same', 'two:same']],
        ['a-b', ['one:same', 'two:same']],
        ['c', ['x:same']],
        ['d', []],
        ['e', []],
      ],
    );
    assert.deepEqual(report.tools.find((t) => t.tool === 'd')?.onlyInStorage, [
      { tool: 'd', job: 'lost', kind: 'ScheduledJob' },
    ]);
    assert.deepEqual(report.tools.find((t) => t.tool === 'e')?.onlyInRuntime, [
      { tool: 'e', job: 'orphan', kind: 'ScheduledJob' },
    ]);
    assert.equal(report.totals.jobs, 6);
    assert.equal(report.exitCode, 0);
  });

  test('a list out of namespace order is an error, never a tool compared with part of its objects', async () => {
    const a = job('a', 'one');
    const b = job('b', 'one');
    const api = served({ [SCHEDULED]: [a.cr, b.cr], [CRONJOBS]: [b.cronjob, a.cronjob] }, 1);
    await assert.rejects(
      readPreflight(api, { runtime: DEFAULT_RUNTIME_SETTINGS }),
      (err: unknown) => err instanceof AppError && err.code === 'ERR_K8S_API' && /out of order/.test(err.message),
    );
  });

  test('named tools are read with namespaced lists', async () => {
    const a = job('a', 'one');
    const api = served(
      {
        '/apis/jobs-api.toolforge.org/v1/namespaces/tool-a/scheduled-jobs': [a.cr],
        '/apis/batch/v1/namespaces/tool-a/cronjobs': [a.cronjob],
      },
      10,
    );
    const report = await readPreflight(api, { runtime: DEFAULT_RUNTIME_SETTINGS }, { tools: ['a', 'a'] });
    assert.ok(api.asked.every((p) => p.includes('/namespaces/tool-a/')));
    assert.deepEqual(
      report.tools.map((t) => [t.tool, t.totals.same]),
      [['a', 1]],
    );
  });
});
