/**
 * Admission cost, throughput and latency: the real webhook server against bare servers that only parse, decide and
 * answer, with a 3 KB CronJob CREATE review (a kubectl direct write). Each server runs in its own child process; this
 * process is the load client, so the figure that judges is the server process's CPU per request (user + system from
 * /proc/<pid>/stat), which the client's own CPU use does not bend the way it bends requests/s.
 *
 * Two runs per target: saturating (as fast as `--connections` concurrent requests go) and paced (--rate requests/s,
 * default 200, about what kube-apiserver sends a busy cluster's webhook: CPU per review when the CPU is not the queue).
 *
 * Usage: npx tsx test/bench/webhook.ts [--requests 20000] [--seconds 20] [--connections 8] [--rate 200]
 *                                      [--rounds 3] [--same-write] [--targets bare,bare-h2,go-peer,webhook,webhook-h1]
 *                                      [--no-apiserver]
 * Then, unless `--no-apiserver`, test/bench/webhook-apiserver.ts: the same servers called by a real kube-apiserver.
 * By default every request is a distinct write (own uids), so the webhook counts, logs and remembers each one: the
 * costly path. `--same-write` repeats one review (repeats are remembered and not counted again).
 * The targets run interleaved, `--rounds` times; each figure is the median over rounds (the machine may be shared).
 * Targets: bare (baseline: node:https, HTTP/1.1 over `--connections` keep-alive connections), bare-h2 (node:http2, one
 * session, `--connections` concurrent streams: how kube-apiserver talks to an h2 webhook), bare-h2-stream (the same
 * on node:http2's core stream API), go-peer (the Go baseline: a minimal controller-runtime webhook that decodes the
 * review and allows it with a warning, over h2; test/bench/go-peer, built by scripts/tools/install.sh), webhook
 * (runWebhook as deployed, over h2 like kube-apiserver), webhook-h1 (the same over HTTP/1.1), express (the handler
 * routed through express only, over HTTP/1.1, kept to show why the admission paths bypass it). Prints CPU per
 * request, requests/s, p50/p99 and each target's ratio to bare and to bare-h2, then each target with met / NOT met.
 * BENCH_CPU_PROF=<dir>: a V8 CPU profile of each Node server. BENCH_STRACE=<dir>: the syscalls per review of each
 * server's paced run (`strace -f -c`; that run's CPU figures are strace's, not the server's).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { freePort, sleep } from '../../scripts/control-plane/process.js';
import { toolBinary } from '../../scripts/tools/binaries.js';
import { median } from './median.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = join(import.meta.dirname, '..', '..');
const FIXTURE = 'cronjob-create-kubectl-unlabelled';
const WARMUP = 2000;
/** The paced run's length: long enough that /proc's 10 ms CPU ticks are a small part of the total. */
const PACED_SECONDS = 10;

type Target = 'bare' | 'bare-h2' | 'bare-h2-stream' | 'go-peer' | 'webhook' | 'webhook-h1' | 'express';
const TARGETS: readonly Target[] = ['bare', 'bare-h2', 'bare-h2-stream', 'go-peer', 'webhook', 'webhook-h1', 'express'];

/** Targets the load client speaks h2 to; the rest get HTTP/1.1. */
function speaksH2(target: Target): boolean {
  return target === 'bare-h2' || target === 'bare-h2-stream' || target === 'go-peer' || target === 'webhook';
}

/** What each target's server process is: the webhook over HTTP/1.1 is the same server as over h2. */
function serverOf(target: Target): Target {
  return target === 'webhook-h1' ? 'webhook' : target;
}

interface Options {
  requests: number;
  seconds: number;
  connections: number;
  rate: number;
  rounds: number;
  sameWrite: boolean;
  targets: Target[];
  /** Also run test/bench/webhook-apiserver.ts (a local control plane calling each target); `--no-apiserver` skips. */
  apiserver: boolean;
}

