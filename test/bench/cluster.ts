/**
 * What the cluster benchmarks share: the seeded cluster (N tools × M jobs-api CronJobs, 80 % with their CR), a child
 * process measured for wall time and peak RSS, and the bare paginated LIST every figure is set next to.
 */
import { parseArgs } from 'node:util';
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
  /** With `hold`: the peak RSS when `done` was seen; `peakRssMb` is then the peak through the hold as well. */
  doneRssMb?: number;
  /** What the child printed on stdout up to `done`. */
  stdout?: string;
  /** With `hold`: what it printed after `done`, up to the end of the hold. */
  stdoutAfterDone?: string;
  /** The child's CPU time (user + system, /proc/<pid>/stat), as last sampled: every 50 ms and at `done`. */
  cpuSeconds: number;
}

export interface MeasureOptions {
  /**
   * Keep the process running after `done` (sampling RSS) until `until` holds for its stdout since then, e.g. through
   * several relists; a hold longer than `timeoutMs` fails the measurement.
   */
  hold?: { until: (stdoutSinceDone: string) => boolean; timeoutMs: number };
}

/**
 * Runs a child node process, returns its wall time and peak RSS (VmHWM): up to `done` on stdout (the process is then
 * killed, or after `hold`), or up to its exit when `done` is 'exit' (it must exit 0; the RSS is then the last
 * sample, every 50 ms). `seconds` is the time to `done` either way.
 */
export function measure(
  args: string[],
  done: RegExp | 'exit',
  env: NodeJS.ProcessEnv = process.env,
  options: MeasureOptions = {},
): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let peakKb = 0;
    let cpuTicks = 0;
    let seen = false;
    let finished = false;
    let since = '';
    let holdTimer: NodeJS.Timeout | undefined;
    const sample = () => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
        // Fields 14 and 15 (utime, stime, in clock ticks of 10 ms), counted after the command name's ')'.
        const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        cpuTicks = Number(fields[11]) + Number(fields[12]);
      } catch {
        // the process is gone
      }
    };
    const poll = setInterval(sample, 50);
    let seconds = 0;
    const finish = (doneKb?: number, after?: string) => {
      finished = true;
      clearInterval(poll);
      clearTimeout(holdTimer);
      resolve({
        seconds,
        peakRssMb: peakKb / 1024,
        cpuSeconds: cpuTicks / 100,
        stdout: out,
        ...(doneKb !== undefined ? { doneRssMb: doneKb / 1024 } : {}),
        ...(after !== undefined ? { stdoutAfterDone: after } : {}),
      });
    };
    const stop = () => child.kill(args.some((a) => a.startsWith('--cpu-prof')) ? 'SIGTERM' : 'SIGKILL');
    let doneKb = 0;
    const hold = options.hold;
    child.stdout.on('data', (chunk: Buffer) => {
      if (finished) return;
      if (seen) {
        since += chunk.toString();
        if (hold?.until(since)) {
          sample();
          stop();
          finish(doneKb, since);
        }
        return;
      }
      out += chunk.toString();
      if (done !== 'exit' && done.test(out)) {
        seen = true;
        seconds = Number(process.hrtime.bigint() - started) / 1e9;
        sample();
        const line = out.split('\n').find((l) => done.test(l));
        if (process.env['BENCH_VERBOSE']) console.error(`[bench] ${line}`);
        if (!hold) {
          stop();
          finish();
          return;
        }
        doneKb = peakKb;
        holdTimer = setTimeout(() => {
          stop();
          finished = true;
          clearInterval(poll);
          reject(new Error(`held ${hold.timeoutMs} ms after "${done}" without the end of the hold`));
        }, hold.timeoutMs);
      }
    });
    child.on('exit', (code) => {
      if (done === 'exit') {
        seconds = Number(process.hrtime.bigint() - started) / 1e9;
        if (code === 0) finish();
        else {
          clearInterval(poll);
          reject(new Error(`child exited (${code}): ${out.slice(-2000)}`));
        }
      } else if (!finished) {
        clearInterval(poll);
        clearTimeout(holdTimer);
        finished = true;
        reject(
          new Error(`child exited (${code}) ${seen ? 'while held after' : 'before'} "${done}": ${out.slice(-2000)}`),
        );
      }
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
 * A control plane with `tools` tool namespaces, `jobs` jobs-api CronJobs in each, and the CRs of 80 % of them
 * (`storedShare`: another share, e.g. 0 for an import's starting point).
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
    return await growCluster({ cp, tools: [], cronJobs: 0, crs: 0 }, tools, jobsPerTool, o);
  } catch (err) {
    await cp.stop();
    throw err;
  }
}

/** Clients the seeding spreads its creates over: one client keeps at most 16 connections. */
const SEED_CLIENTS = 4;
const SEED_WIDTH = 64;

/**
 * Adds tools to a seeded cluster until it has `tools` of them, each as `seedCluster` makes them (the same jobs and
 * the same 80 % with a CR), so a benchmark can measure a small cluster, then a large one, without seeding twice. The
 * creates run in parallel over several connections: namespaces first, then each job's CronJob followed by its CR.
 */
export async function growCluster(
  seeded: SeededCluster,
  tools: number,
  jobsPerTool: number,
  o: { storedShare?: number } = {},
): Promise<SeededCluster> {
  const share = o.storedShare ?? STORED_SHARE;
  const { cp } = seeded;
  const clients = Array.from({ length: SEED_CLIENTS }, () => new KubeApi(cp.kubeConfig('admin')));
  const client = (i: number): KubeApi => clients[i % SEED_CLIENTS] as KubeApi;
  const names = Array.from({ length: tools - seeded.tools.length }, (_, i) => toolName(seeded.tools.length + i));
  const t0 = Date.now();
  await pool(
    names.map((tool, i) => [tool, i] as const),
    SEED_WIDTH,
    async ([tool, i]) => {
      await client(i).request('POST', '/api/v1/namespaces', {
        body: {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: `tool-${tool}`, labels: { tenancy: 'tool', name: `tool-${tool}` } },
        },
      });
    },
  );
  const jobs = names.flatMap((tool) => Array.from({ length: jobsPerTool }, (_, j) => scheduledJob(tool, `job-${j}`)));
  let crs = 0;
  await pool(
    jobs.map((job, i) => [job, i] as const),
    SEED_WIDTH,
    async ([job, i]) => {
      const api = client(i);
      for (const obj of workloadsOf(job))
        await api.request('POST', `/apis/batch/v1/namespaces/tool-${job.tool_name}/cronjobs`, {
          body: obj,
          query: { fieldManager: 'jobs-api toolforge_weld' },
        });
      // The same share as before: by the job's index within the whole cluster.
      if ((seeded.cronJobs + i) % 10 < share * 10) {
        await api.request('POST', `/apis/jobs-api.toolforge.org/v1/namespaces/tool-${job.tool_name}/scheduled-jobs`, {
          body: crOf(job),
        });
        crs += 1;
      }
    },
  );
  const seconds = (Date.now() - t0) / 1000;
  console.error(
    `[bench] seeded ${names.length} tools, ${jobs.length} CronJobs, ${crs} CRs in ${seconds.toFixed(0)} s ` +
      `(${((names.length + jobs.length + crs) / seconds).toFixed(0)} creates/s, ${SEED_WIDTH} at a time)`,
  );
  return { cp, tools: [...seeded.tools, ...names], cronJobs: seeded.cronJobs + jobs.length, crs: seeded.crs + crs };
}

