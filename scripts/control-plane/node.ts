// A real node for the local control plane: containerd (+ runc, the CNI bridge plugin), kubelet, kube-proxy (iptables
// mode) and kube-scheduler, all as host processes started and stopped by PID. Opt-in: the control plane must be
// started with startControlPlane({ node: { advertiseAddress: NODE_IP } }). Binaries and the locally built sandbox
// image come from scripts/node/build.sh. Needs root (containers, iptables, a bridge).
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { REPO_ROOT, SERVICE_CLUSTER_IP_RANGE, runBuildScript } from './cluster.js';
import type { ControlPlane, LogFn } from './cluster.js';
import { createLeaf } from './pki.js';
import type { KeyPair } from './pki.js';
import { commandOf, freePort, isAlive, killGroupSync, onExit, sleep, spawnDaemon, stopGroup, tail } from './process.js';
import type { Daemon } from './process.js';

const execFileAsync = promisify(execFile);

export const NODE_BUILD_SCRIPT = join(REPO_ROOT, 'scripts', 'node', 'build.sh');

/**
 * The node's address: the gateway address of the pods' bridge, which startNode() creates before anything else. The
 * apiserver advertises it (startControlPlane's `node.advertiseAddress`), kubelet reports it as InternalIP.
 */
export const NODE_IP = '10.244.0.1';
/** Pod addresses (CNI host-local on the bridge); kube-proxy's clusterCIDR. */
export const POD_CIDR = '10.244.0.0/16';
const BRIDGE = 'jsnode0';
const CNI_NETWORK = 'jobs-storage-node';
const CNI_BIN_DIR = '/usr/lib/cni';

export interface NodeOptions {
  /** Node name (default "node-1"); the kubelet authenticates as system:node:<name>. */
  name?: string;
  /** Directory with kubelet, kube-proxy, kube-scheduler and the image archives; default: the output of build.sh. */
  binDir?: string;
  /**
   * State directory (containerd root/state, kubelet root, CNI leases, logs); default: a fresh temp dir. Not inside the
   * control plane's dir: its exit handler removes that dir recursively, and a dir with live mounts must never be.
   */
  dir?: string;
  /** Long-lived mode (scripts/cluster.ts): no exit handlers; stop with stopNodeAt(dir). */
  keep?: boolean;
  startTimeoutMs?: number;
  log?: LogFn;
}

/** dir/node-state.json: what stopNodeAt() needs from another process. */
export interface NodeState {
  version: 1;
  name: string;
  dir: string;
  binDir: string;
  containerdSocket: string;
  pids: { containerd: number; kubelet: number; kubeProxy: number; scheduler: number };
  commands: { containerd: string; kubelet: string; kubeProxy: string; scheduler: string };
  logs: { containerd: string; kubelet: string; kubeProxy: string; scheduler: string };
  /** Images imported into containerd's k8s.io namespace, by role. */
  images: { pause: string; http: string };
  adminKubeconfig: string;
}

export interface Node {
  readonly name: string;
  readonly dir: string;
  readonly nodeIp: string;
  readonly podCidr: string;
  readonly containerdSocket: string;
  readonly images: Readonly<{ pause: string; http: string }>;
  readonly logs: NodeState['logs'];
  readonly pids: NodeState['pids'];
  /** `ctr` against this node's containerd, in the k8s.io namespace. */
  ctr(args: string[]): Promise<string>;
  /** Cordons the node, removes its pods, stops kube-proxy (and its rules), kubelet, containerd, the scheduler. */
  stop(): Promise<void>;
}

const defaultLog: LogFn = (msg, fields) => {
  process.stderr.write(`[node] ${msg}${fields ? ' ' + JSON.stringify(fields) : ''}\n`);
};

/** Runs scripts/node/build.sh (builds/installs what is missing); returns the directory it prints. */
export function buildNodeBinaries(log: LogFn = defaultLog): Promise<string> {
  return runBuildScript(NODE_BUILD_SCRIPT, 'JOBS_STORAGE_NODE_BIN_DIR', 'node binaries ready', log);
}

