import { failure, formatProblem, type CodedProblem, type Result } from '../errors.js';
import { workloadKindForJobType, workloadKindOf, type WorkloadKindName } from '../runtime/kinds.js';
import { podView } from '../runtime/pod.js';
import { renderJobWorkloads } from '../runtime/render.js';
import { LABELS, MANAGED_BY_JOBS_FRAMEWORK } from '../runtime/labels.js';
import { isObject, type KObject } from '../runtime/object.js';
import type { RuntimeSettings } from '../runtime/settings.js';
import { createStorageCodec, type StorageCodec } from '../storage/codec.js';
import { toolOfNamespace } from '../jobs/tenancy.js';
import { storageKindForJobType, storageKindForKind } from '../storage/kinds.js';
import { show } from './classify.js';
import { diffWorkloads, type Difference, type Verdict } from './diff.js';

/**
 * Preflight: for each job with a CR and live workloads, what jobs-api would change if it rendered the job from its
 * CR now (on restart, load, an immutable-field fallback or a cluster rebuild). Pure: objects in, report out.
 */

export interface PreflightSettings {
  runtime: RuntimeSettings;
  /** The codec that reads CRs; the current one by default. */
  codec?: StorageCodec;
  /**
   * The tool's uid (passwd "<project>.<tool>"), which jobs-api writes into the pods' security context. Preflight
   * takes it from the live pod template first; this is asked when the live objects carry none (older eras).
   */
  toolUid?: (tool: string) => number | undefined;
}

export type PreflightErrorCode = 'cr-does-not-decode' | 'render-failed' | 'not-a-job-cr';

export interface JobPreflight {
  tool: string;
  job: string;
  /** `ScheduledJob` or `ContinuousJob`. */
  kind: string;
  verdict: Verdict | 'error';
  differences: Difference[];
  /** jobs-api would delete and recreate a workload (an immutable field changes). */
  recreate: boolean;
  error?: { code: PreflightErrorCode; message: string };
}

/** A job on one side only, listed apart from the compared ones. */
export interface OneSidedJob {
  tool: string;
  job: string;
  kind: string;
}

export interface Totals {
  jobs: number;
  same: number;
  cosmetic: number;
  functional: number;
  errors: number;
  onlyInRuntime: number;
  onlyInStorage: number;
}

export interface ToolPreflight {
  tool: string;
  jobs: JobPreflight[];
  onlyInRuntime: OneSidedJob[];
  onlyInStorage: OneSidedJob[];
  totals: Totals;
}

export interface PreflightReport {
  tools: ToolPreflight[];
  totals: Totals;
  exitCode: 0 | 1 | 2;
}

function metadataOf(obj: unknown): KObject {
  const md = isObject(obj) ? obj['metadata'] : undefined;
  return isObject(md) ? md : {};
}

function nameOf(obj: unknown): string {
  const name = metadataOf(obj)['name'];
  return typeof name === 'string' ? name : '';
}

function toolOf(obj: unknown, settings: PreflightSettings): string {
  const ns = metadataOf(obj)['namespace'];
  return (typeof ns === 'string' ? toolOfNamespace(ns, settings.runtime.toolNamespacePrefix) : undefined) ?? '';
}

/**
 * The tool's uid as a pod template of the tool records it (jobs-api takes it from passwd, which this process cannot
 * read): the first CronJob, Deployment or Job among `objects` whose pod security context has `runAsUser`.
 */
export function toolUidFromObjects(objects: readonly unknown[]): number | undefined {
  for (const obj of objects) {
    const view = isObject(obj) ? podView(obj, 'lenient') : undefined;
    const context = view?.ok ? view.value.podSpec['securityContext'] : undefined;
    const uid = isObject(context) ? context['runAsUser'] : undefined;
    if (typeof uid === 'number' && Number.isInteger(uid)) return uid;
  }
  return undefined;
}

/** Why a CR has no rendered objects to compare. */
export type PreflightProblem = CodedProblem<PreflightErrorCode>;

function failed(cr: unknown, settings: PreflightSettings, { code, message }: PreflightProblem): JobPreflight {
  return {
    tool: toolOf(cr, settings),
    job: nameOf(cr),
    kind: isObject(cr) && typeof cr['kind'] === 'string' ? cr['kind'] : '',
    verdict: 'error',
    differences: [],
    recreate: false,
    error: { code, message },
  };
}

