/**
 * The pinned helm, promtool and the benchmarks' Go webhook peer (scripts/tools/install.sh builds them once from their Go modules and caches them;
 * later calls only print the cached path). The one place tests and the local control plane find them.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Tool = 'helm' | 'promtool' | 'prometheus' | 'go-peer';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const INSTALL_SCRIPT = join(REPO_ROOT, 'scripts', 'tools', 'install.sh');
export const CHART_DIR = join(REPO_ROOT, 'deploy', 'chart');
export const VALUES_DIR = join(REPO_ROOT, 'deploy', 'values');
export const ENVIRONMENTS = ['local', 'toolsbeta', 'tools'] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

const cache = new Map<Tool, string>();

/** Path of the pinned binary; builds it on first use (minutes on a cold Go cache, with progress on stderr). */
export function toolBinary(tool: Tool): string {
  const known = cache.get(tool);
  if (known !== undefined) return known;
  const res = spawnSync('bash', [INSTALL_SCRIPT, tool], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const path = res.stdout?.trim().split('\n').pop();
  if (res.status !== 0 || !path) {
    throw new Error(`${INSTALL_SCRIPT} ${tool} failed (exit ${res.status ?? res.signal}); see its output above`);
  }
  cache.set(tool, path);
  return path;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a pinned tool to completion (no shell). */
export function runTool(tool: Tool, args: string[], opts: { cwd?: string; input?: string } = {}): RunResult {
  const res = spawnSync(toolBinary(tool), args, {
    encoding: 'utf8',
    cwd: opts.cwd ?? REPO_ROOT,
    maxBuffer: 64 * 1024 * 1024,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    // helm keeps its caches under HOME; an empty XDG setup is fine, no repository is ever added.
    env: { ...process.env, HELM_NAMESPACE: '' },
  });
  if (res.error) throw res.error;
  return { code: res.status ?? 1, stdout: res.stdout, stderr: res.stderr };
}

export interface TemplateOptions {
  /** deploy/values/<environment>.yaml on top of the chart's values.yaml. */
  environment?: Environment;
  /** --set-string style overrides, `path=value`. */
  set?: string[];
  namespace?: string;
  showOnly?: string[];
}

/** `helm template` of deploy/chart; throws with helm's stderr on failure. */
export function helmTemplate(opts: TemplateOptions = {}): string {
  const res = runTool('helm', helmTemplateArgs(opts));
  if (res.code !== 0) throw new Error(`helm template failed (${res.code}): ${res.stderr.trim()}`);
  return res.stdout;
}

export function helmTemplateArgs(opts: TemplateOptions = {}): string[] {
  return [
    'template',
    'jobs-storage',
    CHART_DIR,
    '--namespace',
    opts.namespace ?? 'jobs-storage',
    ...(opts.environment ? ['--values', join(VALUES_DIR, `${opts.environment}.yaml`)] : []),
    ...(opts.set ?? []).flatMap((s) => ['--set', s]),
    ...(opts.showOnly ?? []).flatMap((s) => ['--show-only', s]),
  ];
}