function toolName(i: number): string {
  return `t${String(i).padStart(5, '0')}`;
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

/**
 * A module for `node --import` that appends the process's memory to the file named by BENCH_MEMORY_SAMPLES every
 * 100 ms, one JSON line per sample (MB): `process.memoryUsage()` and each V8 heap space's used and reserved size.
 * Bench-only: the sync itself knows nothing of it.
 */
export function writeMemoryProbe(file: string): void {
  writeFileSync(
    file,
    `import { appendFileSync } from 'node:fs';
import v8 from 'node:v8';
const out = process.env.BENCH_MEMORY_SAMPLES;
const mb = (n) => Math.round((n / 1048576) * 10) / 10;
if (out) setInterval(() => {
  const m = process.memoryUsage();
  const spaces = {};
  for (const s of v8.getHeapSpaceStatistics()) spaces[s.space_name] = [mb(s.space_used_size), mb(s.space_size)];
  appendFileSync(out, JSON.stringify({ t: Date.now(), rss: mb(m.rss), heapTotal: mb(m.heapTotal), heapUsed: mb(m.heapUsed),
    external: mb(m.external), arrayBuffers: mb(m.arrayBuffers), spaces }) + '\\n');
}, 100).unref();
`,
  );
}

/** From a sync's debug log: when it first reconciled, and each round of lists' first start and last end. */
function listRounds(stdout: string): { rounds: Map<number, [start: number, end: number]>; firstReconcile: number } {
  const rounds = new Map<number, [start: number, end: number]>();
  let firstReconcile = Infinity;
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const l = JSON.parse(line) as { msg?: string; time?: string; list?: number };
    const t = Date.parse(l.time ?? '');
    if (l.msg === 'first complete reconcile') firstReconcile = Math.min(firstReconcile, t);
    if (l.list === undefined || (l.msg !== 'informer listing' && l.msg !== 'informer listed')) continue;
    const [start, end] = rounds.get(l.list) ?? [Infinity, -Infinity];
    rounds.set(l.list, [Math.min(start, t), Math.max(end, t)]);
  }
  return { rounds, firstReconcile };
}

