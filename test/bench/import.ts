/**
 * Import benchmark: N tools × M jobs-api CronJobs without any CR in a local control plane, then `jobs-storage
 * import` (a child process running dist/main.js) next to a bare client (a child process of its own: a paginated LIST
 * of the CronJobs, then a POST of each one's CR at the same concurrency, 409 counted as "existed"), in the same run.
 * The CRs are deleted before every run; which of import and bare goes first alternates by run; the figures are medians.
 *
 * The bare client posts the very CRs the import writes (the job read back from its CronJob, with the provenance
 * annotations): the same work. In the same runs it also posts the CRs `toolforge jobs run` stores, less than half their
 * size, printed for what the size costs but not judged against.
 *
 * The bare client knows the CR of each CronJob in advance (the parent computes them), so it parses nothing: its
 * create phase alone is the fastest this API server takes these CRs at this concurrency. Both rates are printed;
 * the ratio is judged against the bare client's whole run (LIST + POSTs), the same work the import must do, and the
 * ratio against the create phase alone is printed beside it.
 *
 * The import runs with the environment the image gives it (the Dockerfile's `ENV`s, `imageEnv`: glibc malloc's
 * settings) and the V8 flags the chart gives the sync container (`sync.nodeOptions` in deploy/chart/values.yaml, as
 * `NODE_OPTIONS`): an admin runs `import` with `kubectl exec` into the sync pod, which inherits both. So its peak RSS
 * is the one the product sees; the bare client runs plain. `BENCH_IMPORT_NODE_OPTIONS` overrides the flags (empty:
 * none).
 *
 * Besides each client's own CPU, the CPU kube-apiserver and etcd spent during each run is printed: on a 2-core
 * machine that is the share a client's work and the watch traffic it causes take from the API server.
 *
 *   npx tsx test/bench/import.ts [--tools 4000] [--jobs 5] [--runs 3]
 *   BENCH_CPU_PROF=<dir>: the import child writes a V8 CPU profile there when it exits.
 *   BENCH_IMPORT_MEMORY=1: the import child samples its own memory every 100 ms (`process.memoryUsage()` and V8's
 *   heap spaces, a `node --import` probe the import knows nothing of); printed per run while listing and while
 *   writing: the sample at the peak RSS and what made it up.
 *   BENCH_IMPORT_BASELINE=<path to another build's dist/main.js>: each run also runs that import next to this one,
 *   taking turns going first (A, B, bare; then B, A, bare), so a change is compared with what it replaces in the same
 *   run and neither always follows the other.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { KubeApi } from '../../src/k8s/api.js';
import { configSchema } from '../../src/config/schema.js';
import type { StoredJob } from '../../src/jobs/model.js';
import { readWorkload } from '../../src/runtime/read.js';
import { loadRuntimeSettings } from '../../src/runtime/settings.js';
import { createStorageCodec } from '../../src/storage/codec.js';
import { backfillCr } from '../../src/sync/entries.js';
import { IMPORT_BACKFILL_IN_FLIGHT } from '../../src/sync/backfill.js';
import { JOBS_STORAGE_SA, REPO_ROOT } from '../../scripts/control-plane/cluster.js';
import { crOf, scheduledJob, workloadsOf } from '../../scripts/control-plane/jobs.js';
import { buildDist, imageEnv, measure, pool, seedCluster, benchScale, writeMemoryProbe } from './cluster.js';
import type { Measured } from './cluster.js';
import { median } from './median.js';

const { tools: TOOLS, jobs: JOBS, runs: RUNS } = benchScale();
const PAGE = Number(process.env['BENCH_PAGE'] ?? 500);
/** The bare client writes at the import's concurrency unless told otherwise (to compare widths). */
const WIDTH = Number(process.env['BENCH_IMPORT_WIDTH'] ?? IMPORT_BACKFILL_IN_FLIGHT);
const CRS = '/apis/jobs-api.toolforge.org/v1';
const BASELINE = process.env['BENCH_IMPORT_BASELINE'];
const settings = loadRuntimeSettings(configSchema.parse({}));
const codec = createStorageCodec();
const MEMORY = Boolean(process.env['BENCH_IMPORT_MEMORY']);

