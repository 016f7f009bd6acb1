/**
 * Preflight benchmark: N tools × M jobs in a local control plane — per tool, M−1 jobs made through the API (the CR
 * and the CronJob jobs-api renders) and one of an older era (the v2-scheduled-admin-patched fixture, backfilled into
 * storage), so the run classifies real differences — then `jobs-storage preflight -o json` (the CLI, built, in a
 * child process, reading everything cluster-wide over the API) next to a bare paginated LIST of the same objects
 * (the same five collections and page size, each page requested when the previous one has been read and parsed) in
 * a child process of its own, in the same run. Runs alternate bare, preflight; the figures are medians, the RSS the
 * highest peak seen (VmHWM, from /usr/bin/time).
 *
 *   npx tsx test/bench/preflight.ts [--tools 4000] [--jobs 5] [--runs 3]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StoredJob } from '../../src/jobs/index.js';
import { KubeApi } from '../../src/k8s/api.js';
import { DEFAULT_PAGE_SIZE } from '../../src/preflight/read.js';
import { loadWorkload } from '../fixtures/workloads/load.js';
import { parseWorkload } from '../../src/runtime/parse.js';
import { DEFAULT_RUNTIME_SETTINGS } from '../../src/runtime/settings.js';
import { installJobsCrds, REPO_ROOT, startControlPlane } from '../../scripts/control-plane/cluster.js';
import { crOf, scheduledJob, workloadsOf } from '../../scripts/control-plane/jobs.js';
import { buildDist, pool, SYNC_LISTS, writeBareListScript, benchScale } from './cluster.js';
import { median } from './median.js';

const { tools: TOOLS, jobs: JOBS, runs: RUNS } = benchScale();
/** preflight's page size, which the bare LIST uses too. */
const PAGE = DEFAULT_PAGE_SIZE;

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Measured {
  seconds: number;
  peakRssMb: number;
  code: number;
  stdoutBytes: number;
}

/** Runs a child node process to its end under /usr/bin/time: wall time, peak RSS, exit code, output size. */
function measure(args: string[]): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', 'maxrss_kb=%M', process.execPath, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdoutBytes = 0;
    let err = '';
    child.stdout.on('data', (c: Buffer) => (stdoutBytes += c.length));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const kb = /maxrss_kb=(\d+)/.exec(err);
      if (!kb) {
        reject(new Error(`no peak RSS from the child (exit ${code}): ${err.slice(-2000)}`));
        return;
      }
      resolve({ seconds, peakRssMb: Number(kb[1]) / 1024, code: code ?? -1, stdoutBytes });
    });
  });
}

/** The older-era CronJob of a tool, and the CR the backfill made from it. */
function olderEra(tool: string): { cronjob: Obj; cr: Obj } {
  const text = JSON.stringify(loadWorkload('v2-scheduled-admin-patched'))
    .replaceAll('tf-test', tool)
    .replaceAll('mytool', tool);
  const cronjob = JSON.parse(text) as Obj;
  for (const key of ['uid', 'resourceVersion', 'managedFields', 'creationTimestamp', 'generation'])
    delete cronjob['metadata'][key];
  delete cronjob['status'];
  const parsed = parseWorkload(cronjob, DEFAULT_RUNTIME_SETTINGS);
  if (!parsed.ok) throw new Error(parsed.problem.message);
  return { cronjob, cr: crOf(parsed.value.job as StoredJob) as unknown as Obj };
}

