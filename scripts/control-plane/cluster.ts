import * as k8s from '@kubernetes/client-node';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { createCA, createLeaf, createSigningKey } from './pki.js';
import type { KeyPair } from './pki.js';
import {
  commandOf,
  freePort,
  isAlive,
  killGroupSync,
  onExit,
  removeDirSync,
  sleep,
  spawnDaemon,
  stopGroup,
  tail,
} from './process.js';
import type { Daemon } from './process.js';

import { ALL_STORAGE_PLURALS, STORAGE_GROUP } from '../../src/storage/kinds.js';
import { installJobsCrds as installCrdsFrom } from './crds.js';
import { helmTemplate } from '../tools/binaries.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUILD_SCRIPT = join(REPO_ROOT, 'scripts', 'control-plane', 'build.sh');

/** Built-in identities; every tool added with addTool() is an identity named after the tool. */
export type BuiltinIdentity = 'admin' | 'jobs-api' | 'jobs-storage-sync' | 'jobs-storage-webhook';
export type Identity = BuiltinIdentity | (string & {});

export const JOBS_API_SA = { namespace: 'jobs-api', name: 'jobs-api' } as const;
export const JOBS_STORAGE_SA = { namespace: 'jobs-storage', name: 'jobs-storage-sync' } as const;
export const JOBS_STORAGE_WEBHOOK_SA = { namespace: 'jobs-storage', name: 'jobs-storage-webhook' } as const;
const RESERVED_NAMES = new Set<string>(['admin', JOBS_API_SA.name, JOBS_STORAGE_SA.name, JOBS_STORAGE_WEBHOOK_SA.name]);
const TOOL_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export type LogFn = (msg: string, fields?: Record<string, unknown>) => void;

export interface ControlPlaneOptions {
  /** Directory holding kube-apiserver and etcd; default: env JOBS_STORAGE_CP_BIN_DIR, else the output of build.sh. */
  binDir?: string;
  /** State directory (PKI, kubeconfigs, logs, etcd data); default: a fresh temp dir. Removed by stop(). */
  dir?: string;
  /**
   * Long-lived mode for scripts/cluster.ts: children survive this process and no exit handlers are installed;
   * stop them with stopControlPlaneAt(dir).
   */
  keep?: boolean;
  /** Create the built-in RBAC and ServiceAccount identities (default true). */
  seed?: boolean;
  /** Audience of the ServiceAccount tokens put in the SA kubeconfigs; default: the issuer URL. */
  tokenAudience?: string;
  /** Lifetime of those tokens; default 24 h. */
  tokenTtlSeconds?: number;
  /** Audiences accepted by kube-apiserver besides the issuer URL and tokenAudience. */
  apiAudiences?: string[];
  startTimeoutMs?: number;
  extraApiserverArgs?: string[];
  /**
   * Run kube-controller-manager (default true) with its own identity and per-controller ServiceAccounts, so CronJob
   * runs, garbage collection and TTL deletion are real.
   */
  controllerManager?: boolean;
  /**
   * Prepare the control plane for a node (scripts/control-plane/node.ts, startNode()); default: none, and nothing
   * below changes. With it: kube-apiserver binds 0.0.0.0 and advertises `advertiseAddress` (so the `kubernetes`
   * Service reaches it from pods), authorizes with Node,RBAC, admits with NodeRestriction and ServiceAccount, and
   * calls kubelets with a client certificate (logs, exec); kube-controller-manager also runs the controllers pods
   * need (node lifecycle, EndpointSlices, DaemonSets, StatefulSets, PodDisruptionBudgets, pod GC). Needs the
   * controller-manager (its ServiceAccount controller makes the default ServiceAccounts pods are admitted with).
   */
  node?: NodeSupportOptions;
  log?: LogFn;
}

export interface NodeSupportOptions {
  /** The node's IP (node.ts NODE_IP, which startNode() puts on the pods' bridge); the apiserver advertises it. */
  advertiseAddress: string;
}

/** The Service range kube-apiserver allocates ClusterIPs from; kube-proxy and the node's routes must match it. */
export const SERVICE_CLUSTER_IP_RANGE = '10.0.0.0/24';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface KubectlOptions {
  stdin?: string;
  timeoutMs?: number;
}

export interface TokenOptions {
  audience?: string;
  expirationSeconds?: number;
}

/** Everything a second process needs to use or stop a running control plane (dir/state.json). */
export interface ControlPlaneState {
  version: 1;
  dir: string;
  binDir: string;
  server: string;
  issuer: string;
  etcdUrl: string;
  caFile: string;
  clientCa: KeyPair;
  tokenAudience: string;
  tokenTtlSeconds: number;
  pids: { etcd: number; apiserver: number; controllerManager?: number };
  commands: { etcd: string; apiserver: string; controllerManager?: string };
  kubeconfigs: Record<string, string>;
  tools: string[];
  logs: { etcd: string; apiserver: string; controllerManager?: string };
  /**
   * The CA that signs the client certificate kube-apiserver presents to admission webhooks (its admission
   * configuration); a webhook's `webhook.clientCaFile`. A CA of its own: tools' certificates must not pass.
   */
  webhookClientCaFile?: string;
  /** The certificate kube-apiserver presents to webhooks, for tests that call a webhook as the apiserver would. */
  webhookClientCert?: KeyPair;
  /** Set when started with the `node` option: what startNode() needs to join. */
  node?: { advertiseAddress: string; apiPort: number };
}

const defaultLog: LogFn = (msg, fields) => {
  process.stderr.write(`[control-plane] ${msg}${fields ? ' ' + JSON.stringify(fields) : ''}\n`);
};

