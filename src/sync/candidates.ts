import type { StoredJob } from '../jobs/model.js';
import { jobText } from '../storage/codec.js';
import type { JobText } from '../storage/codec.js';
import { PerTool } from './per-tool.js';
import type { JobRef } from './per-tool.js';
import type { RuntimeEntry } from './reconcile.js';

/**
 * A candidate's job as read from its workload at `resourceVersion`, kept until the CR is written or seen. Kept as its
 * JSON (a job is plain data): one flat string instead of a dozen small objects, for the thousands an import waits on,
 * which becomes the CR's spec as it is (`backfillCrText`).
 */
export interface Held extends JobText {
  resourceVersion: string;
}

/**
 * What the inventory keeps of backfill candidates (workloads without a CR): the job read from each, so that its CR
 * can be written without reading the workload again, and the jobs whose CR was written and not yet seen by the CR
 * informer (not written again meanwhile). Both are forgotten once the CR is seen, or when the job no longer waits
 * for a CR (`retain`).
 */
export class Candidates {
  private readonly held = new PerTool<Held>();
  private readonly writtenJobs = new PerTool<true>();

  /** Keeps the job read from a candidate's workload; replaces what was kept for an older resourceVersion. */
  hold(e: RuntimeEntry<unknown>, job: StoredJob): void {
    this.held.set(e, { ...jobText(job), resourceVersion: e.workload.resourceVersion });
  }

  /** The job kept for `job`, if any. */
  heldJob(job: JobRef): Held | undefined {
    return this.held.get(job);
  }

  /** Forgets the job kept for `job`: its workload is no longer a candidate, or its CR is written. */
  release(job: JobRef): void {
    this.held.delete(job);
  }

  /** The CR informer saw the job's CR: nothing to keep for it, and a CR written for it is now in the watch. */
  crSeen(job: JobRef): void {
    this.held.delete(job);
    this.writtenJobs.delete(job);
  }

  /** The job's CR was written (or found by a 409): until the CR informer sees it, it is not written again. */
  wrote(job: JobRef): void {
    this.writtenJobs.set(job, true);
  }

  /** Whether the job's CR was written and not yet seen. */
  written(job: JobRef): boolean {
    return this.writtenJobs.get(job) ?? false;
  }

  /** Forgets what is kept for a tool's jobs that no longer wait for a CR (`live`: the keys of those that do). */
  retain(tool: string, live: ReadonlySet<string>): void {
    this.held.retain(tool, live);
    this.writtenJobs.retain(tool, live);
  }
}
