import { formatProblem, ok, problem } from '../errors.js';
import type { StoredJob } from '../jobs/model.js';
import { readWorkload } from '../runtime/read.js';
import type { RuntimeSettings } from '../runtime/settings.js';
import type { JobCr, JobText, StorageCodec } from '../storage/codec.js';
import { PROVENANCE_ANNOTATIONS, sourceVersionsAnnotation, storageKindForKind } from '../storage/kinds.js';
import type { JobFingerprint, RuntimeEntry, StorageEntry, WorkloadRef } from './reconcile.js';

/**
 * What the sync keeps of one watched object. `J` is the job: the object when freshly read, its fingerprint once kept
 * in the inventory.
 */
export type InventoryEntry<J = JobFingerprint> =
  | { what: 'job'; entry: RuntimeEntry<J> }
  | { what: 'foreign'; workload: WorkloadRef }
  | { what: 'service' }
  | { what: 'cr'; entry: StorageEntry<J> };

/** The namespace and tool strings of a tool namespace, one instance each, shared by every entry of the tool. */
export interface ToolNames {
  namespace: string;
  tool: string;
}

/** What reading an object into an entry needs; built once, not per object. */
export interface EntryContext<J> {
  /** The shared strings of a tool namespace, undefined for any other namespace (the inventory's `namesOf`). */
  namesOf: (namespace: string) => ToolNames | undefined;
  settings: RuntimeSettings;
  codec: StorageCodec;
  /** What an entry keeps of a job that was read: its fingerprint (the inventory) or the job itself (re-reads). */
  keep: (job: StoredJob) => J;
}

/**
 * An object read: its entry, and for a workload the job it was read into (undefined when unreadable or not stored),
 * for the inventory to keep while the workload is a backfill candidate (one without a CR).
 */
export interface EntryRead<J = JobFingerprint> {
  entry: InventoryEntry<J>;
  job?: StoredJob | undefined;
}

interface Meta {
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    annotations?: Record<string, string>;
  };
}

const NOT_STORED = Object.freeze(problem('', 'not a stored job type'));

export const SERVICE: InventoryEntry<never> = Object.freeze({ what: 'service' });

/**
 * A CronJob or Deployment as the sync keeps it: a parsed jobs-framework job, a foreign workload (its reference: the
 * sync's Events name it, sync/events), or nothing (webservice objects, other namespaces, one-off Jobs). Runs for every workload the sync lists: the entry is built
 * once, in a fixed field order, with the tool's shared strings.
 */
export function workloadEntry<J>(obj: unknown, ctx: EntryContext<J>): InventoryEntry<J> | undefined {
  return readWorkloadEntry(obj, ctx)?.entry;
}

/** `workloadEntry` with the job the workload was read into (objects in, entries out: nothing else happens). */
export function readWorkloadEntry<J>(obj: unknown, ctx: EntryContext<J>): EntryRead<J> | undefined {
  const md = (obj as Meta).metadata ?? {};
  const names = ctx.namesOf(md.namespace ?? '');
  if (!names || !md.name) return undefined;
  const { class: cls, parsed } = readWorkload(obj, ctx.settings);
  // The sync lists only CronJobs and Deployments (sync/sources); the API stamps the kind on every listed object.
  const kind = (obj as Meta).kind as WorkloadRef['kind'];
  if (cls.kind === 'foreign') return { entry: { what: 'foreign', workload: workloadRef(kind, md.name, md, names) } };
  if (cls.kind !== 'job' || !parsed) return undefined;
  const job = storedJobOf(parsed);
  const entry: RuntimeEntry<J> = {
    tool: names.tool,
    type: cls.jobType,
    name: md.name,
    workload: workloadRef(kind, md.name, md, names),
    parsed: job ? ok(ctx.keep(job)) : parsed.ok ? NOT_STORED : parsed,
  };
  if (job?.job_type === 'continuous' && job.port) entry.exposesPort = true;
  return { entry: { what: 'job', entry }, job };
}

/** The job a workload was read into, if jobs-api stores it (one-off jobs are not stored). */
function storedJobOf(parsed: NonNullable<ReturnType<typeof readWorkload>['parsed']>): StoredJob | undefined {
  return parsed.ok && parsed.value.job.job_type !== 'one-off' ? parsed.value.job : undefined;
}