/**
 * Runs a build script that builds or installs what is missing and prints the directory of its outputs, unless
 * `envVar` names that directory already; logs `ready` with the directory and the time taken.
 */
export async function runBuildScript(script: string, envVar: string, ready: string, log: LogFn): Promise<string> {
  const fromEnv = process.env[envVar];
  if (fromEnv) return fromEnv;
  const started = Date.now();
  const out = await new Promise<string>((resolveOut, reject) => {
    const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolveOut(stdout.trim());
      else reject(new Error(`${script} exited with ${String(code)}`));
    });
  });
  log(ready, { binDir: out, ms: Date.now() - started });
  return out;
}

export function buildBinaries(log: LogFn = defaultLog): Promise<string> {
  return runBuildScript(BUILD_SCRIPT, 'JOBS_STORAGE_CP_BIN_DIR', 'control-plane binaries ready', log);
}

interface HttpsResult {
  status: number;
  body: string;
}

function httpsGet(
  url: string,
  opts: { ca: string; cert?: string; key?: string; token?: string },
): Promise<HttpsResult> {
  return new Promise((resolveRes, reject) => {
    const req = request(
      url,
      {
        method: 'GET',
        ca: opts.ca,
        cert: opts.cert,
        key: opts.key,
        headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
        timeout: 5_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolveRes({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function runKubectl(
  kubeconfig: string,
  cacheDir: string,
  args: string[],
  opts: KubectlOptions = {},
): Promise<KubectlResult> {
  return new Promise((resolveRes, reject) => {
    const child = spawn('kubectl', [`--kubeconfig=${kubeconfig}`, `--cache-dir=${cacheDir}`, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRes({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.end(opts.stdin ?? '');
  });
}

interface KubeconfigUser {
  'client-certificate-data'?: string;
  'client-key-data'?: string;
  token?: string;
}

function b64(text: string): string {
  return Buffer.from(text).toString('base64');
}

export class ControlPlane {
  private readonly log: LogFn;
  private unregisterExit: (() => void) | undefined;
  private stopped = false;
  private cliConfigs = 0;

  private constructor(
    private readonly state: ControlPlaneState,
    log: LogFn,
  ) {
    this.log = log;
  }

  /** @internal */
  static fromState(state: ControlPlaneState, log: LogFn, autoCleanup: boolean): ControlPlane {
    const cp = new ControlPlane(state, log);
    if (autoCleanup) {
      const { pids, dir } = state;
      cp.unregisterExit = onExit(() => {
        if (pids.controllerManager !== undefined) killGroupSync(pids.controllerManager);
        killGroupSync(pids.apiserver);
        killGroupSync(pids.etcd);
        removeDirSync(dir);
      });
    }
    return cp;
  }

  get server(): string {
    return this.state.server;
  }
  get caFile(): string {
    return this.state.caFile;
  }
  /** ServiceAccount token issuer; JWKS at `${issuer}/openid/v1/jwks` (readable anonymously, trust caFile). */
  get issuer(): string {
    return this.state.issuer;
  }
  get jwksUri(): string {
    return `${this.state.issuer}/openid/v1/jwks`;
  }
  get dir(): string {
    return this.state.dir;
  }
  get binDir(): string {
    return this.state.binDir;
  }
  get pids(): Readonly<{ etcd: number; apiserver: number; controllerManager?: number }> {
    return this.state.pids;
  }
  get logs(): Readonly<{ etcd: string; apiserver: string; controllerManager?: string }> {
    return this.state.logs;
  }
  /** CA of kube-apiserver's admission webhook client certificate: give it to the webhook as `webhook.clientCaFile`. */
  get webhookClientCaFile(): string {
    if (this.state.webhookClientCaFile === undefined) throw new Error('control plane has no webhook client CA');
    return this.state.webhookClientCaFile;
  }
  get webhookClientCert(): KeyPair {
    if (this.state.webhookClientCert === undefined) throw new Error('control plane has no webhook client certificate');
    return this.state.webhookClientCert;
  }
  /**
   * What a node needs to join (startNode()): the address the apiserver advertises, its port and the CA that signs
   * client certificates (the kubelet's `system:node:<name>`, kube-proxy's, kube-scheduler's). Only with the `node`
   * option of startControlPlane().
   */
  get nodeSupport(): { advertiseAddress: string; apiPort: number; clientCa: KeyPair } {
    const { node } = this.state;
    if (node === undefined) throw new Error('control plane was started without the node option');
    return { ...node, clientCa: this.state.clientCa };
  }
  /** Identity name to kubeconfig path. */
  get kubeconfigs(): Readonly<Record<string, string>> {
    return this.state.kubeconfigs;
  }
  get tools(): readonly string[] {
    return this.state.tools;
  }

  /**
   * A `jobs-storage --config` file for the admin CLI against this control plane: the admin's kubeconfig, the phase
   * ConfigMap's namespace and quiet logs, with `extra` on top (top-level keys replace). Kept in the control plane's
   * directory, removed with it.
   */
  cliConfig(extra: Record<string, unknown> = {}): string {
    const path = join(this.state.dir, `cli-config-${++this.cliConfigs}.yaml`);
    const config = {
      logLevel: 'warn',
      kubeconfig: this.kubeconfigPath('admin'),
      phase: { namespace: JOBS_STORAGE_SA.namespace },
      ...extra,
    };
    writeFileSync(path, JSON.stringify(config));
    return path;
  }

  kubeconfigPath(identity: Identity): string {
    const path = this.state.kubeconfigs[identity];
    if (path === undefined) throw new Error(`unknown identity: ${identity}`);
    return path;
  }

  kubeConfig(identity: Identity): k8s.KubeConfig {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(this.kubeconfigPath(identity));
    return kc;
  }

  kubectl(identity: Identity, args: string[], opts?: KubectlOptions): Promise<KubectlResult> {
    return runKubectl(this.kubeconfigPath(identity), join(this.state.dir, 'kubectl-cache'), args, opts);
  }

  /** kubectl as identity; throws with stderr unless it exits 0. */
  async kubectlOk(identity: Identity, args: string[], opts?: KubectlOptions): Promise<string> {
    const res = await this.kubectl(identity, args, opts);
    if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')} as ${identity} failed (${res.code}): ${res.stderr}`);
    return res.stdout;
  }

  async apply(identity: Identity, objects: object[]): Promise<void> {
    await this.kubectlOk(identity, ['apply', '-f', '-'], {
      stdin: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
    });
  }

  /** Fetches anything under the server with the CA (and optionally a bearer token), e.g. '/openid/v1/jwks'. */
  async get(path: string, opts: { token?: string } = {}): Promise<HttpsResult> {
    return httpsGet(new URL(path, this.state.server).toString(), {
      ca: await readFile(this.state.caFile, 'utf8'),
      ...(opts.token ? { token: opts.token } : {}),
    });
  }

  /** Mints a ServiceAccount token through the TokenRequest API (as admin). */
  async createToken(namespace: string, serviceAccount: string, opts: TokenOptions = {}): Promise<string> {
    const out = await this.kubectlOk('admin', [
      'create',
      'token',
      serviceAccount,
      '-n',
      namespace,
      `--audience=${opts.audience ?? this.state.tokenAudience}`,
      `--duration=${opts.expirationSeconds ?? this.state.tokenTtlSeconds}s`,
    ]);
    return out.trim();
  }

  private async writeKubeconfig(
    identity: string,
    user: string,
    creds: KubeconfigUser,
    namespace: string,
  ): Promise<string> {
    const caPem = await readFile(this.state.caFile, 'utf8');
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        { name: 'jobs-storage-e2e', cluster: { server: this.state.server, 'certificate-authority-data': b64(caPem) } },
      ],
      users: [{ name: user, user: creds }],
      contexts: [{ name: identity, context: { cluster: 'jobs-storage-e2e', user, namespace } }],
      'current-context': identity,
      preferences: {},
    };
    const path = join(this.state.dir, 'kubeconfig', `${identity}.yaml`);
    await writeFile(path, YAML.stringify(config), { mode: 0o600 });
    this.state.kubeconfigs[identity] = path;
    await this.saveState();
    return path;
  }

  /** @internal */
  async writeCertKubeconfig(identity: string, user: string, pair: KeyPair, namespace: string): Promise<string> {
    const [cert, key] = await Promise.all([readFile(pair.certFile, 'utf8'), readFile(pair.keyFile, 'utf8')]);
    return this.writeKubeconfig(
      identity,
      user,
      { 'client-certificate-data': b64(cert), 'client-key-data': b64(key) },
      namespace,
    );
  }

  /** Writes a kubeconfig for identity that authenticates as namespace/serviceAccount with a fresh token. */
  async addServiceAccountIdentity(
    identity: string,
    namespace: string,
    serviceAccount: string,
    opts: TokenOptions = {},
  ): Promise<string> {
    const token = await this.createToken(namespace, serviceAccount, opts);
    return this.writeKubeconfig(identity, `system:serviceaccount:${namespace}:${serviceAccount}`, { token }, namespace);
  }

  /** The bearer token stored in identity's kubeconfig (ServiceAccount identities only). */
  async tokenOf(identity: Identity): Promise<string> {
    const config = YAML.parse(await readFile(this.kubeconfigPath(identity), 'utf8')) as {
      users?: { user?: KubeconfigUser }[];
    };
    const token = config.users?.[0]?.user?.token;
    if (!token) throw new Error(`identity ${identity} has no token`);
    return token;
  }

  /**
   * Toolforge-style tool account (maintain-kubeusers): namespace tool-<name> labelled tenancy=tool, client cert
   * CN=<name> O=toolforge, RoleBinding <name>-tool-binding to ClusterRole tools-user, kubeconfig in tool-<name>.
   */
  async addTool(name: string): Promise<{ identity: string; namespace: string; kubeconfig: string }> {
    if (!TOOL_NAME.test(name) || name.length >= 54) throw new Error(`invalid tool name: ${name}`);
    if (RESERVED_NAMES.has(name)) throw new Error(`tool name clashes with a built-in identity: ${name}`);
    const namespace = `tool-${name}`;
    const [pair] = await Promise.all([
      createLeaf(join(this.state.dir, 'pki'), `tool-${name}`, this.state.clientCa, {
        commonName: name,
        organizations: ['toolforge'],
        usage: 'client',
      }),
      this.apply('admin', [
        {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: namespace, labels: { name: namespace, tenancy: 'tool' } },
        },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: { name: `${name}-tool-binding`, namespace },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'tools-user' },
          subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name }],
        },
      ]),
    ]);
    const kubeconfig = await this.writeCertKubeconfig(name, `tf-${name}`, pair, namespace);
    if (!this.state.tools.includes(name)) this.state.tools.push(name);
    await this.saveState();
    return { identity: name, namespace, kubeconfig };
  }

  private saving: Promise<void> = Promise.resolve();

  /** @internal */
  saveState(): Promise<void> {
    // Serialised and renamed into place: concurrent addTool()/kubeconfig writes must not interleave in the file.
    const next = this.saving.then(async () => {
      const file = join(this.state.dir, 'state.json');
      await writeFile(`${file}.tmp`, JSON.stringify(this.state, null, 2) + '\n');
      await rename(`${file}.tmp`, file);
    });
    this.saving = next.catch(() => undefined);
    return next;
  }

  /**
   * Restarts kube-apiserver with the arguments it runs with (etcd keeps running): SIGTERM (then SIGKILL), `downMs`
   * of outage, then the same command again, waiting until /readyz answers. Returns when it stopped answering and
   * when it answered again (ms since the epoch).
   */
  async restartApiserver(
    o: { downMs?: number; timeoutMs?: number } = {},
  ): Promise<{ downAt: number; readyAt: number }> {
    const pid = this.state.pids.apiserver;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    const args = cmdline
      .split('\0')
      .filter((a) => a !== '')
      .slice(1);
    await stopGroup(pid, 5_000);
    const downAt = Date.now();
    this.log('kube-apiserver stopped for a restart', { pid });
    if (o.downMs) await sleep(o.downMs);
    const daemon = spawnDaemon(this.state.commands.apiserver, args, this.state.logs.apiserver);
    // In place: the exit handler reads the pids from this same object.
    this.state.pids.apiserver = daemon.pid;
    await this.saveState();
    const ca = await readFile(this.state.caFile, 'utf8');
    await waitFor('kube-apiserver', o.timeoutMs ?? 120_000, daemon, async () => {
      const res = await httpsGet(new URL('/readyz', this.state.server).toString(), { ca });
      return res.status === 200 || res.status === 401 || res.status === 403;
    });
    const readyAt = Date.now();
    this.log('kube-apiserver restarted', { pid: daemon.pid, downMs: readyAt - downAt });
    return { downAt, readyAt };
  }

  /** SIGTERM, then SIGKILL, both process groups; removes the state dir. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await stopState(this.state, this.log);
    this.unregisterExit?.();
  }
}

async function stopState(state: ControlPlaneState, log: LogFn): Promise<void> {
  const ours = (pid: number, command: string) => isAlive(pid) && commandOf(pid) === command;
  const { controllerManager } = state.pids;
  if (controllerManager !== undefined && state.commands.controllerManager !== undefined) {
    if (ours(controllerManager, state.commands.controllerManager)) await stopGroup(controllerManager);
  }
  if (ours(state.pids.apiserver, state.commands.apiserver)) await stopGroup(state.pids.apiserver);
  if (ours(state.pids.etcd, state.commands.etcd)) await stopGroup(state.pids.etcd);
  await rm(state.dir, { recursive: true, force: true });
  log('control plane stopped', { dir: state.dir });
}

export async function readState(dir: string): Promise<ControlPlaneState | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as ControlPlaneState;
  } catch {
    return undefined;
  }
}

export function isRunning(state: ControlPlaneState): boolean {
  return (
    isAlive(state.pids.apiserver) &&
    commandOf(state.pids.apiserver) === state.commands.apiserver &&
    isAlive(state.pids.etcd) &&
    commandOf(state.pids.etcd) === state.commands.etcd
  );
}

/** Uses a control plane started by another process (e.g. `tsx scripts/cluster.ts up`). stop() tears it down. */
export async function attachControlPlane(dir: string, opts: { log?: LogFn } = {}): Promise<ControlPlane> {
  const state = await readState(dir);
  if (!state) throw new Error(`no control plane state in ${dir}`);
  if (!isRunning(state)) throw new Error(`control plane in ${dir} is not running`);
  return ControlPlane.fromState(state, opts.log ?? defaultLog, false);
}

/** Stops the control plane recorded in dir (if any) and removes dir. */
export async function stopControlPlaneAt(dir: string, opts: { log?: LogFn } = {}): Promise<boolean> {
  const state = await readState(dir);
  if (!state) return false;
  await stopState(state, opts.log ?? defaultLog);
  return true;
}

async function waitFor(what: string, timeoutMs: number, daemon: Daemon, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: string | undefined;
  void daemon.exited.then((how) => (exited = how));
  for (;;) {
    if (exited !== undefined) {
      throw new Error(`${what} exited (${exited}) during startup; log tail:\n${tail(daemon.logFile)}`);
    }
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new Error(`${what} not ready after ${timeoutMs} ms; log tail:\n${tail(daemon.logFile)}`);
    }
    await sleep(200);
  }
}

async function resolveBinaries(
  opts: ControlPlaneOptions,
  log: LogFn,
): Promise<{ binDir: string; etcd: string; apiserver: string; controllerManager: string | undefined }> {
  const binDir = opts.binDir ?? (await buildBinaries(log));
  const etcd = join(binDir, 'etcd');
  const apiserver = join(binDir, 'kube-apiserver');
  const controllerManager = (opts.controllerManager ?? true) ? join(binDir, 'kube-controller-manager') : undefined;
  for (const bin of [etcd, apiserver, ...(controllerManager ? [controllerManager] : [])]) {
    if (!existsSync(bin)) throw new Error(`missing binary ${bin} (scripts/control-plane/build.sh builds it)`);
  }
  return { binDir, etcd, apiserver, controllerManager };
}

async function prepareDir(requested: string | undefined): Promise<string> {
  let dir: string;
  if (requested) {
    dir = resolve(requested);
    const previous = await readState(dir);
    if (previous && isRunning(previous)) throw new Error(`a control plane is already running in ${dir}`);
    // Only ever wipe a directory that is empty or was ours: a mistyped --dir must not delete unrelated files.
    const entries = await readdir(dir).catch(() => [] as string[]);
    if (entries.length > 0 && !previous) throw new Error(`refusing to use non-empty directory ${dir} (no state.json)`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
  } else {
    dir = await mkdtemp(join(tmpdir(), 'jobs-storage-cp-'));
  }
  await Promise.all(
    ['pki', 'logs', 'kubeconfig', 'etcd'].map((d) => mkdir(join(dir, d), { recursive: true, mode: 0o700 })),
  );
  return dir;
}

async function createPki(pkiDir: string, node: NodeSupportOptions | undefined) {
  const [servingCa, clientCa, saKey] = await Promise.all([
    createCA(pkiDir, 'serving-ca', 'jobs-storage-e2e-serving-ca'),
    createCA(pkiDir, 'client-ca', 'jobs-storage-e2e-client-ca'),
    createSigningKey(pkiDir, 'sa-signer'),
  ]);
  const [serving, admin, controllerManager, webhookClient] = await Promise.all([
    createLeaf(pkiDir, 'apiserver', servingCa, {
      commonName: 'kube-apiserver',
      usage: 'server',
      dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
      ipAddresses: ['127.0.0.1', '10.0.0.1', ...(node ? [node.advertiseAddress] : [])],
    }),
    createLeaf(pkiDir, 'admin', clientCa, { commonName: 'admin', organizations: ['system:masters'], usage: 'client' }),
    createLeaf(pkiDir, 'kube-controller-manager', clientCa, {
      commonName: 'system:kube-controller-manager',
      usage: 'client',
    }),
    createWebhookClientPki(pkiDir),
  ]);
  // kube-apiserver's client certificate for kubelets (logs, exec, port-forward), only when a node may join.
  const kubeletClient = node
    ? await createLeaf(pkiDir, 'apiserver-kubelet-client', clientCa, {
        commonName: 'kube-apiserver-kubelet-client',
        organizations: ['system:masters'],
        usage: 'client',
      })
    : undefined;
  return { servingCa, clientCa, saKey, serving, admin, controllerManager, webhookClient, kubeletClient };
}

/** kube-apiserver's client certificate for admission webhooks, from a CA that signs nothing else. */
async function createWebhookClientPki(pkiDir: string): Promise<{ ca: KeyPair; client: KeyPair }> {
  const ca = await createCA(pkiDir, 'webhook-client-ca', 'jobs-storage-e2e-webhook-client-ca');
  const client = await createLeaf(pkiDir, 'apiserver-webhook-client', ca, {
    commonName: 'kube-apiserver',
    usage: 'client',
  });
  return { ca, client };
}

/** A kubeconfig with one cluster and one certificate user, by file paths (for the control plane's own daemons). */
function certKubeconfig(server: string, caFile: string, user: string, pair: KeyPair): string {
  return YAML.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'local', cluster: { server, 'certificate-authority': caFile } }],
    users: [{ name: user, user: { 'client-certificate': pair.certFile, 'client-key': pair.keyFile } }],
    contexts: [{ name: user, context: { cluster: 'local', user } }],
    'current-context': user,
  });
}

/**
 * kube-apiserver's admission plugin configuration: the kubeconfig the webhook plugins use to call webhooks presents
 * the webhook client certificate to every webhook (user `*`), as a production apiserver configured for webhook
 * caller authentication does.
 */
async function writeAdmissionConfig(dir: string, pki: Pki): Promise<string> {
  const kubeconfig = join(dir, 'admission-webhook-client.kubeconfig');
  const { certFile, keyFile } = pki.webhookClient.client;
  await writeFile(
    kubeconfig,
    YAML.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      users: [{ name: '*', user: { 'client-certificate': certFile, 'client-key': keyFile } }],
    }),
    { mode: 0o600 },
  );
  const webhookPlugin = (name: string) => ({
    name,
    configuration: {
      apiVersion: 'apiserver.config.k8s.io/v1',
      kind: 'WebhookAdmissionConfiguration',
      kubeConfigFile: kubeconfig,
    },
  });
  const file = join(dir, 'admission-config.yaml');
  await writeFile(
    file,
    YAML.stringify({
      apiVersion: 'apiserver.config.k8s.io/v1',
      kind: 'AdmissionConfiguration',
      plugins: [webhookPlugin('ValidatingAdmissionWebhook'), webhookPlugin('MutatingAdmissionWebhook')],
    }),
  );
  return file;
}

