import { mkdirSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Config } from '../../config/schema.js';
import { ConfigError, UsageError } from '../../errors.js';
import type { KubeApi } from '../../k8s/api.js';
import { groupByNamespace, listItems, sortNamespaces } from '../../k8s/by-namespace.js';
import { isNotFound } from '../../k8s/errors.js';
import { collectionPath, SERVICES, type ApiResource } from '../../k8s/paths.js';
import { createSharedMetrics } from '../../metrics/registry.js';
import {
  groupByTool,
  indexFiles,
  planTool,
  renderJobsYaml,
  renderJson,
  renderMarkdown,
  toolFiles,
  type MessageOptions,
  type MigrationFile,
  type ToolPlan,
} from '../../migrate/index.js';
import type { Phase } from '../../rollout/phases.js';
import { getPhase } from '../../phase/store.js';
import { LABELS, MANAGED_BY_JOBS_FRAMEWORK, WORKLOAD_KINDS, type RuntimeSettings } from '../../runtime/index.js';
import { createStorageCodec } from '../../storage/codec.js';
import { namespaceOfTool, toolOfNamespace } from '../../jobs/tenancy.js';
import { loadRuntimeSettings } from '../../runtime/settings.js';
import { STORAGE_KINDS } from '../../storage/kinds.js';
import { loadConfig } from '../../config/load.js';
import { connect, failFast } from '../cluster.js';
import type { ClusterFlags } from '../cluster.js';
import { readObjects } from '../input.js';
import { EXIT } from '../io.js';
import type { CliIo } from '../io.js';

export type MigrateFormat = 'yaml' | 'json' | 'markdown';

export interface MigrateOptions extends ClusterFlags {
  tool?: string;
  all?: boolean;
  out?: string;
  filename?: string;
  output?: MigrateFormat;
  /** Offline (`-f`) only: the phase the message describes; default `phase.initial`. */
  phase?: Phase;
  config?: string;
}

/** What a tool's plan is made of, as lists: workloads first, then the two CR kinds (`planTool`'s `crs`). */
const SOURCES: ReadonlyArray<{ resource: ApiResource; labelSelector?: string; cr?: true }> = [
  ...WORKLOAD_KINDS.map(({ group, version, plural }) => ({ resource: { group, version, plural } })),
  {
    resource: SERVICES,
    // Only the jobs framework's: webservice Services are not jobs, and a tool's own Services are not read.
    labelSelector: `${LABELS.managedBy}=${MANAGED_BY_JOBS_FRAMEWORK}`,
  },
  ...STORAGE_KINDS.map(({ group, version, plural }) => ({ resource: { group, version, plural }, cr: true as const })),
];
const NAMESPACES: ApiResource = { group: '', version: 'v1', plural: 'namespaces' };

interface Context {
  config: Config;
  settings: RuntimeSettings;
  phase: Phase;
  codec: ReturnType<typeof createStorageCodec>;
}

function plan(ctx: Context, tool: string, workloads: readonly unknown[], crs: readonly unknown[]): ToolPlan {
  return planTool({
    tool,
    phase: ctx.phase,
    workloads,
    crs,
    settings: ctx.settings,
    jobsApiFieldManagers: ctx.config.identities.jobsApiFieldManagers,
    codec: ctx.codec,
  });
}

/** A tool's plan from its objects listed per source (SOURCES order). */
function planOfLists(ctx: Context, tool: string, bySource: readonly unknown[][]): ToolPlan {
  const workloads = bySource.filter((_, i) => SOURCES[i]?.cr !== true).flat();
  return plan(ctx, tool, workloads, bySource.filter((_, i) => SOURCES[i]?.cr === true).flat());
}

/** The deadline and announcement link a message needs: both from the configuration, or a configuration error. */
function messageOptions(config: Config, why: string): MessageOptions {
  const missing = [
    ...(config.migration.deadline ? [] : ['migration.deadline: is required']),
    ...(config.migration.announcementUrl ? [] : ['migration.announcementUrl: is required']),
  ].map((issue) => `${issue} ${why} (set it in the config file or JOBS_STORAGE_MIGRATION_* variables)`);
  if (missing.length > 0) throw new ConfigError(missing);
  return { deadline: config.migration.deadline, announcementUrl: config.migration.announcementUrl };
}

function checkUsage(opts: MigrateOptions): void {
  const modes = [opts.tool !== undefined, opts.all === true, opts.filename !== undefined].filter(Boolean).length;
  if (modes !== 1) throw new UsageError('migrate: give exactly one of --tool NAME, --all or -f FILE');
  if (opts.all === true && opts.out === undefined) throw new UsageError('migrate --all: --out DIR is required');
  if (opts.all !== true && opts.out !== undefined) throw new UsageError('migrate: --out is for --all');
  if (opts.all === true && opts.output !== undefined)
    throw new UsageError('migrate --all: writes every format into --out; -o is for --tool and -f');
  if (opts.phase !== undefined && opts.filename === undefined)
    throw new UsageError('migrate: --phase is for -f; with the cluster, the phase is read from its ConfigMap');
}

