// A real Prometheus server (the pinned build of scripts/tools/install.sh: kubernetes service discovery only, no web UI)
// as a host process beside the local control plane and its node, started and stopped by PID. It scrapes what the
// README tells admins to scrape: the webhook pods as job "jobs-storage-webhook" (HTTPS) and the sync pods as job
// "jobs-storage-sync", both found through the Kubernetes API (role: pod) and told apart by their
// app.kubernetes.io/name label, at the port of their prometheus.io/port annotation; plus kube-apiserver's own
// /metrics, which the apiserver-side rules (JobsStorageWebhookFailOpen and its siblings) read. Its credentials are a
// ServiceAccount token of its own, with a ClusterRole that lists pods and reads /metrics, as Toolforge's Prometheus
// has. The HTTP API is the interface: query(), alerts(), rules(), targets().
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import type { ControlPlane, LogFn } from './cluster.js';
import { freePort, killGroupSync, onExit, sleep, spawnDaemon, stopGroup, tail } from './process.js';
import type { Daemon } from './process.js';
import { toolBinary } from '../tools/binaries.js';

/** The scrape jobs, named as the README and deploy/prometheus/jobs-storage.yaml name them. */
export const WEBHOOK_JOB = 'jobs-storage-webhook';
export const SYNC_JOB = 'jobs-storage-sync';
/**
 * kube-apiserver's job. No rule selects on it (the apiserver rules select the webhooks by name), so any name would
 * do; this is the one kube-prometheus and most cluster setups use.
 */
export const APISERVER_JOB = 'apiserver';

/** Where the server's own identity lives in the cluster. */
export const PROMETHEUS_NAMESPACE = 'prometheus';
export const PROMETHEUS_SERVICE_ACCOUNT = 'prometheus';
const CLUSTER_ROLE = 'jobs-storage-e2e-prometheus';

export interface PrometheusOptions {
  /** Rule files the server evaluates (absolute paths). */
  ruleFiles: string[];
  /** The namespace whose pods are scraped (default 'jobs-storage'). */
  namespace?: string;
  /**
   * How to verify the webhook's serving certificate: its CA and a DNS name the certificate holds (pods are scraped by
   * IP, the certificate names the Service). Without it the scrape skips verification, as the chart's ServiceMonitor
   * does.
   */
  webhookTls?: { caFile: string; serverName: string };
  /** Scrape and rule evaluation intervals (default 2 s each). */
  scrapeIntervalSeconds?: number;
  evaluationIntervalSeconds?: number;
  /** Working directory (config, token, TSDB, log); default: a fresh temp dir, removed by stop(). */
  dir?: string;
  log?: LogFn;
}

export interface ScrapeConfigInput {
  apiServer: string;
  apiCaFile: string;
  tokenFile: string;
  namespace: string;
  ruleFiles: string[];
  webhookTls: { caFile: string; serverName: string } | undefined;
  scrapeIntervalSeconds: number;
  evaluationIntervalSeconds: number;
}