const CONTROLLERS = [
  'cronjob-controller',
  'job-controller',
  'garbage-collector-controller',
  'ttl-after-finished-controller',
  'deployment-controller',
  'replicaset-controller',
  'namespace-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'root-ca-certificate-publisher-controller',
  'clusterrole-aggregation-controller',
];

/** The controllers a node's pods need on top of CONTROLLERS (only with the `node` option). */
const NODE_CONTROLLERS = [
  // Takes the node.kubernetes.io/not-ready taint the kubelet registers with off once the node is Ready.
  'node-lifecycle-controller',
  'endpointslice-controller',
  'endpoints-controller',
  'daemonset-controller',
  'statefulset-controller',
  'disruption-controller',
  'pod-garbage-collector-controller',
];

/**
 * kube-controller-manager as `system:kube-controller-manager`, each controller with its own ServiceAccount
 * (`system:serviceaccount:kube-system:cronjob-controller`, `…:generic-garbage-collector`, …) as in a real cluster.
 * Without the `node` option no pods ever run (no scheduler, no kubelet), so only API-level controllers matter.
 */
function controllerManagerArgs(dir: string, kubeconfig: string, pki: Pki, node: boolean): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    '--use-service-account-credentials=true',
    `--root-ca-file=${pki.servingCa.certFile}`,
    `--service-account-private-key-file=${pki.saKey.privateKeyFile}`,
    '--leader-elect=false',
    '--secure-port=0',
    // Only API-level controllers: nothing schedules or runs pods here.
    `--controllers=${[...CONTROLLERS, ...(node ? NODE_CONTROLLERS : [])].join(',')}`,
    '--concurrent-cron-job-syncs=2',
    `--cert-dir=${join(dir, 'kcm-certs')}`,
    '--v=1',
  ];
}