async function run(command: string, args: string[], timeoutMs = 60_000): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

async function runQuiet(command: string, args: string[]): Promise<boolean> {
  try {
    await execFileAsync(command, args, { timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

/** Checks what a node needs from this machine and says which part is missing, before anything starts. */
function preflight(): void {
  if (process.getuid?.() !== 0) throw new Error('a node needs root (containers, iptables, a bridge)');
  for (const bin of ['containerd', 'runc', 'ctr', 'iptables', 'ip']) {
    if (!existsInPath(bin)) throw new Error(`${bin} not found on PATH (scripts/node/build.sh installs it)`);
  }
  for (const plugin of ['bridge', 'host-local', 'loopback', 'portmap']) {
    if (!existsSync(join(CNI_BIN_DIR, plugin))) throw new Error(`CNI plugin ${CNI_BIN_DIR}/${plugin} missing`);
  }
  const cgroups = readFileSync('/proc/self/mountinfo', 'utf8');
  if (!/ \/sys\/fs\/cgroup/.test(cgroups)) throw new Error('no cgroup filesystem mounted at /sys/fs/cgroup');
}

function existsInPath(bin: string): boolean {
  return (process.env['PATH'] ?? '').split(':').some((p) => p !== '' && existsSync(join(p, bin)));
}

/** A kubeconfig with one certificate user, by file paths. */
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

function containerdConfig(dir: string, socket: string, pauseImage: string): string {
  const q = (s: string) => JSON.stringify(s);
  return `version = 2
root = ${q(join(dir, 'containerd', 'root'))}
state = ${q(join(dir, 'containerd', 'state'))}
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = ${q(socket)}

[ttrpc]
  address = ${q(`${socket}.ttrpc`)}

[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(join(dir, 'containerd', 'opt'))}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(pauseImage)}
  netns_mounts_under_state_dir = true
  # This machine's root lacks CAP_SYS_RESOURCE (CapEff 0x1fffeffffff: bit 24 clear), so runc cannot lower
  # oom_score_adj below containerd's own (the sandbox asks for -998: "failed to update /proc/self/oom_score_adj:
  # Permission denied"). Clamp it to containerd's, as for rootless containerd.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ${q(CNI_BIN_DIR)}
    conf_dir = ${q(join(dir, 'cni', 'net.d'))}
`;
}

/**
 * The pods' network: the bridge plugin on BRIDGE (NODE_IP is its gateway), host-local addresses from POD_CIDR, no
 * masquerade and no default route: a pod reaches the node, Services and other pods, and nothing off this machine.
 */
function cniConflist(dir: string): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: CNI_NETWORK,
      plugins: [
        {
          type: 'bridge',
          bridge: BRIDGE,
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: POD_CIDR, gateway: NODE_IP }]],
            routes: [{ dst: SERVICE_CLUSTER_IP_RANGE }, { dst: POD_CIDR }],
            dataDir: join(dir, 'cni', 'ipam'),
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

function kubeletConfig(o: {
  dir: string;
  socket: string;
  clientCaFile: string;
  port: number;
  healthzPort: number;
  resolvConf: string;
}): string {
  return YAML.stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: NODE_IP,
    port: o.port,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: o.healthzPort,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: o.clientCaFile },
    },
    authorization: { mode: 'Webhook' },
    cgroupDriver: 'cgroupfs',
    // This machine runs cgroup v1; kubelet 1.35 will refuse it by default.
    failCgroupV1: false,
    containerRuntimeEndpoint: `unix://${o.socket}`,
    failSwapOn: false,
    resolvConf: o.resolvConf,
    clusterDomain: 'cluster.local',
    podLogsDir: join(o.dir, 'pod-logs'),
    cgroupsPerQOS: true,
    enforceNodeAllocatable: ['pods'],
    // Images are imported, never pulled: the kubelet must not garbage-collect them when the disk fills up.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
    serializeImagePulls: false,
    rotateCertificates: false,
    serverTLSBootstrap: false,
    registerNode: true,
    maxPods: 110,
    nodeStatusUpdateFrequency: '5s',
    syncFrequency: '10s',
  });
}

