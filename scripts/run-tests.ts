/**
 * `npm test`: typecheck, lint, then every test file (unit next to the code, HTTP under test/http, the chart, alerts
 * and dashboard under test/deploy, e2e against a real kube-apiserver + etcd under test/e2e) in one node:test run, so
 * the closing summary counts them all.
 * Flags: --no-e2e skips the control plane (a quick local loop); any other argument filters files by substring.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

// The suite runs on the runtime the image ships: `npm test` starts it through scripts/tools/node.mjs, which puts
// the node of .node-version (or JOBS_STORAGE_NODE_VERSION, to try another line) first on PATH.
const wantedNode = (process.env.JOBS_STORAGE_NODE_VERSION ?? readFileSync('.node-version', 'utf8')).trim();
if (process.version !== `v${wantedNode.replace(/^v/, '')}`) {
  console.error(`[test] running on node ${process.version}, not ${wantedNode} (.node-version): run it as \`npm test\``);
  process.exit(2);
}
console.error(`[test] node ${process.version}`);

const args = process.argv.slice(2);
const withE2e = !args.includes('--no-e2e');
const filters = args.filter((a) => !a.startsWith('--'));

function findTests(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (entry === 'node_modules' || entry === 'fixtures') continue;
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (entry.endsWith('.test.ts')) out.push(path);
  }
  return out.sort();
}

function run(step: string, cmd: string, cmdArgs: string[], env: NodeJS.ProcessEnv = process.env): void {
  const started = Date.now();
  console.error(`[test] ${step}`);
  const res = spawnSync(cmd, cmdArgs, { stdio: 'inherit', env });
  if (res.status !== 0) {
    console.error(`[test] ${step} failed (exit ${res.status ?? res.signal})`);
    process.exit(res.status ?? 1);
  }
  console.error(`[test] ${step} ok in ${((Date.now() - started) / 1000).toFixed(1)}s`);
}

let files = [
  ...findTests('src'),
  ...findTests('test/http'),
  ...findTests('test/deploy'),
  ...(withE2e ? findTests('test/e2e') : []),
];
if (filters.length > 0) files = files.filter((f) => filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('[test] no test files matched');
  process.exit(1);
}

if (filters.length === 0) {
  run('typecheck', 'npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']);
  run('lint', 'npx', ['eslint', '.']);
  run('format', 'npx', ['prettier', '--check', '--log-level=warn', 'src', 'test', 'scripts']);
}
if (files.some((f) => f.startsWith('test/e2e')) && existsSync('scripts/control-plane/build.sh')) {
  run('control plane binaries (built once, then cached)', 'bash', ['scripts/control-plane/build.sh']);
}
// The node (kubelet, kube-proxy, kube-scheduler, containerd, the pause image) for test/e2e/node*, built once, cached.
const nodeE2e = process.env['JOBS_STORAGE_NODE_E2E'] !== '0';
if (files.some((f) => f.startsWith('test/e2e/node')) && nodeE2e) {
  run('node binaries and images (built once, then cached)', 'bash', ['scripts/node/build.sh']);
}
// cert-manager's controller and cainjector for test/e2e/node-cert-manager, built from its Go module once, cached.
if (files.some((f) => f.startsWith('test/e2e/node-cert-manager')) && nodeE2e) {
  run('cert-manager (built once, then cached)', 'bash', ['scripts/cert-manager/build.sh']);
}
// helm renders the chart for test/deploy and for the RBAC every e2e control plane applies; promtool runs the alert
// unit tests. All are built once from their Go modules and cached like the control plane.
const needs = [
  ...(files.some((f) => f.startsWith('test/deploy') || f.startsWith('test/e2e')) ? ['helm'] : []),
  ...(files.some((f) => f.startsWith('test/deploy/alerts') || (f.startsWith('test/e2e/node-alerts') && nodeE2e))
    ? ['promtool']
    : []),
  // The Prometheus server test/e2e/node-alerts runs the alert rules on.
  ...(files.some((f) => f.startsWith('test/e2e/node-alerts')) && nodeE2e ? ['prometheus'] : []),
];
if (needs.length > 0) {
  run(`${needs.join(' and ')} (built once, then cached)`, 'bash', ['scripts/tools/install.sh', ...needs]);
}
// --test-force-exit: a file whose tests have all ended exits even if something it started (a replica a failed hook
// never stopped) still holds the event loop; --test-timeout: a test that sets no timeout of its own fails after 20
// minutes. One broken test fails the run instead of hanging it.
run(`${files.length} test files`, process.execPath, [
  '--import',
  'tsx',
  '--test',
  '--test-force-exit',
  '--test-timeout=1200000',
  '--test-reporter=spec',
  ...files,
]);