/** The objects jobs-api would create for a CR, or why there are none. */
export function renderFromCr(
  cr: unknown,
  settings: PreflightSettings,
  toolUid?: number,
): Result<KObject[], PreflightProblem> {
  const decoded = (settings.codec ?? createStorageCodec()).read(cr);
  if (!decoded.ok) return failure({ code: 'cr-does-not-decode', path: '', message: formatProblem(decoded.problem) });
  const rendered = renderJobWorkloads(decoded.value.job, settings.runtime, toolUid === undefined ? {} : { toolUid });
  if (!rendered.ok) return failure({ code: 'render-failed', path: '', message: formatProblem(rendered.problem) });
  return rendered;
}

/** One job: its CR rendered as jobs-api would, against its live CronJob or Deployment (+ Service). */
export function preflightJob(cr: unknown, live: readonly unknown[], settings: PreflightSettings): JobPreflight {
  const rendered = renderFromCr(cr, settings, toolUidFromObjects(live) ?? settings.toolUid?.(toolOf(cr, settings)));
  if (!rendered.ok) return failed(cr, settings, rendered.problem);
  const diff = diffWorkloads(live, rendered.value);
  return {
    tool: toolOf(cr, settings),
    job: nameOf(cr),
    kind: String((cr as KObject)['kind']),
    verdict: diff.verdict,
    differences: diff.differences,
    recreate: diff.recreate,
  };
}

/** The workload kind a CR kind renders to (`ScheduledJob` → `CronJob`), undefined for no stored job kind. */
export function workloadKindOfCr(crKind: string): WorkloadKindName | undefined {
  const stored = storageKindForKind(crKind);
  return stored === undefined ? undefined : workloadKindForJobType(stored.jobType).kind;
}

function isJobsFramework(obj: unknown): boolean {
  const labels = metadataOf(obj)['labels'];
  return isObject(labels) && labels[LABELS.managedBy] === MANAGED_BY_JOBS_FRAMEWORK;
}

function emptyTotals(): Totals {
  return { jobs: 0, same: 0, cosmetic: 0, functional: 0, errors: 0, onlyInRuntime: 0, onlyInStorage: 0 };
}

function addTotals(into: Totals, from: Totals): void {
  for (const key of Object.keys(into) as (keyof Totals)[]) into[key] += from[key];
}

/**
 * One tool: CRs (both kinds) matched to its jobs-framework CronJobs and Deployments by kind and name; a Deployment
 * takes the Service of the same name along. One-off Jobs, CronJob runs and foreign objects are not jobs here.
 */
export function preflightTool(
  tool: string,
  crs: readonly unknown[],
  objects: readonly unknown[],
  settings: PreflightSettings,
): ToolPreflight {
  const { workloads, services } = indexObjects(objects);
  const result: ToolPreflight = { tool, jobs: [], onlyInRuntime: [], onlyInStorage: [], totals: emptyTotals() };
  const matched = new Set<string>();
  for (const cr of crs) {
    const crKind = isObject(cr) ? String(cr['kind']) : '';
    const workloadKind = workloadKindOfCr(crKind);
    if (workloadKind === undefined) {
      const message = `kind '${crKind}' is not a stored job kind`;
      result.jobs.push(failed(cr, settings, { code: 'not-a-job-cr', path: 'kind', message }));
      continue;
    }
    const key = `${workloadKind}/${nameOf(cr)}`;
    const workload = workloads.get(key)?.obj;
    if (workload === undefined) {
      result.onlyInStorage.push({ tool, job: nameOf(cr), kind: crKind });
      continue;
    }
    matched.add(key);
    const service = workloadKindOf(workloadKind)?.jobType === 'continuous' ? services.get(nameOf(cr)) : undefined;
    result.jobs.push(preflightJob(cr, service === undefined ? [workload] : [workload, service], settings));
  }
  for (const [key, { obj, crKind }] of workloads) {
    if (!matched.has(key)) result.onlyInRuntime.push({ tool, job: nameOf(obj), kind: crKind });
  }
  countInto(result);
  return result;
}

/**
 * A tool's jobs-framework workloads of a stored job type (CronJobs and Deployments) by `Kind/name`, each with the CR
 * kind it would have, and its Services by name.
 */
