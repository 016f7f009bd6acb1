// cert-manager against a local control plane: its CRDs (deploy/crds of the pinned module version, copied next to the
// binary by scripts/cert-manager/build.sh) and its controller and cainjector as host processes with the admin
// kubeconfig (as kube-controller-manager runs), each with its log file and its /readyz, stopped by PID.
import { dirname, join } from 'node:path';
import { REPO_ROOT, runBuildScript } from './cluster.js';
import type { ControlPlane, LogFn } from './cluster.js';
import { installJobsCrds as installCrdsFrom } from './crds.js';
import { freePort, killGroupSync, onExit, sleep, spawnDaemon, stopGroup, tail } from './process.js';
import type { Daemon } from './process.js';

export const CERT_MANAGER_BUILD_SCRIPT = join(REPO_ROOT, 'scripts', 'cert-manager', 'build.sh');
const READY_TIMEOUT_MS = 120_000;

const defaultLog: LogFn = (msg, fields) => {
  process.stderr.write(`[cert-manager] ${msg}${fields ? ' ' + JSON.stringify(fields) : ''}\n`);
};

/**
 * The jobs-storage-e2e binary (cert-manager's controller and cainjector): JOBS_STORAGE_CERT_MANAGER_BIN when set,
 * else what scripts/cert-manager/build.sh builds or finds in its cache.
 */
export function buildCertManager(log: LogFn = defaultLog): Promise<string> {
  return runBuildScript(CERT_MANAGER_BUILD_SCRIPT, 'JOBS_STORAGE_CERT_MANAGER_BIN', 'cert-manager binary ready', log);
}

/** Installs cert-manager's CRDs (the crds/ beside the binary) and waits until each is Established; returns names. */
export function installCertManagerCrds(cp: ControlPlane, binary: string): Promise<string[]> {
  return installCrdsFrom(cp, join(dirname(binary), 'crds'));
}

export type CertManagerComponent = 'controller' | 'cainjector';

/** The two running processes; stop() ends both (SIGTERM, then SIGKILL after a grace period). */
export class CertManager {
  private stopped = false;

  constructor(
    readonly daemons: Readonly<Record<CertManagerComponent, Daemon>>,
    private readonly unregisterExit: () => void,
  ) {}

  get pids(): Record<CertManagerComponent, number> {
    return { controller: this.daemons.controller.pid, cainjector: this.daemons.cainjector.pid };
  }

  /** The last lines of both logs, for a failure message. */
  logTails(lines = 30): string {
    return (['controller', 'cainjector'] as const)
      .map((c) => `--- cert-manager ${c} (${this.daemons[c].logFile}):\n${tail(this.daemons[c].logFile, lines)}`)
      .join('\n');
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all([stopGroup(this.daemons.controller.pid), stopGroup(this.daemons.cainjector.pid)]);
    this.unregisterExit();
  }
}

export interface StartCertManagerOptions {
  /** Directory for the two log files (the test's directory). */
  dir: string;
  /** The binary; default: buildCertManager(). */
  binary?: string;
  /** klog verbosity (cert-manager logs its state changes at 2). */
  verbosity?: number;
  log?: LogFn;
}

/**
 * Starts cert-manager's controller and cainjector against the control plane (the CRDs must be installed) and waits
 * until both answer /readyz (their informer caches synced). On failure stops both and throws with their logs.
 */
export async function startCertManager(cp: ControlPlane, opts: StartCertManagerOptions): Promise<CertManager> {
  const log = opts.log ?? defaultLog;
  const binary = opts.binary ?? (await buildCertManager(log));
  const started = Date.now();
  const ports = { controller: await freePort(), cainjector: await freePort() };
  const spawnOne = (component: CertManagerComponent): Daemon =>
    spawnDaemon(
      binary,
      [
        component,
        `--kubeconfig=${cp.kubeconfigPath('admin')}`,
        `--ready-address=127.0.0.1:${ports[component]}`,
        `--v=${opts.verbosity ?? 2}`,
      ],
      join(opts.dir, `cert-manager-${component}.log`),
    );
  const daemons = { controller: spawnOne('controller'), cainjector: spawnOne('cainjector') };
  const unregister = onExit(() => {
    killGroupSync(daemons.controller.pid);
    killGroupSync(daemons.cainjector.pid);
  });
  const cm = new CertManager(daemons, unregister);
  try {
    await Promise.all(
      (['controller', 'cainjector'] as const).map((c) => waitReady(c, daemons[c], ports[c], READY_TIMEOUT_MS)),
    );
  } catch (err) {
    const tails = cm.logTails();
    await cm.stop();
    throw new Error(`${String(err)}\n${tails}`, { cause: err });
  }
  log('cert-manager controller and cainjector ready', { pids: cm.pids, ms: Date.now() - started });
  return cm;
}

async function waitReady(component: string, daemon: Daemon, port: number, timeoutMs: number): Promise<void> {
  let exited: string | undefined;
  void daemon.exited.then((how) => (exited = how));
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (exited !== undefined) throw new Error(`cert-manager ${component} exited (${exited}) before it was ready`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) return;
      last = `${res.status} ${(await res.text()).trim()}`;
    } catch (err) {
      last = String(err);
    }
    await sleep(250);
  }
  throw new Error(`cert-manager ${component} not ready after ${timeoutMs} ms (last /readyz: ${last})`);
}