function kubeProxyConfig(o: { kubeconfig: string; name: string; healthzPort: number; metricsPort: number }): string {
  return YAML.stringify({
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    clientConnection: { kubeconfig: o.kubeconfig },
    mode: 'iptables',
    clusterCIDR: POD_CIDR,
    hostnameOverride: o.name,
    bindAddress: NODE_IP,
    healthzBindAddress: `127.0.0.1:${o.healthzPort}`,
    metricsBindAddress: `127.0.0.1:${o.metricsPort}`,
    // NodePorts only on the node's own bridge address; conntrack sysctls left as the machine has them.
    nodePortAddresses: [`${NODE_IP}/32`],
    conntrack: { maxPerCore: 0, min: 0 },
    iptables: { syncPeriod: '10s', minSyncPeriod: '0s' },
  });
}

/** The pods' bridge with NODE_IP, and the Service range routed onto it so an unknown ClusterIP stays on the machine. */
async function setUpNetwork(): Promise<void> {
  if (!(await runQuiet('ip', ['link', 'show', BRIDGE]))) {
    await run('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  }
  const addrs = await run('ip', ['-o', '-4', 'addr', 'show', 'dev', BRIDGE]);
  if (!addrs.includes(` ${NODE_IP}/`)) await run('ip', ['addr', 'add', `${NODE_IP}/16`, 'dev', BRIDGE]);
  await run('ip', ['link', 'set', BRIDGE, 'up']);
  await run('ip', ['route', 'replace', SERVICE_CLUSTER_IP_RANGE, 'dev', BRIDGE, 'src', NODE_IP]);
}

async function tearDownNetwork(): Promise<void> {
  await runQuiet('ip', ['route', 'del', SERVICE_CLUSTER_IP_RANGE, 'dev', BRIDGE]);
  await runQuiet('ip', ['link', 'del', BRIDGE]);
}

/** The chains the kubelet makes for itself, in iptables and ip6tables (kube-proxy's go with `kube-proxy --cleanup`). */
const KUBELET_CHAINS = ['KUBE-FIREWALL', 'KUBE-KUBELET-CANARY', 'KUBE-IPTABLES-HINT'];

function removeKubeletChainsSync(): void {
  const ipt = (command: string, args: string[]) => spawnSync(command, ['-w', ...args], { encoding: 'utf8' });
  for (const command of ['iptables', 'ip6tables']) {
    for (const table of ['filter', 'nat', 'mangle']) {
      const listed = ipt(command, ['-t', table, '-S']);
      if (listed.status !== 0) continue;
      const lines = listed.stdout.split('\n');
      for (const line of lines) {
        // Jumps into those chains from the built-in ones, e.g. "-A INPUT -j KUBE-FIREWALL".
        const m = /^-A (\S+) (.*-j (\S+))$/.exec(line);
        if (m?.[1] && m[2] && m[3] && KUBELET_CHAINS.includes(m[3])) {
          ipt(command, ['-t', table, '-D', m[1], ...m[2].split(' ')]);
        }
      }
      for (const chain of KUBELET_CHAINS.filter((c) => lines.includes(`-N ${c}`))) {
        ipt(command, ['-t', table, '-F', chain]);
        ipt(command, ['-t', table, '-X', chain]);
      }
    }
  }
}

/** Mount points at or under dir, deepest first. */
function mountsUnder(dir: string): string[] {
  const prefix = resolve(dir);
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined && (p === prefix || p.startsWith(`${prefix}/`)))
    .map((p) => p.replace(/\\040/g, ' '))
    .sort((a, b) => b.length - a.length);
}

async function unmountAll(dir: string): Promise<string[]> {
  for (let round = 0; round < 3; round++) {
    const mounts = mountsUnder(dir);
    if (mounts.length === 0) return [];
    for (const m of mounts) await runQuiet('umount', ['-l', m]);
  }
  return mountsUnder(dir);
}

async function waitFor(what: string, timeoutMs: number, daemon: Daemon, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: string | undefined;
  void daemon.exited.then((how) => (exited = how));
  for (;;) {
    if (exited !== undefined)
      throw new Error(`${what} exited (${exited}) during startup; log tail:\n${tail(daemon.logFile)}`);
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline)
      throw new Error(`${what} not ready after ${timeoutMs} ms; log tail:\n${tail(daemon.logFile)}`);
    await sleep(250);
  }
}

