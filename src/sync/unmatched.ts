import { jobKey, PerTool } from './per-tool.js';
import type { ToolInventory } from './reconcile.js';

/** When each runtime job was first seen without a CR (see RuntimeEntry.unmatchedSince). */
export class UnmatchedSince {
  private readonly since = new PerTool<number>();

  /**
   * The tool's inventory with `unmatchedSince` on each runtime job that has no CR, and the keys of those jobs.
   * `record` (a pass) notes the jobs newly seen so and forgets those no longer waiting; without it (an on-demand
   * plan) only what the passes noted is read.
   */
  mark(
    inv: ToolInventory,
    now: number,
    o: { record: boolean },
  ): { inventory: ToolInventory; waiting: ReadonlySet<string> } {
    const stored = new Set(inv.storage.map(jobKey));
    const waiting = new Set<string>();
    const runtime = inv.runtime.map((r) => {
      const key = jobKey(r);
      if (stored.has(key)) return r;
      waiting.add(key);
      let since = this.since.get(r);
      if (since === undefined && o.record) this.since.set(r, (since = now));
      return since === undefined ? r : Object.assign({}, r, { unmatchedSince: since });
    });
    if (o.record) this.since.retain(inv.tool, waiting);
    return { inventory: Object.assign({}, inv, { runtime }), waiting };
  }

  /**
   * `tool/type/name` of every runtime job the passes saw without a CR, or null when there are more than `limit`
   * (what a checkpoint keeps, see sync/tombstones).
   */
  keys(limit: number): string[] | null {
    const out: string[] = [];
    for (const tool of this.since.tools()) {
      for (const key of this.since.of(tool)?.keys() ?? []) {
        if (out.length === limit) return null;
        out.push(`${tool}/${key}`);
      }
    }
    return out;
  }
}