type Pki = Awaited<ReturnType<typeof createPki>>;

interface Endpoints {
  etcdUrl: string;
  etcdPeerUrl: string;
  server: string;
  apiPort: number;
}

async function allocateEndpoints(): Promise<Endpoints> {
  const [etcdClientPort, etcdPeerPort, apiPort] = await Promise.all([freePort(), freePort(), freePort()]);
  return {
    etcdUrl: `http://127.0.0.1:${etcdClientPort}`,
    etcdPeerUrl: `http://127.0.0.1:${etcdPeerPort}`,
    server: `https://127.0.0.1:${apiPort}`,
    apiPort,
  };
}

function etcdArgs(dir: string, ep: Endpoints): string[] {
  return [
    '--name=default',
    `--data-dir=${join(dir, 'etcd')}`,
    `--listen-client-urls=${ep.etcdUrl}`,
    `--advertise-client-urls=${ep.etcdUrl}`,
    `--listen-peer-urls=${ep.etcdPeerUrl}`,
    `--initial-advertise-peer-urls=${ep.etcdPeerUrl}`,
    `--initial-cluster=default=${ep.etcdPeerUrl}`,
    '--unsafe-no-fsync=true',
    '--log-level=warn',
  ];
}

/** The pids, commands and logs of state.json; the controller-manager's only when it runs. */
function daemonState(
  bins: { etcd: string; apiserver: string; controllerManager: string | undefined },
  d: { etcd: Daemon; apiserver: Daemon; controllerManager: Daemon | undefined },
): Pick<ControlPlaneState, 'pids' | 'commands' | 'logs'> {
  const cm =
    d.controllerManager && bins.controllerManager ? { bin: bins.controllerManager, ...d.controllerManager } : undefined;
  return {
    pids: { etcd: d.etcd.pid, apiserver: d.apiserver.pid, ...(cm ? { controllerManager: cm.pid } : {}) },
    commands: { etcd: bins.etcd, apiserver: bins.apiserver, ...(cm ? { controllerManager: cm.bin } : {}) },
    logs: { etcd: d.etcd.logFile, apiserver: d.apiserver.logFile, ...(cm ? { controllerManager: cm.logFile } : {}) },
  };
}