async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  return res.ok;
}

function ctrArgs(socket: string, args: string[]): string[] {
  return ['--address', socket, '--namespace', 'k8s.io', ...args];
}

/**
 * Starts a node named `name` for cp: containerd with its own socket/root/state and the locally built images
 * imported, kubelet, kube-proxy and kube-scheduler. Resolves once the kubelet has registered the Node (not
 * necessarily Ready yet: waitForNodeReady()).
 */
export async function startNode(cp: ControlPlane, opts: NodeOptions = {}): Promise<Node> {
  const log = opts.log ?? defaultLog;
  const name = opts.name ?? 'node-1';
  const timeoutMs = opts.startTimeoutMs ?? 120_000;
  const support = cp.nodeSupport;
  if (support.advertiseAddress !== NODE_IP) {
    throw new Error(`the control plane advertises ${support.advertiseAddress}; a node needs ${NODE_IP}`);
  }
  preflight();
  const { binDir, bins, pause, http } = await resolveNodeBinaries(opts.binDir, log);
  // One node per machine: the bridge, NODE_IP, the kubepods cgroups and the iptables chains are machine-wide.
  const running = processesOf(bins.kubelet);
  if (running.length > 0) {
    throw new Error(
      `a node already runs on this machine (kubelet pid ${running.join(', ')}); stop it first ` +
        '(`npm run cluster:down`, or the test that started it)',
    );
  }
  const images = { pause: pause.ref, http: http.ref };
  const dir = await prepareNodeDir(opts.dir, name);
  const socket = join(dir, 'containerd', 'containerd.sock');
  const logs = {
    containerd: join(dir, 'logs', 'containerd.log'),
    kubelet: join(dir, 'logs', 'kubelet.log'),
    kubeProxy: join(dir, 'logs', 'kube-proxy.log'),
    scheduler: join(dir, 'logs', 'kube-scheduler.log'),
  };

  const daemons: Daemon[] = [];
  const unregisterEarly = opts.keep
    ? () => undefined
    : onExit(() => {
        for (const d of daemons) killGroupSync(d.pid);
        cleanUpHostSync(dir);
      });
  const started = Date.now();
  try {
    await setUpNetwork();
    const kubeconfigs = await writeKubeconfigs(cp, dir, name);
    await Promise.all([
      writeFile(join(dir, 'containerd', 'config.toml'), containerdConfig(dir, socket, images.pause)),
      writeFile(join(dir, 'cni', 'net.d', '10-jobs-storage.conflist'), cniConflist(dir)),
      // Pods resolve nothing: no cluster DNS runs and this machine has no network beyond its registries.
      writeFile(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\noptions ndots:1\n'),
    ]);

    // containerd, then the images the pods need (never pulled).
    const containerd = spawnDaemon(
      bins.containerd,
      ['--config', join(dir, 'containerd', 'config.toml')],
      logs.containerd,
    );
    daemons.push(containerd);
    log('containerd started', { pid: containerd.pid, socket });
    await waitFor('containerd', timeoutMs, containerd, () => runQuiet('ctr', ctrArgs(socket, ['version'])));
    for (const archive of [pause.archive, http.archive]) {
      await run('ctr', ctrArgs(socket, ['images', 'import', join(binDir, archive)]), 120_000);
    }
    log('images imported', { images, ms: Date.now() - started });

    const [kubeletPort, kubeletHealthz, proxyHealthz, proxyMetrics, schedulerPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    const kubeletConfigFile = join(dir, 'kubelet-config.yaml');
    await writeFile(
      kubeletConfigFile,
      kubeletConfig({
        dir,
        socket,
        clientCaFile: support.clientCa.certFile,
        port: kubeletPort,
        healthzPort: kubeletHealthz,
        resolvConf: join(dir, 'resolv.conf'),
      }),
    );
    const kubelet = spawnDaemon(
      bins.kubelet,
      [
        `--config=${kubeletConfigFile}`,
        `--kubeconfig=${kubeconfigs.kubelet}`,
        `--root-dir=${join(dir, 'kubelet')}`,
        `--cert-dir=${join(dir, 'kubelet', 'pki')}`,
        `--hostname-override=${name}`,
        `--node-ip=${NODE_IP}`,
        '--v=1',
      ],
      logs.kubelet,
    );
    daemons.push(kubelet);
    log('kubelet started', { pid: kubelet.pid });

    const proxyConfigFile = join(dir, 'kube-proxy-config.yaml');
    await writeFile(
      proxyConfigFile,
      kubeProxyConfig({
        kubeconfig: kubeconfigs.kubeProxy,
        name,
        healthzPort: proxyHealthz,
        metricsPort: proxyMetrics,
      }),
    );
    const kubeProxy = spawnDaemon(bins.kubeProxy, [`--config=${proxyConfigFile}`, '--v=1'], logs.kubeProxy);
    daemons.push(kubeProxy);
    log('kube-proxy started', { pid: kubeProxy.pid });

    const scheduler = spawnDaemon(
      bins.scheduler,
      [
        `--kubeconfig=${kubeconfigs.scheduler}`,
        `--authentication-kubeconfig=${kubeconfigs.scheduler}`,
        `--authorization-kubeconfig=${kubeconfigs.scheduler}`,
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        `--secure-port=${schedulerPort}`,
        `--cert-dir=${join(dir, 'scheduler-certs')}`,
        '--v=1',
      ],
      logs.scheduler,
    );
    daemons.push(scheduler);
    log('kube-scheduler started', { pid: scheduler.pid });

    await waitFor('kubelet', timeoutMs, kubelet, () => httpOk(`http://127.0.0.1:${kubeletHealthz}/healthz`));
    await waitFor('kube-proxy', timeoutMs, kubeProxy, () => httpOk(`http://127.0.0.1:${proxyHealthz}/livez`));
    await waitFor('node registration', timeoutMs, kubelet, async () => {
      const res = await cp.kubectl('admin', ['get', 'node', name, '-o', 'name']);
      return res.code === 0;
    });
    log('node registered', { name, ms: Date.now() - started });

    const state: NodeState = {
      version: 1,
      name,
      dir,
      binDir,
      containerdSocket: socket,
      pids: { containerd: containerd.pid, kubelet: kubelet.pid, kubeProxy: kubeProxy.pid, scheduler: scheduler.pid },
      commands: bins,
      logs,
      images,
      adminKubeconfig: cp.kubeconfigPath('admin'),
    };
    await writeFile(join(dir, 'node-state.json'), JSON.stringify(state, null, 2) + '\n');
    unregisterEarly();
    return nodeHandle(state, log, !opts.keep);
  } catch (err) {
    log('node start failed; cleaning up', { error: err instanceof Error ? err.message : String(err) });
    for (const d of [...daemons].reverse()) await stopGroup(d.pid, 5_000);
    await cleanUpHost(dir, log);
    unregisterEarly();
    throw err;
  }
}

async function resolveNodeBinaries(requested: string | undefined, log: LogFn) {
  const binDir = requested ?? (await buildNodeBinaries(log));
  const bins = {
    containerd: await resolveCommand('containerd'),
    kubelet: join(binDir, 'kubelet'),
    kubeProxy: join(binDir, 'kube-proxy'),
    scheduler: join(binDir, 'kube-scheduler'),
  };
  for (const bin of [bins.kubelet, bins.kubeProxy, bins.scheduler]) {
    if (!existsSync(bin)) throw new Error(`missing binary ${bin} (scripts/node/build.sh builds it)`);
  }
  const [pause, http] = await Promise.all([readImageRef(binDir, 'pause.ref'), readImageRef(binDir, 'http.ref')]);
  return { binDir, bins, pause, http };
}

/** A fresh state dir: the requested one emptied (refused while it still has mounts), else a new temp dir. */
async function prepareNodeDir(requested: string | undefined, name: string): Promise<string> {
  const dir = resolve(requested ?? (await mkdtemp(join(tmpdir(), `jobs-storage-node-${name}-`))));
  if (requested) {
    const leftover = mountsUnder(dir);
    if (leftover.length > 0) throw new Error(`${dir} still has mounts from an earlier node: ${leftover.join(', ')}`);
    await rm(dir, { recursive: true, force: true });
  }
  for (const d of ['logs', 'pki', 'kubeconfig', 'cni/net.d', 'cni/ipam', 'kubelet', 'pod-logs', 'containerd']) {
    await mkdir(join(dir, d), { recursive: true, mode: 0o700 });
  }
  return dir;
}

/**
 * Client certificates signed by the control plane's client CA and a kubeconfig for each: the kubelet as
 * `system:node:<name>` in `system:nodes` (Node authorizer, NodeRestriction), kube-proxy as `system:kube-proxy` and
 * the scheduler as `system:kube-scheduler` (both bound by the apiserver's bootstrap RBAC).
 */
async function writeKubeconfigs(
  cp: ControlPlane,
  dir: string,
  name: string,
): Promise<{ kubelet: string; kubeProxy: string; scheduler: string }> {
  const ca = cp.nodeSupport.clientCa;
  const write = async (file: string, user: string, organizations: string[]): Promise<string> => {
    const pair = await createLeaf(join(dir, 'pki'), file, ca, { commonName: user, organizations, usage: 'client' });
    const path = join(dir, 'kubeconfig', `${file}.yaml`);
    await writeFile(path, certKubeconfig(cp.server, cp.caFile, user, pair), { mode: 0o600 });
    return path;
  };
  const [kubelet, kubeProxy, scheduler] = await Promise.all([
    write('kubelet', `system:node:${name}`, ['system:nodes']),
    write('kube-proxy', 'system:kube-proxy', []),
    write('kube-scheduler', 'system:kube-scheduler', []),
  ]);
  return { kubelet, kubeProxy, scheduler };
}

/** build.sh's `<name>.ref`: "<image reference> <archive file>". */
async function readImageRef(binDir: string, file: string): Promise<{ ref: string; archive: string }> {
  const [ref, archive] = (await readFile(join(binDir, file), 'utf8')).trim().split(' ');
  if (!ref || !archive)
    throw new Error(`${join(binDir, file)} is not "<image> <archive>" (rerun scripts/node/build.sh)`);
  return { ref, archive };
}

async function resolveCommand(bin: string): Promise<string> {
  const found = (process.env['PATH'] ?? '')
    .split(':')
    .map((p) => join(p, bin))
    .find((p) => existsSync(p));
  if (!found) throw new Error(`${bin} not found on PATH`);
  return found;
}

function nodeHandle(state: NodeState, log: LogFn, autoCleanup: boolean): Node {
  let stopped = false;
  // On a crash or Ctrl-C: no time for a graceful drain; kill everything and undo what can be undone synchronously.
  const unregister = autoCleanup
    ? onExit(() => {
        for (const pid of Object.values(state.pids)) killGroupSync(pid);
        cleanUpHostSync(state.dir, state.commands.kubeProxy);
      })
    : () => undefined;
  return {
    name: state.name,
    dir: state.dir,
    nodeIp: NODE_IP,
    podCidr: POD_CIDR,
    containerdSocket: state.containerdSocket,
    images: state.images,
    logs: state.logs,
    pids: state.pids,
    ctr: (args) => run('ctr', ctrArgs(state.containerdSocket, args)),
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopState(state, log);
      unregister();
    },
  };
}

/** Stops the node recorded in dir/node-state.json (if any) and removes dir. */
export async function stopNodeAt(dir: string, opts: { log?: LogFn } = {}): Promise<boolean> {
  let state: NodeState;
  try {
    state = JSON.parse(await readFile(join(dir, 'node-state.json'), 'utf8')) as NodeState;
  } catch {
    return false;
  }
  await stopState(state, opts.log ?? defaultLog);
  return true;
}

async function kubectlAdmin(kubeconfig: string, args: string[]): Promise<boolean> {
  return runQuiet('kubectl', [`--kubeconfig=${kubeconfig}`, '--request-timeout=10s', ...args]);
}

async function stopState(state: NodeState, log: LogFn): Promise<void> {
  const ours = (pid: number, command: string) => isAlive(pid) && commandOf(pid) === command;
  const { pids, commands } = state;
  const started = Date.now();
  // A graceful end for the pods first: cordoned, deleted at once; the kubelet then stops their containers and tears
  // down their sandboxes (CNI DEL), which is what leaves no veth, IPAM lease or netns behind.
  if (ours(pids.kubelet, commands.kubelet) && existsSync(state.adminKubeconfig)) {
    await kubectlAdmin(state.adminKubeconfig, ['cordon', state.name]);
    await kubectlAdmin(state.adminKubeconfig, [
      'delete',
      'pods',
      '--all-namespaces',
      `--field-selector=spec.nodeName=${state.name}`,
      '--grace-period=0',
      '--force',
      '--wait=false',
    ]);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const sandboxes = await run('ctr', ctrArgs(state.containerdSocket, ['tasks', 'ls', '-q'])).catch(() => '');
      if (sandboxes.trim() === '') break;
      await sleep(500);
    }
  }
  if (ours(pids.scheduler, commands.scheduler)) await stopGroup(pids.scheduler, 5_000);
  if (ours(pids.kubeProxy, commands.kubeProxy)) await stopGroup(pids.kubeProxy, 5_000);
  if (ours(pids.kubelet, commands.kubelet)) await stopGroup(pids.kubelet, 10_000);
  // Whatever the kubelet left running: kill the tasks, so no shim outlives containerd.
  if (ours(pids.containerd, commands.containerd)) {
    const tasks = await run('ctr', ctrArgs(state.containerdSocket, ['tasks', 'ls', '-q'])).catch(() => '');
    for (const id of tasks.split('\n').filter((t) => t !== '')) {
      await runQuiet('ctr', ctrArgs(state.containerdSocket, ['tasks', 'kill', '--signal', 'SIGKILL', id]));
      await runQuiet('ctr', ctrArgs(state.containerdSocket, ['tasks', 'delete', '--force', id]));
    }
    await stopGroup(pids.containerd, 10_000);
  }
  killShimsSync(state.containerdSocket);
  // kube-proxy's own cleanup removes every rule and chain it made (KUBE-SERVICES, KUBE-NODEPORTS, …).
  if (existsSync(commands.kubeProxy)) await runQuiet(commands.kubeProxy, ['--cleanup']);
  await cleanUpHost(state.dir, log);
  log('node stopped', { name: state.name, ms: Date.now() - started });
}

