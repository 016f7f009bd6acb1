import { jobKey, PerTool } from './per-tool.js';
import type { JobRef } from './per-tool.js';
import { isTombstoned } from './reconcile.js';
import type { CrDeleted, RuntimeEntry, ToolInventory } from './reconcile.js';

/**
 * How long a tombstone whose workload the sync had not seen at the delete (the workloads' watch behind the CRs')
 * waits for that workload to show up before it is forgotten.
 */
const UNSEEN_WORKLOAD_MS = 60_000;

/**
 * The jobs whose CR the sync saw deleted while their workload stood (see RuntimeEntry.crDeleted): jobs-api deletes a
 * job's CR first, then its workloads, and a backfill in between would bring the deleted job back. The evidence is
 * what the watch shows: the CR went away (a DELETED event or gone from a relist) and the workload with the uid it
 * had then is still there. A tombstone ends when the workload is gone, is created again (a new uid) or the CR comes
 * back; so it is kept only for jobs whose workload still exists, pruned with the tool's pass.
 */
export class Tombstones {
  private readonly byJob = new PerTool<CrDeleted>();

  /** The CR of `job` went away at `at`; `workload` is the job's workload the inventory held then, if any. */
  crGone(job: JobRef, workload: RuntimeEntry | undefined, at: number): void {
    this.byJob.set(job, workload ? { at, workloadUid: workload.workload.uid } : { at });
  }

  /** Whether `r` (a workload as read now) is the workload of a job whose CR was seen deleted. */
  covers(r: JobRef & Pick<RuntimeEntry<unknown>, 'workload'>): boolean {
    const crDeleted = this.byJob.get(r);
    return crDeleted !== undefined && isTombstoned(Object.assign({}, r, { crDeleted }));
  }

  /**
   * The tool's inventory with `crDeleted` on each workload a tombstone covers. `record` (a pass) forgets the
   * tombstones that ended; without it (an on-demand plan) nothing changes.
   */
  mark(inv: ToolInventory, now: number, o: { record: boolean }): ToolInventory {
    const held = this.byJob.of(inv.tool);
    if (!held) return inv;
    const stored = new Set(inv.storage.map(jobKey));
    const live = new Set<string>();
    const runtime = inv.runtime.map((r) => {
      const key = jobKey(r);
      const crDeleted = held.get(key);
      if (crDeleted === undefined || stored.has(key)) return r;
      const marked = Object.assign({}, r, { crDeleted });
      if (!isTombstoned(marked)) return r;
      live.add(key);
      return marked;
    });
    if (o.record) {
      const seen = new Set(inv.runtime.map(jobKey));
      for (const [key, d] of held) {
        const waiting = d.workloadUid === undefined && !seen.has(key) && !stored.has(key);
        if (waiting && now - d.at < UNSEEN_WORKLOAD_MS) live.add(key);
      }
      this.byJob.retain(inv.tool, live);
    }
    return Object.assign({}, inv, { runtime });
  }
}