async function startControllerManager(
  binary: string | undefined,
  dir: string,
  server: string,
  pki: Pki,
  node: boolean,
): Promise<Daemon | undefined> {
  if (binary === undefined) return undefined;
  const kubeconfig = join(dir, 'kubeconfig', 'kube-controller-manager.yaml');
  const user = 'system:kube-controller-manager';
  await writeFile(kubeconfig, certKubeconfig(server, pki.servingCa.certFile, user, pki.controllerManager), {
    mode: 0o600,
  });
  return spawnDaemon(
    binary,
    controllerManagerArgs(dir, kubeconfig, pki, node),
    join(dir, 'logs', 'kube-controller-manager.log'),
  );
}

function apiserverArgs(
  ep: Endpoints,
  pki: Pki,
  apiAudiences: string[],
  admissionConfig: string,
  opts: Pick<ControlPlaneOptions, 'extraApiserverArgs' | 'node'>,
): string[] {
  const { node, extraApiserverArgs: extra = [] } = opts;
  const base = [
    `--admission-control-config-file=${admissionConfig}`,
    `--etcd-servers=${ep.etcdUrl}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${ep.apiPort}`,
    `--tls-cert-file=${pki.serving.certFile}`,
    `--tls-private-key-file=${pki.serving.keyFile}`,
    `--client-ca-file=${pki.clientCa.certFile}`,
    '--authorization-mode=RBAC',
    `--service-account-issuer=${ep.server}`,
    `--service-account-key-file=${pki.saKey.publicKeyFile}`,
    `--service-account-signing-key-file=${pki.saKey.privateKeyFile}`,
    `--api-audiences=${apiAudiences.join(',')}`,
    `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
    '--allow-privileged=true',
    // No controller-manager runs, so nothing would create the token Secrets this plugin expects; tokens come from
    // the TokenRequest API instead.
    '--disable-admission-plugins=ServiceAccount',
    '--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ResourceQuota,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy',
    '--profiling=false',
  ];
  return [...(node && pki.kubeletClient ? withNodeSupport(base, node, pki.kubeletClient) : base), ...extra];
}

/**
 * The node option's changes to kube-apiserver's arguments: reachable from pods through the `kubernetes` Service,
 * Node authorization and NodeRestriction for kubelets, ServiceAccount admission (the controller-manager makes the
 * default ServiceAccounts) so pods get their token volume, and a client certificate for calling kubelets.
 */
function withNodeSupport(args: string[], node: NodeSupportOptions, kubeletClient: KeyPair): string[] {
  const replaced = new Map<string, string>([
    ['--bind-address', '0.0.0.0'],
    ['--advertise-address', node.advertiseAddress],
    ['--authorization-mode', 'Node,RBAC'],
    [
      '--enable-admission-plugins',
      'NamespaceLifecycle,LimitRanger,ServiceAccount,NodeRestriction,ResourceQuota,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy',
    ],
  ]);
  const out = args
    .filter((a) => !a.startsWith('--disable-admission-plugins='))
    .map((a) => {
      const flag = a.slice(0, a.indexOf('='));
      const value = replaced.get(flag);
      return value === undefined ? a : `${flag}=${value}`;
    });
  return [
    ...out,
    `--kubelet-client-certificate=${kubeletClient.certFile}`,
    `--kubelet-client-key=${kubeletClient.keyFile}`,
    '--kubelet-preferred-address-types=InternalIP',
  ];
}

function nodeState(node: NodeSupportOptions | undefined, ep: Endpoints): Pick<ControlPlaneState, 'node'> {
  return node ? { node: { advertiseAddress: node.advertiseAddress, apiPort: ep.apiPort } } : {};
}

async function apiserverReady(server: string, pki: Pki): Promise<() => Promise<boolean>> {
  const [ca, cert, key] = await Promise.all([
    readFile(pki.servingCa.certFile, 'utf8'),
    readFile(pki.admin.certFile, 'utf8'),
    readFile(pki.admin.keyFile, 'utf8'),
  ]);
  return async () => (await httpsGet(`${server}/readyz`, { ca, cert, key })).status === 200;
}

/**
 * Starts etcd and kube-apiserver on free 127.0.0.1 ports with throw-away PKI, writes the 'admin' kubeconfig and,
 * unless seed is false, the built-in RBAC and ServiceAccount identities (seedIdentities). Without keep, the processes
 * are killed and the state dir removed on stop(), on process exit and on SIGINT/SIGTERM/SIGHUP.
 */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const log = opts.log ?? defaultLog;
  const keep = opts.keep ?? false;
  const timeoutMs = opts.startTimeoutMs ?? 120_000;
  const started = Date.now();
  const bins = await resolveBinaries(opts, log);
  const dir = await prepareDir(opts.dir);

  const daemons: Daemon[] = [];
  // Until the ControlPlane object exists, a crash or Ctrl-C must still take the children down.
  const unregisterEarly = onExit(() => {
    for (const d of daemons) killGroupSync(d.pid);
    removeDirSync(dir);
  });

  try {
    const [ep, pki] = await Promise.all([allocateEndpoints(), createPki(join(dir, 'pki'), opts.node)]);
    const issuer = ep.server;
    const tokenAudience = opts.tokenAudience ?? issuer;
    const apiAudiences = [...new Set([issuer, tokenAudience, ...(opts.apiAudiences ?? [])])];

    const admissionConfig = await writeAdmissionConfig(dir, pki);
    const etcd = spawnDaemon(bins.etcd, etcdArgs(dir, ep), join(dir, 'logs', 'etcd.log'));
    daemons.push(etcd);
    log('etcd started', { pid: etcd.pid, url: ep.etcdUrl });
    await waitFor('etcd', timeoutMs, etcd, async () => {
      const res = await fetch(`${ep.etcdUrl}/health`, { signal: AbortSignal.timeout(2_000) });
      return res.ok;
    });

    const apiserver = spawnDaemon(
      bins.apiserver,
      apiserverArgs(ep, pki, apiAudiences, admissionConfig, opts),
      join(dir, 'logs', 'kube-apiserver.log'),
    );
    daemons.push(apiserver);
    log('kube-apiserver started', { pid: apiserver.pid, server: ep.server });
    await waitFor('kube-apiserver', timeoutMs, apiserver, await apiserverReady(ep.server, pki));
    log('kube-apiserver ready', { ms: Date.now() - started });

    const controllerManager = await startControllerManager(
      bins.controllerManager,
      dir,
      ep.server,
      pki,
      opts.node !== undefined,
    );
    if (controllerManager) {
      daemons.push(controllerManager);
      log('kube-controller-manager started', { pid: controllerManager.pid });
    }

    const cp = ControlPlane.fromState(
      {
        version: 1,
        dir,
        binDir: bins.binDir,
        server: ep.server,
        issuer,
        etcdUrl: ep.etcdUrl,
        caFile: pki.servingCa.certFile,
        clientCa: pki.clientCa,
        tokenAudience,
        tokenTtlSeconds: opts.tokenTtlSeconds ?? 86_400,
        ...daemonState(bins, { etcd, apiserver, controllerManager }),
        kubeconfigs: {},
        tools: [],
        webhookClientCaFile: pki.webhookClient.ca.certFile,
        webhookClientCert: pki.webhookClient.client,
        ...nodeState(opts.node, ep),
      },
      log,
      !keep,
    );
    unregisterEarly();
    try {
      await cp.writeCertKubeconfig('admin', 'admin', pki.admin, 'default');
      if (opts.seed ?? true) await seedIdentities(cp);
    } catch (err) {
      await cp.stop();
      throw err;
    }
    log('control plane seeded', { ms: Date.now() - started });
    return cp;
  } catch (err) {
    for (const d of daemons) await stopGroup(d.pid, 2_000);
    await rm(dir, { recursive: true, force: true });
    unregisterEarly();
    throw err;
  }
}

const rbac = 'rbac.authorization.k8s.io';
const JOBS_GROUP = STORAGE_GROUP;
/** Every plural of the storage group, as the product protects them. */
const JOBS_PLURALS = [...ALL_STORAGE_PLURALS];

function clusterRoleBinding(name: string, role: string, subjects: object[]): object {
  return {
    apiVersion: `${rbac}/v1`,
    kind: 'ClusterRoleBinding',
    metadata: { name },
    roleRef: { apiGroup: rbac, kind: 'ClusterRole', name: role },
    subjects,
  };
}

function saSubject(sa: { namespace: string; name: string }): object {
  return { kind: 'ServiceAccount', name: sa.name, namespace: sa.namespace };
}

/** RBAC objects for tools, jobs-api and the jobs-storage sync sidecar (modelled on Toolforge, see domain doc §3.3/§4.5). */
export function baseRbacObjects(): object[] {
  const crud = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];
  const read = ['get', 'list', 'watch'];
  return [
    {
      apiVersion: `${rbac}/v1`,
      kind: 'ClusterRole',
      metadata: { name: 'tools-user' },
      rules: [
        { apiGroups: [''], resources: ['pods', 'services', 'secrets', 'configmaps'], verbs: crud },
        { apiGroups: ['apps'], resources: ['deployments', 'replicasets', 'statefulsets'], verbs: crud },
        { apiGroups: ['batch'], resources: ['jobs', 'cronjobs'], verbs: crud },
        { apiGroups: ['networking.k8s.io'], resources: ['ingresses', 'networkpolicies'], verbs: crud },
        // A tool reads the Events in its namespace (`kubectl get events`, `kubectl events`), as on Toolforge.
        { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['get', 'list', 'watch'] },
        // Production tools-user grants nothing on this group. Writes are allowed here on purpose so that the requests
        // reach admission and the jobs-storage webhook/policy is what denies them (the thing under test).
        { apiGroups: [JOBS_GROUP], resources: JOBS_PLURALS, verbs: crud },
      ],
    },
    // Lets token verifiers outside the cluster (the admin API) fetch the issuer's discovery document and JWKS.
    clusterRoleBinding('service-account-issuer-discovery-public', 'system:service-account-issuer-discovery', [
      { apiGroup: rbac, kind: 'Group', name: 'system:unauthenticated' },
      { apiGroup: rbac, kind: 'Group', name: 'system:authenticated' },
    ]),

    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: JOBS_API_SA.namespace } },
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: JOBS_API_SA.name, namespace: JOBS_API_SA.namespace },
    },
    {
      apiVersion: `${rbac}/v1`,
      kind: 'ClusterRole',
      metadata: { name: 'toolforge-jobs-owner' },
      rules: [{ apiGroups: [JOBS_GROUP], resources: JOBS_PLURALS, verbs: ['*'] }],
    },
    clusterRoleBinding('toolforge-jobs-owner-binding', 'toolforge-jobs-owner', [saSubject(JOBS_API_SA)]),
    {
      apiVersion: `${rbac}/v1`,
      kind: 'Role',
      metadata: { name: 'jobs-api-configmaps', namespace: JOBS_API_SA.namespace },
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: read }],
    },
    {
      apiVersion: `${rbac}/v1`,
      kind: 'RoleBinding',
      metadata: { name: 'jobs-api-configmaps', namespace: JOBS_API_SA.namespace },
      roleRef: { apiGroup: rbac, kind: 'Role', name: 'jobs-api-configmaps' },
      subjects: [saSubject(JOBS_API_SA)],
    },

    // The jobs-storage identities themselves come from the chart (chartRbacObjects), not from here.
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: JOBS_STORAGE_SA.namespace } },
  ];
}

const RBAC_KINDS = new Set(['ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding']);

/** The release the README installs the chart as (`helm install jobs-storage deploy/chart -n jobs-storage`). */
export const CHART_RELEASE = { name: 'jobs-storage', namespace: JOBS_STORAGE_SA.namespace } as const;

interface RenderedObject {
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
}

/**
 * The ServiceAccounts and RBAC the chart ships (deploy/chart/templates/rbac.yaml rendered with the local values), so
 * the webhook and sync run here with exactly the permissions they get on Toolforge. They carry Helm's ownership
 * label and annotations for CHART_RELEASE, so a later `helm install` of that release adopts them instead of refusing
 * objects it "cannot import into the current release".
 */
export function chartRbacObjects(): object[] {
  const text = helmTemplate({
    environment: 'local',
    namespace: CHART_RELEASE.namespace,
    showOnly: ['templates/rbac.yaml'],
  });
  return YAML.parseAllDocuments(text)
    .map((d) => d.toJS() as RenderedObject | null)
    .filter((o): o is RenderedObject => o !== null && RBAC_KINDS.has(o.kind))
    .map((o) => ({
      ...o,
      metadata: {
        ...o.metadata,
        labels: { ...o.metadata.labels, 'app.kubernetes.io/managed-by': 'Helm' },
        annotations: {
          ...o.metadata.annotations,
          'meta.helm.sh/release-name': CHART_RELEASE.name,
          'meta.helm.sh/release-namespace': CHART_RELEASE.namespace,
        },
      },
    }));
}

/**
 * Applies baseRbacObjects() and the chart's RBAC, and writes token kubeconfigs for the 'jobs-api',
 * 'jobs-storage-sync' and 'jobs-storage-webhook' identities.
 */
export async function seedIdentities(cp: ControlPlane, opts: TokenOptions = {}): Promise<void> {
  await cp.apply('admin', baseRbacObjects());
  await cp.apply('admin', chartRbacObjects());
  await Promise.all([
    cp.addServiceAccountIdentity('jobs-api', JOBS_API_SA.namespace, JOBS_API_SA.name, opts),
    cp.addServiceAccountIdentity('jobs-storage-sync', JOBS_STORAGE_SA.namespace, JOBS_STORAGE_SA.name, opts),
    cp.addServiceAccountIdentity('jobs-storage-webhook', JOBS_STORAGE_SA.namespace, JOBS_STORAGE_WEBHOOK_SA.name, opts),
  ]);
}

/** Installs the jobs-api CRDs of deploy/crds/ as admin and waits for Established. Returns the CRD names. */
export function installJobsCrds(cp: ControlPlane, crdDir = join(REPO_ROOT, 'deploy', 'crds')): Promise<string[]> {
  return installCrdsFrom(cp, crdDir);
}

/** Default state dir of the long-lived control plane started by `tsx scripts/cluster.ts up`. */
export function defaultClusterDir(): string {
  const cache = process.env['XDG_CACHE_HOME'] || join(process.env['HOME'] ?? tmpdir(), '.cache');
  return join(cache, 'toolforge-jobs-storage', 'cluster');
}