function parseArgs(argv: string[]): Options {
  const value = (flag: string, fallback: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 && argv[i + 1] !== undefined ? (argv[i + 1] as string) : fallback;
  };
  return {
    requests: Number(value('--requests', '20000')),
    seconds: Number(value('--seconds', '20')),
    connections: Number(value('--connections', '8')),
    rate: Number(value('--rate', '200')),
    rounds: Number(value('--rounds', '3')),
    sameWrite: argv.includes('--same-write'),
    apiserver: !argv.includes('--no-apiserver'),
    targets: targetsOf(value('--targets', 'bare,bare-h2,bare-h2-stream,go-peer,webhook,webhook-h1')),
  };
}

function targetsOf(list: string): Target[] {
  const targets = list.split(',');
  for (const t of targets) {
    if (!(TARGETS as readonly string[]).includes(t))
      throw new Error(`--targets: unknown target ${t} (${TARGETS.join(', ')})`);
  }
  return targets as Target[];
}

/** Child mode: start one server on 127.0.0.1, print its port, serve until killed. */
async function serve(target: Target, certDir: string): Promise<void> {
  const [{ configSchema }, { batchedDestination, createLogger }, { createProcessRegistry, createWebhookMetrics }] =
    await Promise.all([
      import('../../src/config/schema.js'),
      import('../../src/log/logger.js'),
      import('../../src/metrics/registry.js'),
    ]);
  const cert = readFileSync(join(certDir, 'tls.crt'));
  const key = readFileSync(join(certDir, 'tls.key'));
  const config = configSchema.parse({
    webhook: { host: '127.0.0.1', port: 1, certFile: join(certDir, 'tls.crt'), keyFile: join(certDir, 'tls.key') },
  });
  const ready = (port: number) => process.stdout.write(`PORT ${port}\n`);
  process.once('SIGTERM', () => process.exit(0));

  if (target === 'bare' || target === 'bare-h2' || target === 'bare-h2-stream') {
    const { decideRecordDirectWrite } = await import('../../src/webhook/policy/record-direct-writes.js');
    const { buildAdmissionResponse } = await import('../../src/webhook/review.js');
    const ctx = {
      identities: config.identities,
      toolNamespacePrefix: config.toolNamespacePrefix,
      phase: 'runtime-truth' as const,
    };
    const answer = (text: string): string => {
      const review = JSON.parse(text) as { request: Parameters<typeof decideRecordDirectWrite>[0] };
      const decision = decideRecordDirectWrite(review.request, ctx);
      return JSON.stringify(buildAdmissionResponse(review.request.uid, decision.verdict));
    };
    const handler = (
      req: Readable,
      res: { writeHead(s: number, h: Record<string, string | number>): unknown; end(b: string): unknown },
    ) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = answer(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    };
    let server: https.Server | http2.Http2SecureServer;
    if (target === 'bare') server = https.createServer({ cert, key, keepAliveTimeout: 90_000 }, handler);
    else if (target === 'bare-h2') server = http2.createSecureServer({ cert, key }, handler);
    else {
      // node:http2's core API: no compat request/response objects.
      server = http2.createSecureServer({ cert, key });
      server.on('stream', (stream: http2.ServerHttp2Stream) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const body = answer(Buffer.concat(chunks).toString('utf8'));
          stream.respond({
            ':status': 200,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          });
          stream.end(body);
        });
      });
    }
    server.listen(0, '127.0.0.1', () => ready((server.address() as { port: number }).port));
    return;
  }

  // As deployed (info, stdout's buffering: see stdoutDestination), into /dev/null.
  const logger = createLogger({
    level: 'info',
    destination: batchedDestination('/dev/null'),
  });
  const metrics = createWebhookMetrics(createProcessRegistry());
  const phase = { current: () => 'runtime-truth' as const, known: () => true };
  if (target === 'webhook') {
    const { runWebhook } = await import('../../src/webhook/server.js');
    const port = await freePort();
    const handle = await runWebhook({
      config: { ...config, webhook: { ...config.webhook, port } },
      logger,
      metrics,
      phase,
    });
    ready(handle.address.port);
    return;
  }
  const { createAdmissionHandler } = await import('../../src/webhook/admission.js');
  const { ADMISSION_PATHS, serveAdmission } = await import('../../src/webhook/http.js');
  const { default: express } = await import('express');
  const admission = createAdmissionHandler({ config, logger, metrics, phase: () => 'runtime-truth' });
  // The admission route mounted on express, as the webhook served it before its own router.
  const app = express();
  for (const [path, webhook] of Object.entries(ADMISSION_PATHS))
    app.post(path, (req, res) => serveAdmission(admission, webhook, req, res));
  const server = https.createServer({ cert, key, keepAliveTimeout: 90_000 }, app);
  server.listen(0, '127.0.0.1', () => ready((server.address() as { port: number }).port));
}

