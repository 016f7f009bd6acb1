import type { StoredJob } from '../jobs/model.js';
import type { KubeApi } from '../k8s/api.js';
import { describeApiError } from '../k8s/errors.js';
import { objectPath } from '../k8s/paths.js';
import { workloadKindOf } from '../runtime/kinds.js';
import { storageKindForJobType } from '../storage/kinds.js';
import { crEntry, workloadEntry } from './entries.js';
import type { EntryContext } from './entries.js';
import { jobKey } from './per-tool.js';
import { diffJobs } from './fingerprint.js';
import type { FieldDiff, JobReport, RuntimeEntry, ToolPlan } from './reconcile.js';

export interface DriftReader {
  api: Pick<KubeApi, 'request'>;
  /** Reads the fresh objects into entries that keep the jobs themselves. */
  entries: EntryContext<StoredJob>;
  /** Fills jobs-api's defaults so equal jobs compare equal. */
  resolve: (job: StoredJob) => StoredJob;
}

/**
 * The plan with the fields that differ named, for each job whose definitions differ. The inventory keeps only
 * fingerprints, so the workload and the CR of each such job are read again. Returns a new plan (new reports for
 * those jobs); `plan` is left as reconcile made it.
 */
export async function withFieldDiffs(
  plan: ToolPlan,
  runtime: readonly RuntimeEntry[],
  reader: DriftReader,
): Promise<ToolPlan> {
  if (!plan.jobs.some((j) => j.definitionDiffers)) return plan;
  const byKey = new Map(runtime.map((r) => [jobKey(r), r]));
  const jobs = await Promise.all(
    plan.jobs.map(async (job): Promise<JobReport> => {
      const entry = job.definitionDiffers ? byKey.get(jobKey(job)) : undefined;
      if (!entry) return job;
      const found = await fieldDiff(entry, reader);
      return typeof found === 'string'
        ? Object.assign({}, job, { reason: found })
        : Object.assign({}, job, { diff: [...found, ...(job.diff ?? [])] });
    }),
  );
  return Object.assign({}, plan, { jobs });
}

/** Reads a job's workload and CR again and diffs them; a string says why it could not. */
export async function fieldDiff(e: RuntimeEntry, reader: DriftReader): Promise<FieldDiff[] | string> {
  const kind = storageKindForJobType(e.type);
  const resource = workloadKindOf(e.workload.kind);
  if (!kind || !resource) return 'not a stored job type';
  let objects: [unknown, unknown];
  try {
    objects = await Promise.all([
      reader.api.request('GET', objectPath(resource, e.workload.namespace, e.workload.name)),
      reader.api.request('GET', objectPath(kind, e.workload.namespace, e.name)),
    ]);
  } catch (err) {
    return `cannot read the job to name the fields that differ: ${describeApiError(err).message}`;
  }
  const runtime = workloadEntry(objects[0], reader.entries);
  const stored = crEntry(objects[1], reader.entries);
  if (runtime?.what !== 'job' || !runtime.entry.parsed.ok || stored?.what !== 'cr' || !stored.entry.decoded.ok)
    return 'the job changed since the last reconcile and is no longer readable on both sides';
  return diffJobs(reader.resolve(stored.entry.decoded.value), reader.resolve(runtime.entry.parsed.value));
}