async function main(): Promise<void> {
  buildDist();
  const cp = await startControlPlane({
    extraApiserverArgs: ['--max-requests-inflight=800', '--max-mutating-requests-inflight=400'],
  });
  try {
    await installJobsCrds(cp);
    const admin = new KubeApi(cp.kubeConfig('admin'));
    const tools = Array.from({ length: TOOLS }, (_, i) => `t${String(i).padStart(5, '0')}`);
    const t0 = Date.now();
    await pool(tools, 32, async (tool) => {
      await admin.request('POST', '/api/v1/namespaces', {
        body: {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: `tool-${tool}`, labels: { tenancy: 'tool', name: `tool-${tool}` } },
        },
      });
    });
    const jobs = tools.flatMap((tool) => Array.from({ length: JOBS - 1 }, (_, j) => scheduledJob(tool, `job-${j}`)));
    await pool(jobs, 48, async (job) => {
      const ns = `tool-${job.tool_name}`;
      await admin.request('POST', `/apis/jobs-api.toolforge.org/v1/namespaces/${ns}/scheduled-jobs`, {
        body: crOf(job),
      });
      for (const obj of workloadsOf(job))
        await admin.request('POST', `/apis/batch/v1/namespaces/${ns}/cronjobs`, {
          body: obj,
          query: { fieldManager: 'jobs-api toolforge_weld' },
        });
    });
    await pool(tools, 48, async (tool) => {
      const { cronjob, cr } = olderEra(tool);
      await admin.request('POST', `/apis/jobs-api.toolforge.org/v1/namespaces/tool-${tool}/scheduled-jobs`, {
        body: cr,
      });
      await admin.request('POST', `/apis/batch/v1/namespaces/tool-${tool}/cronjobs`, { body: cronjob });
    });
    const total = TOOLS * JOBS;
    console.error(
      `[bench] seeded ${TOOLS} tools, ${total} CronJobs and ${total} CRs in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    );

    const dir = mkdtempSync(join(tmpdir(), 'jobs-storage-bench-preflight-'));
    const configFile = cp.cliConfig();
    const baselineScript = join(dir, 'bare-list.mjs');
    writeBareListScript(baselineScript, PAGE, SYNC_LISTS);

    const bare: Measured[] = [];
    const preflight: Measured[] = [];
    const preflightArgs = [join(REPO_ROOT, 'dist/main.js'), 'preflight', '-o', 'json', '--config', configFile];
    for (const flags of (process.env['BENCH_VARIANTS'] ?? '').split('|').filter(Boolean)) {
      const m = await measure([...flags.split(' '), ...preflightArgs]);
      console.error(
        `[bench] variant node ${flags}: preflight ${m.seconds.toFixed(2)} s / ${m.peakRssMb.toFixed(0)} MB`,
      );
    }
    for (let run = 0; run < RUNS; run++) {
      bare.push(await measure([baselineScript, cp.kubeconfigPath('admin')]));
      const p = await measure(preflightArgs);
      if (p.code !== 1) throw new Error(`preflight exited ${p.code}; expected 1 (one older-era job per tool)`);
      preflight.push(p);
      console.error(
        `[bench] run ${run + 1}: bare ${bare[run]?.seconds.toFixed(2)} s / ${bare[run]?.peakRssMb.toFixed(0)} MB, preflight ${p.seconds.toFixed(2)} s / ${p.peakRssMb.toFixed(0)} MB (${(p.stdoutBytes / 1e6).toFixed(1)} MB of JSON)`,
      );
    }
    const b = median(bare.map((m) => m.seconds));
    const p = median(preflight.map((m) => m.seconds));
    const rss = Math.max(...preflight.map((m) => m.peakRssMb));
    console.log(
      `preflight benchmark: ${TOOLS} tools × ${JOBS} jobs (${total} CronJobs and CRs, 1 older-era job per tool), page size ${PAGE}, median of ${RUNS}`,
    );
    console.log(
      `  bare paginated LIST of the same five collections (child process): ${b.toFixed(2)} s, peak RSS ${Math.max(...bare.map((m) => m.peakRssMb)).toFixed(0)} MB`,
    );
    console.log(
      `  jobs-storage preflight -o json (child process, exit 1): ${p.toFixed(2)} s, peak RSS ${rss.toFixed(0)} MB`,
    );
    console.log(`  ratio ${(p / b).toFixed(2)}× (target ≤ 2×), peak RSS ${rss.toFixed(0)} MB (target ≤ 200 MB)`);
  } finally {
    await cp.stop();
  }
}

await main();