/** One tool's output in the chosen format. */
function render(p: ToolPlan, format: MigrateFormat, message: MessageOptions | undefined): string {
  if (format === 'json') return renderJson(p);
  if (format === 'markdown' && message !== undefined) return renderMarkdown(p, message);
  return renderJobsYaml(p);
}

function summaryLine(p: ToolPlan): string {
  return `${p.tool}: ${p.jobs.length} job(s) to migrate, ${p.needsAttention} needing attention, ${p.entries.length} in jobs.yaml\n`;
}

/** Jobs no entry could be written for: the input's errors (exit 1). */
function reportUnreadable(plans: readonly ToolPlan[], io: CliIo): boolean {
  let any = false;
  for (const p of plans)
    for (const j of p.jobs)
      if (j.reason === 'unreadable') {
        io.stderr(`error: ${j.kind} ${p.tool}/${j.name}: ${j.detail}\n`);
        any = true;
      }
  return any;
}

/**
 * `jobs-storage migrate`: per tool, the jobs not managed through the jobs API, the `jobs.yaml` that moves them there
 * and the message to the tool's maintainers. Exit 0 when every job was read (jobs needing attention included: that is
 * what the output is for), 1 when some object could not be read as a job or the tool does not exist, 2 on usage or
 * configuration errors.
 */
export async function runMigrate(opts: MigrateOptions, io: CliIo): Promise<number> {
  checkUsage(opts);
  if (opts.filename !== undefined) return migrateFile(opts, opts.filename, io);
  const parts = await connect(opts, 'migrate', io, createSharedMetrics);
  return failFast(parts, () => migrateCluster(parts, opts, io));
}

async function migrateCluster(
  parts: { config: Config; api: KubeApi },
  opts: MigrateOptions,
  io: CliIo,
): Promise<number> {
  const message =
    opts.all === true || opts.output === 'markdown' ? messageOptions(parts.config, 'for messages') : undefined;
  const state = await getPhase(parts.api, parts.config);
  if (state.invalid !== undefined) {
    io.stderr(
      `jobs-storage: the phase ConfigMap holds '${state.invalid}', which is not a phase: the messages would describe the wrong deadline\n`,
    );
    return EXIT.inputErrors;
  }
  const ctx: Context = {
    config: parts.config,
    settings: loadRuntimeSettings(parts.config),
    phase: state.phase,
    codec: createStorageCodec(),
  };
  if (opts.tool !== undefined)
    return migrateTool(ctx, parts.api, { tool: opts.tool, format: opts.output ?? 'yaml', message }, io);
  return migrateAll(ctx, parts.api, opts.out ?? '', message ?? messageOptions(parts.config, 'for messages'), io);
}

function migrateFile(opts: MigrateOptions, filename: string, io: CliIo): number {
  const config = loadConfig({ file: opts.config });
  const format = opts.output ?? 'yaml';
  const message = format === 'markdown' ? messageOptions(config, 'for -o markdown') : undefined;
  const ctx: Context = {
    config,
    settings: loadRuntimeSettings(config),
    phase: opts.phase ?? config.phase.initial,
    codec: createStorageCodec(),
  };
  const objects = readObjects(filename, io.readStdin).map((o) => o.value);
  const groups = groupByTool(objects, config.toolNamespacePrefix);
  const grouped = [...groups.values()].reduce((n, g) => n + g.workloads.length + g.crs.length, 0);
  if (grouped < objects.length)
    io.stderr(`note: ${objects.length - grouped} object(s) outside tool namespaces were left out\n`);
  const plans = [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([tool, g]) => plan(ctx, tool, g.workloads, g.crs));
  if (format === 'json') io.stdout(`${JSON.stringify(plans, null, 2)}\n`);
  else io.stdout(plans.map((p) => render(p, format, message)).join(format === 'markdown' ? '\n---\n\n' : '---\n'));
  for (const p of plans) io.stderr(summaryLine(p));
  return reportUnreadable(plans, io) ? EXIT.inputErrors : EXIT.ok;
}

/** Every item of a collection, page by page (the lean client requests the next page while this one is read). */
async function migrateTool(
  ctx: Context,
  api: KubeApi,
  target: { tool: string; format: MigrateFormat; message: MessageOptions | undefined },
  io: CliIo,
): Promise<number> {
  const { tool, format, message } = target;
  const namespace = namespaceOfTool(tool, ctx.config.toolNamespacePrefix);
  try {
    await api.request('GET', `${collectionPath(NAMESPACES)}/${encodeURIComponent(namespace)}`);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    io.stderr(`jobs-storage: no tool '${tool}': namespace ${namespace} does not exist\n`);
    return EXIT.inputErrors;
  }
  const bySource = await Promise.all(
    SOURCES.map(async (s) => {
      const out: unknown[] = [];
      for await (const item of listItems(api, collectionPath(s.resource, namespace), {
        limit: ctx.config.sync.listPageSize,
        labelSelector: s.labelSelector,
      }))
        out.push(item);
      return out;
    }),
  );
  const p = planOfLists(ctx, tool, bySource);
  io.stdout(render(p, format, message));
  io.stderr(summaryLine(p));
  return reportUnreadable([p], io) ? EXIT.inputErrors : EXIT.ok;
}

