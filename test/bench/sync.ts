/**
 * Sync benchmark: N tools × M jobs in a local control plane, then the sidecar's cold start to its first complete
 * reconcile and its peak RSS, next to a bare paginated LIST of the same objects in a child process of its own, in
 * the same run: the same resources and page size, each page requested when the previous one has been read, parsed
 * and dropped. (The sidecar requests a page as soon as the previous page's continue token is in, and keeps one short
 * fingerprint per job.) Runs alternate bare, sidecar; the figures are medians, the RSS the highest seen.
 *
 *   npx tsx test/bench/sync.ts [--tools 4000] [--jobs 5] [--runs 5]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KubeApi } from '../../src/k8s/api.js';
import { installJobsCrds, JOBS_STORAGE_SA, REPO_ROOT, startControlPlane } from '../../scripts/control-plane/cluster.js';
import { crOf, scheduledJob, workloadsOf } from '../../scripts/control-plane/jobs.js';
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
const STORED_SHARE = 0.8;

async function pool<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (i < items.length) await fn(items[i++] as T);
    }),
  );
}

interface Measured {
  seconds: number;
  peakRssMb: number;
}

/** Runs a child node process, returns wall time to `doneLine` on stdout and its peak RSS (VmHWM). */
function measure(args: string[], doneLine: RegExp, env: NodeJS.ProcessEnv = process.env): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let peakKb = 0;
    const poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
      } catch {
        // the process is gone
      }
    }, 50);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (doneLine.test(out)) {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        try {
          const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
          if (m) peakKb = Math.max(peakKb, Number(m[1]));
        } catch {
          // already exited
        }
        clearInterval(poll);
        const line = out.split('\n').find((l) => doneLine.test(l));
        if (process.env['BENCH_VERBOSE']) console.error(`[bench] ${line}`);
        child.kill(args.some((a) => a.startsWith('--cpu-prof')) ? 'SIGTERM' : 'SIGKILL');
        resolve({ seconds, peakRssMb: peakKb / 1024 });
      }
    });
    child.on('exit', (code) => {
      clearInterval(poll);
      if (!doneLine.test(out)) reject(new Error(`child exited (${code}) before "${doneLine}": ${out.slice(-2000)}`));
    });
  });
}

async function main(): Promise<void> {
  console.error('[bench] building dist/ for a fair child process');
  if (spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT, stdio: 'inherit' }).status !== 0)
    throw new Error('build failed');
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
    const jobs = tools.flatMap((tool) => Array.from({ length: JOBS }, (_, j) => scheduledJob(tool, `job-${j}`)));
    await pool(jobs, 48, async (job) => {
      for (const obj of workloadsOf(job))
        await admin.request('POST', `/apis/batch/v1/namespaces/tool-${job.tool_name}/cronjobs`, {
          body: obj,
          query: { fieldManager: 'jobs-api toolforge_weld' },
        });
    });
    const stored = jobs.filter((_, i) => i % 10 < STORED_SHARE * 10);
    await pool(stored, 48, async (job) => {
      await admin.request('POST', `/apis/jobs-api.toolforge.org/v1/namespaces/tool-${job.tool_name}/scheduled-jobs`, {
        body: crOf(job),
      });
    });
    console.error(
      `[bench] seeded ${TOOLS} tools, ${jobs.length} CronJobs, ${stored.length} CRs in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    );

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
    writeFileSync(
      baselineScript,
      `import https from 'node:https';
import { readFileSync } from 'node:fs';
import { parse } from '${join(REPO_ROOT, 'node_modules/yaml/dist/index.js')}';
const kc = parse(readFileSync(process.argv[2], 'utf8'));
const server = new URL(kc.clusters[0].cluster.server);
const agent = new https.Agent({ keepAlive: true, ca: Buffer.from(kc.clusters[0].cluster['certificate-authority-data'], 'base64') });
const token = kc.users[0].user.token;
const get = (path) => new Promise((resolve, reject) => {
  https.get(new URL(path, server), { agent, headers: { authorization: 'Bearer ' + token, accept: 'application/json' } }, (res) => {
    const chunks = []; res.on('data', (c) => chunks.push(c)); res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString()))); res.on('error', reject);
  }).on('error', reject);
});
async function listAll(path, selector) {
  let token = '', n = 0;
  do {
    const page = await get(path + '?limit=${PAGE}' + (selector ? '&labelSelector=' + encodeURIComponent(selector) : '') + (token ? '&continue=' + encodeURIComponent(token) : ''));
    n += page.items.length; token = page.metadata.continue || '';
  } while (token);
  return n;
}
let total = 0;
for (const [path, selector] of [
  ['/apis/batch/v1/cronjobs'], ['/apis/apps/v1/deployments'],
  ['/api/v1/services', 'app.kubernetes.io/managed-by=toolforge-jobs-framework'],
  ['/apis/jobs-api.toolforge.org/v1/scheduled-jobs'], ['/apis/jobs-api.toolforge.org/v1/continuous-jobs'],
]) total += await listAll(path, selector);
console.log('listed ' + total);
`,
    );

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
      `sync benchmark: ${TOOLS} tools × ${JOBS} jobs (${jobs.length} CronJobs, ${stored.length} CRs), page size ${PAGE}, median of ${RUNS}`,
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