/** The V8 flags the chart gives the sync container (`sync.nodeOptions`), which `kubectl exec … import` inherits. */
function chartNodeOptions(): string {
  const values = parseYaml(readFileSync(join(REPO_ROOT, 'deploy/chart/values.yaml'), 'utf8')) as {
    sync?: { nodeOptions?: string };
  };
  return values.sync?.nodeOptions ?? '';
}

const NODE_OPTIONS = process.env['BENCH_IMPORT_NODE_OPTIONS'] ?? chartNodeOptions();

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
 * The probe's samples of one import, split where its listing and planning ended (the import's own figure, counted
 * from its first sample): per phase, the sample at the highest RSS and what made it up, and the highest old-space,
 * new-space and array-buffer figures seen.
 */
function memoryReport(samplesFile: string, listingSeconds: number): string[] {
  const samples = readFileSync(samplesFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as MemorySample);
  rmSync(samplesFile, { force: true });
  const first = samples[0]?.t ?? 0;
  const phases: Array<[string, MemorySample[]]> = [
    ['start', samples.slice(0, 1)],
    ['listing and planning', samples.filter((s) => s.t - first <= listingSeconds * 1000)],
    ['writing', samples.filter((s) => s.t - first > listingSeconds * 1000)],
  ];
  const space = (s: MemorySample, name: string): string =>
    `${(s.spaces[name]?.[0] ?? 0).toFixed(0)}/${(s.spaces[name]?.[1] ?? 0).toFixed(0)}`;
  return phases
    .filter(([, list]) => list.length > 0)
    .map(([phase, list]) => {
      const peak = list.reduce((a, b) => (b.rss > a.rss ? b : a));
      const max = (f: (s: MemorySample) => number): string => Math.max(...list.map(f)).toFixed(0);
      return (
        `${phase}: peak RSS ${peak.rss.toFixed(0)} MB = heap ${peak.heapUsed.toFixed(0)} used/` +
        `${peak.heapTotal.toFixed(0)} total (old ${space(peak, 'old_space')}, new ${space(peak, 'new_space')}, large ` +
        `${space(peak, 'large_object_space')}, code ${space(peak, 'code_space')}), external ${peak.external.toFixed(0)} ` +
        `(array buffers ${peak.arrayBuffers.toFixed(0)}); phase max: old used ${max((s) => s.spaces['old_space']?.[0] ?? 0)}, ` +
        `new reserved ${max((s) => s.spaces['new_space']?.[1] ?? 0)}, array buffers ${max((s) => s.arrayBuffers)}`
      );
    });
}

/** The CR `import` writes for a seeded job: read back from its CronJob as the sync reads it, with provenance. */
function importedCrOf(job: StoredJob): unknown {
  const workload = workloadsOf(job)[0] as { metadata: Record<string, unknown> };
  const read = readWorkload(
    { ...workload, metadata: { ...workload.metadata, namespace: `tool-${job.tool_name}` } },
    settings,
  ).parsed;
  if (!read?.ok) throw new Error(`the seeded CronJob of ${job.job_name} does not read back`);
  return backfillCr(
    read.value.job as StoredJob,
    {
      backfilledBy: 'bench',
      backfilledAt: new Date().toISOString(),
      source: { kind: 'CronJob', name: job.job_name, resourceVersion: '123456' },
    },
    { codec, namespacePrefix: 'tool-' },
  );
}