interface MemorySample {
  t: number;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  spaces: Record<string, [used: number, size: number]>;
}

/**
 * The memory probe's samples by phase of a sync's run, from its debug log: the first list up to the first complete
 * reconcile, each later round of lists (from the first informer's "informer listing" to the last one's "informer
 * listed" of that round), and the watching in between. Per phase, the sample with the highest RSS and what made it
 * up, and the highest external and old-space figures seen.
 */
export function memoryPhases(samplesFile: string, stdout: string): string[] {
  const samples = readFileSync(samplesFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as MemorySample);
  const { rounds, firstReconcile } = listRounds(stdout);
  const phaseOf = (t: number): string => {
    if (t <= firstReconcile) return 'first list → first reconcile';
    for (const [n, [start, end]] of rounds) if (n > 1 && t >= start && t <= end) return `relist ${n - 1}`;
    return 'watching';
  };
  const byPhase = new Map<string, MemorySample[]>();
  for (const s of samples) {
    const phase = phaseOf(s.t);
    byPhase.set(phase, [...(byPhase.get(phase) ?? []), s]);
  }
  const lines: string[] = [];
  for (const [phase, list] of byPhase) {
    const peak = list.reduce((a, b) => (b.rss > a.rss ? b : a));
    const max = (f: (s: MemorySample) => number): string => Math.max(...list.map(f)).toFixed(0);
    const space = (s: MemorySample, name: string): string =>
      `${(s.spaces[name]?.[0] ?? 0).toFixed(0)}/${(s.spaces[name]?.[1] ?? 0).toFixed(0)}`;
    lines.push(
      `${phase} (${((list.at(-1)?.t ?? 0) - (list[0]?.t ?? 0)) / 1000} s): peak RSS ${peak.rss.toFixed(0)} MB = heap ` +
        `${peak.heapUsed.toFixed(0)} used/${peak.heapTotal.toFixed(0)} total (old ${space(peak, 'old_space')}, new ` +
        `${space(peak, 'new_space')}, large ${space(peak, 'large_object_space')}), external ${peak.external.toFixed(0)} ` +
        `(array buffers ${peak.arrayBuffers.toFixed(0)}); phase max: heap total ${max((s) => s.heapTotal)}, old used ` +
        `${max((s) => s.spaces['old_space']?.[0] ?? 0)}, external ${max((s) => s.external)}, array buffers ${max((s) => s.arrayBuffers)}`,
    );
  }
  return lines;
}

/**
 * The environment the shipped image gives its processes: the `ENV NAME=value …` lines of the Dockerfile's last stage
 * (the chart sets none of its own), so that a benchmark runs the sync as the image does without restating it.
 */
export function imageEnv(dockerfile = join(REPO_ROOT, 'Dockerfile')): Record<string, string> {
  const lines = readFileSync(dockerfile, 'utf8').split('\n');
  const lastStage = lines.findLastIndex((l) => /^FROM\s/i.test(l));
  const env: Record<string, string> = {};
  for (const line of lines.slice(lastStage + 1)) {
    const m = /^ENV\s+(.*)$/i.exec(line.trim());
    if (!m) continue;
    for (const pair of (m[1] ?? '').split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new Error(`${dockerfile}: ENV "${pair}" is not NAME=value`);
      env[pair.slice(0, eq)] = pair.slice(eq + 1).replace(/^"(.*)"$/, '$1');
    }
  }
  return env;
}

/**
 * The scale a benchmark runs at, from `--tools`, `--jobs` and `--runs` (BENCH_TOOLS and BENCH_JOBS as defaults for
 * `npm run bench`): the options the import, migrate and preflight benchmarks share.
 */
export function benchScale(defaultRuns = 3): { tools: number; jobs: number; runs: number } {
  const { values } = parseArgs({
    options: {
      tools: { type: 'string', default: process.env['BENCH_TOOLS'] ?? '4000' },
      jobs: { type: 'string', default: process.env['BENCH_JOBS'] ?? '5' },
      runs: { type: 'string', default: String(defaultRuns) },
    },
  });
  return { tools: Number(values.tools), jobs: Number(values.jobs), runs: Number(values.runs) };
}
