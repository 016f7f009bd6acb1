/**
 * Sync benchmark: N tools × M jobs in a local control plane, then the sidecar's cold start to its first complete
 * reconcile and its peak RSS, next to a bare paginated LIST of the same objects in a child process of its own, in
 * the same run: the same resources and page size, each page requested when the previous one has been read, parsed
 * and dropped. (The sidecar requests a page as soon as the previous page's continue token is in, and keeps one short
 * fingerprint per job.) Runs alternate bare, sidecar; the figures are medians, the RSS the highest seen.
 *
 *   npx tsx test/bench/sync.ts [--tools 4000] [--jobs 5] [--runs 5]
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { JOBS_STORAGE_SA, REPO_ROOT } from '../../scripts/control-plane/cluster.js';
import { buildDist, measure, seedCluster, SYNC_LISTS, writeBareListScript, type Measured } from './cluster.js';
import { median } from './median.js';

const { values } = parseArgs({
  options: {
    tools: { type: 'string', default: process.env['BENCH_TOOLS'] ?? '4000' },
    jobs: { type: 'string', default: process.env['BENCH_JOBS'] ?? '5' },
    runs: { type: 'string', default: '5' },
  },
});
const TOOLS = Number(values.tools);
const JOBS = Number(values.jobs);
const RUNS = Number(values.runs);
const PAGE = Number(process.env['BENCH_PAGE'] ?? 100);

async function main(): Promise<void> {
  buildDist();
  const { cp, cronJobs, crs } = await seedCluster(TOOLS, JOBS);
  try {
    const dir = mkdtempSync(join(tmpdir(), 'jobs-storage-bench-'));
    const configFile = join(dir, 'config.yaml');
    writeFileSync(
      configFile,
      JSON.stringify({
        logLevel: 'info',
        kubeconfig: cp.kubeconfigPath('jobs-storage-sync'),
        phase: { namespace: JOBS_STORAGE_SA.namespace },
        sync: {
          port: 0,
          host: '127.0.0.1',
          leaseNamespace: JOBS_STORAGE_SA.namespace,
          listPageSize: PAGE,
          identity: 'bench',
        },
      }),
    );
    const baselineScript = join(dir, 'bare-list.mjs');
    writeBareListScript(baselineScript, PAGE, SYNC_LISTS);

    for (const flags of (process.env['BENCH_VARIANTS'] ?? '').split('|').filter(Boolean)) {
      const m = await measure(
        [...flags.split(' '), join(REPO_ROOT, 'dist/main.js'), 'sync', '--config', configFile],
        /first complete reconcile/,
      );
      console.error(`[bench] variant node ${flags}: sync ${m.seconds.toFixed(2)} s / ${m.peakRssMb.toFixed(0)} MB`);
    }
    const bare: Measured[] = [];
    const sync: Measured[] = [];
    for (let run = 0; run < RUNS; run++) {
      bare.push(await measure([baselineScript, cp.kubeconfigPath('jobs-storage-sync')], /listed \d+/));
      sync.push(
        await measure([join(REPO_ROOT, 'dist/main.js'), 'sync', '--config', configFile], /first complete reconcile/),
      );
      console.error(
        `[bench] run ${run + 1}: bare ${bare[run]?.seconds.toFixed(2)} s / ${bare[run]?.peakRssMb.toFixed(0)} MB, sync ${sync[run]?.seconds.toFixed(2)} s / ${sync[run]?.peakRssMb.toFixed(0)} MB`,
      );
    }
    const b = median(bare.map((m) => m.seconds));
    const s = median(sync.map((m) => m.seconds));
    const rss = Math.max(...sync.map((m) => m.peakRssMb));
    console.log(
      `sync benchmark: ${TOOLS} tools × ${JOBS} jobs (${cronJobs} CronJobs, ${crs} CRs), page size ${PAGE}, median of ${RUNS}`,
    );
    console.log(
      `  bare paginated LIST (child process):  ${b.toFixed(2)} s, peak RSS ${Math.max(...bare.map((m) => m.peakRssMb)).toFixed(0)} MB`,
    );
    console.log(
      `  jobs-storage sync, cold start → first complete reconcile: ${s.toFixed(2)} s, peak RSS ${rss.toFixed(0)} MB`,
    );
    console.log(`  ratio ${(s / b).toFixed(2)}× (target ≤ 1.3×), peak RSS ${rss.toFixed(0)} MB (target ≤ 150 MB)`);
  } finally {
    await cp.stop();
  }
}

await main();
