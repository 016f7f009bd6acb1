import { hash } from 'node:crypto';
import { phaseBehaviour } from '../phase/behaviour.js';
import type { Phase } from '../phase/behaviour.js';
import { formatProblem } from '../errors.js';
import type { Result } from '../errors.js';
import type { CronSchedule, StoredJob } from '../jobs/model.js';
import { jobKey } from './per-tool.js';

/**
 * A job as the sync keeps it between reconciles: its fingerprint (see `jobFingerprint`), one short string where the
 * resolved job was a dozen objects and strings — for tens of thousands of jobs that was most of the sync's memory.
 */
export type JobFingerprint = string;

/** A job read from an object, or why it could not be; `J` is the job (fresh from a read) or its fingerprint (kept). */
export type ReadResult<J> = Result<J>;

/** A jobs-framework workload (CronJob or Deployment) as the sync keeps it: parsed once, never the whole object. */
export interface RuntimeEntry<J = JobFingerprint> {
  tool: string;
  type: StoredJob['job_type'];
  name: string;
  workload: WorkloadRef;
  parsed: ReadResult<J>;
  /** A continuous job with a port, which jobs-api exposes through a Service. */
  exposesPort?: boolean;
  /** Whether a jobs-framework Service exists for a continuous job with a port. */
  hasService?: boolean;
  /**
   * When the sync first saw this workload without a CR (ms). The grace period runs from the later of this and the
   * workload's creation: jobs-api deletes the CR before the workload, so an old workload that just lost its CR is
   * most likely being deleted.
   */
  unmatchedSince?: number;
}

export interface WorkloadRef {
  kind: 'CronJob' | 'Deployment';
  namespace: string;
  name: string;
  resourceVersion: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
  deleting: boolean;
}

export interface StorageEntry<J = JobFingerprint> {
  tool: string;
  type: StoredJob['job_type'];
  name: string;
  resourceVersion: string;
  deleting: boolean;
  decoded: ReadResult<J>;
  /** The workload resourceVersions recorded on the CR (kind/name → resourceVersion), if any. */
  recordedSourceVersions?: Record<string, string>;
}

export interface ToolInventory {
  tool: string;
  runtime: readonly RuntimeEntry[];
  storage: readonly StorageEntry[];
  /** CronJobs and Deployments without jobs-framework labels. */
  foreign: number;
}

export interface FieldDiff {
  field: string;
  storage: unknown;
  runtime: unknown;
}

export type JobState = 'in-sync' | 'out-of-sync' | 'only-in-runtime' | 'only-in-storage' | 'unreadable';
export type JobAction = 'none' | 'backfill' | 'wait-grace' | 'skip-deleting' | 'ignore' | 'report';

export interface JobReport {
  name: string;
  type: StoredJob['job_type'];
  inRuntime: boolean;
  inStorage: boolean;
  state: JobState;
  action: JobAction;
  /** Whether jobs-api lists this job in the phase in force. */
  listedByApi: boolean;
  /**
   * The job definitions in storage and in the workload differ. Which fields differ takes both objects: the sync
   * re-reads them when asked (sync/drift) and adds them to `diff`.
   */
  definitionDiffers?: boolean;
  diff?: FieldDiff[];
  /** The workload changed since the resourceVersion recorded on the CR. */
  changedSinceRecorded?: boolean;
  reason?: string;
}

export interface ToolPlan {
  tool: string;
  jobs: JobReport[];
  /** Workloads to backfill a CR for (only acted on by the leader, after a re-read). */
  backfill: RuntimeEntry[];
  counts: { onlyInRuntime: number; onlyInStorage: number; outOfSync: number; foreign: number };
  /** Earliest time (ms) a job waiting for its grace period becomes due, for re-checking. */
  nextDueAt?: number;
}

export interface ReconcileOptions {
  phase: Phase;
  now: number;
  graceSeconds: number;
}

/**
 * Images compare by what the user chose (short name and digest): host, path, type, state and aliases are resolved
 * from the image registry, and an API-created CR stores only the short name. jobs-api's own check likewise ignores
 * `exists`, `state` and `aliases`.
 */
function imageIdentity(image: unknown): unknown {
  if (!isPlainObject(image)) return image;
  return { short_name: image['short_name'], digest: image['digest'] || undefined };
}