/** The bare client: LIST the CronJobs page by page, then POST each one's CR, `width` at once. */
function writeBareImportScript(file: string): void {
  writeFileSync(
    file,
    `import https from 'node:https';
import { readFileSync } from 'node:fs';
import { parse } from '${join(REPO_ROOT, 'node_modules/yaml/dist/index.js')}';
const [kcPath, crsPath, width] = process.argv.slice(2);
const kc = parse(readFileSync(kcPath, 'utf8'));
const crs = JSON.parse(readFileSync(crsPath, 'utf8'));
const server = new URL(kc.clusters[0].cluster.server);
const user = kc.users[0].user;
const b64 = (s) => s && Buffer.from(s, 'base64');
const agent = new https.Agent({ keepAlive: true, ca: b64(kc.clusters[0].cluster['certificate-authority-data']), cert: b64(user['client-certificate-data']), key: b64(user['client-key-data']) });
const headers = { accept: 'application/json', ...(user.token ? { authorization: 'Bearer ' + user.token } : {}) };
const call = (method, path, body) => new Promise((resolve, reject) => {
  const data = body === undefined ? undefined : JSON.stringify(body);
  const req = https.request(new URL(path, server), { method, agent, headers: data ? { ...headers, 'content-type': 'application/json' } : headers }, (res) => {
    const chunks = []; res.on('data', (c) => chunks.push(c)); res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() })); res.on('error', reject);
  });
  req.on('error', reject);
  req.end(data);
});
const t0 = performance.now();
const jobs = [];
let token = '';
do {
  const res = await call('GET', '/apis/batch/v1/cronjobs?limit=${PAGE}' + (token ? '&continue=' + encodeURIComponent(token) : ''));
  const page = JSON.parse(res.body);
  for (const item of page.items) jobs.push(item.metadata.namespace + '/' + item.metadata.name);
  token = page.metadata.continue || '';
} while (token);
const t1 = performance.now();
let created = 0, existed = 0, failed = 0, i = 0;
await Promise.all(Array.from({ length: Number(width) }, async () => {
  while (i < jobs.length) {
    const key = jobs[i++];
    const cr = crs[key];
    if (!cr) { failed++; continue; }
    const res = await call('POST', '${CRS}/namespaces/' + cr.metadata.namespace + '/scheduled-jobs', cr);
    if (res.status === 201) created++; else if (res.status === 409) existed++; else failed++;
  }
}));
const t2 = performance.now();
console.log('bare listed ' + jobs.length + ' in ' + ((t1 - t0) / 1000).toFixed(3) + ' s; created ' + created + ', existed ' + existed + ', failed ' + failed + ' in ' + ((t2 - t1) / 1000).toFixed(3) + ' s');
`,
  );
}

/** Deletes every CR (one collection delete per tool namespace) and checks none is left. */
async function deleteCrs(admin: KubeApi, tools: readonly string[]): Promise<void> {
  await pool(tools, 32, async (tool) => {
    await admin.request('DELETE', `${CRS}/namespaces/tool-${tool}/scheduled-jobs`);
  });
  const left = await admin.request<{ items: unknown[] }>('GET', `${CRS}/scheduled-jobs`, { query: { limit: 1 } });
  if (left.items.length > 0) throw new Error('CRs left after the delete');
}

/** A process's CPU time so far (user + system, seconds), from /proc/<pid>/stat; 0 once it is gone. */
function cpuOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** Runs `run` and adds the CPU kube-apiserver and etcd spent meanwhile (`serverCpuSeconds`). */
async function withServerCpu<T>(
  pids: readonly number[],
  run: () => Promise<T>,
): Promise<T & { serverCpuSeconds: number }> {
  const before = pids.reduce((sum, pid) => sum + cpuOf(pid), 0);
  const result = await run();
  const after = pids.reduce((sum, pid) => sum + cpuOf(pid), 0);
  return { ...result, serverCpuSeconds: after - before };
}

interface ImportRun extends Measured {
  serverCpuSeconds: number;
  created: number;
  existed: number;
  skipped: number;
  failed: number;
}

interface BareRun extends Measured {
  serverCpuSeconds: number;
  listed: number;
  listSeconds: number;
  created: number;
  existed: number;
  failed: number;
  createSeconds: number;
}

/** The import's own summary line ("created … in … s (… CRs/s; listing and planning … s)"). */
function summaryLine(m: Measured): string {
  return /^created .*$/m.exec(m.stdout ?? '')?.[0] ?? '';
}

