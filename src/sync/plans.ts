import type { SyncEvents } from './events/emitter.js';
import type { Phase } from '../phase/behaviour.js';
import type { SyncMetrics } from '../metrics/registry.js';
import type { Backfiller } from './backfill.js';
import type { Inventory } from './inventory.js';
import { reconcileTool } from './reconcile.js';
import type { RuntimeEntry, ToolInventory, ToolPlan } from './reconcile.js';
import { publishGauges, toolSummary } from './report.js';
import type { ToolSummaries } from './report.js';
import { UNMATCHED_KEPT } from './tombstone-store.js';
import type { Checkpoint, Tombstones } from './tombstones.js';
import { UnmatchedSince } from './unmatched.js';

/**
 * The tools' plans, from the inventory as it is now: each marked with when its jobs were first seen without a CR
 * and with the tombstones, then reconciled (pure and cheap per tool). A pass records what it saw; an on-demand plan
 * (the admin API, `report`) only reads.
 */
export class Planner {
  private readonly unmatched = new UnmatchedSince();

  constructor(
    private readonly o: {
      inventory: Pick<Inventory, 'inventoryOf'>;
      tombstones: Tombstones;
      backfiller: Pick<Backfiller, 'retain' | 'retryTimes'>;
      summaries: ToolSummaries;
      metrics: SyncMetrics;
      graceSeconds: number;
      now: () => number;
      /** The Events: a pass hands them each tool's inventory (sync/options `events`). */
      events?: Pick<SyncEvents, 'observe'> | undefined;
    },
  ) {}

  /** A tool's plan; `record` as in UnmatchedSince.mark (a pass also forgets what no longer waits for a CR). */
  planFor(tool: string, phase: Phase, o: { record: boolean }): ToolPlan {
    return this.planned(tool, phase, o).plan;
  }

  /** A tool's plan, and the inventory it was made from (marked with when its jobs were first seen without a CR). */
  private planned(tool: string, phase: Phase, o: { record: boolean }): { plan: ToolPlan; inventory: ToolInventory } {
    const now = this.o.now();
    const { inventory, waiting } = this.unmatched.mark(this.o.inventory.inventoryOf(tool), now, o);
    if (o.record) this.o.backfiller.retain(tool, waiting);
    const marked = this.o.tombstones.mark(inventory, now, o);
    return { plan: reconcileTool(marked, { phase, now, graceSeconds: this.o.graceSeconds }), inventory: marked };
  }

  /**
   * A pass's plans of `tools` in `phase`: gauges published and summaries kept per tool. Returns the jobs to backfill
   * and when the next of these tools is due (a grace period ends, a retry's time comes; Infinity for none).
   */
  planTools(tools: readonly string[], phase: Phase): { backfills: RuntimeEntry[]; nextDueAt: number } {
    const started = this.o.now();
    const backfills: RuntimeEntry[] = [];
    let nextDueAt = Infinity;
    for (const tool of tools) {
      const { plan, inventory } = this.planned(tool, phase, { record: true });
      publishGauges(plan, this.o.metrics);
      // A retry time already passed is this pass's backfill or one in flight: its end wakes the loop (a CR event, a
      // new retry time), so only later ones make the tool due — else passes would spin while a retry hangs.
      const retries = this.o.backfiller.retryTimes(plan.backfill).filter((at) => at > started);
      // The Events' next write (a grace period ends, a series is observed again) makes the tool due too.
      const eventsDue = this.o.events?.observe(inventory, phase);
      if (eventsDue !== undefined && eventsDue > started) retries.push(eventsDue);
      const summary = toolSummary(plan, retries);
      this.o.summaries.set(tool, summary);
      if (summary?.nextDueAt !== undefined) nextDueAt = Math.min(nextDueAt, summary.nextDueAt);
      for (const e of plan.backfill) backfills.push(e);
    }
    this.o.metrics.tombstones.set(this.o.tombstones.size);
    return { backfills, nextDueAt };
  }

  /**
   * What this replica persists (sync/tombstones): its tombstones and the jobs it holds without a CR, as of `asOf` (when
   * its informers last heard from the API server; never later than now).
   */
  checkpoint(asOf: number): Checkpoint {
    const unmatched = this.unmatched.keys(UNMATCHED_KEPT);
    return {
      at: Math.min(this.o.now(), asOf),
      unmatched: unmatched && new Set(unmatched),
      tombstones: this.o.tombstones.held(),
    };
  }
}
