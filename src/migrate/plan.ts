import { formatProblem, ok, problem, type Result } from '../errors.js';
import { phaseBehaviour, type Phase } from '../phase/behaviour.js';
import { DEFAULT_TOOL_NAMESPACE_PREFIX, toolOfNamespace } from '../jobs/tenancy.js';
import type { JobType, StoredJob } from '../jobs/index.js';
import {
  isObject,
  LABELS,
  readWorkload,
  workloadKindOf,
  type KObject,
  type ParseResult,
  type RuntimeSettings,
} from '../runtime/index.js';
import { toolUidFromObjects } from '../preflight/preflight.js';
import { createStorageCodec, type StorageCodec } from '../storage/codec.js';
import { STORAGE_GROUP, storageKindForKind } from '../storage/kinds.js';
import { checkBehaviour, type MigrationNote } from './behaviour.js';
import { entryFromJob, sortedEntry } from './entry.js';
import { convertForeign } from './foreign.js';
import { functionalDiff, type FunctionalDifference } from './functional.js';
import { validateLoadEntry, type LoadEntry } from './load-file.js';

/**
 * Per tool: which of its jobs are not managed through the jobs API, why, and the jobs.yaml entries that move them
 * there. Pure: the caller lists the tool's workloads and CRs (plain objects as `kubectl get -o yaml` gives them).
 */

export type MigrationReason =
  /** A jobs-framework workload without a CR; the sync backfills one in this phase. */
  | 'not-in-storage'
  /** A jobs-framework workload without a CR, which jobs-api ignores in this phase. */
  | 'ignored'
  /** A jobs-framework workload that runs something else than its CR says: someone edited it directly. */
  | 'edited-directly'
  /** A CronJob, Deployment or Job written by hand (no jobs-framework labels). */
  | 'hand-written'
  /** An object that looks like a job but cannot be read; no entry. */
  | 'unreadable';

export type { MigrationNote } from './behaviour.js';

export interface DirectWrite {
  manager: string;
  time: string;
  operation?: string;
}

export interface JobMigration {
  name: string;
  kind: string;
  jobType: JobType | null;
  reason: MigrationReason;
  /** One sentence on why this job is listed. */
  detail: string;
  /** For `edited-directly`: what runs (after) against what the CR says (before). */
  differences?: FunctionalDifference[];
  entry: LoadEntry | null;
  /** Whether the entry is part of the tool's jobs.yaml (one-off and invalid entries are not). */
  inJobsYaml: boolean;
  notes: MigrationNote[];
  needsAttention: boolean;
  created?: string;
  /** The latest write by anything but jobs-api and the Kubernetes controllers (from managedFields). */
  lastDirectWrite?: DirectWrite;
  /** Hand-written objects only: the command that deletes the old object (and nothing jobs-api created). */
  deleteCommand?: string;
}

export interface SkippedObject {
  kind: string;
  name: string;
  reason: string;
}

export interface ToolPlan {
  tool: string;
  phase: Phase;
  jobs: JobMigration[];
  /** The tool's jobs.yaml: the valid scheduled and continuous entries, keys sorted as `toolforge jobs dump` does. */
  entries: LoadEntry[];
  needsAttention: number;
  /** Objects of the namespace that are not listed, and why (webservice, CronJob runs, Services, API jobs). */
  skipped: SkippedObject[];
}

export interface PlanInput {
  tool: string;
  phase: Phase;
  workloads: readonly unknown[];
  crs: readonly unknown[];
  settings: RuntimeSettings;
  /** jobs-api's field managers: their writes are not direct writes (config `identities.jobsApiFieldManagers`). */
  jobsApiFieldManagers?: readonly string[];
  codec?: StorageCodec;
}

const DEFAULT_JOBS_API_MANAGERS = ['jobs-api toolforge_weld'];
const CONTROLLER_MANAGERS = ['kube-controller-manager', 'kube-apiserver'];

function metadataOf(obj: unknown): KObject {
  return isObject(obj) && isObject(obj['metadata']) ? obj['metadata'] : {};
}

function nameOf(obj: unknown): string {
  const name = metadataOf(obj)['name'];
  return typeof name === 'string' ? name : '';
}

function kindOf(obj: unknown): string {
  return isObject(obj) && typeof obj['kind'] === 'string' ? obj['kind'] : '';
}