function parseImport(m: Measured & { serverCpuSeconds: number }): ImportRun {
  const s = /created (\d+), already present (\d+), skipped (\d+), failed (\d+) in/.exec(m.stdout ?? '');
  if (!s) throw new Error(`import printed no summary: ${(m.stdout ?? '').slice(-500)}`);
  return { ...m, created: Number(s[1]), existed: Number(s[2]), skipped: Number(s[3]), failed: Number(s[4]) };
}

function parseBare(m: Measured & { serverCpuSeconds: number }): BareRun {
  const s = /bare listed (\d+) in ([\d.]+) s; created (\d+), existed (\d+), failed (\d+) in ([\d.]+) s/.exec(
    m.stdout ?? '',
  );
  if (!s) throw new Error(`the bare client printed no summary: ${m.stdout ?? ''}`);
  return {
    ...m,
    listed: Number(s[1]),
    listSeconds: Number(s[2]),
    created: Number(s[3]),
    existed: Number(s[4]),
    failed: Number(s[5]),
    createSeconds: Number(s[6]),
  };
}

/** With BENCH_IMPORT_MEMORY, the import child's memory probe: its node arguments and environment, and its report. */
function memoryProbe(dir: string): {
  args: string[];
  env: Record<string, string>;
  report: (label: string, stdout: string) => void;
} {
  if (!MEMORY) return { args: [], env: {}, report: () => undefined };
  const probe = join(dir, 'memory-probe.mjs');
  writeMemoryProbe(probe);
  const samples = join(dir, 'memory-samples.jsonl');
  return {
    args: ['--import', probe],
    env: { BENCH_MEMORY_SAMPLES: samples },
    report: (label, stdout) => {
      const listing = Number(/listing and planning ([\d.]+) s/.exec(stdout)?.[1] ?? 0);
      for (const line of memoryReport(samples, listing)) console.error(`[bench] ${label} ${line}`);
    },
  };
}