/** Pids whose argv[0] is command. */
function processesOf(command: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    if (commandOf(Number(entry)) === command && isAlive(Number(entry))) out.push(Number(entry));
  }
  return out;
}

/** containerd-shim-runc-v2 processes started for this containerd (they run in their own process groups). */
function killShimsSync(socket: string): void {
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const at = argv.indexOf('-address');
    if (argv[0]?.endsWith('containerd-shim-runc-v2') && at >= 0 && argv[at + 1] === socket) {
      killGroupSync(Number(entry));
    }
  }
}

/** The kubelet's pod cgroups (cgroupfs driver): v1 per controller, or the v2 unified tree. */
function podCgroupRoots(): string[] {
  const v1 = ['pids', 'cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'hugetlb', 'systemd'];
  return [...v1.map((c) => `/sys/fs/cgroup/${c}/kubepods`), '/sys/fs/cgroup/kubepods'].filter((p) => existsSync(p));
}

function cgroupDirsDeepestFirst(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    let entries: string[];
    try {
      entries = readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
    } catch {
      return;
    }
    for (const e of entries) walk(join(dir, e));
    out.push(dir);
  };
  walk(root);
  return out;
}

/**
 * SIGKILLs every process left in the pod cgroups (containers whose shim died with containerd are reparented and
 * would run on) and removes the cgroups. Only this project's node makes `kubepods` here.
 */
