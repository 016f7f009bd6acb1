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
 * A workload counts as seen by a checkpoint only if it was created at least this long before it: covers the watch's
 * lag behind the API server (a workload created just before the checkpoint may not have reached its inventory) and
 * the skew between the API server's clock (creationTimestamp, whole seconds) and the sync's.
 */
export const CHECKPOINT_SLACK_MS = 30_000;

/** A tombstone as persisted (sync/tombstone-store): the job and what `crGone` recorded. */
export interface Tombstone extends JobRef, CrDeleted {}

/**
 * What a replica persists so that a replica started later knows what it saw: its tombstones, and — the evidence for
 * deletes no replica saw — every job it saw without a CR at `at`. A workload created well before `at` (see
 * CHECKPOINT_SLACK_MS) that is not among them had its CR then; found without one after a restart, its CR went away
 * while no replica was watching.
 */
export interface Checkpoint {
  /** When it was taken (ms since the epoch, the writer's clock). */
  at: number;
  /** `tool/type/name` of each workload without a CR at `at`; null when too many were kept (no evidence). */
  unmatched: ReadonlySet<string> | null;
  tombstones: readonly Tombstone[];
}

/**
 * The jobs whose CR the sync saw deleted while their workload stood (see RuntimeEntry.crDeleted): jobs-api deletes a
 * job's CR first, then its workloads, and a backfill in between would bring the deleted job back. The evidence is
 * what the watch shows: the CR went away (a DELETED event or gone from a relist) and the workload with the uid it
 * had then is still there. A tombstone ends when the workload is gone, is created again (a new uid) or the CR comes
 * back; so it is kept only for jobs whose workload still exists, pruned with the tool's pass.
 *
 * The daemon's replicas persist their tombstones with a checkpoint (sync/tombstone-store), and a replica restores
 * them before its first plan: a deleted job stays deleted across restarts, including a delete no replica saw.
 */
export class Tombstones {
  private readonly byJob = new PerTool<CrDeleted>();
  /** The checkpoints read at start, with evidence, until the first pass over every tool has used them. */
  private away: ReadonlyArray<Checkpoint & { unmatched: ReadonlySet<string> }> = [];

  /**
   * Takes the checkpoints that replicas persisted before this one started: their tombstones (a delete this process
   * saw itself is kept as it saw it), and their evidence for the next pass (`mark`), until `restored`.
   */
  restore(checkpoints: readonly Checkpoint[]): void {
    for (const c of checkpoints) {
      for (const t of c.tombstones) {
        if (this.byJob.get(t) !== undefined) continue;
        const d: CrDeleted = { at: t.at };
        if (t.workloadUid !== undefined) d.workloadUid = t.workloadUid;
        if (t.away) d.away = true;
        this.byJob.set(t, d);
      }
    }
    this.away = checkpoints.filter((c): c is Checkpoint & { unmatched: ReadonlySet<string> } => c.unmatched !== null);
  }

  /** The first pass after `restore` reconciled every tool: the checkpoints' evidence is spent. */
  restored(): void {
    this.away = [];
  }

  /** Every tombstone held, to persist. */
  held(): Tombstone[] {
    const out: Tombstone[] = [];
    for (const tool of this.byJob.tools()) {
      for (const [key, d] of this.byJob.of(tool) ?? []) {
        const slash = key.indexOf('/');
        out.push(Object.assign({ tool, type: key.slice(0, slash), name: key.slice(slash + 1) }, d));
      }
    }
    return out;
  }

  /** How many tombstones are held. */
  get size(): number {
    let n = 0;
    for (const tool of this.byJob.tools()) n += this.byJob.of(tool)?.size ?? 0;
    return n;
  }

  /** The tools with tombstones (a tool whose objects are all gone is still reconciled once, to prune them). */
  tools(): string[] {
    return [...this.byJob.tools()];
  }

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
    if (o.record && this.away.length > 0) this.lostWhileAway(inv);
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

  /**
   * Tombstones the workloads whose CR went away while no replica was watching: without a CR and without a
   * tombstone now, created well before a checkpoint that did not see them without a CR (see Checkpoint).
   */
  private lostWhileAway(inv: ToolInventory): void {
    const stored = new Set(inv.storage.map(jobKey));
    for (const r of inv.runtime) {
      const key = jobKey(r);
      if (stored.has(key) || this.covers(r)) continue;
      let at: number | undefined;
      for (const c of this.away) {
        const seen = r.workload.createdAt + CHECKPOINT_SLACK_MS <= c.at && !c.unmatched.has(`${inv.tool}/${key}`);
        if (seen && c.at > (at ?? -Infinity)) at = c.at;
      }
      if (at !== undefined) this.byJob.set(r, { at, workloadUid: r.workload.uid, away: true });
    }
  }
}
