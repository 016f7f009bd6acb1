/**
 * Sync benchmark: N tools × M jobs in a local control plane, then the sidecar's cold start to its first complete
 * reconcile and its peak RSS, next to a bare paginated LIST of the same objects in a child process of its own, in
 * the same run: the same resources and page size, each page requested when the previous one has been read, parsed
 * and dropped. (The sidecar requests a page as soon as the previous page's continue token is in, and keeps one short
 * fingerprint per job.) Runs alternate bare, sidecar; the figures are medians, the RSS the highest seen.
 *
 * Three phases, in one run:
 *   1. `--tools` × `--jobs` (4,000 × 5), `--runs` runs;
 *   2. at that size, one sidecar kept running through `--relists` relists of every resource, `--relist-seconds`
 *      apart: its peak RSS from start through the relists next to its peak at the first reconcile;
 *   3. the cluster grown to `--scale-tools` × `--jobs` (20,000 × 5: 100k CronJobs, 80k CRs), `--scale-runs` runs
 *      (`--scale-tools 0` skips it).
 * For each size: RSS per 10k jobs, so growth is visible.
 *
 * `BENCH_RELIST_VARIANTS="--flag-a|--flag-b --flag-c|NAME=value"` repeats the relist phase once per set of node
 * flags and environment settings (`NAME=value` words), after the plain one, and prints each peak beside it (how ADR
 * 0002's flags were measured); a `main=<file>` word runs another build of the sync instead (e.g. a commit's `dist/`
 * built elsewhere), to compare code in one run; `NAME=` (no value) unsets it.
 *
 * Every sync runs with the environment the image gives it (the Dockerfile's `ENV`s, `imageEnv`); the bare LIST
 * does not. `--relist-rounds N` runs the plain one and its variants N times, interleaved.
 * `--phases` samples each relist run's memory from inside it (`process.memoryUsage()`, V8's heap spaces, every
 * 100 ms) and prints it by phase: first list, each relist round, watching in between.
 *
 *   npx tsx test/bench/sync.ts [--tools 4000] [--jobs 5] [--runs 5] [--relists 3] [--relist-seconds 20]
 *                              [--scale-tools 20000] [--scale-runs 3]
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { JOBS_STORAGE_SA, REPO_ROOT } from '../../scripts/control-plane/cluster.js';
import {
  buildDist,
  growCluster,
  imageEnv,
  measure,
  memoryPhases,
  seedCluster,
  SYNC_LISTS,
  writeBareListScript,
  writeMemoryProbe,
  type Measured,
} from './cluster.js';
import { median } from './median.js';

const { values } = parseArgs({
  options: {
    tools: { type: 'string', default: process.env['BENCH_TOOLS'] ?? '4000' },
    jobs: { type: 'string', default: process.env['BENCH_JOBS'] ?? '5' },
    runs: { type: 'string', default: '5' },
    relists: { type: 'string', default: '3' },
    'relist-seconds': { type: 'string', default: '20' },
    'scale-tools': { type: 'string', default: process.env['BENCH_SCALE_TOOLS'] ?? '20000' },
    'scale-runs': { type: 'string', default: '3' },
    'relist-rounds': { type: 'string', default: '1' },
    phases: { type: 'boolean', default: false },
  },
});
const TOOLS = Number(values.tools);
const JOBS = Number(values.jobs);
const RUNS = Number(values.runs);
const RELISTS = Number(values.relists);
const RELIST_SECONDS = Number(values['relist-seconds']);
const SCALE_TOOLS = Number(values['scale-tools']);
const SCALE_RUNS = Number(values['scale-runs']);
const RELIST_ROUNDS = Number(values['relist-rounds']);
const PAGE = Number(process.env['BENCH_PAGE'] ?? 100);

const TARGET_RATIO = 1.3;
const TARGET_RSS_MB = 150;
const TARGET_SCALE_RSS_MB = 350;
/** The sync's informers, in the order they list (src/sync/sources.ts). */
const INFORMERS = ['cronjobs', 'deployments', 'services', 'scheduled-jobs', 'continuous-jobs'];
const FIRST_RECONCILE = /first complete reconcile/;

interface SizeResult {
  tools: number;
  cronJobs: number;
  crs: number;
  runs: number;
  bareSeconds: number;
  bareRssMb: number;
  syncSeconds: number;
  syncRssMb: number;
}