/** A pod scrape job: the namespace's pods whose app.kubernetes.io/name is `job`, at their prometheus.io/port. */
function podJob(job: string, scheme: 'http' | 'https', input: ScrapeConfigInput): Record<string, unknown> {
  return {
    job_name: job,
    scheme,
    ...(scheme === 'https'
      ? {
          tls_config: input.webhookTls
            ? { ca_file: input.webhookTls.caFile, server_name: input.webhookTls.serverName }
            : { insecure_skip_verify: true },
        }
      : {}),
    kubernetes_sd_configs: [
      {
        role: 'pod',
        api_server: input.apiServer,
        authorization: { credentials_file: input.tokenFile },
        tls_config: { ca_file: input.apiCaFile },
        namespaces: { names: [input.namespace] },
      },
    ],
    relabel_configs: [
      { source_labels: ['__meta_kubernetes_pod_label_app_kubernetes_io_name'], regex: job, action: 'keep' },
      { source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_scrape'], regex: 'true', action: 'keep' },
      // role: pod makes a target per declared container port; all of a pod's get the annotated port, and Prometheus
      // keeps one of targets whose labels end up equal.
      {
        source_labels: ['__meta_kubernetes_pod_ip', '__meta_kubernetes_pod_annotation_prometheus_io_port'],
        regex: '(.+);(.+)',
        replacement: '$1:$2',
        target_label: '__address__',
      },
      { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
      { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
    ],
  };
}

/** The server's configuration file, as an object (YAML.stringify it). */
export function prometheusConfig(input: ScrapeConfigInput): Record<string, unknown> {
  const interval = `${input.scrapeIntervalSeconds}s`;
  const apiserverHost = new URL(input.apiServer).host;
  return {
    global: {
      scrape_interval: interval,
      scrape_timeout: interval,
      evaluation_interval: `${input.evaluationIntervalSeconds}s`,
    },
    rule_files: input.ruleFiles,
    scrape_configs: [
      podJob(WEBHOOK_JOB, 'https', input),
      podJob(SYNC_JOB, 'http', input),
      {
        job_name: APISERVER_JOB,
        scheme: 'https',
        authorization: { credentials_file: input.tokenFile },
        tls_config: { ca_file: input.apiCaFile },
        static_configs: [{ targets: [apiserverHost] }],
      },
    ],
  };
}

/** The ServiceAccount and its rights: list/watch pods (service discovery) and GET /metrics (kube-apiserver). */
export function prometheusRbacObjects(): object[] {
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: PROMETHEUS_NAMESPACE } },
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: PROMETHEUS_SERVICE_ACCOUNT, namespace: PROMETHEUS_NAMESPACE },
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: CLUSTER_ROLE },
      rules: [
        { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
        { nonResourceURLs: ['/metrics'], verbs: ['get'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: CLUSTER_ROLE },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: CLUSTER_ROLE },
      subjects: [{ kind: 'ServiceAccount', name: PROMETHEUS_SERVICE_ACCOUNT, namespace: PROMETHEUS_NAMESPACE }],
    },
  ];
}

interface RuleFile {
  groups: Array<{ name: string; rules: Array<Record<string, unknown>> }>;
}

/**
 * A copy of a rule file for a test that cannot wait for production durations: every rule's `for:` becomes
 * `forSeconds`, and every range selector in the listed `ranges` (e.g. '10m', '5m') becomes `rangeSeconds`, so a
 * counter that stops growing leaves the rate window in seconds, not minutes. Ranges not listed (the 1d/7d look-backs
 * of the history clauses) and everything else stay as shipped.
 */
export function shortenRules(
  text: string,
  opts: { forSeconds: number; rangeSeconds: number; ranges: string[] },
): string {
  const file = YAML.parse(text) as RuleFile;
  const ranges = new Set(opts.ranges);
  for (const group of file.groups) {
    for (const rule of group.rules) {
      if (rule['for'] !== undefined) rule['for'] = `${opts.forSeconds}s`;
      const expr = rule['expr'];
      if (typeof expr === 'string') {
        rule['expr'] = expr.replace(/\[([0-9]+[smhdwy])\]/g, (whole, range: string) =>
          ranges.has(range) ? `[${opts.rangeSeconds}s]` : whole,
        );
      }
    }
  }
  return YAML.stringify(file, { lineWidth: 0 });
}

/** One sample of an instant vector. */
export interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** An alert of /api/v1/alerts. */
export interface ActiveAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing' | 'inactive';
  activeAt?: string;
  value: string;
}

/** A rule of /api/v1/rules. */
export interface RuleStatus {
  name: string;
  type: 'alerting' | 'recording';
  health: string;
  lastError?: string;
  lastEvaluation: string;
  state?: string;
}

/** An active target of /api/v1/targets. */
export interface ScrapeTarget {
  labels: Record<string, string>;
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
}

interface ApiResponse<T> {
  status: 'success' | 'error';
  data: T;
  errorType?: string;
  error?: string;
}

export class PrometheusServer {
  private stopped = false;
  readonly url: string;
  readonly dir: string;
  readonly configFile: string;
  private readonly daemon: Daemon;
  private readonly removeDir: boolean;
  private readonly unregisterExit: () => void;

  constructor(parts: {
    url: string;
    dir: string;
    configFile: string;
    daemon: Daemon;
    /** stop() removes dir (a temp dir the server made itself). */
    removeDir: boolean;
    unregisterExit: () => void;
  }) {
    this.url = parts.url;
    this.dir = parts.dir;
    this.configFile = parts.configFile;
    this.daemon = parts.daemon;
    this.removeDir = parts.removeDir;
    this.unregisterExit = parts.unregisterExit;
  }

  get pid(): number {
    return this.daemon.pid;
  }
  get logFile(): string {
    return this.daemon.logFile;
  }

