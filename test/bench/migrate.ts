/**
 * migrate benchmark: N tools × M jobs in a local control plane (the sync benchmark's seeding: jobs-api CronJobs, 80 %
 * with their CR, so every tool has jobs to migrate), then `jobs-storage migrate --all --out DIR` start to exit and its
 * peak RSS, next to a bare paginated LIST of the same collections (namespaces, CronJobs, Deployments, Jobs, the jobs
 * framework's Services, both CR kinds) in a child process of its own, in the same run, with the same page size.
 * Runs alternate bare, migrate; the figures are medians, the RSS the highest seen.
 *
 *   npx tsx test/bench/migrate.ts [--tools 4000] [--jobs 5] [--runs 3]
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../../scripts/control-plane/cluster.js';
import {
  buildDist,
  measure,
  seedCluster,
  SYNC_LISTS,
  writeBareListScript,
  type Measured,
  benchScale,
} from './cluster.js';
import { median } from './median.js';

const { tools: TOOLS, jobs: JOBS, runs: RUNS } = benchScale();
const PAGE = Number(process.env['BENCH_PAGE'] ?? 100);

/** What `migrate --all` lists: the tool namespaces (500 a page), the sync's collections, and batch Jobs. */
const MIGRATE_LISTS: ReadonlyArray<readonly [string, string?]> = [['/apis/batch/v1/jobs'], ...SYNC_LISTS];

async function main(): Promise<void> {
  buildDist();
  const { cp, cronJobs, crs } = await seedCluster(TOOLS, JOBS);
  try {
    const dir = mkdtempSync(join(tmpdir(), 'jobs-storage-bench-migrate-'));
    const configFile = cp.cliConfig({
      sync: { listPageSize: PAGE },
      migration: { deadline: '2026-12-15', announcementUrl: 'https://lists.wikimedia.org/announce/jobs' },
    });
    const baselineScript = join(dir, 'bare-list.mjs');
    writeBareListScript(baselineScript, PAGE, MIGRATE_LISTS);
    const namespacesScript = join(dir, 'bare-namespaces.mjs');
    writeBareListScript(namespacesScript, 500, [['/api/v1/namespaces']]);

    const bare: Measured[] = [];
    const migrate: Measured[] = [];
    let folders = 0;
    for (let run = 0; run < RUNS; run++) {
      const ns = await measure([namespacesScript, cp.kubeconfigPath('admin')], /listed \d+/);
      const lists = await measure([baselineScript, cp.kubeconfigPath('admin')], /listed \d+/);
      bare.push({
        seconds: ns.seconds + lists.seconds,
        peakRssMb: Math.max(ns.peakRssMb, lists.peakRssMb),
        cpuSeconds: ns.cpuSeconds + lists.cpuSeconds,
      });
      const out = join(dir, `out-${run}`);
      migrate.push(
        await measure(
          [join(REPO_ROOT, 'dist/main.js'), 'migrate', '--all', '--out', out, '--config', configFile],
          'exit',
        ),
      );
      folders = readdirSync(out).length - 2;
      rmSync(out, { recursive: true, force: true });
      console.error(
        `[bench] run ${run + 1}: bare ${bare[run]?.seconds.toFixed(2)} s / ${bare[run]?.peakRssMb.toFixed(0)} MB, migrate ${migrate[run]?.seconds.toFixed(2)} s / ${migrate[run]?.peakRssMb.toFixed(0)} MB`,
      );
    }
    const b = median(bare.map((m) => m.seconds));
    const m = median(migrate.map((x) => x.seconds));
    const rss = Math.max(...migrate.map((x) => x.peakRssMb));
    console.log(
      `migrate benchmark: ${TOOLS} tools × ${JOBS} jobs (${cronJobs} CronJobs, ${crs} CRs), page size ${PAGE}, median of ${RUNS}`,
    );
    console.log(
      `  bare paginated LIST of the same collections (child process): ${b.toFixed(2)} s, peak RSS ${Math.max(...bare.map((x) => x.peakRssMb)).toFixed(0)} MB`,
    );
    console.log(
      `  jobs-storage migrate --all (${folders} tool folders + index): ${m.toFixed(2)} s, peak RSS ${rss.toFixed(0)} MB`,
    );
    console.log(`  ratio ${(m / b).toFixed(2)}× the bare LIST`);
  } finally {
    await cp.stop();
  }
}

await main();