function killPodProcessesSync(): number {
  let killed = 0;
  for (const root of podCgroupRoots()) {
    for (const dir of cgroupDirsDeepestFirst(root)) {
      let procs: string;
      try {
        procs = readFileSync(join(dir, 'cgroup.procs'), 'utf8');
      } catch {
        continue;
      }
      for (const pid of procs.split('\n').filter((p) => p !== '')) {
        try {
          process.kill(Number(pid), 'SIGKILL');
          killed++;
        } catch {
          // already gone
        }
      }
    }
  }
  return killed;
}

function removePodCgroupsSync(): void {
  for (const root of podCgroupRoots()) {
    for (const dir of cgroupDirsDeepestFirst(root)) {
      try {
        rmdirSync(dir);
      } catch {
        // still has processes (EBUSY): left as it is
      }
    }
  }
}

/** The exit-handler version of cleanUpHost: synchronous, best effort. */
function cleanUpHostSync(dir: string, kubeProxy?: string): void {
  killShimsSync(join(dir, 'containerd', 'containerd.sock'));
  killPodProcessesSync();
  for (const m of mountsUnder(dir)) spawnSync('umount', ['-l', m]);
  if (kubeProxy && existsSync(kubeProxy)) spawnSync(kubeProxy, ['--cleanup'], { timeout: 10_000 });
  removeKubeletChainsSync();
  spawnSync('ip', ['route', 'del', SERVICE_CLUSTER_IP_RANGE, 'dev', BRIDGE]);
  spawnSync('ip', ['link', 'del', BRIDGE]);
  if (mountsUnder(dir).length === 0) rmSync(dir, { recursive: true, force: true });
  removePodCgroupsSync();
}

