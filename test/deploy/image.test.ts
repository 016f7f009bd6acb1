/**
 * The image as deployed: built from the Dockerfile unchanged by scripts/image/build.sh (a cached build when nothing
 * changed), then run with runc, the runtime containerd uses, the way the chart runs it: the image's own USER (the
 * chart sets runAsNonRoot and no uid), a read-only root filesystem, no capabilities, no privilege escalation, and a
 * network namespace of its own holding only loopback (nothing it does needs the network). When the image cannot be
 * built or run, every test here fails with the build's or runc's own words.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { ConvertEntry } from '../../src/cli/commands/convert.js';
import type { BuildInfo } from '../../src/version.js';

const ROOT = join(import.meta.dirname, '..', '..');
const pinnedNode = readFileSync(join(ROOT, '.node-version'), 'utf8').trim();
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
/** A cold build (base from Debian's packages, then `npm ci` and `tsc` in the Dockerfile) takes minutes. */
const BUILD_TIMEOUT_MS = 30 * 60_000;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], input = '', timeoutMs = 120_000): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    // A command that exits without reading its stdin closes the pipe under us: that is its answer, not an error.
    child.stdin.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') reject(err);
    });
    child.stdin.end(input);
  });
}

async function must(cmd: string, args: string[], timeoutMs?: number): Promise<string> {
  const res = await run(cmd, args, '', timeoutMs);
  if (res.code !== 0) {
    const tail = res.stderr.trim().split('\n').slice(-15).join('\n');
    throw new Error(`${cmd} ${args.join(' ')} exited ${res.code ?? 'on a signal'}:\n${tail}`);
  }
  return res.stdout;
}

/** The parts of an image's OCI config a runtime reads. */
interface ImageConfig {
  User?: string;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
}

interface Image {
  ref: string;
  archive: string;
  config: ImageConfig;
  /** The image's root filesystem, mounted by buildah from a working container. */
  rootfs: string;
  container: string;
}

const work = mkdtempSync(join(tmpdir(), 'jobs-storage-image-'));
let image: Promise<Image> | undefined;

/** Builds (or finds cached) the image and mounts its root filesystem, once for all the tests. */
function theImage(): Promise<Image> {
  image ??= (async () => {
    const out = await must('bash', [join(ROOT, 'scripts', 'image', 'build.sh')], BUILD_TIMEOUT_MS);
    const [ref, archive] = out.trim().split('\n');
    assert.ok(ref && archive, `build.sh printed the image and its archive, got: ${out}`);
    const inspected = JSON.parse(await must('buildah', ['inspect', '--type', 'image', ref])) as {
      OCIv1: { config: ImageConfig };
    };
    const container = (await must('buildah', ['from', '--pull=never', '--quiet', ref])).trim();
    const rootfs = (await must('buildah', ['mount', container])).trim();
    return { ref, archive, config: inspected.OCIv1.config, rootfs, container };
  })();
  return image;
}

after(async () => {
  const img = await image?.catch(() => undefined);
  if (img) {
    await run('buildah', ['umount', img.container]);
    await run('buildah', ['rm', img.container]);
  }
  rmSync(work, { recursive: true, force: true });
});

let runs = 0;

/**
 * Runs the image with runc as a pod's container: ENTRYPOINT + args (or `command` in place of the ENTRYPOINT), the
 * image's USER, Env and WorkingDir, `input` on stdin. The OCI spec is runc's default (pid, ipc, uts, mount and
 * network namespaces, masked /proc paths, devices cgroup) with the chart's securityContext applied.
 */