async function main(): Promise<void> {
  buildDist();
  let seeded = await seedCluster(TOOLS, JOBS);
  const { cp } = seeded;
  try {
    const dir = mkdtempSync(join(tmpdir(), 'jobs-storage-bench-'));
    const config = (sync: Record<string, unknown>, logLevel = 'info'): string => {
      const file = join(dir, `config-${Object.keys(sync).length}-${logLevel}.yaml`);
      writeFileSync(
        file,
        JSON.stringify({
          logLevel,
          kubeconfig: cp.kubeconfigPath('jobs-storage-sync'),
          phase: { namespace: JOBS_STORAGE_SA.namespace },
          // Any free port: another sync on this machine (a test, a second benchmark) may hold the default.
          admin: { port: 0 },
          sync: {
            port: 0,
            host: '127.0.0.1',
            leaseNamespace: JOBS_STORAGE_SA.namespace,
            listPageSize: PAGE,
            identity: 'bench',
            ...sync,
          },
        }),
      );
      return file;
    };
    const configFile = config({});
    const syncEnv: NodeJS.ProcessEnv = { ...process.env, ...imageEnv() };
    const syncArgs = (file: string, main = join(REPO_ROOT, 'dist/main.js')): string[] => [
      main,
      'sync',
      '--config',
      file,
    ];
    const baselineScript = join(dir, 'bare-list.mjs');
    writeBareListScript(baselineScript, PAGE, SYNC_LISTS);

    for (const flags of (process.env['BENCH_VARIANTS'] ?? '').split('|').filter(Boolean)) {
      const m = await measure([...flags.split(' '), ...syncArgs(configFile)], FIRST_RECONCILE, syncEnv);
      console.error(`[bench] variant node ${flags}: sync ${m.seconds.toFixed(2)} s / ${m.peakRssMb.toFixed(0)} MB`);
    }

    const compare = async (runs: number): Promise<SizeResult> => {
      const bare: Measured[] = [];
      const sync: Measured[] = [];
      for (let run = 0; run < runs; run++) {
        bare.push(await measure([baselineScript, cp.kubeconfigPath('jobs-storage-sync')], /listed \d+/));
        sync.push(await measure(syncArgs(configFile), FIRST_RECONCILE, syncEnv));
        console.error(
          `[bench] ${seeded.cronJobs} jobs, run ${run + 1}: bare ${bare[run]?.seconds.toFixed(2)} s / ${bare[run]?.peakRssMb.toFixed(0)} MB, sync ${sync[run]?.seconds.toFixed(2)} s / ${sync[run]?.peakRssMb.toFixed(0)} MB`,
        );
      }
      return {
        tools: seeded.tools.length,
        cronJobs: seeded.cronJobs,
        crs: seeded.crs,
        runs,
        bareSeconds: median(bare.map((m) => m.seconds)),
        bareRssMb: Math.max(...bare.map((m) => m.peakRssMb)),
        syncSeconds: median(sync.map((m) => m.seconds)),
        syncRssMb: Math.max(...sync.map((m) => m.peakRssMb)),
      };
    };

    const sizes: SizeResult[] = [await compare(RUNS)];

    // The relist phase: every informer logs each complete list at debug level; after the first reconcile, each of
    // those lines is a relist.
    // No backfill while it runs (the grace outlasts it): the 20 % of jobs without a CR keep none, so the relists
    // read what the first reconcile read, and the larger size below is seeded as it says.
    const relistConfig = config(
      { relistSeconds: RELIST_SECONDS, stallSeconds: RELIST_SECONDS - 1, backfillGraceSeconds: 24 * 3600 },
      'debug',
    );
    const relisted = (out: string): number =>
      Math.min(...INFORMERS.map((name) => out.split(`"informer":"${name}","objects"`).length - 1));
    const probe = join(dir, 'memory-probe.mjs');
    writeMemoryProbe(probe);
    let probed = 0;
    /** One relist run with `variant`'s node flags and `NAME=value` environment settings. */
    const holdRelists = async (variant: string): Promise<Measured> => {
      const words = variant.split(' ').filter(Boolean);
      const setting = /^[A-Z_][A-Z0-9_]*=/;
      const env: NodeJS.ProcessEnv = { ...syncEnv };
      for (const w of words.filter((x) => setting.test(x))) {
        const [name, value] = [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)];
        if (value) env[name] = value;
        else delete env[name];
      }
      const main = words.find((x) => x.startsWith('main='))?.slice('main='.length);
      const flags = words.filter((x) => !setting.test(x) && !x.startsWith('main='));
      const samples = join(dir, `memory-${++probed}.jsonl`);
      if (values.phases) {
        flags.unshift('--import', probe);
        env['BENCH_MEMORY_SAMPLES'] = samples;
      }
      const m = await measure([...flags, ...syncArgs(relistConfig, main)], FIRST_RECONCILE, env, {
        hold: { until: (out) => relisted(out) >= RELISTS, timeoutMs: (RELISTS + 2) * RELIST_SECONDS * 1000 + 120_000 },
      });
      console.error(
        `[bench] relists${variant ? `, ${variant}` : ''}: peak ${m.peakRssMb.toFixed(0)} MB, ${m.doneRssMb?.toFixed(0)} MB at reconcile (${m.seconds.toFixed(2)} s)`,
      );
      if (values.phases)
        for (const line of memoryPhases(samples, `${m.stdout ?? ''}${m.stdoutAfterDone ?? ''}`))
          console.error(`[bench]   ${line}`);
      return m;
    };
    const variants = ['', ...(process.env['BENCH_RELIST_VARIANTS'] ?? '').split('|').filter(Boolean)];
    const relistRuns = new Map<string, Measured[]>(variants.map((v) => [v, []]));
    const relistStarted = Date.now();
    for (let round = 0; round < RELIST_ROUNDS; round++)
      for (const v of variants) relistRuns.get(v)?.push(await holdRelists(v));
    const relistSeconds = (Date.now() - relistStarted) / 1000 / RELIST_ROUNDS / variants.length;

    if (SCALE_TOOLS > seeded.tools.length) {
      seeded = await growCluster(seeded, SCALE_TOOLS, JOBS);
      sizes.push(await compare(SCALE_RUNS));
    }

    console.log(
      `sync benchmark: ${JOBS} CronJobs per tool, 80 % with their CR, page size ${PAGE}; ` +
        `the sync with the image's environment (${Object.entries(imageEnv())
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')})`,
    );
    for (const r of sizes) {
      const target = r === sizes[0] ? TARGET_RSS_MB : TARGET_SCALE_RSS_MB;
      console.log(
        `  ${r.tools} tools (${r.cronJobs} CronJobs, ${r.crs} CRs), median of ${r.runs}:\n` +
          `    bare paginated LIST (child process):  ${r.bareSeconds.toFixed(2)} s, peak RSS ${r.bareRssMb.toFixed(0)} MB\n` +
          `    jobs-storage sync, cold start → first complete reconcile: ${r.syncSeconds.toFixed(2)} s, peak RSS ${r.syncRssMb.toFixed(0)} MB\n` +
          `    ratio ${(r.syncSeconds / r.bareSeconds).toFixed(2)}× (target ≤ ${TARGET_RATIO}×), peak RSS ${r.syncRssMb.toFixed(0)} MB (target ≤ ${target} MB), ` +
          `${perTenK(r.syncRssMb, r.cronJobs)} MB per 10k jobs (bare ${perTenK(r.bareRssMb, r.cronJobs)})`,
      );
    }
    const [small, large] = sizes;
    if (small && large)
      console.log(
        `  growth ${small.cronJobs} → ${large.cronJobs} jobs: sync +${perTenK(large.syncRssMb - small.syncRssMb, large.cronJobs - small.cronJobs)} MB per 10k jobs ` +
          `(bare +${perTenK(large.bareRssMb - small.bareRssMb, large.cronJobs - small.cronJobs)})`,
      );
    printRelists(relistRuns, relistSeconds);
  } finally {
    await cp.stop();
  }
}