/** Unmounts whatever containerd and the kubelet left under dir, removes dir, the bridge and the kubelet's chains. */
async function cleanUpHost(dir: string, log: LogFn): Promise<void> {
  const strays = killPodProcessesSync();
  if (strays > 0) log('killed processes left in the pod cgroups', { count: strays });
  const left = await unmountAll(dir);
  if (left.length > 0) {
    // Never rm -r through a mount: it would delete what the mount shows.
    log('mounts left under the node dir; not removing it', { dir, mounts: left });
  } else {
    await rm(dir, { recursive: true, force: true });
  }
  removeKubeletChainsSync();
  await tearDownNetwork();
  removePodCgroupsSync();
}

/** Waits until the Node reports Ready=True; returns the ms it took from the call. */
export async function waitForNodeReady(cp: ControlPlane, node: Node, timeoutMs = 120_000): Promise<number> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const res = await cp.kubectl('admin', [
      'get',
      'node',
      node.name,
      '-o',
      'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].message}',
    ]);
    last = res.code === 0 ? res.stdout : res.stderr;
    if (res.code === 0 && res.stdout.startsWith('True')) return Date.now() - started;
    await sleep(500);
  }
  throw new Error(
    `node ${node.name} not Ready after ${timeoutMs} ms (${last.trim()}); kubelet log tail:\n${tail(node.logs.kubelet)}`,
  );
}