/** The latest managedFields write by a client other than jobs-api and the controllers. */
export function lastDirectWrite(obj: unknown, jobsApiManagers: readonly string[]): DirectWrite | undefined {
  const fields = metadataOf(obj)['managedFields'];
  let latest: DirectWrite | undefined;
  for (const raw of Array.isArray(fields) ? fields : []) {
    if (!isObject(raw) || raw['subresource'] === 'status') continue;
    const manager = raw['manager'];
    const time = raw['time'];
    if (typeof manager !== 'string' || typeof time !== 'string') continue;
    if (jobsApiManagers.includes(manager) || CONTROLLER_MANAGERS.includes(manager)) continue;
    if (latest === undefined || time > latest.time)
      latest = { manager, time, ...(typeof raw['operation'] === 'string' ? { operation: raw['operation'] } : {}) };
  }
  return latest;
}

function provenance(obj: unknown, managers: readonly string[]): Pick<JobMigration, 'created' | 'lastDirectWrite'> {
  const created = metadataOf(obj)['creationTimestamp'];
  const write = lastDirectWrite(obj, managers);
  return {
    ...(typeof created === 'string' ? { created } : {}),
    ...(write === undefined ? {} : { lastDirectWrite: write }),
  };
}

interface Ctx {
  input: PlanInput;
  managers: readonly string[];
  /** jobs-api's records by `type/name`: the job, or why its CR does not decode. */
  storage: Map<string, Result<StoredJob>>;
  jobs: JobMigration[];
  skipped: SkippedObject[];
  /** Each listed job's running objects (its workload, and a continuous job's Service): what its entry is compared with. */
  live: Map<JobMigration, unknown[]>;
}

function readCrs(input: PlanInput, codec: StorageCodec): Ctx['storage'] {
  const out: Ctx['storage'] = new Map();
  for (const cr of input.crs) {
    const apiVersion = isObject(cr) ? cr['apiVersion'] : undefined;
    if (typeof apiVersion !== 'string' || !apiVersion.startsWith(`${STORAGE_GROUP}/`)) continue;
    const type = storageKindForKind(kindOf(cr))?.jobType ?? '';
    const decoded = codec.read(cr);
    out.set(`${type}/${nameOf(cr)}`, decoded.ok ? ok(decoded.value.job) : problem('', formatProblem(decoded.problem)));
  }
  return out;
}

/** `cannot be read as a job: <problem>`, the detail of an unreadable workload. */
function unreadable(p: { path: string; message: string }): string {
  return `cannot be read as a job: ${formatProblem(p)}`;
}

function labelledJob(ctx: Ctx, obj: unknown, jobType: 'scheduled' | 'continuous', parsed: ParseResult): void {
  const name = nameOf(obj);
  const kind = kindOf(obj);
  const base = { name, kind, jobType, ...provenance(obj, ctx.managers) };
  const stored = ctx.storage.get(`${jobType}/${name}`);
  if (!parsed.ok) {
    if (stored?.ok) return; // jobs-api has the job; a workload it cannot read is the sync report's business
    ctx.jobs.push({
      ...base,
      reason: 'unreadable',
      detail: unreadable(parsed.problem),
      entry: null,
      inJobsYaml: false,
      notes: [],
      needsAttention: true,
    });
    return;
  }
  let reason: MigrationReason;
  let detail: string;
  let differences: FunctionalDifference[] | undefined;
  if (stored === undefined) {
    const backfilled = phaseBehaviour(ctx.input.phase).backfillRuntimeOnly;
    reason = backfilled ? 'not-in-storage' : 'ignored';
    detail = backfilled
      ? 'runs without a record in jobs-api: it was created or recreated outside the jobs API'
      : 'runs without a record in jobs-api, which ignores it: toolforge jobs does not list or manage it';
  } else {
    differences = stored.ok ? functionalDiff(stored.value, parsed.value.job, ctx.input.settings) : [];
    if (stored.ok && differences.length === 0) return;
    reason = 'edited-directly';
    detail = stored.ok
      ? `runs something else than jobs-api's record (${differences.map((d) => d.field).join(', ')}): it was edited directly`
      : `jobs-api's record cannot be read (${formatProblem(stored.problem)}): loading the entry rewrites it from what runs`;
  }
  const { entry, notes } = entryFromJob(parsed.value.job, ctx.input.settings, parsed.value.warnings);
  const migrationNotes = notes.map((n) => ({
    code: n.code,
    where: n.field,
    message: n.message,
    attention: n.attention,
  }));
  const job: JobMigration = {
    ...base,
    reason,
    detail,
    ...(differences && differences.length > 0 ? { differences } : {}),
    entry: sortedEntry(entry),
    inJobsYaml: true,
    notes: migrationNotes,
    needsAttention: migrationNotes.some((n) => n.attention),
  };
  ctx.jobs.push(job);
  ctx.live.set(job, jobType === 'continuous' ? [obj, ...servicesNamed(ctx, name)] : [obj]);
}

