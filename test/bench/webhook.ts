/**
 * Admission throughput and latency: the real webhook server against a bare node:https server that only parses,
 * decides and answers, with a 3 KB CronJob CREATE review (a kubectl direct write), HTTPS keep-alive and
 * 8 connections. Each server runs in its own child process; this process is the load client.
 *
 * Two runs per target: saturating (as fast as the 8 connections go: requests/s) and paced (--rate requests/s over the
 * same connections: latency when the CPU is not the queue).
 *
 * Usage: npx tsx test/bench/webhook.ts [--requests 20000] [--seconds 20] [--connections 8] [--rate 2000]
 *                                      [--rounds 3] [--same-write] [--targets bare,webhook,express]
 * By default every request is a distinct write (own uids), so the webhook counts, logs and remembers each one: the
 * costly path. `--same-write` repeats one review (repeats are remembered and not counted again).
 * The targets run interleaved, `--rounds` times; each figure is the median over rounds (the machine may be shared).
 * Targets: bare (baseline), webhook (runWebhook as deployed), express (the same handler routed through express only,
 * kept to show why the admission paths bypass it). Prints requests/s, p50/p99 and each target's ratio to bare.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { freePort, sleep } from '../../scripts/control-plane/process.js';
import { median } from './median.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = join(import.meta.dirname, '..', '..');
const FIXTURE = 'cronjob-create-kubectl-unlabelled';
const WARMUP = 2000;

type Target = 'bare' | 'webhook' | 'express';

interface Options {
  requests: number;
  seconds: number;
  connections: number;
  rate: number;
  rounds: number;
  sameWrite: boolean;
  targets: Target[];
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
    rate: Number(value('--rate', '2000')),
    rounds: Number(value('--rounds', '3')),
    sameWrite: argv.includes('--same-write'),
    targets: value('--targets', 'bare,webhook,express').split(',') as Target[],
  };
}

/** Child mode: start one server on 127.0.0.1, print its port, serve until killed. */
async function serve(target: Target, certDir: string): Promise<void> {
  const [{ configSchema }, { createLogger }, { createProcessRegistry, createWebhookMetrics }, pino] = await Promise.all(
    [
      import('../../src/config/schema.js'),
      import('../../src/log/logger.js'),
      import('../../src/metrics/registry.js'),
      import('pino'),
    ],
  );
  const cert = readFileSync(join(certDir, 'tls.crt'));
  const key = readFileSync(join(certDir, 'tls.key'));
  const config = configSchema.parse({
    webhook: { host: '127.0.0.1', port: 1, certFile: join(certDir, 'tls.crt'), keyFile: join(certDir, 'tls.key') },
  });
  const ready = (port: number) => process.stdout.write(`PORT ${port}\n`);

  if (target === 'bare') {
    const { decideRecordDirectWrite } = await import('../../src/webhook/policy/record-direct-writes.js');
    const { buildAdmissionResponse } = await import('../../src/webhook/review.js');
    const ctx = {
      identities: config.identities,
      toolNamespacePrefix: config.toolNamespacePrefix,
      phase: 'runtime-truth' as const,
    };
    const server = https.createServer({ cert, key, keepAliveTimeout: 90_000 }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          request: Parameters<typeof decideRecordDirectWrite>[0];
        };
        const decision = decideRecordDirectWrite(review.request, ctx);
        const body = JSON.stringify(buildAdmissionResponse(review.request.uid, decision.verdict));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    });
    server.listen(0, '127.0.0.1', () => ready((server.address() as { port: number }).port));
    return;
  }

  // As deployed (info, one synchronous write per line, like pino's stdout default), into /dev/null.
  const logger = createLogger({
    level: 'info',
    destination: pino.default.destination({ dest: '/dev/null', sync: true }),
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
  const { createApp } = await import('../../src/webhook/app.js');
  const admission = createAdmissionHandler({ config, logger, metrics, phase: () => 'runtime-truth' });
  const app = createApp({ admission, registry: metrics.registry, readiness: () => ({ ready: true, checks: {} }) });
  const server = https.createServer({ cert, key, keepAliveTimeout: 90_000 }, app);
  server.listen(0, '127.0.0.1', () => ready((server.address() as { port: number }).port));
}

function startChild(target: Target, certDir: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SELF, '--serve', target, certDir], {
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

async function load({ port, ca, bodies, offset, connections, count, seconds, rate }: Run): Promise<Stats> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: connections, ca });
  const latencies = new Float64Array(count);
  let issued = 0;
  let done = 0;
  let errors = 0;
  const deadline = performance.now() + seconds * 1000;
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const body = bodies(i);
      const started = performance.now();
      const req = https.request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/validate/record-direct-writes',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': body.length },
        },
        (res) => {
          let size = 0;
          res.on('data', (c: Buffer) => (size += c.length));
          res.on('end', () => {
            if (res.statusCode !== 200 || size === 0) errors += 1;
            latencies[done++] = performance.now() - started;
            resolve();
          });
        },
      );
      req.on('error', () => {
        errors += 1;
        resolve();
      });
      req.end(body);
    });
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
  agent.destroy();
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

