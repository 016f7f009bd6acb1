import type { StoredJob } from '../jobs/model.js';
import type { JobText } from '../storage/codec.js';
import { PerTool } from './per-tool.js';
import type { JobRef } from './per-tool.js';
import type { RuntimeEntry } from './reconcile.js';

/**
 * A candidate's job as read from its workload at `resourceVersion`, kept until the CR is written or seen: its JSON,
 * which becomes the CR's spec as it is (`backfillCrText`).
 */
export interface Held extends JobText {
  resourceVersion: string;
}

/**
 * How a held job is kept: its JSON text (a job is plain data: a few strings instead of a dozen small objects, for the
 * thousands an import waits on) in three parts, the text of its `image` in the middle. The image's text (about 250 of
 * a job's 600 bytes: short name, aliases, registry host, path, state) is the same for every job on that image, and
 * kept once for all of them; so are the tool and job name strings, which are the entry's own. At an import's 20,000
 * jobs this is 5 MB less of the heap that lives through the whole import (docs/benchmarks.md, Import: memory).
 */
interface Kept {
  /** The JSON text up to the image's value (the whole text when the job has no image). */
  head: string;
  /** The image's JSON text, shared; empty when the job has none. */
  image: string;
  tail: string;
  job_type: StoredJob['job_type'];
  job_name: string;
  tool_name: string;
  resourceVersion: string;
}

/** Distinct image texts shared at most; past that the table starts again (a cluster has tens of images). */
const IMAGES_SHARED = 1000;

/**
 * What the inventory keeps of backfill candidates (workloads without a CR): the job read from each, so that its CR
 * can be written without reading the workload again, and the jobs whose CR was written and not yet seen by the CR
 * informer (not written again meanwhile). Both are forgotten once the CR is seen, or when the job no longer waits
 * for a CR (`retain`).
 */
export class Candidates {
  private readonly held = new PerTool<Kept>();
  private readonly writtenJobs = new PerTool<true>();
  /** Each image's JSON text, one string for every job on it. */
  private readonly images = new Map<string, string>();

  /** Keeps the job read from a candidate's workload; replaces what was kept for an older resourceVersion. */
  hold(e: RuntimeEntry<unknown>, job: StoredJob): void {
    this.held.set(e, {
      ...this.jsonParts(job),
      job_type: job.job_type,
      // The entry's strings when they are the same (they are: a workload's name is its job's), not a copy per job.
      job_name: job.job_name === e.name ? e.name : job.job_name,
      tool_name: job.tool_name === e.tool ? e.tool : job.tool_name,
      resourceVersion: e.workload.resourceVersion,
    });
  }

  /** The job kept for `job`, if any. */
  heldJob(job: JobRef): Held | undefined {
    const kept = this.held.get(job);
    if (!kept) return undefined;
    const { head, image, tail, job_type, job_name, tool_name, resourceVersion } = kept;
    return { json: head + image + tail, job_type, job_name, tool_name, resourceVersion };
  }

  /**
   * `JSON.stringify(job)` in three parts around the image's value: each field's text, in the job's own order, as
   * JSON.stringify writes it (a field whose value is undefined left out).
   */
  private jsonParts(job: StoredJob): Pick<Kept, 'head' | 'image' | 'tail'> {
    const before: string[] = [];
    const after: string[] = [];
    let image: string | undefined;
    for (const [key, value] of Object.entries(job)) {
      if (value === undefined) continue;
      if (key === 'image') {
        before.push('"image":');
        image = this.shared(JSON.stringify(value));
      } else (image === undefined ? before : after).push(`${JSON.stringify(key)}:${JSON.stringify(value)}`);
    }
    if (image === undefined) return { head: JSON.stringify(job), image: '', tail: '' };
    return { head: `{${before.join(',')}`, image, tail: `${after.length > 0 ? ',' : ''}${after.join(',')}}` };
  }

  private shared(text: string): string {
    const known = this.images.get(text);
    if (known !== undefined) return known;
    if (this.images.size >= IMAGES_SHARED) this.images.clear();
    this.images.set(text, text);
    return text;
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