/** The relist figures, each variant's after the plain sync's; nothing when no relist round ran. */
function printRelists(relistRuns: Map<string, Measured[]>, relistSeconds: number): void {
  const plain = relistRuns.get('') ?? [];
  if (plain.length === 0) return;
  const peaks = (ms: Measured[]): string => ms.map((m) => m.peakRssMb.toFixed(0)).join(', ');
  const atReconcile = (ms: Measured[]): string => ms.map((m) => m.doneRssMb?.toFixed(0)).join(', ');
  console.log(
    `  relists at ${TOOLS} tools: one sync through ${RELISTS} relists of every resource, ${RELIST_SECONDS} s apart (${relistSeconds.toFixed(0)} s), ` +
      `${RELIST_ROUNDS} run(s): peak RSS ${peaks(plain)} MB from start through the relists (target ≤ ${TARGET_RSS_MB} MB), ` +
      `${atReconcile(plain)} MB at its first reconcile (first reconcile in ${plain.map((m) => m.seconds.toFixed(2)).join(', ')} s)`,
  );
  for (const [variant, ms] of relistRuns)
    if (variant)
      console.log(
        `    with ${variant}: peak RSS ${peaks(ms)} MB through the relists, ${atReconcile(ms)} MB at its first reconcile (first reconcile in ${ms.map((m) => m.seconds.toFixed(2)).join(', ')} s)`,
      );
}

function perTenK(mb: number, jobs: number): string {
  return ((mb * 10_000) / jobs).toFixed(1);
}

await main();
