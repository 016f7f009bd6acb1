// Long-lived local control plane (kube-apiserver + etcd) for the demo and manual testing.
//   tsx scripts/cluster.ts up [--dir DIR] [--tool NAME ...] [--node]   start (or report the running one); tools
//                                   default: alpha beta; --node also starts a node (kubelet, containerd, kube-proxy,
//                                   kube-scheduler; root; scripts/control-plane/node.ts), its state in DIR.node
//   tsx scripts/cluster.ts status [--dir DIR]
//   tsx scripts/cluster.ts down [--dir DIR]
// DIR defaults to $JOBS_STORAGE_CLUSTER_DIR, else ${XDG_CACHE_HOME:-~/.cache}/toolforge-jobs-storage/cluster.
import { parseArgs } from 'node:util';
import {
  CHART_RELEASE,
  attachControlPlane,
  defaultClusterDir,
  isRunning,
  readState,
  seedIdentities,
  startControlPlane,
  stopControlPlaneAt,
} from './control-plane/cluster.js';
import type { ControlPlane } from './control-plane/cluster.js';
import { NODE_IP, startNode, stopNodeAt, waitForNodeReady } from './control-plane/node.js';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The node's state dir beside the control plane's (never inside it: see NodeOptions.dir). */
const nodeDirOf = (dir: string) => `${dir}.node`;

async function nodeLine(dir: string): Promise<string[]> {
  const stateFile = join(nodeDirOf(dir), 'node-state.json');
  if (!existsSync(stateFile)) return [];
  const state = JSON.parse(await readFile(stateFile, 'utf8')) as { name: string; logs: Record<string, string> };
  return [
    `node:        ${state.name} (${NODE_IP}); state ${nodeDirOf(dir)}`,
    ...Object.values(state.logs).map((l) => `             ${l}`),
  ];
}

function describe(cp: ControlPlane, node: string[] = []): string {
  const lines = [
    `server:      ${cp.server}`,
    `ca:          ${cp.caFile}`,
    `issuer:      ${cp.issuer}`,
    `jwks:        ${cp.jwksUri}`,
    `state dir:   ${cp.dir}`,
    `logs:        ${cp.logs.apiserver}`,
    `             ${cp.logs.etcd}`,
    ...node,
    'kubeconfigs:',
    ...Object.entries(cp.kubeconfigs).map(([identity, path]) => `  ${identity.padEnd(20)} ${path}`),
    '',
    `example:     kubectl --kubeconfig=${cp.kubeconfigs['alpha'] ?? cp.kubeconfigs['admin'] ?? ''} get cronjobs`,
    `chart:       helm install ${CHART_RELEASE.name} deploy/chart -n ${CHART_RELEASE.namespace} -f deploy/values/local.yaml ` +
      `--kubeconfig ${cp.kubeconfigs['admin'] ?? ''} --set certManager.enabled=false --set webhook.caBundle=... ` +
      `--set webhook.url=... (README "Install with Helm")`,
    `stop:        tsx scripts/cluster.ts down${cp.dir === defaultClusterDir() ? '' : ` --dir ${cp.dir}`}`,
  ];
  return lines.join('\n') + '\n';
}

async function up(dir: string, tools: string[] | undefined, withNode: boolean): Promise<number> {
  const existing = await readState(dir);
  if (existing && isRunning(existing)) {
    if (withNode && (await nodeLine(dir)).length === 0) {
      throw new Error(`the control plane in ${dir} runs without a node; \`cluster:down\` first, then \`up --node\``);
    }
    const cp = await attachControlPlane(dir);
    // ServiceAccount tokens in the kubeconfigs expire (24 h); a repeated `up` hands out fresh ones.
    await seedIdentities(cp);
    for (const tool of tools ?? []) {
      if (!cp.tools.includes(tool)) await cp.addTool(tool);
    }
    process.stderr.write('[cluster] already running\n');
    process.stdout.write(describe(cp, await nodeLine(dir)));
    return 0;
  }
  await stopNodeAt(nodeDirOf(dir));
  if (existing) await stopControlPlaneAt(dir);
  const cp = await startControlPlane({ dir, keep: true, ...(withNode ? { node: { advertiseAddress: NODE_IP } } : {}) });
  try {
    for (const tool of tools ?? ['alpha', 'beta']) await cp.addTool(tool);
    if (withNode) {
      const started = Date.now();
      const node = await startNode(cp, { dir: nodeDirOf(dir), keep: true });
      await waitForNodeReady(cp, node);
      process.stderr.write(`[cluster] node ${node.name} Ready in ${Date.now() - started} ms\n`);
    }
  } catch (err) {
    await stopNodeAt(nodeDirOf(dir));
    await cp.stop();
    throw err;
  }
  process.stdout.write(describe(cp, await nodeLine(dir)));
  return 0;
}

async function status(dir: string): Promise<number> {
  const state = await readState(dir);
  if (!state || !isRunning(state)) {
    process.stdout.write(`not running (${dir})\n`);
    return 1;
  }
  process.stdout.write(describe(await attachControlPlane(dir), await nodeLine(dir)));
  return 0;
}

async function down(dir: string): Promise<number> {
  // The node first: its pods are drained through the apiserver, and its mounts must go before any directory does.
  await stopNodeAt(nodeDirOf(dir));
  const stopped = await stopControlPlaneAt(dir);
  process.stdout.write(stopped ? `stopped (${dir})\n` : `not running (${dir})\n`);
  return 0;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      dir: { type: 'string' },
      tool: { type: 'string', multiple: true },
      node: { type: 'boolean', default: false },
    },
  });
  const dir = values.dir ?? process.env['JOBS_STORAGE_CLUSTER_DIR'] ?? defaultClusterDir();
  switch (positionals[0]) {
    case 'up':
      return up(dir, values.tool, values.node);
    case 'status':
      return status(dir);
    case 'down':
      return down(dir);
    default:
      process.stderr.write('usage: tsx scripts/cluster.ts up|status|down [--dir DIR] [--tool NAME ...] [--node]\n');
      return 2;
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`[cluster] ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