/** The tool's jobs-framework Services of a name (migrate lists only those): a continuous job's Service. */
function servicesNamed(ctx: Ctx, name: string): unknown[] {
  return ctx.input.workloads.filter((o) => kindOf(o) === 'Service' && nameOf(o) === name).slice(0, 1);
}

/**
 * Deletes only the old object, never the one jobs-api creates under the same name when the entry is loaded:
 * jobs-api's objects carry the managed-by label and its component; an imitation carries another component.
 */
function deleteCommand(obj: unknown, plural: string, name: string): string {
  const labels = metadataOf(obj)['labels'];
  const managedBy = isObject(labels) ? labels[LABELS.managedBy] : undefined;
  const component = isObject(labels) ? labels[LABELS.component] : undefined;
  const selector =
    managedBy === undefined
      ? `!${LABELS.managedBy}`
      : typeof component === 'string'
        ? `${LABELS.component}=${component}`
        : `!${LABELS.component}`;
  return `kubectl delete ${plural} --field-selector metadata.name=${name} -l '${selector}'`;
}

function handWritten(ctx: Ctx, obj: unknown): void {
  const kind = kindOf(obj);
  const name = nameOf(obj);
  const converted = convertForeign(obj, ctx.input.settings);
  if (!converted.ok && converted.problem.code === 'not-a-job') {
    ctx.skipped.push({ kind, name, reason: converted.problem.message });
    return;
  }
  const base = { name, kind, ...provenance(obj, ctx.managers) };
  if (!converted.ok) {
    ctx.jobs.push({
      ...base,
      jobType: null,
      reason: 'unreadable',
      detail: unreadable(converted.problem),
      entry: null,
      inJobsYaml: false,
      notes: [],
      needsAttention: true,
    });
    return;
  }
  const result = converted.value;
  const plural = workloadKindOf(kind)?.plural ?? kind.toLowerCase();
  const job: JobMigration = {
    ...base,
    jobType: result.jobType,
    reason: 'hand-written',
    detail: `a ${kind} written by hand, outside the jobs API`,
    entry: result.entry === null ? null : sortedEntry(result.entry),
    inJobsYaml: result.entry !== null,
    notes: result.problems.map((p) => ({
      code: p.code,
      where: p.path,
      message: p.reason,
      instead: p.instead,
      attention: p.attention,
    })),
    needsAttention: result.needsAttention,
    deleteCommand: deleteCommand(obj, plural, name),
  };
  ctx.jobs.push(job);
  ctx.live.set(job, [obj]);
}

function classify(ctx: Ctx, obj: unknown): void {
  const { class: c, parsed } = readWorkload(obj, ctx.input.settings);
  const kind = kindOf(obj);
  const name = nameOf(obj);
  switch (c.kind) {
    case 'job':
      if (parsed !== undefined) labelledJob(ctx, obj, c.jobType, parsed);
      return;
    case 'foreign':
      if (kind === 'Service') ctx.skipped.push({ kind, name, reason: 'a Service is not a job' });
      else handWritten(ctx, obj);
      return;
    case 'one-off-job':
    case 'webservice':
    case 'cronjob-run':
    case 'job-service':
    case 'unsupported':
      ctx.skipped.push({ kind, name, reason: c.reason });
  }
}

/** The type of a job jobs-api already has under this job's name, other than the job itself. */
function takenBy(job: JobMigration, stored: ReadonlyMap<string, unknown>): string | undefined {
  for (const type of ['scheduled', 'continuous'] as const) {
    const own = job.reason !== 'hand-written' && job.jobType === type;
    if (!own && job.entry !== null && stored.has(`${type}/${job.entry.name}`)) return type;
  }
  return undefined;
}

/** Notes whose entry would make jobs-api refuse the job at creation ("No such image"); held back from jobs.yaml. */
const HOLD_BACK = new Set(['non-toolforge-image', 'unknown-image']);

/**
 * Renders a valid entry as jobs-api would and compares it with what runs (preflight's classifier): the entry
 * amended where it can keep what runs, and a note for each other change of behaviour.
 */
function checkRunsTheSame(ctx: Ctx, job: JobMigration, uid: number | undefined): void {
  if (job.entry === null) return;
  const checked = checkBehaviour({
    entry: job.entry,
    tool: ctx.input.tool,
    live: ctx.live.get(job) ?? [],
    settings: ctx.input.settings,
    ...(uid === undefined ? {} : { toolUid: uid }),
    noted: new Set(job.notes.map((n) => n.code)),
  });
  job.entry = sortedEntry(checked.entry);
  job.notes.push(...checked.notes);
  if (checked.notes.some((n) => n.attention)) job.needsAttention = true;
}

