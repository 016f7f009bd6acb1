// The Node.js runtime the image ships (pinned in .node-version) for the tests, the demo and the benchmarks. When the
// machine's node is another version, the binary comes from the npm registry's `node-linux-<arch>` package (the one
// the registry's `node` package installs; `npm pack` checks its integrity against the registry) into the cache,
// beside the control-plane binaries, once.
//
// Usage:
//   node scripts/tools/node.mjs path [VERSION]          print the bin directory holding `node` (installing it)
//   node scripts/tools/node.mjs exec [--node VERSION] -- CMD [ARG…]
//                                                       run CMD with that bin directory first on PATH
// Env: JOBS_STORAGE_NODE_VERSION overrides .node-version (e.g. to run the benchmarks on another line);
//      JOBS_STORAGE_BIN_DIR the cache root, as for the other tools.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The version in .node-version (one line, e.g. `24.22.3`), unless JOBS_STORAGE_NODE_VERSION names another. */
export function pinnedNodeVersion() {
  const wanted = process.env.JOBS_STORAGE_NODE_VERSION ?? readFileSync(join(REPO_ROOT, '.node-version'), 'utf8');
  const version = wanted.trim().replace(/^v/, '');
  if (!/^\d+\.\d+\.\d+$/.test(version)) {
    throw new Error(
      `node version '${wanted.trim()}' is not MAJOR.MINOR.PATCH (.node-version or JOBS_STORAGE_NODE_VERSION)`,
    );
  }
  return version;
}

function cacheRoot() {
  const cache = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  return process.env.JOBS_STORAGE_BIN_DIR ?? join(cache, 'toolforge-jobs-storage', 'bin');
}

function run(cmd, args, options = {}) {
  const res = spawnSync(cmd, args, { encoding: 'utf8', ...options });
  if (res.status !== 0) {
    const why = res.error?.message ?? res.stderr?.trim() ?? `exit ${res.status}`;
    throw new Error(`${cmd} ${args.join(' ')}: ${why}`);
  }
  return res.stdout;
}

/**
 * The bin directory of node `version`: the running node's when it is that version, else the cached one, fetched
 * from the registry first if missing. Progress goes to stderr.
 */
export function nodeBinDir(version = pinnedNodeVersion()) {
  if (process.version === `v${version}`) return dirname(process.execPath);
  const dir = join(cacheRoot(), `node-v${version}`);
  const bin = join(dir, 'bin');
  if (existsSync(join(bin, 'node'))) return bin;
  const arch = { x64: 'x64', arm64: 'arm64' }[process.arch];
  if (process.platform !== 'linux' || arch === undefined) {
    throw new Error(`no registry package for node on ${process.platform}/${process.arch}: install node ${version}`);
  }
  const started = Date.now();
  console.error(`[node] fetching node ${version} (npm package node-linux-${arch}) into ${dir}`);
  const work = mkdtempSync(join(tmpdir(), 'jobs-storage-node-'));
  try {
    const tgz = run('npm', ['pack', `node-linux-${arch}@${version}`, '--silent', '--pack-destination', work], {
      cwd: work,
    }).trim();
    run('tar', ['-xzf', join(work, tgz.split('\n').pop()), '-C', work, 'package/bin/node', 'package/LICENSE']);
    const got = run(join(work, 'package', 'bin', 'node'), ['--version']).trim();
    if (got !== `v${version}`) throw new Error(`the package's node says ${got}, expected v${version}`);
    mkdirSync(dirname(dir), { recursive: true });
    rmSync(dir, { recursive: true, force: true });
    renameSync(join(work, 'package'), dir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  console.error(`[node] node ${version} ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  return bin;
}

/** The environment that puts node `version` first on PATH. */
export function envWithNode(version = pinnedNodeVersion(), env = process.env) {
  return { ...env, PATH: [nodeBinDir(version), env.PATH ?? ''].join(delimiter) };
}

function main(argv) {
  const [verb, ...rest] = argv;
  if (verb === 'path') {
    console.log(nodeBinDir(rest[0] ?? pinnedNodeVersion()));
    return 0;
  }
  if (verb === 'exec') {
    let version = pinnedNodeVersion();
    if (rest[0] === '--node') {
      version = rest[1] ?? version;
      rest.splice(0, 2);
    }
    if (rest[0] === '--') rest.shift();
    if (rest.length === 0) {
      console.error('node.mjs exec: no command (usage: node.mjs exec [--node VERSION] -- CMD [ARG…])');
      return 2;
    }
    const res = spawnSync(rest[0], rest.slice(1), { stdio: 'inherit', env: envWithNode(version) });
    if (res.error) {
      console.error(`node.mjs exec: ${res.error.message}`);
      return 1;
    }
    return res.status ?? 1;
  }
  console.error('usage: node scripts/tools/node.mjs path [VERSION] | exec [--node VERSION] -- CMD [ARG…]');
  return 2;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (err) {
    console.error(`[node] ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}