async function runImage(args: string[], opts: { input?: string; command?: string[] } = {}): Promise<Result> {
  const img = await theImage();
  const bundle = join(work, `bundle-${++runs}`);
  mkdirSync(bundle);
  await must('runc', ['spec', '--bundle', bundle]);
  const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as {
    process: Record<string, unknown>;
    root: { path: string; readonly: boolean };
    hostname?: string;
  };
  const [uid, gid] = (img.config.User ?? '0:0').split(':').map(Number);
  spec.process = {
    ...spec.process,
    terminal: false,
    user: { uid, gid: gid ?? uid },
    args: [...(opts.command ?? img.config.Entrypoint ?? []), ...args],
    env: img.config.Env ?? [],
    cwd: img.config.WorkingDir || '/',
    capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
    noNewPrivileges: true,
  };
  spec.root = { path: img.rootfs, readonly: true };
  spec.hostname = 'jobs-storage';
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
  const id = `jobs-storage-image-test-${process.pid}-${runs}`;
  return run('runc', ['run', '--bundle', bundle, id], opts.input ?? '');
}

function ok(res: Result): string {
  assert.equal(res.code, 0, `the container exited ${res.code}: ${res.stderr}`);
  return res.stdout;
}

describe('the image built from the Dockerfile, run as deployed', { timeout: BUILD_TIMEOUT_MS + 10 * 60_000 }, () => {
  test('the image runs node /app/dist/main.js as 65534:65534, on the pinned node', async () => {
    const { config } = await theImage();
    assert.equal(config.User, '65534:65534');
    assert.deepEqual(config.Entrypoint, ['node', '/app/dist/main.js']);
    assert.deepEqual(config.Cmd, ['--help']);
    assert.equal(config.WorkingDir, '/app');
    assert.ok(config.Env?.includes(`NODE_VERSION=${pinnedNode}`), `Env: ${config.Env?.join(' ')}`);
    assert.ok(config.Env?.includes('NODE_ENV=production'), `Env: ${config.Env?.join(' ')}`);
  });

  test("`jobs-storage --version` prints package.json's version", async () => {
    assert.equal(ok(await runImage(['--version'])).trim(), pkg.version);
  });

  test('`version -o json` names the version and node v' + pinnedNode + ', and no git commit', async () => {
    const info = JSON.parse(ok(await runImage(['version', '-o', 'json']))) as BuildInfo;
    assert.deepEqual(info, { version: pkg.version, node: `v${pinnedNode}` });
  });

  test('`convert -f -` turns a CronJob read from stdin into the ScheduledJob the sync would write', async () => {
    const cronJob = readFileSync(join(ROOT, 'test', 'fixtures', 'workloads', 'v2-scheduled-absolute-logs.yaml'));
    const res = await runImage(['convert', '-f', '-', '-o', 'json'], { input: cronJob.toString('utf8') });
    const entries = JSON.parse(ok(res)) as ConvertEntry[];
    assert.equal(entries.length, 1);
    const [entry] = entries;
    assert.equal(entry?.outcome, 'job');
    assert.deepEqual(entry.source, { kind: 'CronJob', namespace: 'tool-mytool', name: 'backup' });
    assert.equal(entry.cr?.kind, 'ScheduledJob');
    assert.equal(entry.cr.spec?.['cmd'], './backup.sh --full');
  });

  test('the process is uid 65534 with no capabilities, cannot write to / or /app, and has no network', async () => {
    const probe = `
      const fs = require('node:fs');
      const os = require('node:os');
      const tryWrite = (p) => { try { fs.writeFileSync(p, 'x'); return 'written'; } catch (e) { return e.code; } };
      const status = fs.readFileSync('/proc/self/status', 'utf8');
      console.log(JSON.stringify({
        uid: process.getuid(), gid: process.getgid(), groups: process.getgroups(),
        capEff: /^CapEff:\\s*(\\S+)/m.exec(status)[1],
        root: tryWrite('/probe'), app: tryWrite('/app/probe'), tmp: tryWrite('/tmp/probe'),
        interfaces: Object.keys(os.networkInterfaces()).filter((name) => name !== 'lo'),
      }));`;
    const out = JSON.parse(ok(await runImage(['-e', probe], { command: ['node'] }))) as Record<string, unknown>;
    assert.deepEqual(out, {
      uid: 65534,
      gid: 65534,
      groups: [65534],
      capEff: '0000000000000000',
      root: 'EROFS',
      app: 'EROFS',
      tmp: 'EROFS',
      interfaces: [],
    });
  });
});