/**
 * Marks entries that are not loadable (one-off, invalid, a name taken twice, an image jobs-api refuses) as not part
 * of jobs.yaml: one bad entry would stop the load of the others. Each valid entry is first checked against what
 * runs (`checkRunsTheSame`).
 */
function checkEntries(ctx: Ctx, stored: ReadonlyMap<string, unknown>): LoadEntry[] {
  const entries: LoadEntry[] = [];
  const names = new Set<string>();
  const uid = toolUidFromObjects(ctx.input.workloads);
  for (const job of ctx.jobs) {
    if (job.entry === null) continue;
    if (!validateLoadEntry(job.entry, 0).some((i) => i.severity === 'error')) checkRunsTheSame(ctx, job, uid);
    const taken = takenBy(job, stored);
    if (taken !== undefined) {
      job.notes.push({
        code: 'name-taken',
        where: 'name',
        message: `jobs-api already has a ${taken} job named '${job.entry.name}': loading this entry would replace it`,
        instead: "choose another 'name' for this one",
        attention: true,
      });
      job.inJobsYaml = false;
      job.needsAttention = true;
      continue;
    }
    if (job.jobType === 'one-off') {
      job.inJobsYaml = false;
      continue;
    }
    const errors = validateLoadEntry(job.entry, 0).filter((i) => i.severity === 'error');
    for (const e of errors)
      job.notes.push({
        code: `invalid-${e.code}`,
        where: e.path.replace(/^jobs\[0\]\.?/, ''),
        message: e.message,
        attention: true,
      });
    if (names.has(job.entry.name)) {
      job.notes.push({
        code: 'duplicate-name',
        where: 'name',
        message: `another job of this tool is also named '${job.entry.name}'; jobs-api needs distinct names`,
        instead: "choose another 'name' for this one",
        attention: true,
      });
    }
    if (job.notes.some((n) => HOLD_BACK.has(n.code))) {
      job.inJobsYaml = false;
      continue;
    }
    if (errors.length > 0 || names.has(job.entry.name)) {
      job.inJobsYaml = false;
      job.needsAttention = true;
      continue;
    }
    names.add(job.entry.name);
    entries.push(job.entry);
  }
  return entries;
}

/** The migration plan of one tool. Never throws on bad objects: they are listed as unreadable or skipped. */
export function planTool(input: PlanInput): ToolPlan {
  const ctx: Ctx = {
    input,
    managers: input.jobsApiFieldManagers ?? DEFAULT_JOBS_API_MANAGERS,
    storage: readCrs(input, input.codec ?? createStorageCodec()),
    jobs: [],
    skipped: [],
    live: new Map(),
  };
  for (const obj of input.workloads) classify(ctx, obj);
  ctx.jobs.sort((a, b) => (a.name === b.name ? a.kind.localeCompare(b.kind) : a.name < b.name ? -1 : 1));
  const entries = checkEntries(ctx, ctx.storage);
  return {
    tool: input.tool,
    phase: input.phase,
    jobs: ctx.jobs,
    entries,
    needsAttention: ctx.jobs.filter((j) => j.needsAttention).length,
    skipped: ctx.skipped,
  };
}

/**
 * Objects from a file (several documents or a List, any tools) grouped by the tool of their namespace
 * (`<prefix><tool>`); objects of other namespaces (kube-system, …) are left out.
 */
export function groupByTool(
  objects: readonly unknown[],
  namespacePrefix = DEFAULT_TOOL_NAMESPACE_PREFIX,
): Map<string, { workloads: unknown[]; crs: unknown[] }> {
  const out = new Map<string, { workloads: unknown[]; crs: unknown[] }>();
  const visit = (obj: unknown): void => {
    if (isObject(obj) && kindOf(obj).endsWith('List') && Array.isArray(obj['items'])) {
      for (const item of obj['items']) visit(item);
      return;
    }
    const namespace = metadataOf(obj)['namespace'];
    const tool = toolOfNamespace(typeof namespace === 'string' ? namespace : undefined, namespacePrefix);
    if (tool === undefined) return;
    const group = out.get(tool) ?? { workloads: [], crs: [] };
    const apiVersion = isObject(obj) ? obj['apiVersion'] : undefined;
    if (typeof apiVersion === 'string' && apiVersion.startsWith(`${STORAGE_GROUP}/`)) group.crs.push(obj);
    else group.workloads.push(obj);
    out.set(tool, group);
  };
  for (const obj of objects) visit(obj);
  return out;
}