/** done/total on stderr: one updating line on a terminal, else a line every few seconds. */
class Progress {
  private lastAt = 0;
  private readonly started = Date.now();

  constructor(
    private readonly io: CliIo,
    private readonly total: number,
  ) {}

  update(done: number, force = false): void {
    const now = Date.now();
    const every = this.io.stderrIsTTY ? 200 : 5000;
    if (!force && now - this.lastAt < every) return;
    this.lastAt = now;
    const seconds = ((now - this.started) / 1000).toFixed(0);
    const line = `migrate: ${done}/${this.total} tools (${seconds} s)`;
    this.io.stderr(this.io.stderrIsTTY ? `\r${line}\x1b[K` : `${line}\n`);
  }

  end(done: number): void {
    this.update(done, true);
    if (this.io.stderrIsTTY) this.io.stderr('\n');
  }
}

/** The tool namespaces, in the order the merged lists visit them. */
async function toolNamespaces(api: KubeApi, config: Config): Promise<string[]> {
  const names: string[] = [];
  for await (const ns of listItems(api, collectionPath(NAMESPACES), { limit: 500 })) {
    const name = (ns as { metadata?: { name?: unknown } }).metadata?.name;
    if (typeof name === 'string' && toolOfNamespace(name, config.toolNamespacePrefix) !== undefined) names.push(name);
  }
  return sortNamespaces(names);
}

function checkOutDir(out: string): void {
  let entries: string[];
  try {
    entries = readdirSync(out);
  } catch {
    return; // created below
  }
  if (entries.length > 0)
    throw new UsageError(`migrate --all: ${out} is not empty; give a new or empty directory (no stale tool folders)`);
}

/**
 * Writes files off the event loop, a bounded number of folders at a time: synchronous writes of 4,000 folders held
 * the loop for a third of the run (measured), and with it the list pages already on their way.
 */
class FolderWriter {
  private readonly pending = new Set<Promise<void>>();
  private static readonly WIDTH = 16;

  constructor(private readonly root: string) {}

  /** Queues one folder's files (the same directory); waits only while WIDTH folders are being written. */
  async write(files: readonly MigrationFile[]): Promise<void> {
    if (files.length === 0) return;
    while (this.pending.size >= FolderWriter.WIDTH) await Promise.race(this.pending);
    const job = this.writeFolder(files).finally(() => this.pending.delete(job));
    job.catch(() => undefined); // awaited by the next write or drain(), which throw the failure
    this.pending.add(job);
  }

  private async writeFolder(files: readonly MigrationFile[]): Promise<void> {
    const dirs = new Set(files.map((f) => dirname(join(this.root, f.path))));
    for (const dir of dirs) if (dir !== this.root) await mkdir(dir, { recursive: true });
    await Promise.all(files.map((f) => writeFile(join(this.root, f.path), f.content)));
  }

  /** Waits for every queued write; the first failure is thrown. */
  async drain(): Promise<void> {
    await Promise.all(this.pending);
  }
}

async function migrateAll(
  ctx: Context,
  api: KubeApi,
  out: string,
  message: MessageOptions,
  io: CliIo,
): Promise<number> {
  checkOutDir(out);
  mkdirSync(out, { recursive: true });
  const writer = new FolderWriter(out);
  const started = Date.now();
  const namespaces = await toolNamespaces(api, ctx.config);
  const position = new Map(namespaces.map((ns, i) => [ns, i + 1]));
  const progress = new Progress(io, namespaces.length);
  progress.update(0, true);
  // Cluster-wide lists, one request per page for all tools, merged namespace by namespace.
  const lists = SOURCES.map((s) =>
    listItems(api, collectionPath(s.resource), { limit: ctx.config.sync.listPageSize, labelSelector: s.labelSelector }),
  );
  const plans: ToolPlan[] = [];
  let done = 0;
  for await (const group of groupByNamespace(lists)) {
    const tool = toolOfNamespace(group.namespace, ctx.config.toolNamespacePrefix);
    if (tool === undefined) continue;
    const p = planOfLists(ctx, tool, group.bySource);
    await writer.write(toolFiles(p, message));
    plans.push(p);
    done = Math.max(done, position.get(group.namespace) ?? done);
    progress.update(done);
  }
  await writer.write(indexFiles(plans, message));
  await writer.drain();
  progress.end(namespaces.length);
  const withJobs = plans.filter((p) => p.jobs.length > 0);
  const jobs = withJobs.reduce((n, p) => n + p.jobs.length, 0);
  const attention = withJobs.reduce((n, p) => n + p.needsAttention, 0);
  io.stderr(
    `migrate: ${namespaces.length} tools, ${withJobs.length} with jobs to migrate: ${jobs} jobs, ${attention} needing attention; ` +
      `wrote ${withJobs.length} tool folders, index.csv and index.md into ${out} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
  );
  return reportUnreadable(plans, io) ? EXIT.inputErrors : EXIT.ok;
}