/** The primitive fields of a job, in a fixed order; the objects (schedule, image, health check) follow them. */
const PRIMITIVE_FIELDS = [
  'cmd',
  'cpu',
  'emails',
  'filelog',
  'filelog_stderr',
  'filelog_stdout',
  'job_name',
  'job_type',
  'memory',
  'mount',
  'port',
  'port_protocol',
  'replicas',
  'retry',
  'timeout',
  'tool_name',
] as const;
const KNOWN_FIELDS: ReadonlySet<string> = new Set([...PRIMITIVE_FIELDS, 'schedule', 'image', 'health_check']);

/**
 * The fingerprint of a job whose defaults are resolved (jobs-api's `get_resolved_core_job`, src/jobs/resolve): the
 * SHA-256 (first 128 bits) of its fields as a JSON list in a fixed order, unset (undefined or null) fields as null, the image reduced
 * to its identity, fields the model does not know appended with sorted keys. Two jobs have the same fingerprint
 * exactly when `diffJobs` finds no difference. Runs for every job the sync lists, so it avoids sorting keys.
 */
export function jobFingerprint(job: StoredJob): JobFingerprint {
  const fields = job as unknown as Record<string, unknown>;
  const values: unknown[] = PRIMITIVE_FIELDS.map((k) => fields[k] ?? null);
  const schedule = fields['schedule'];
  values.push(
    isSchedule(schedule)
      ? [schedule.text, schedule.minute, schedule.hour, schedule.day, schedule.month, schedule.day_of_week]
      : sortedCopy(schedule ?? null),
    sortedCopy(imageIdentity(fields['image']) ?? null),
    sortedCopy(fields['health_check'] ?? null),
  );
  const unknown = Object.keys(fields).filter(
    (k) => !KNOWN_FIELDS.has(k) && fields[k] !== undefined && fields[k] !== null,
  );
  if (unknown.length > 0) values.push(sortedCopy(Object.fromEntries(unknown.map((k) => [k, fields[k]]))));
  // 128 of SHA-256's bits, as 22 characters: a 40-byte string per job rather than 64.
  return hash('sha256', JSON.stringify(values), 'buffer').toString('base64url', 0, 16);
}

const SCHEDULE_FIELDS = ['text', 'minute', 'hour', 'day', 'month', 'day_of_week'];

function isSchedule(value: unknown): value is CronSchedule {
  return (
    isPlainObject(value) &&
    SCHEDULE_FIELDS.every((k) => typeof value[k] === 'string') &&
    Object.keys(value).every((k) => SCHEDULE_FIELDS.includes(k) || value[k] === undefined || value[k] === null)
  );
}

function sortedCopy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedCopy);
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value).sort()) {
    const v = value[k];
    if (v !== undefined && v !== null) out[k] = sortedCopy(v);
  }
  return out;
}

/** Name order, then type: code-point order (job names are ASCII), the same whatever the locale. */
const byNameThenType = (a: JobReport, b: JobReport): number =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : a.type < b.type ? -1 : a.type > b.type ? 1 : 0;

/**
 * The decision for one tool: what exists where, what jobs-api would list, what to backfill, what to report.
 * Pure: the same inventory, phase and clock give the same plan.
 */
export function reconcileTool(inv: ToolInventory, o: ReconcileOptions): ToolPlan {
  const behaviour = phaseBehaviour(o.phase);
  const runtime = new Map(inv.runtime.map((r) => [jobKey(r), r]));
  const storage = new Map(inv.storage.map((s) => [jobKey(s), s]));
  const plan: ToolPlan = {
    tool: inv.tool,
    jobs: [],
    backfill: [],
    counts: { onlyInRuntime: 0, onlyInStorage: 0, outOfSync: 0, foreign: inv.foreign },
  };

  for (const [k, r] of runtime) {
    const s = storage.get(k);
    if (s) plan.jobs.push(compareBoth(r, s));
    else plan.jobs.push(runtimeOnly(r, o, behaviour.backfillRuntimeOnly, behaviour.listsRuntimeOnlyJobs, plan));
  }
  for (const [k, s] of storage) {
    if (runtime.has(k)) continue;
    const job = jobReport(
      s,
      'storage',
      s.decoded.ok ? 'only-in-storage' : 'unreadable',
      s.deleting ? 'skip-deleting' : 'report',
      behaviour.sourceOfTruth === 'storage' && !s.deleting,
    );
    if (!s.decoded.ok) job.reason = formatProblem(s.decoded.problem);
    plan.jobs.push(job);
  }
  for (const job of plan.jobs) countJob(job, plan.counts);
  plan.jobs.sort(byNameThenType);
  return plan;
}

/**
 * A job's report with its fixed fields, in one order; optional fields are assigned after. (Built as a spread of a
 * shared base plus fields, every report got a V8 hidden class of its own: megabytes per pass over all tools.)
 */