/**
 * Starts one target's server in a child process: this file's `--serve` mode, or for `go-peer` the Go baseline (a
 * minimal controller-runtime webhook, test/bench/go-peer, built once by scripts/tools/install.sh). Exported for
 * webhook-apiserver.ts.
 */
export async function startChild(target: Target, certDir: string): Promise<{ child: ChildProcess; port: number }> {
  // BENCH_CPU_PROF=<dir>: each Node server writes a V8 CPU profile there when it stops (see `measure`).
  const prof = process.env['BENCH_CPU_PROF'];
  const profile = prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : [];
  const child =
    target === 'go-peer'
      ? spawn(toolBinary('go-peer'), ['-cert-dir', certDir, '-port', String(await freePort())], {
          cwd: ROOT,
          stdio: ['ignore', 'pipe', 'inherit'],
        })
      : spawn(process.execPath, [...profile, '--import', 'tsx', SELF, '--serve', target, certDir], {
          cwd: ROOT,
          stdio: ['ignore', 'pipe', 'inherit'],
        });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      const m = /^PORT (\d+)$/.exec(line);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', (code) => reject(new Error(`${target} server exited with ${code}`)));
  });
}

interface Stats {
  /** Server process CPU (user + system) per request, µs: the webhook's cost independent of other load on the machine. */
  cpuUs: number;
  requests: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  max: number;
  errors: number;
}

interface Result {
  target: Target;
  saturated: Stats;
  paced: Stats;
  /** Upper bound of the p99 of the server's own decision time (admission_duration_seconds bucket), ms; NaN for bare. */
  decideP99: number;
}