function indexObjects(objects: readonly unknown[]): {
  workloads: Map<string, { obj: unknown; crKind: string }>;
  services: Map<string, unknown>;
} {
  const workloads = new Map<string, { obj: unknown; crKind: string }>();
  const services = new Map<string, unknown>();
  for (const obj of objects) {
    const kind = isObject(obj) && typeof obj['kind'] === 'string' ? obj['kind'] : '';
    const stored = storageKindForJobType(workloadKindOf(kind)?.jobType ?? 'one-off');
    if (kind === 'Service') services.set(nameOf(obj), obj);
    else if (stored !== undefined && isJobsFramework(obj))
      workloads.set(`${kind}/${nameOf(obj)}`, { obj, crKind: stored.kind });
  }
  return { workloads, services };
}

function countInto(result: ToolPreflight): void {
  const t = result.totals;
  for (const job of result.jobs) {
    t.jobs += 1;
    if (job.verdict === 'error') t.errors += 1;
    else t[job.verdict] += 1;
  }
  t.onlyInRuntime = result.onlyInRuntime.length;
  t.onlyInStorage = result.onlyInStorage.length;
}

/** `kubectl diff`'s rule: 0 no functional change, 1 some, 2 errors (a job that could not be compared). */
export function exitCodeOf(totals: Totals): 0 | 1 | 2 {
  if (totals.errors > 0) return 2;
  return totals.functional > 0 ? 1 : 0;
}

/** Totals summed tool by tool, for a report written as its tools arrive rather than held. */
export function totalsOf(tools: readonly ToolPreflight[] = []): Totals {
  const totals = emptyTotals();
  for (const t of tools) addTotals(totals, t.totals);
  return totals;
}

/** Adds one tool's totals into `into`. */
export function addToolTotals(into: Totals, tool: ToolPreflight): void {
  addTotals(into, tool.totals);
}

/** Cluster-wide: tools sorted by name, totals summed, the exit code. */
export function preflightReport(tools: readonly ToolPreflight[]): PreflightReport {
  const totals = totalsOf(tools);
  return {
    tools: [...tools].sort((a, b) => a.tool.localeCompare(b.tool)),
    totals,
    exitCode: exitCodeOf(totals),
  };
}

function totalsLine(t: Totals): string {
  return (
    `${t.jobs} jobs compared: ${t.same} same, ${t.cosmetic} cosmetic, ${t.functional} functional, ${t.errors} errors; ` +
    `${t.onlyInRuntime} only in runtime, ${t.onlyInStorage} only in storage`
  );
}

/** One tool's part of the terminal report: per job its verdict, each difference as `field: live → rendered`, its reason. */
export function formatToolTable(tool: ToolPreflight): string {
  const lines: string[] = [`tool ${tool.tool}: ${totalsLine(tool.totals)}`];
  for (const job of tool.jobs) {
    const recreate = job.recreate ? ' (jobs-api would delete and recreate it)' : '';
    lines.push(`  ${job.kind} ${job.job}: ${job.verdict}${recreate}`);
    if (job.error) lines.push(`    error (${job.error.code}): ${job.error.message}`);
    for (const d of job.differences) {
      lines.push(`    [${d.class}] ${d.object} ${d.field}: ${show(d.live)} → ${show(d.rendered)}`);
      lines.push(`        ${d.reason}`);
    }
  }
  for (const j of tool.onlyInRuntime) lines.push(`  ${j.kind} ${j.job}: only in runtime (no CR: nothing to compare)`);
  for (const j of tool.onlyInStorage) lines.push(`  ${j.kind} ${j.job}: only in storage (no workload: see restore)`);
  return `${lines.join('\n')}\n`;
}

/** The closing lines of the terminal report: the cluster-wide totals and the exit code. */
export function formatTotalsTable(totals: Totals): string {
  return `total: ${totalsLine(totals)}\nexit code ${exitCodeOf(totals)}\n`;
}

/** The report for a terminal: each tool (`formatToolTable`), then the totals. */
export function formatPreflightTable(report: PreflightReport): string {
  return report.tools.map(formatToolTable).join('') + formatTotalsTable(report.totals);
}

export function formatPreflightJson(report: PreflightReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}
