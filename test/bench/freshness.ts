/**
 * Freshness benchmark: how soon a job created directly in Kubernetes (as `kubectl create` does, no CR) shows in what
 * the sync produces, with N tools × M jobs in the background (default 4,000 × 5: 20,000 CronJobs, 80 % with a CR).
 * `dist/main.js sync` runs as a child process, the leader; after its first complete reconcile (and the backfill of
 * the seeded jobs without a CR), tool identities create CronJobs spread over tools at a steady rate, and each create
 * is timed from its response to:
 *   - its CR, written by the sync, seen by a watch (phase runtime-truth, backfillGraceSeconds 0: no grace to wait);
 *   - the tool's only-in-runtime gauge counting it in the sync's /metrics, as Prometheus would scrape it then (phase
 *     ignore-unmanaged, where a job without a CR is reported at once instead of backfilled: there is no grace in it;
 *     a sync started in that phase, once every seeded job has its CR);
 * next to the floor any watch-driven process has, in the same run: a bare watcher's CronJob watch event for the same
 * creates.
 *
 *   npx tsx test/bench/freshness.ts [--tools 4000] [--jobs 5] [--creates 200] [--rate 20] [--identities 40]
 *                                   [--scrape-ms 5] [--profile DIR]
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { JOBS_STORAGE_SA, REPO_ROOT } from '../../scripts/control-plane/cluster.js';
import { scheduledJob, sleep, waitFor, workloadsOf } from '../../scripts/control-plane/jobs.js';
import { loadConfig } from '../../src/config/load.js';
import { KubeApi } from '../../src/k8s/api.js';
import { setPhase } from '../../src/phase/store.js';
import { buildDist, pool, seedCluster } from './cluster.js';

const { values } = parseArgs({
  options: {
    tools: { type: 'string', default: process.env['BENCH_TOOLS'] ?? '4000' },
    jobs: { type: 'string', default: process.env['BENCH_JOBS'] ?? '5' },
    creates: { type: 'string', default: '200' },
    rate: { type: 'string', default: '20' },
    identities: { type: 'string', default: '40' },
    'scrape-ms': { type: 'string', default: '5' },
    /** A directory for the sync's CPU profile (node --cpu-prof), written when it stops. */
    profile: { type: 'string' },
  },
});
const TOOLS = Number(values.tools);
const JOBS = Number(values.jobs);
const CREATES = Number(values.creates);
const RATE = Number(values.rate);
const IDENTITIES = Math.min(Number(values.identities), TOOLS);
const SCRAPE_MS = Number(values['scrape-ms']);
const ONLY_IN_RUNTIME = /^toolforge_jobs_only_in_runtime\{tool_name="([^"]+)"\} (\d+)$/gm;
const hasOnlyInRuntime = (text: string) => /^toolforge_jobs_only_in_runtime\{/m.test(text);

interface Figures {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

function figures(ms: readonly number[]): Figures {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
  return { n: sorted.length, p50: at(50) ?? NaN, p99: at(99) ?? NaN, max: sorted.at(-1) ?? NaN };
}

const show = (f: Figures) => `p50 ${f.p50.toFixed(1)} ms, p99 ${f.p99.toFixed(1)} ms, max ${f.max.toFixed(1)} ms`;

/** The first time (performance.now()) a watch saw each object of a collection ADDED, by namespace/name. */
class Seen {
  readonly at = new Map<string, number>();
  private readonly abort = new AbortController();

  constructor(
    private readonly api: KubeApi,
    private readonly path: string,
  ) {}

  /** Watches from the collection's current resourceVersion: only objects created from now on. */
  async start(): Promise<void> {
    const list = await this.api.request<{ metadata: { resourceVersion: string } }>('GET', this.path, {
      query: { limit: 1 },
    });
    const watching = this.api.watch<{ metadata: { namespace: string; name: string } }>(
      this.path,
      { resourceVersion: list.metadata.resourceVersion, timeoutSeconds: 3600 },
      (event) => {
        if (event.type !== 'ADDED') return;
        const key = `${event.object.metadata.namespace}/${event.object.metadata.name}`;
        if (!this.at.has(key)) this.at.set(key, performance.now());
      },
      this.abort.signal,
    );
    watching.catch((err: unknown) => console.error(`[bench] watch of ${this.path} ended: ${String(err)}`));
  }

  stop(): void {
    this.abort.abort();
  }
}

/** The sync as a child process: its stdout (pino lines) kept for the patterns waited on; its peak RSS on request. */
class SyncChild {
  private out = '';
  private readonly child: ChildProcess;
  /** performance.now() at the spawn. */
  readonly startedAt = performance.now();

  constructor(configFile: string) {
    const profile = values.profile ? ['--cpu-prof', '--cpu-prof-dir', values.profile] : [];
    this.child = spawn(
      process.execPath,
      [...profile, join(REPO_ROOT, 'dist/main.js'), 'sync', '--config', configFile],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    this.child.stdout?.on('data', (chunk: Buffer) => {
      this.out += chunk.toString();
      if (this.out.length > 1_000_000) this.out = this.out.slice(-500_000);
    });
  }

  /** The first log line that matches, parsed. */
  async line(pattern: RegExp, timeoutMs: number): Promise<Record<string, unknown>> {
    return waitFor(
      `the sync to log ${String(pattern)}`,
      () => {
        if (this.child.exitCode !== null) throw new Error(`the sync exited (${this.child.exitCode})`);
        const line = this.out.split('\n').find((l) => pattern.test(l));
        return line ? (JSON.parse(line) as Record<string, unknown>) : undefined;
      },
      timeoutMs,
      50,
    );
  }

  peakRssMb(): number {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.child.pid}/status`, 'utf8'));
    return Number(m?.[1] ?? NaN) / 1024;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000)]);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/** The sync's /metrics as Prometheus would read it now: the only-in-runtime gauge, by tool. */
function scrapeOnlyInRuntime(port: number, agent: http.Agent): Promise<Map<string, number>> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          const byTool = new Map<string, number>();
          for (const m of body.matchAll(ONLY_IN_RUNTIME)) byTool.set(m[1] ?? '', Number(m[2]));
          resolve(byTool);
        });
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

interface Create {
  tool: string;
  name: string;
  /** performance.now() when the create's response was in. */
  returnedAt: number;
}

/** `count` CronJobs created as their tools, one every 1/RATE s (not waiting for each other), round robin over tools. */
async function createPaced(
  asTool: ReadonlyMap<string, KubeApi>,
  prefix: string,
  count: number,
  returned?: (c: Create) => void,
): Promise<Create[]> {
  const tools = [...asTool.keys()];
  const started = performance.now();
  const creates: Array<Promise<Create>> = [];
  for (let i = 0; i < count; i++) {
    const wait = started + (i * 1000) / RATE - performance.now();
    if (wait > 0) await sleep(wait);
    const tool = tools[i % tools.length] as string;
    const name = `${prefix}-${i}`;
    creates.push(
      (async () => {
        for (const obj of workloadsOf(scheduledJob(tool, name)))
          await asTool.get(tool)!.request('POST', `/apis/batch/v1/namespaces/tool-${tool}/cronjobs`, { body: obj });
        const c = { tool, name, returnedAt: performance.now() };
        returned?.(c);
        return c;
      })(),
    );
  }
  return Promise.all(creates);
}

/** Latency from each create's response to when `seen` saw its object (missing ones counted apart). */
async function latencies(creates: readonly Create[], seen: Seen, timeoutMs: number) {
  const key = (c: Create) => `tool-${c.tool}/${c.name}`;
  await waitFor('every object seen', () => creates.every((c) => seen.at.has(key(c))), timeoutMs, 50).catch(
    () => undefined,
  );
  const ms = creates.flatMap((c) => {
    const at = seen.at.get(key(c));
    return at === undefined ? [] : [at - c.returnedAt];
  });
  return { figures: figures(ms), missing: creates.length - ms.length };
}

/**
 * Creates while scraping /metrics: from each create's response until its tool's gauge counts it, every SCRAPE_MS
 * (after the previous scrape is in), and not at all while no create waits, so that the scrapes load the sync no more
 * than the figure needs. A create is counted when its tool's gauge reaches the number of jobs created in that tool
 * so far (the tools had none before).
 */
async function createWatchingGauge(asTool: ReadonlyMap<string, KubeApi>, port: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const waiting = new Map<string, Create>();
  const ms: number[] = [];
  const scrapeMs: number[] = [];
  let scraping: Promise<void> | undefined;
  const scrape = async () => {
    while (waiting.size > 0) {
      const started = performance.now();
      const byTool = await scrapeOnlyInRuntime(port, agent);
      const now = performance.now();
      scrapeMs.push(now - started);
      for (const [key, c] of waiting) {
        const [tool, k] = key.split('#');
        if ((byTool.get(tool ?? '') ?? 0) < Number(k)) continue;
        ms.push(now - c.returnedAt);
        waiting.delete(key);
      }
      for (const [key, c] of waiting) if (now - c.returnedAt > 30_000) waiting.delete(key);
      if (waiting.size > 0) await sleep(SCRAPE_MS);
    }
    scraping = undefined;
  };
  const created = new Map<string, number>();
  const creates = await createPaced(asTool, 'fresh-gauge', CREATES, (c) => {
    const k = (created.get(c.tool) ?? 0) + 1;
    created.set(c.tool, k);
    waiting.set(`${c.tool}#${k}`, c);
    scraping ??= scrape();
  });
  await waitFor('the last gauges', () => scraping === undefined, 60_000, 20);
  agent.destroy();
  return { creates, figures: figures(ms), missing: creates.length - ms.length, scrape: figures(scrapeMs) };
}

/** The sync as a child process, up to its first complete reconcile: its metrics port, and how long that took. */
async function startSync(configFile: string): Promise<{ sync: SyncChild; port: number; firstSeconds: number }> {
  const sync = new SyncChild(configFile);
  const serving = await sync.line(/"sync serving"/, 120_000);
  const port = Number((serving['address'] as { port: number }).port);
  await sync.line(/"first complete reconcile"/, 600_000);
  return { sync, port, firstSeconds: (performance.now() - sync.startedAt) / 1000 };
}

async function main(): Promise<void> {
  buildDist();
  const { cp, tools, cronJobs, crs } = await seedCluster(TOOLS, JOBS);
  let sync: SyncChild | undefined;
  const watches: Seen[] = [];
  try {
    const admin = new KubeApi(cp.kubeConfig('admin'));
    const config = loadConfig({ env: {}, overrides: { phase: { namespace: JOBS_STORAGE_SA.namespace } } });
    await setPhase(admin, config, 'runtime-truth', { by: 'bench' });

    const step = Math.max(1, Math.floor(tools.length / IDENTITIES));
    const creators = tools.filter((_, i) => i % step === 0).slice(0, IDENTITIES);
    const asTool = new Map<string, KubeApi>();
    await pool(creators, 4, async (tool) => {
      await cp.addTool(tool);
      asTool.set(tool, new KubeApi(cp.kubeConfig(tool)));
    });

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
          identity: 'bench-freshness',
          backfillGraceSeconds: 0,
        },
        admin: { port: 0 },
      }),
    );
    const crWatch = new Seen(admin, '/apis/jobs-api.toolforge.org/v1/scheduled-jobs');
    const bareWatch = new Seen(admin, '/apis/batch/v1/cronjobs');
    watches.push(crWatch, bareWatch);
    await Promise.all(watches.map((w) => w.start()));

    let started = await startSync(configFile);
    sync = started.sync;
    const unstored = cronJobs - crs;
    await waitFor(`the ${unstored} seeded jobs without a CR backfilled`, () => crWatch.at.size >= unstored, 600_000);
    await sleep(2000);

    console.error(`[bench] ${CREATES} creates at ${RATE}/s, phase runtime-truth, grace 0: → CR`);
    const crCreates = await createPaced(asTool, 'fresh-cr', CREATES);
    const toCr = await latencies(crCreates, crWatch, 60_000);
    const bareCr = await latencies(crCreates, bareWatch, 10_000);
    const crRss = sync.peakRssMb();
    const crFirst = started.firstSeconds;

    // A sync started in the phase: its /metrics holds no per-tool counters of the seeded backfill (2,000 series),
    // which would make every scrape — here one every few ms — cost the sync more than the events measured.
    await sync.stop();
    await setPhase(admin, config, 'ignore-unmanaged', { by: 'bench' });
    started = await startSync(configFile);
    sync = started.sync;
    const port = started.port;
    await waitFor(
      'the sync in ignore-unmanaged with no job only in runtime',
      async () => {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`);
        const text = await res.text();
        return /toolforge_jobs_phase_info\{phase="ignore-unmanaged"\} 1/.test(text) && !hasOnlyInRuntime(text);
      },
      120_000,
      500,
    );
    await sleep(2000);
    console.error(`[bench] ${CREATES} creates at ${RATE}/s, phase ignore-unmanaged: → only-in-runtime gauge`);
    const gauge = await createWatchingGauge(asTool, port);
    const bareGauge = await latencies(gauge.creates, bareWatch, 10_000);
    const gaugeRss = sync.peakRssMb();

    const missing = (n: number) => (n > 0 ? ` (${n} not seen)` : '');
    console.log(
      `freshness benchmark: ${TOOLS} tools × ${JOBS} jobs (${cronJobs} CronJobs, ${crs} CRs) in the background; ` +
        `${CREATES} CronJobs created per figure at ${RATE}/s by ${asTool.size} tool identities`,
    );
    console.log(
      `  sync start → first complete reconcile ${crFirst.toFixed(1)} s, peak RSS ${crRss.toFixed(0)} MB (runtime-truth); ` +
        `${started.firstSeconds.toFixed(1)} s, ${gaugeRss.toFixed(0)} MB (ignore-unmanaged)`,
    );
    console.log(
      `  bare watcher, create returned → CronJob watch event: ${show(bareCr.figures)}${missing(bareCr.missing)}`,
    );
    console.log(
      `  sync, grace 0, create returned → its CR seen by a watch: ${show(toCr.figures)}${missing(toCr.missing)} (target p99 ≤ 100 ms)`,
    );
    console.log(
      `  bare watcher, create returned → CronJob watch event: ${show(bareGauge.figures)}${missing(bareGauge.missing)}`,
    );
    console.log(
      `  sync, ignore-unmanaged (reported at once, no grace), create returned → only-in-runtime gauge in /metrics ` +
        `(scraped every ${SCRAPE_MS} ms while a create waits, a scrape taking p50 ${gauge.scrape.p50.toFixed(1)} ms): ${show(gauge.figures)}${missing(gauge.missing)} (target p99 ≤ 100 ms)`,
    );
  } finally {
    for (const w of watches) w.stop();
    await sync?.stop();
    await cp.stop();
  }
}

await main();