/** The bucket bound under which 99 % of the webhook's own timings fall, from its /metrics. */
async function decisionP99(port: number, ca: Buffer): Promise<number> {
  const text = await new Promise<string>((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port, path: '/metrics', ca }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
  const buckets = [
    ...text.matchAll(/admission_duration_seconds_bucket\{le="([^"]+)",webhook="record-direct-writes"\} (\d+)/g),
  ].map((m) => ({
    le: Number(m[1]),
    n: Number(m[2]),
  }));
  const total = buckets.find((b) => !Number.isFinite(b.le))?.n ?? 0;
  return (buckets.find((b) => b.n >= total * 0.99)?.le ?? Number.NaN) * 1000;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** `rate` 0: each connection sends as soon as its previous answer arrived; else request k is due at k / rate s. */
/** Request bodies: each one a distinct write (its own request and object uid, same length), unless `--same-write`. */
type Bodies = (i: number) => Buffer;

function reviewBodies(
  review: { request: { uid: string; object: { metadata: { uid: string } } } },
  sameWrite: boolean,
): Bodies {
  const text = JSON.stringify(review);
  if (sameWrite) {
    const body = Buffer.from(text);
    return () => body;
  }
  const marked = JSON.stringify({
    ...review,
    request: {
      ...review.request,
      uid: '@UID@',
      object: { ...review.request.object, metadata: { ...review.request.object.metadata, uid: '@UID@' } },
    },
  });
  const parts = marked.split('@UID@');
  return (i) => {
    const uid = `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
    return Buffer.from(parts.join(uid));
  };
}

interface Run {
  h2: boolean;
  port: number;
  ca: Buffer;
  bodies: Bodies;
  /** Added to the request index, so runs against the same server never repeat a write. */
  offset: number;
  connections: number;
  count: number;
  seconds: number;
  rate: number;
}

/** One POST and its answer: `status` and body size. */
type Send = (body: Buffer) => Promise<{ status: number; size: number }>;

const PATH = '/validate/record-direct-writes';

/** HTTP/1.1: up to `connections` keep-alive connections. */
function http1Client(port: number, ca: Buffer, connections: number): { send: Send; close(): void } {
  const agent = new https.Agent({ keepAlive: true, maxSockets: connections, ca });
  const send: Send = (body) =>
    new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: PATH,
          agent,
          headers: { 'content-type': 'application/json', 'content-length': body.length },
        },
        (res) => {
          let size = 0;
          res.on('data', (c: Buffer) => (size += c.length));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, size }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  return { send, close: () => agent.destroy() };
}

/** h2: one session, concurrent streams (as kube-apiserver's Go client does with an h2 webhook). */
async function h2Client(port: number, ca: Buffer): Promise<{ send: Send; close(): void }> {
  const session = http2.connect(`https://127.0.0.1:${port}`, { ca, ALPNProtocols: ['h2'] });
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  session.on('error', () => undefined);
  const send: Send = (body) =>
    new Promise((resolve, reject) => {
      const stream = session.request({
        ':method': 'POST',
        ':path': PATH,
        'content-type': 'application/json',
        'content-length': body.length,
      });
      let status = 0;
      let size = 0;
      stream.on('response', (headers) => (status = Number(headers[':status'])));
      stream.on('data', (c: Buffer) => (size += c.length));
      stream.on('end', () => resolve({ status, size }));
      stream.on('error', reject);
      stream.end(body);
    });
  return { send, close: () => session.close() };
}

async function load({ h2, port, ca, bodies, offset, connections, count, seconds, rate }: Run): Promise<Stats> {
  const client = h2 ? await h2Client(port, ca) : http1Client(port, ca, connections);
  const latencies = new Float64Array(count);
  let issued = 0;
  let done = 0;
  let errors = 0;
  const deadline = performance.now() + seconds * 1000;
  const one = async (i: number): Promise<void> => {
    const started = performance.now();
    try {
      const { status, size } = await client.send(bodies(i));
      if (status !== 200 || size === 0) errors += 1;
      latencies[done++] = performance.now() - started;
    } catch {
      errors += 1;
    }
  };
  const started = performance.now();
  const worker = async () => {
    while (issued < count && performance.now() < deadline) {
      const i = issued;
      const due = rate > 0 ? started + (i * 1000) / rate : 0;
      issued += 1;
      const wait = due - performance.now();
      if (wait >= 1) await sleep(wait);
      await one(i + offset);
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  const elapsed = (performance.now() - started) / 1000;
  client.close();
  const sorted = latencies.subarray(0, done).sort();
  return {
    cpuUs: Number.NaN,
    requests: done,
    seconds: elapsed,
    rps: done / elapsed,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? 0,
    errors,
  };
}

function medianStats(all: Stats[]): Stats {
  const pick = (key: keyof Stats) => median(all.map((s) => s[key]));
  return {
    cpuUs: pick('cpuUs'),
    requests: pick('requests'),
    seconds: pick('seconds'),
    rps: pick('rps'),
    p50: pick('p50'),
    p99: pick('p99'),
    max: pick('max'),
    errors: pick('errors'),
  };
}

/** CPU seconds (user + system) a process has used, from /proc (Linux); NaN elsewhere. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/**
 * BENCH_STRACE=<dir>: `strace -f -c` on every thread of the server during its paced run, summary in
 * <dir>/<target>-<pid>.txt; prints syscalls per review. strace slows every syscall, so that run's CPU and latency
 * figures are not comparable with a run without it.
 */
async function straced<T extends { requests: number }>(
  target: Target,
  pid: number | undefined,
  run: () => Promise<T>,
): Promise<T> {
  const dir = process.env['BENCH_STRACE'];
  if (!dir || pid === undefined) return run();
  const out = join(dir, `${target}-${pid}.txt`);
  const tids = readdirSync(`/proc/${pid}/task`).flatMap((tid) => ['-p', tid]);
  const tracer = spawn('strace', ['-f', '-c', '-o', out, ...tids], { stdio: 'ignore' });
  await sleep(500); // attached
  const stats = await run();
  const exited = new Promise((resolve) => tracer.once('exit', resolve));
  tracer.kill('SIGINT');
  await exited;
  const rows = readFileSync(out, 'utf8')
    .split('\n')
    .map((line) => /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\S+)\s*$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ calls: Number(m[1]), name: m[2] as string }));
  const per = (n: number) => (n / Math.max(1, stats.requests)).toFixed(2);
  const total = rows.find((r) => r.name === 'total')?.calls ?? 0;
  const top = rows
    .filter((r) => r.name !== 'total')
    .sort((a, b) => b.calls - a.calls)
    .slice(0, 6)
    .map((r) => `${r.name} ${per(r.calls)}`);
  console.log(
    `${target} (strace, ${stats.requests} reviews): ${per(total)} syscalls per review (${top.join(', ')}); ${out}`,
  );
  return stats;
}

async function timed(pid: number | undefined, run: Promise<Stats>): Promise<Stats> {
  const before = cpuSeconds(pid);
  const stats = await run;
  return { ...stats, cpuUs: ((cpuSeconds(pid) - before) * 1e6) / Math.max(1, stats.requests) };
}

async function measure(target: Target, certDir: string, bodies: Bodies, o: Options): Promise<Result> {
  const { child, port } = await startChild(serverOf(target), certDir);
  try {
    const ca = readFileSync(join(certDir, 'ca.crt'));
    const run = { h2: speaksH2(target), port, ca, bodies, connections: o.connections, seconds: o.seconds, rate: 0 };
    await load({ ...run, offset: 0, count: WARMUP });
    const saturated = await timed(child.pid, load({ ...run, offset: WARMUP, count: o.requests }));
    const paced = await straced(target, child.pid, () =>
      timed(
        child.pid,
        load({
          ...run,
          offset: WARMUP + o.requests,
          count: Math.max(1, Math.round(o.rate * PACED_SECONDS)),
          rate: o.rate,
        }),
      ),
    );
    const decideP99 = serverOf(target) === 'webhook' ? await decisionP99(port, ca) : Number.NaN;
    return { target, saturated, paced, decideP99 };
  } finally {
    if (process.env['BENCH_CPU_PROF']) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    } else child.kill('SIGKILL');
  }
}

type Summary = Pick<Result, 'target' | 'saturated' | 'paced' | 'decideP99'>;

const ratio = (a: number, b: number): string => (a / b).toFixed(2);

/** Each target's figures, each next to the bare baseline it names; the webhook judged by server CPU per request. */
function report(results: Summary[], rounds: Result[][], o: Options): void {
  const of = (t: Target) => results.find((r) => r.target === t);
  const bare = of('bare');
  const bareH2 = of('bare-h2');
  const head =
    'run                      requests   req/s   p50 ms  p99 ms  max ms errors  cpu µs/req  cpu ×bare  cpu ×bare-h2';
  const row = (label: string, st: Stats, base?: Stats, baseH2?: Stats) =>
    `${label.padEnd(24)} ${String(st.requests).padStart(8)} ${st.rps.toFixed(0).padStart(7)} ${st.p50.toFixed(3).padStart(8)} ` +
    `${st.p99.toFixed(3).padStart(7)} ${st.max.toFixed(1).padStart(7)} ${String(st.errors).padStart(6)} ` +
    `${st.cpuUs.toFixed(0).padStart(11)} ${(base ? ratio(st.cpuUs, base.cpuUs) : '').padStart(10)} ` +
    `${(baseH2 ? ratio(st.cpuUs, baseH2.cpuUs) : '').padStart(13)}`;
  console.log(head);
  for (const r of results) console.log(row(`${r.target} saturated`, r.saturated, bare?.saturated, bareH2?.saturated));
  for (const r of results) console.log(row(`${r.target} at ${o.rate}/s`, r.paced, bare?.paced, bareH2?.paced));
  for (const r of results) {
    if (Number.isFinite(r.decideP99))
      console.log(`${r.target}: server-side decision time p99 <= ${r.decideP99} ms (histogram bucket)`);
  }
  const webhook = of('webhook');
  if (!webhook) return;
  const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT met');
  const node = `[node ${process.version}]`;
  // Each ratio is the median of the rounds' own ratios: the two targets of a round ran a minute apart at most, so a
  // slow spell of the machine weighs on both, where one target's median may come from another round than the other's.
  const paired = (other: Target, run: 'saturated' | 'paced') => {
    const byRound = rounds.map((round) => {
      const a = round.find((r) => r.target === 'webhook');
      const b = round.find((r) => r.target === other);
      return a && b ? a[run].cpuUs / b[run].cpuUs : Number.NaN;
    });
    return { ratio: median(byRound), byRound: byRound.map((x) => x.toFixed(2)).join('/') };
  };
  // The floor an h2 server on Node has: a bare node:http2 stream handler (ADR 0003). bare node:https is printed
  // beside it; Node's h2 alone costs more than its HTTP/1.1, so it is no floor for an h2 server.
  const floor = of('bare-h2-stream');
  if (floor) {
    const saturated = paired('bare-h2-stream', 'saturated');
    const paced = paired('bare-h2-stream', 'paced');
    console.log(
      `${node} webhook (h2) vs a bare node:http2 stream handler, saturated, server CPU per request: ` +
        `${saturated.ratio.toFixed(2)}× (rounds ${saturated.byRound}; medians ${webhook.saturated.cpuUs.toFixed(0)} vs ` +
        `${floor.saturated.cpuUs.toFixed(0)} µs; target <= 1.15): ${verdict(saturated.ratio <= 1.15)}`,
    );
    console.log(
      `${node} webhook (h2) vs a bare node:http2 stream handler, at ${o.rate}/s, server CPU per request: ` +
        `${paced.ratio.toFixed(2)}× (rounds ${paced.byRound}; medians ${webhook.paced.cpuUs.toFixed(0)} vs ` +
        `${floor.paced.cpuUs.toFixed(0)} µs; target <= 1.10): ${verdict(paced.ratio <= 1.1)}`,
    );
  }
  const goPeer = of('go-peer');
  if (goPeer) {
    const paced = paired('go-peer', 'paced');
    console.log(
      `${node} webhook (h2) vs the Go peer (controller-runtime, h2) at ${o.rate}/s: ${paced.ratio.toFixed(2)}× ` +
        `(rounds ${paced.byRound}; medians ${webhook.paced.cpuUs.toFixed(0)} vs ${goPeer.paced.cpuUs.toFixed(0)} µs; ` +
        `target: below): ${verdict(paced.ratio < 1)}; saturated ${webhook.saturated.cpuUs.toFixed(0)} vs ` +
        `${goPeer.saturated.cpuUs.toFixed(0)} µs`,
    );
  }
  if (!bare) return;
  console.log(
    `webhook (h2) vs bare node:https: saturated ${ratio(webhook.saturated.cpuUs, bare.saturated.cpuUs)}×, at ${o.rate}/s ` +
      `${ratio(webhook.paced.cpuUs, bare.paced.cpuUs)}× (${webhook.paced.cpuUs.toFixed(0)} vs ${bare.paced.cpuUs.toFixed(0)} µs)`,
  );
  if (bareH2) {
    console.log(
      `Node's h2 itself: bare node:http2 is ${ratio(bareH2.paced.cpuUs, bare.paced.cpuUs)}× bare node:https at ` +
        `${o.rate}/s and ${ratio(bareH2.saturated.cpuUs, bare.saturated.cpuUs)}× saturated; the webhook is ` +
        `${ratio(webhook.paced.cpuUs, bareH2.paced.cpuUs)}× and ${ratio(webhook.saturated.cpuUs, bareH2.saturated.cpuUs)}× ` +
        `bare node:http2`,
    );
  }
  const webhookH1 = of('webhook-h1');
  if (webhookH1) {
    console.log(
      `webhook over HTTP/1.1 vs bare node:https: saturated ${ratio(bare.saturated.cpuUs, webhookH1.saturated.cpuUs)}, ` +
        `at ${o.rate}/s ${ratio(webhookH1.paced.cpuUs, bare.paced.cpuUs)}×`,
    );
  }
  console.log(
    `req/s ${ratio(webhook.saturated.rps, bare.saturated.rps)}× bare (the in-process load client bends this one); ` +
      `p99 at ${o.rate}/s ${webhook.paced.p99.toFixed(2)} ms (bare ${bare.paced.p99.toFixed(2)} ms)`,
  );
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--serve') {
    await serve(argv[1] as Target, argv[2] as string);
    return;
  }
  const o = parseArgs(argv);
  const certDir = mkdtempSync(join(tmpdir(), 'webhook-bench-'));
  try {
    execFileSync(join(ROOT, 'certs', 'make-certs.sh'), [certDir, 'localhost', '127.0.0.1'], { stdio: 'ignore' });
    const review = JSON.parse(
      readFileSync(join(ROOT, 'test', 'fixtures', 'admission', `${FIXTURE}.json`), 'utf8'),
    ) as unknown;
    const bodies = reviewBodies(review as Parameters<typeof reviewBodies>[0], o.sameWrite);
    console.log(
      `webhook bench: ${FIXTURE} (${bodies(0).length} bytes, ${o.sameWrite ? 'the same write repeated' : 'a distinct write per request'}), ` +
        `${o.connections} concurrent requests (HTTP/1.1: keep-alive connections; h2: streams on one session), ` +
        `${o.requests} requests or ${o.seconds} s per target, median of ${o.rounds} interleaved rounds`,
    );
    const rounds: Result[][] = [];
    for (let i = 0; i < o.rounds; i++) {
      const round: Result[] = [];
      for (const target of o.targets) round.push(await measure(target, certDir, bodies, o));
      rounds.push(round);
    }
    const results = o.targets.map((target, i) => ({
      target,
      saturated: medianStats(rounds.map((r) => (r[i] as Result).saturated)),
      paced: medianStats(rounds.map((r) => (r[i] as Result).paced)),
      decideP99: median(rounds.map((r) => (r[i] as Result).decideP99)),
    }));
    report(results, rounds, o);
    console.log(JSON.stringify({ bench: 'webhook', options: o, results, rounds }));
  } finally {
    rmSync(certDir, { recursive: true, force: true });
  }
  if (!o.apiserver) return;
  // The same targets as kube-apiserver calls them: its own latency histogram and the server CPU per review.
  const res = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'webhook-apiserver.ts'), '--rate', String(o.rate)],
    { cwd: ROOT, stdio: 'inherit' },
  );
  if (res.status !== 0) process.exitCode = 1;
}

// Run as a script (npm run bench, or a --serve child); webhook-apiserver.ts imports `startChild` only.
if (process.argv[1] === SELF) await main();
