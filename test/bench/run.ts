/**
 * `npm run bench`: every benchmark, each printing its figure next to the bare baseline it names, in the same run.
 *   webhook — admission requests/s and p99 vs a bare node:https server (test/bench/webhook.ts)
 *   sync    — cold start to first complete reconcile and peak RSS vs a bare paginated LIST (test/bench/sync.ts)
 *   freshness — kubectl create → backfilled CR and → only-in-runtime gauge, 20k jobs in the background, vs a bare
 *             watcher's CronJob watch event (test/bench/freshness.ts)
 *   preflight — `jobs-storage preflight` over the API vs a bare paginated LIST of the same objects (test/bench/preflight.ts)
 *   migrate — `migrate --all --out DIR` time and peak RSS vs a bare paginated LIST (test/bench/migrate.ts)
 *   import  — `import` CRs/s with correct totals vs a bare client creating the same CRs at the same concurrency
 *             (test/bench/import.ts)
 * Sizes: BENCH_TOOLS / BENCH_JOBS (default 4000 × 5); pass `webhook`, `sync`, `freshness`, `preflight`, `migrate` or
 * `import` to run some.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from '../../scripts/control-plane/cluster.js';

const only = process.argv.slice(2);
const benches = ['webhook', 'sync', 'freshness', 'preflight', 'migrate', 'import'].filter(
  (b) => only.length === 0 || only.includes(b),
);
/**
 * Runs one benchmark on this process's node (the pinned runtime, see scripts/tools/node.mjs), its output lines each
 * prefixed with that node's version, so no figure is read apart from the runtime it was measured on.
 */
function runBench(bench: string): Promise<boolean> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'test', 'bench', `${bench}.ts`)], {
    stdio: ['inherit', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => console.log(`node ${process.version} | ${line}`));
  return new Promise((resolve) => child.on('close', (code) => resolve(code === 0)));
}

let failed = false;
for (const bench of benches) {
  console.log(`\n== ${bench} benchmark (node ${process.version}) ==`);
  if (!(await runBench(bench))) failed = true;
}
process.exit(failed ? 1 : 0);