async function timed(pid: number | undefined, run: Promise<Stats>): Promise<Stats> {
  const before = cpuSeconds(pid);
  const stats = await run;
  return { ...stats, cpuUs: ((cpuSeconds(pid) - before) * 1e6) / Math.max(1, stats.requests) };
}

async function measure(target: Target, certDir: string, bodies: Bodies, o: Options): Promise<Result> {
  const { child, port } = await startChild(target, certDir);
  try {
    const ca = readFileSync(join(certDir, 'ca.crt'));
    const run = { port, ca, bodies, connections: o.connections, seconds: o.seconds, rate: 0 };
    await load({ ...run, offset: 0, count: WARMUP });
    const saturated = await timed(child.pid, load({ ...run, offset: WARMUP, count: o.requests }));
    const paced = await timed(
      child.pid,
      load({ ...run, offset: WARMUP + o.requests, count: Math.max(1, Math.round(o.rate * 5)), rate: o.rate }),
    );
    const decideP99 = target === 'bare' ? Number.NaN : await decisionP99(port, ca);
    return { target, saturated, paced, decideP99 };
  } finally {
    child.kill('SIGKILL');
  }
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
        `${o.connections} keep-alive connections, ` +
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
    const bare = results.find((r) => r.target === 'bare');
    const row = (label: string, st: Stats, base: Stats | undefined) =>
      `${label.padEnd(20)} ${String(st.requests).padStart(8)} ${st.rps.toFixed(0).padStart(7)} ${st.p50.toFixed(3).padStart(8)} ` +
      `${st.p99.toFixed(3).padStart(7)} ${st.max.toFixed(1).padStart(7)} ${String(st.errors).padStart(6)} ${st.cpuUs.toFixed(0).padStart(7)}` +
      (base
        ? `  ${(st.rps / base.rps).toFixed(2).padStart(5)}  ${(base.cpuUs / st.cpuUs).toFixed(2).padStart(5)}`
        : '');
    console.log(
      'run                  requests   req/s   p50 ms  p99 ms  max ms errors  cpu µs  req/s  cpu-capacity (vs bare)',
    );
    for (const r of results) console.log(row(`${r.target} saturated`, r.saturated, bare?.saturated));
    for (const r of results) console.log(row(`${r.target} at ${o.rate}/s`, r.paced, undefined));
    for (const r of results) {
      if (Number.isFinite(r.decideP99))
        console.log(`${r.target}: server-side decision time p99 <= ${r.decideP99} ms (histogram bucket)`);
    }
    const webhook = results.find((r) => r.target === 'webhook');
    if (bare && webhook) {
      const ratio = webhook.saturated.rps / bare.saturated.rps;
      const capacity = bare.saturated.cpuUs / webhook.saturated.cpuUs;
      console.log(
        `webhook/bare ${ratio.toFixed(2)} req/s, ${capacity.toFixed(2)} by server CPU per request (target >= 0.80): ` +
          `${ratio >= 0.8 ? 'met' : 'NOT met'}; ` +
          `webhook p99 saturated ${webhook.saturated.p99.toFixed(2)} ms (bare ${bare.saturated.p99.toFixed(2)} ms), ` +
          `at ${o.rate}/s ${webhook.paced.p99.toFixed(2)} ms (bare ${bare.paced.p99.toFixed(2)} ms) (target <= 2 ms)`,
      );
    }
    console.log(JSON.stringify({ bench: 'webhook', options: o, results, rounds }));
  } finally {
    rmSync(certDir, { recursive: true, force: true });
  }
}

await main();