async function main(): Promise<void> {
  buildDist();
  const { cp, tools, cronJobs } = await seedCluster(TOOLS, JOBS, { storedShare: 0 });
  try {
    const admin = new KubeApi(cp.kubeConfig('admin'));
    const dir = mkdtempSync(join(tmpdir(), 'jobs-storage-bench-'));
    const configFile = join(dir, 'config.json');
    const kubeconfig = cp.kubeconfigPath('jobs-storage-sync');
    writeFileSync(
      configFile,
      JSON.stringify({
        logLevel: 'warn',
        kubeconfig,
        phase: { namespace: JOBS_STORAGE_SA.namespace },
        sync: { listPageSize: PAGE },
      }),
    );
    // The bare client posts the very CRs the import writes (the job as read back from its CronJob, with provenance):
    // the same work, and what the ratio is judged against. It also posts, in the same rounds, the CRs `toolforge jobs
    // run` stores (`crOf`), less than half their size, to show what the CRs' size costs the API server.
    const crsFile = join(dir, 'crs.json');
    const smallCrsFile = join(dir, 'crs-small.json');
    const crs: Record<string, unknown> = {};
    const smallCrs: Record<string, unknown> = {};
    for (const tool of tools) {
      for (let j = 0; j < JOBS; j++) {
        const job = scheduledJob(tool, `job-${j}`);
        crs[`tool-${tool}/job-${j}`] = importedCrOf(job);
        smallCrs[`tool-${tool}/job-${j}`] = crOf(job);
      }
    }
    writeFileSync(crsFile, JSON.stringify(crs));
    writeFileSync(smallCrsFile, JSON.stringify(smallCrs));
    const bareScript = join(dir, 'bare-import.mjs');
    writeBareImportScript(bareScript);

    // An import meets standing jobs: a workload created less than 30 s ago is read again before its CR is written
    // (docs/adr/0005), which a freshly seeded cluster would otherwise measure.
    await new Promise((resolve) => setTimeout(resolve, 30_000));
    const prof = process.env['BENCH_CPU_PROF'];
    const profile = prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : [];
    const servers = [cp.pids.apiserver, cp.pids.etcd];
    const importEnv: NodeJS.ProcessEnv = { ...process.env, ...imageEnv(), NODE_OPTIONS };
    const memory = memoryProbe(dir);
    const imports: ImportRun[] = [];
    const baselines: ImportRun[] = [];
    const bares: BareRun[] = [];
    const smallBares: BareRun[] = [];
    const bare = async (file: string) => {
      await deleteCrs(admin, tools);
      const bareArgs = [bareScript, kubeconfig, file, String(WIDTH)];
      return parseBare(await withServerCpu(servers, () => measure(bareArgs, 'exit')));
    };
    for (let run = 0; run < RUNS; run++) {
      // Which goes first alternates, so that neither always meets the API server right after a mass delete.
      const bareFirst = run % 2 === 1;
      let b = bareFirst ? await bare(crsFile) : undefined;
      const importArgs = [
        ...profile,
        ...memory.args,
        join(REPO_ROOT, 'dist/main.js'),
        'import',
        '--config',
        configFile,
      ];
      const importOnce = async (args: string[]) => {
        await deleteCrs(admin, tools);
        const m = parseImport(
          await withServerCpu(servers, () => measure(args, 'exit', { ...importEnv, ...memory.env })),
        );
        memory.report(`run ${run + 1}: ${args === importArgs ? 'import' : 'baseline'}`, m.stdout ?? '');
        return m;
      };
      // The baseline, if any, takes turns with this import going first, as the bare client does.
      const baselineArgs = BASELINE ? [...memory.args, BASELINE, 'import', '--config', configFile] : undefined;
      let o = baselineArgs && run % 2 === 1 ? await importOnce(baselineArgs) : undefined;
      const i = await importOnce(importArgs);
      imports.push(i);
      if (baselineArgs) {
        o ??= await importOnce(baselineArgs);
        baselines.push(o);
        console.error(
          `[bench] run ${run + 1}: baseline import ${o.seconds.toFixed(2)} s (created ${o.created}, failed ${o.failed}; ` +
            `peak RSS ${o.peakRssMb.toFixed(0)} MB; CPU ${o.cpuSeconds.toFixed(1)} s, server CPU ` +
            `${o.serverCpuSeconds.toFixed(1)} s): ${summaryLine(o)}`,
        );
      }
      b ??= await bare(crsFile);
      bares.push(b);
      const small = await bare(smallCrsFile);
      smallBares.push(small);
      console.error(
        `[bench] run ${run + 1}: import ${i.seconds.toFixed(2)} s (created ${i.created}, present ${i.existed}, ` +
          `skipped ${i.skipped}, failed ${i.failed}; peak RSS ${i.peakRssMb.toFixed(0)} MB; CPU ${i.cpuSeconds.toFixed(1)} s, ` +
          `server CPU ${i.serverCpuSeconds.toFixed(1)} s), bare ${b.seconds.toFixed(2)} s (LIST ${b.listSeconds.toFixed(2)} s, ` +
          `POSTs ${b.createSeconds.toFixed(2)} s, created ${b.created}; CPU ${b.cpuSeconds.toFixed(1)} s, ` +
          `server CPU ${b.serverCpuSeconds.toFixed(1)} s), bare with the smaller CRs ${small.seconds.toFixed(2)} s; ` +
          `import: ${summaryLine(i)}`,
      );
    }
    const importRate = median(imports.map((m) => m.created / m.seconds));
    const bareRate = median(bares.map((m) => m.created / m.seconds));
    const createRate = median(bares.map((m) => m.created / m.createSeconds));
    const correct = imports.every((m) => m.created === cronJobs && m.existed + m.skipped + m.failed === 0);
    console.log(
      `import benchmark: ${TOOLS} tools × ${JOBS} jobs (${cronJobs} CronJobs, no CRs), ${WIDTH} writes in flight, ` +
        `page size ${PAGE}, median of ${RUNS}, each run after deleting every CR; the bare client writes the very ` +
        `CRs the import writes; node ${process.version}; the import with NODE_OPTIONS=${JSON.stringify(NODE_OPTIONS)} ` +
        `(the chart's sync.nodeOptions unless BENCH_IMPORT_NODE_OPTIONS) and the image's environment ` +
        `(${Object.entries(imageEnv())
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')})`,
    );
    console.log(
      `  jobs-storage import (child process, start to exit): ${importRate.toFixed(0)} CRs/s, ` +
        `${median(imports.map((m) => m.seconds)).toFixed(2)} s, peak RSS ${Math.max(...imports.map((m) => m.peakRssMb)).toFixed(0)} MB`,
    );
    console.log(
      `  totals: ${imports.map((m) => `created ${m.created}, present ${m.existed}, skipped ${m.skipped}, failed ${m.failed}`).join(' | ')}` +
        ` — ${correct ? 'correct' : 'WRONG'} (expected created ${cronJobs} and nothing else)`,
    );
    if (baselines.length > 0) {
      const baselineRate = median(baselines.map((m) => m.created / m.seconds));
      console.log(
        `  baseline import (${BASELINE}, interleaved): ${baselineRate.toFixed(0)} CRs/s, ` +
          `${median(baselines.map((m) => m.seconds)).toFixed(2)} s, CPU per 1,000 CRs ` +
          `${median(baselines.map((m) => (m.cpuSeconds / Math.max(1, m.created)) * 1000)).toFixed(2)} s, server CPU per ` +
          `1,000 CRs ${median(baselines.map((m) => (m.serverCpuSeconds / Math.max(1, m.created)) * 1000)).toFixed(2)} s, ` +
          `peak RSS ${Math.max(...baselines.map((m) => m.peakRssMb)).toFixed(0)} MB; ratio baseline/bare client ` +
          `${(baselineRate / median(bares.map((m) => m.created / m.seconds))).toFixed(2)}`,
      );
    }
    console.log(
      `  bare client (child process: paginated LIST + POSTs, start to exit): ${bareRate.toFixed(0)} CRs/s, ` +
        `${median(bares.map((m) => m.seconds)).toFixed(2)} s`,
    );
    console.log(`  bare client's create phase alone: ${createRate.toFixed(0)} CRs/s`);
    const smallRate = median(smallBares.map((m) => m.created / m.seconds));
    console.log(
      `  bare client posting the CRs \`toolforge jobs run\` stores instead (less than half the size; not the same ` +
        `work): ${smallRate.toFixed(0)} CRs/s, ${median(smallBares.map((m) => m.seconds)).toFixed(2)} s; ratio ` +
        `import/that ${(importRate / smallRate).toFixed(2)}`,
    );
    const cpuPerThousand = (runs: readonly (Measured & { created: number })[]) =>
      median(runs.map((m) => (m.cpuSeconds / Math.max(1, m.created)) * 1000));
    const serverCpuPerThousand = (runs: readonly { created: number; serverCpuSeconds: number }[]) =>
      median(runs.map((m) => (m.serverCpuSeconds / Math.max(1, m.created)) * 1000));
    console.log(
      `  CPU per 1,000 CRs (user + system of the child): import ${cpuPerThousand(imports).toFixed(2)} s, ` +
        `bare client ${cpuPerThousand(bares).toFixed(2)} s — on a 2-core machine shared with kube-apiserver and etcd, ` +
        `the client's CPU is taken from the API server's`,
    );
    console.log(
      `  kube-apiserver + etcd CPU per 1,000 CRs during the run: import ${serverCpuPerThousand(imports).toFixed(2)} s, ` +
        `bare client ${serverCpuPerThousand(bares).toFixed(2)} s`,
    );
    console.log(
      `  ratio import/bare client ${(importRate / bareRate).toFixed(2)} (target ≥ 0.8; judged against the bare ` +
        `client's whole run, which lists as the import must); import/bare create phase alone ` +
        `${(importRate / createRate).toFixed(2)}`,
    );
  } finally {
    await cp.stop();
  }
}

await main();
