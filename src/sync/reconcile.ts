import { phaseBehaviour } from '../phase/behaviour.js';
import type { Phase } from '../phase/behaviour.js';
import { formatProblem } from '../errors.js';
import type { Result } from '../errors.js';
import type { StoredJob } from '../jobs/model.js';
import type { WorkloadKindName } from '../runtime/kinds.js';
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
  /**
   * The job's CR was seen deleted while this workload (or, if the workload was not seen yet, a workload created no
   * later than the delete) stood for it: a tombstone (see sync/tombstones). The planner never backfills such a job.
   */
  crDeleted?: CrDeleted;
}

/** When the sync saw a job's CR go away, and the uid of the job's workload at that time (if it had seen one). */
export interface CrDeleted {
  /** Milliseconds since the epoch; for a CR that went away while no replica was watching, the checkpoint's time. */
  at: number;
  workloadUid?: string;
  /** No replica saw the CR go away: a checkpoint saw the workload with its CR, and a replica started later without. */
  away?: boolean;
}

export interface WorkloadRef {
  /** The sync watches CronJobs and Deployments (sync/sources), not Jobs. */
  kind: Exclude<WorkloadKindName, 'Job'>;
  namespace: string;
  name: string;
  resourceVersion: string;
  /** The workload's uid: a workload deleted and created again under the same name has a new one. */
  uid: string;
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
  /** Those workloads (the inventory gives them; a plan needs only their number). */
  foreignWorkloads?: readonly WorkloadRef[];
}

export interface FieldDiff {
  field: string;
  storage: unknown;
  runtime: unknown;
}

export type JobState = 'in-sync' | 'out-of-sync' | 'only-in-runtime' | 'only-in-storage' | 'unreadable';
/**
 * `tombstoned`: the job's CR was deleted and its workload is still there — never backfilled. Within the grace
 * period after the delete it is jobs-api's delete in flight (CR first, then workloads) and not counted; after it,
 * the CR was most likely deleted by someone else than the writers, and the job is reported (only-in-runtime).
 */
export type JobAction = 'none' | 'backfill' | 'wait-grace' | 'skip-deleting' | 'ignore' | 'report' | 'tombstoned';

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
 * A job's report with its fixed fields, in one order; optional fields are assigned after (docs/adr/0004).
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
  if (!counted(job)) return;
  const both = job.inRuntime && job.inStorage;
  if (both && (job.state === 'out-of-sync' || job.state === 'unreadable')) counts.outOfSync++;
  else if (!both && job.inRuntime && (job.state === 'only-in-runtime' || job.state === 'unreadable'))
    counts.onlyInRuntime++;
  else if (!both && job.inStorage && (job.state === 'only-in-storage' || job.state === 'unreadable'))
    counts.onlyInStorage++;
}

/**
 * Whether a job counts in the gauges: not while it is being deleted or within its grace period, and a tombstoned
 * job only once jobs-api's own delete would have removed the workload (see JobAction), when it carries a reason.
 */
function counted(job: JobReport): boolean {
  if (job.action === 'skip-deleting' || job.action === 'wait-grace') return false;
  return job.action !== 'tombstoned' || job.reason !== undefined;
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
  if (isTombstoned(r)) return tombstoned(r, o, listed, plan);
  const dueAt = Math.max(r.workload.createdAt, r.unmatchedSince ?? 0) + o.graceSeconds * 1000;
  if (o.now < dueAt) {
    plan.nextDueAt = Math.min(plan.nextDueAt ?? dueAt, dueAt);
    return jobReport(r, 'runtime', 'only-in-runtime', 'wait-grace', listed);
  }
  plan.backfill.push(r);
  return jobReport(r, 'runtime', 'only-in-runtime', 'backfill', listed);
}

/**
 * Whether the workload is the one whose CR was seen deleted: the same uid, or — when the sync had not seen the
 * workload yet at the delete — one created no later than the delete (creationTimestamp has whole seconds, and is the
 * API server's clock against the sync's: the second of slack covers both).
 */
export function isTombstoned(r: Pick<RuntimeEntry<unknown>, 'workload' | 'crDeleted'>): boolean {
  const d = r.crDeleted;
  if (!d) return false;
  return d.workloadUid === undefined ? r.workload.createdAt <= d.at + 1000 : d.workloadUid === r.workload.uid;
}

function tombstoned(r: RuntimeEntry, o: ReconcileOptions, listed: boolean, plan: ToolPlan): JobReport {
  const job = jobReport(r, 'runtime', 'only-in-runtime', 'tombstoned', listed);
  const at = r.crDeleted?.at ?? 0;
  const dueAt = at + Math.max(o.graceSeconds, MIN_DELETE_GAP_SECONDS) * 1000;
  if (o.now < dueAt) {
    plan.nextDueAt = Math.min(plan.nextDueAt ?? dueAt, dueAt);
    return job;
  }
  const when = new Date(at).toISOString();
  job.reason = r.crDeleted?.away
    ? `its CR was deleted after ${when}, while no sync replica was running, and the workload was not: not backfilled again`
    : `its CR was deleted at ${when} and the workload was not: not backfilled again`;
  return job;
}

/**
 * How long after a CR's delete a workload still standing is taken as the CR deleted by someone else than jobs-api
 * (jobs-api deletes the workloads right after the CR), when the grace period is shorter.
 */
const MIN_DELETE_GAP_SECONDS = 30;

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