function jobReport(
  job: { name: string; type: StoredJob['job_type'] },
  where: 'runtime' | 'storage' | 'both',
  state: JobState,
  action: JobAction,
  listedByApi: boolean,
): JobReport {
  return {
    name: job.name,
    type: job.type,
    inRuntime: where !== 'storage',
    inStorage: where !== 'runtime',
    state,
    action,
    listedByApi,
  };
}

/**
 * Adds a job to the per-tool gauges. An unreadable job counts where it exists: a workload that cannot be parsed is
 * still a job in k8s that storage lacks, and it is exactly the kind that vanishes from listings after the switch.
 */
function countJob(job: JobReport, counts: ToolPlan['counts']): void {
  if (job.action === 'skip-deleting' || job.action === 'wait-grace') return;
  const both = job.inRuntime && job.inStorage;
  if (both && (job.state === 'out-of-sync' || job.state === 'unreadable')) counts.outOfSync++;
  else if (!both && job.inRuntime && (job.state === 'only-in-runtime' || job.state === 'unreadable'))
    counts.onlyInRuntime++;
  else if (!both && job.inStorage && (job.state === 'only-in-storage' || job.state === 'unreadable'))
    counts.onlyInStorage++;
}

function runtimeOnly(
  r: RuntimeEntry,
  o: ReconcileOptions,
  backfill: boolean,
  listed: boolean,
  plan: ToolPlan,
): JobReport {
  if (r.workload.deleting) return jobReport(r, 'runtime', 'only-in-runtime', 'skip-deleting', false);
  if (!r.parsed.ok) {
    const job = jobReport(r, 'runtime', 'unreadable', 'report', listed);
    job.reason = formatProblem(r.parsed.problem);
    return job;
  }
  if (!backfill) return jobReport(r, 'runtime', 'only-in-runtime', 'ignore', listed);
  const dueAt = Math.max(r.workload.createdAt, r.unmatchedSince ?? 0) + o.graceSeconds * 1000;
  if (o.now < dueAt) {
    plan.nextDueAt = Math.min(plan.nextDueAt ?? dueAt, dueAt);
    return jobReport(r, 'runtime', 'only-in-runtime', 'wait-grace', listed);
  }
  plan.backfill.push(r);
  return jobReport(r, 'runtime', 'only-in-runtime', 'backfill', listed);
}

function compareBoth(r: RuntimeEntry, s: StorageEntry): JobReport {
  const job = jobReport(r, 'both', 'in-sync', 'none', true);
  const changed = changedSinceRecorded(r, s);
  if (changed !== undefined) job.changedSinceRecorded = changed;
  if (!s.decoded.ok || !r.parsed.ok) {
    job.state = 'unreadable';
    job.reason = s.decoded.ok
      ? `runtime: ${r.parsed.ok ? '' : formatProblem(r.parsed.problem)}`
      : `storage: ${formatProblem(s.decoded.problem)}`;
    return job;
  }
  const differs = s.decoded.value !== r.parsed.value;
  const serviceMissing = r.type === 'continuous' && r.exposesPort === true && r.hasService === false;
  if (!differs && !serviceMissing) return job;
  job.state = 'out-of-sync';
  if (differs) job.definitionDiffers = true;
  job.diff = serviceMissing ? [{ field: 'service', storage: 'present', runtime: 'missing' }] : [];
  return job;
}

function changedSinceRecorded(r: RuntimeEntry, s: StorageEntry): boolean | undefined {
  const recorded = s.recordedSourceVersions?.[`${r.workload.kind}/${r.workload.name}`];
  return recorded === undefined ? undefined : recorded !== r.workload.resourceVersion;
}

/** Per-field differences between two resolved jobs, as dotted paths, in a stable order. */
export function diffJobs(storage: StoredJob, runtime: StoredJob): FieldDiff[] {
  const out: FieldDiff[] = [];
  walk('', storage, runtime, out);
  return out.sort((a, b) => (a.field < b.field ? -1 : a.field > b.field ? 1 : 0));
}

function walk(prefix: string, a: unknown, b: unknown, out: FieldDiff[]): void {
  if (prefix === 'image') {
    a = imageIdentity(a);
    b = imageIdentity(b);
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) walk(prefix ? `${prefix}.${k}` : k, a[k], b[k], out);
    return;
  }
  if (!sameValue(a, b)) out.push({ field: prefix, storage: a, runtime: b });
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if ((a === undefined || a === null) && (b === undefined || b === null)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