  /** GET of an /api/v1 path; the `data` of a success, else throws with Prometheus' error. */
  async api<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const url = new URL(`/api/v1/${path}`, this.url);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as ApiResponse<T>;
    if (body.status !== 'success') {
      throw new Error(`prometheus ${path} ${JSON.stringify(params)}: ${body.errorType ?? ''} ${body.error ?? ''}`);
    }
    return body.data;
  }

  /** An instant query; throws unless the result is a vector. */
  async query(expr: string): Promise<VectorSample[]> {
    const data = await this.api<{ resultType: string; result: VectorSample[] }>('query', { query: expr });
    if (data.resultType !== 'vector') throw new Error(`query ${expr} returned a ${data.resultType}`);
    return data.result;
  }

  async alerts(): Promise<ActiveAlert[]> {
    return (await this.api<{ alerts: ActiveAlert[] }>('alerts')).alerts;
  }

  async rules(): Promise<RuleStatus[]> {
    const data = await this.api<{ groups: Array<{ rules: RuleStatus[] }> }>('rules');
    return data.groups.flatMap((g) => g.rules);
  }

  async targets(): Promise<ScrapeTarget[]> {
    return (await this.api<{ activeTargets: ScrapeTarget[] }>('targets', { state: 'active' })).activeTargets;
  }

  /** The last lines of the server's log, for a failure message. */
  logTail(lines = 40): string {
    return tail(this.daemon.logFile, lines);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await stopGroup(this.daemon.pid, 10_000);
    this.unregisterExit();
    if (this.removeDir) await rm(this.dir, { recursive: true, force: true });
  }
}

const defaultLog: LogFn = (msg, fields) => {
  process.stderr.write(`[prometheus] ${msg}${fields ? ' ' + JSON.stringify(fields) : ''}\n`);
};

/**
 * Creates the server's ServiceAccount and rights, mints its token, writes the configuration and starts the pinned
 * prometheus binary on a free loopback port; resolves once /-/ready answers. The process is killed at exit if the
 * caller never stops it.
 */
export async function startPrometheus(cp: ControlPlane, opts: PrometheusOptions): Promise<PrometheusServer> {
  const log = opts.log ?? defaultLog;
  const binary = toolBinary('prometheus');
  const removeDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'jobs-storage-prometheus-')));
  await mkdir(join(dir, 'data'), { recursive: true });

  await cp.apply('admin', prometheusRbacObjects());
  const token = await cp.createToken(PROMETHEUS_NAMESPACE, PROMETHEUS_SERVICE_ACCOUNT);
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, token, { mode: 0o600 });

  const configFile = join(dir, 'prometheus.yml');
  const config = prometheusConfig({
    apiServer: cp.server,
    apiCaFile: cp.caFile,
    tokenFile,
    namespace: opts.namespace ?? 'jobs-storage',
    ruleFiles: opts.ruleFiles,
    webhookTls: opts.webhookTls,
    scrapeIntervalSeconds: opts.scrapeIntervalSeconds ?? 2,
    evaluationIntervalSeconds: opts.evaluationIntervalSeconds ?? 2,
  });
  await writeFile(configFile, YAML.stringify(config, { lineWidth: 0 }));

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const daemon = spawnDaemon(
    binary,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1d',
      '--log.level=info',
    ],
    join(dir, 'prometheus.log'),
  );
  const unregisterExit = onExit(() => killGroupSync(daemon.pid));
  const server = new PrometheusServer({ url, dir, configFile, daemon, removeDir, unregisterExit });
  log('prometheus started', { pid: daemon.pid, url, configFile });
  try {
    await waitReady(server, daemon, 60_000);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

async function waitReady(server: PrometheusServer, daemon: Daemon, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: string | undefined;
  void daemon.exited.then((how) => (exited = how));
  for (;;) {
    if (exited !== undefined) {
      throw new Error(`prometheus exited (${exited}) during startup; log tail:\n${server.logTail()}`);
    }
    const ready = await fetch(new URL('/-/ready', server.url), { signal: AbortSignal.timeout(2_000) })
      .then((res) => res.ok)
      .catch(() => false);
    if (ready) return;
    if (Date.now() > deadline) {
      throw new Error(`prometheus not ready after ${timeoutMs} ms; log tail:\n${server.logTail()}`);
    }
    await sleep(250);
  }
}