function workloadRef(
  kind: WorkloadRef['kind'],
  name: string,
  md: NonNullable<Meta['metadata']>,
  names: ToolNames,
): WorkloadRef {
  return {
    kind,
    namespace: names.namespace,
    name,
    resourceVersion: md.resourceVersion ?? '',
    uid: md.uid ?? '',
    createdAt: Date.parse(md.creationTimestamp ?? '') || 0,
    deleting: Boolean(md.deletionTimestamp),
  };
}

/** A job CR as the sync keeps it: decoded once, with the provenance annotations it carries. */
export function crEntry<J>(obj: unknown, ctx: EntryContext<J>): InventoryEntry<J> | undefined {
  const md = (obj as Meta).metadata ?? {};
  const names = ctx.namesOf(md.namespace ?? '');
  const kind = storageKindForKind((obj as Meta).kind ?? '');
  if (!names || !kind || !md.name) return undefined;
  const decoded = ctx.codec.read(obj);
  const entry: StorageEntry<J> = {
    tool: names.tool,
    type: kind.jobType,
    name: md.name,
    resourceVersion: md.resourceVersion ?? '',
    deleting: Boolean(md.deletionTimestamp),
    decoded: decoded.ok ? ok(ctx.keep(decoded.value.job)) : problem('', formatProblem(decoded.problem)),
  };
  const recorded = md.annotations?.[PROVENANCE_ANNOTATIONS.sourceVersions];
  if (recorded) {
    try {
      entry.recordedSourceVersions = JSON.parse(recorded) as Record<string, string>;
    } catch {
      // A hand-edited annotation is not evidence of anything; drift is still computed semantically.
    }
  }
  return { what: 'cr', entry };
}

/** The resourceVersion an entry was made from; Services keep none (they are cheap to redo). */
export function entryResourceVersion(entry: InventoryEntry): string | undefined {
  if (entry.what === 'job') return entry.entry.workload.resourceVersion;
  if (entry.what === 'foreign') return entry.workload.resourceVersion;
  if (entry.what === 'cr') return entry.entry.resourceVersion;
  return undefined;
}

/** Where a backfilled CR came from, recorded in its annotations. */
export interface Provenance {
  /** The workload the job was read from, at the resourceVersion it was read. */
  source?: { kind: string; name: string; resourceVersion: string };
  /** The sync replica that wrote the CR, and when (ISO 8601). */
  backfilledBy?: string;
  backfilledAt?: string;
}

/**
 * The one CR a backfill writes for a job: jobs-api's own encoding plus this project's provenance annotations.
 * The sync writes it; `convert` previews it.
 */
export function backfillCr(
  job: StoredJob,
  provenance: Provenance,
  o: { codec: StorageCodec; namespacePrefix: string },
): JobCr {
  return o.codec.encode(job, { namespacePrefix: o.namespacePrefix, annotations: provenanceAnnotations(provenance) });
}

function provenanceAnnotations(provenance: Provenance): Record<string, string> {
  const annotations: Record<string, string> = {};
  if (provenance.backfilledBy !== undefined) annotations[PROVENANCE_ANNOTATIONS.backfilledBy] = provenance.backfilledBy;
  if (provenance.backfilledAt !== undefined) annotations[PROVENANCE_ANNOTATIONS.backfilledAt] = provenance.backfilledAt;
  const source = provenance.source;
  if (source) Object.assign(annotations, sourceVersionsAnnotation(source.kind, source.name, source.resourceVersion));
  return annotations;
}

/**
 * `backfillCr` as the text a POST sends (`JSON.stringify(backfillCr(job, provenance, o))`), from the job's JSON text
 * (`StorageCodec.encodeText`). backfill.test checks that both give the same text for every workload fixture.
 */
export function backfillCrText(
  job: JobText,
  provenance: Provenance,
  o: { codec: StorageCodec; namespacePrefix: string },
): string {
  return o.codec.encodeText(job, {
    namespacePrefix: o.namespacePrefix,
    annotations: provenanceAnnotations(provenance),
  });
}
