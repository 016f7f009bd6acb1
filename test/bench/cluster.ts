/**
 * What the cluster benchmarks share: the seeded cluster (N tools × M jobs-api CronJobs, 80 % with their CR), a child
 * process measured for wall time and peak RSS, and the bare paginated LIST every figure is set next to.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeApi } from '../../src/k8s/api.js';
import { installJobsCrds, REPO_ROOT, startControlPlane } from '../../scripts/control-plane/cluster.js';
import type { ControlPlane } from '../../scripts/control-plane/cluster.js';
import { crOf, scheduledJob, workloadsOf } from '../../scripts/control-plane/jobs.js';

export const STORED_SHARE = 0.8;

export async function pool<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (i < items.length) await fn(items[i++] as T);
    }),
  );
}

export interface Measured {
  seconds: number;
  peakRssMb: number;
  /** What the child printed on stdout up to then. */
  stdout?: string;
}

/**
 * Runs a child node process, returns its wall time and peak RSS (VmHWM): up to `done` on stdout (the process is then
 * killed), or up to its exit when `done` is 'exit' (it must exit 0; the RSS is then the last sample, every 50 ms).
 */
export function measure(
  args: string[],
  done: RegExp | 'exit',
  env: NodeJS.ProcessEnv = process.env,
): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let peakKb = 0;
    const sample = () => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
      } catch {
        // the process is gone
      }
    };
    const poll = setInterval(sample, 50);
    const finish = () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      clearInterval(poll);
      resolve({ seconds, peakRssMb: peakKb / 1024, stdout: out });
    };
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (done !== 'exit' && done.test(out)) {
        sample();
        const line = out.split('\n').find((l) => done.test(l));
        if (process.env['BENCH_VERBOSE']) console.error(`[bench] ${line}`);
        child.kill(args.some((a) => a.startsWith('--cpu-prof')) ? 'SIGTERM' : 'SIGKILL');
        finish();
      }
    });
    child.on('exit', (code) => {
      clearInterval(poll);
      if (done === 'exit') {
        if (code === 0) finish();
        else reject(new Error(`child exited (${code}): ${out.slice(-2000)}`));
      } else if (!done.test(out)) reject(new Error(`child exited (${code}) before "${done}": ${out.slice(-2000)}`));
    });
  });
}

export function buildDist(): void {
  console.error('[bench] building dist/ for a fair child process');
  if (spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT, stdio: 'inherit' }).status !== 0)
    throw new Error('build failed');
}

export interface SeededCluster {
  cp: ControlPlane;
  tools: string[];
  cronJobs: number;
  crs: number;
}

/**
 * A control plane with `tools` tool namespaces, `jobs` jobs-api CronJobs in each, and the CRs of `storedShare` of
 * them (80 % unless told; 0 for an import).
 */
export async function seedCluster(
  tools: number,
  jobsPerTool: number,
  o: { storedShare?: number } = {},
): Promise<SeededCluster> {
  const cp = await startControlPlane({
    extraApiserverArgs: ['--max-requests-inflight=800', '--max-mutating-requests-inflight=400'],
  });
  try {
    await installJobsCrds(cp);
    const admin = new KubeApi(cp.kubeConfig('admin'));
    const names = Array.from({ length: tools }, (_, i) => `t${String(i).padStart(5, '0')}`);
    const t0 = Date.now();
    await pool(names, 32, async (tool) => {
      await admin.request('POST', '/api/v1/namespaces', {
        body: {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: `tool-${tool}`, labels: { tenancy: 'tool', name: `tool-${tool}` } },
        },
      });
    });
    const jobs = names.flatMap((tool) => Array.from({ length: jobsPerTool }, (_, j) => scheduledJob(tool, `job-${j}`)));
    await pool(jobs, 48, async (job) => {
      for (const obj of workloadsOf(job))
        await admin.request('POST', `/apis/batch/v1/namespaces/tool-${job.tool_name}/cronjobs`, {
          body: obj,
          query: { fieldManager: 'jobs-api toolforge_weld' },
        });
    });
    const stored = jobs.filter((_, i) => i % 10 < (o.storedShare ?? STORED_SHARE) * 10);
    await pool(stored, 48, async (job) => {
      await admin.request('POST', `/apis/jobs-api.toolforge.org/v1/namespaces/tool-${job.tool_name}/scheduled-jobs`, {
        body: crOf(job),
      });
    });
    console.error(
      `[bench] seeded ${tools} tools, ${jobs.length} CronJobs, ${stored.length} CRs in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    );
    return { cp, tools: names, cronJobs: jobs.length, crs: stored.length };
  } catch (err) {
    await cp.stop();
    throw err;
  }
}

/** The collections the sync lists: workloads, the jobs framework's Services, both CR kinds. */
export const SYNC_LISTS: ReadonlyArray<readonly [string, string?]> = [
  ['/apis/batch/v1/cronjobs'],
  ['/apis/apps/v1/deployments'],
  ['/api/v1/services', 'app.kubernetes.io/managed-by=toolforge-jobs-framework'],
  ['/apis/jobs-api.toolforge.org/v1/scheduled-jobs'],
  ['/apis/jobs-api.toolforge.org/v1/continuous-jobs'],
];

/**
 * Writes the bare baseline: a plain node script that lists `lists` one after the other, `page` objects a page, each
 * page requested when the previous one has been read, parsed and dropped, and prints "listed <n>". It authenticates
 * with the kubeconfig given as its argument (token or client certificate).
 */
export function writeBareListScript(
  file: string,
  page: number,
  lists: ReadonlyArray<readonly [string, string?]>,
): void {
  writeFileSync(
    file,
    `import https from 'node:https';
import { readFileSync } from 'node:fs';
import { parse } from '${join(REPO_ROOT, 'node_modules/yaml/dist/index.js')}';
const kc = parse(readFileSync(process.argv[2], 'utf8'));
const server = new URL(kc.clusters[0].cluster.server);
const user = kc.users[0].user;
const b64 = (s) => s && Buffer.from(s, 'base64');
const agent = new https.Agent({ keepAlive: true, ca: b64(kc.clusters[0].cluster['certificate-authority-data']), cert: b64(user['client-certificate-data']), key: b64(user['client-key-data']) });
const headers = { accept: 'application/json', ...(user.token ? { authorization: 'Bearer ' + user.token } : {}) };
const get = (path) => new Promise((resolve, reject) => {
  https.get(new URL(path, server), { agent, headers }, (res) => {
    const chunks = []; res.on('data', (c) => chunks.push(c)); res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString()))); res.on('error', reject);
  }).on('error', reject);
});
async function listAll(path, selector) {
  let token = '', n = 0;
  do {
    const page = await get(path + '?limit=${page}' + (selector ? '&labelSelector=' + encodeURIComponent(selector) : '') + (token ? '&continue=' + encodeURIComponent(token) : ''));
    n += page.items.length; token = page.metadata.continue || '';
  } while (token);
  return n;
}
let total = 0;
for (const [path, selector] of ${JSON.stringify(lists)}) total += await listAll(path, selector);
console.log('listed ' + total);
`,
  );
}
