import type { Phase } from '../phase/behaviour.js';
import type { SyncMetrics } from '../metrics/registry.js';
import type { ToolPlan } from './reconcile.js';

/** What the sync reports of itself (the admin API's /admin/v1/status, the first-reconcile log line). */
export interface SyncStatus {
  phase: Phase;
  identity: string;
  leader: boolean;
  synced: boolean;
  lastSyncAt: string | null;
  lastSyncSeconds: number | null;
  totals: {
    tools: number;
    runtimeJobs: number;
    storageJobs: number;
    onlyInRuntime: number;
    onlyInStorage: number;
    outOfSync: number;
    foreign: number;
    backfilled: number;
  };
}

/** What the last reconcile found of one tool; reports are recomputed on demand rather than kept for 4,000 tools. */
export interface ToolSummary {
  counts: ToolPlan['counts'];
  runtimeJobs: number;
  storageJobs: number;
  /** When the tool must be reconciled again though nothing changed (a grace period ends, a failed backfill retries). */
  nextDueAt?: number;
}

/**
 * The summary of a tool's plan, or undefined for a tool with nothing to report. `retries` are the retry times of
 * the plan's failed backfills: the tool is due again at the earliest of them and the plan's own due time.
 */
export function toolSummary(plan: ToolPlan, retries: readonly number[]): ToolSummary | undefined {
  if (plan.jobs.length === 0 && plan.counts.foreign === 0) return undefined;
  const dues = plan.nextDueAt === undefined ? retries : [plan.nextDueAt, ...retries];
  const summary: ToolSummary = {
    counts: plan.counts,
    runtimeJobs: plan.jobs.filter((j) => j.inRuntime).length,
    storageJobs: plan.jobs.filter((j) => j.inStorage).length,
  };
  if (dues.length > 0) summary.nextDueAt = Math.min(...dues);
  return summary;
}

/**
 * Every tool's summary, and the tools due again though nothing changed (a summary's nextDueAt) kept apart: a pass
 * looks up only those, not every tool's summary, so a watch event's pass costs about its tool's jobs whatever the
 * number of tools.
 */
export class ToolSummaries {
  private readonly byTool = new Map<string, ToolSummary>();
  private readonly dueAt = new Map<string, number>();

  /** The tool's summary from its last reconcile; undefined: the tool has nothing to report (it is forgotten). */
  set(tool: string, summary: ToolSummary | undefined): void {
    if (summary) this.byTool.set(tool, summary);
    else this.byTool.delete(tool);
    if (summary?.nextDueAt === undefined) this.dueAt.delete(tool);
    else this.dueAt.set(tool, summary.nextDueAt);
  }

  /** The tool is due again at `at` at the latest (a failed backfill's retry). */
  dueBy(tool: string, at: number): void {
    const summary = this.byTool.get(tool);
    const due = Math.min(this.dueAt.get(tool) ?? at, at);
    if (summary) summary.nextDueAt = due;
    this.dueAt.set(tool, due);
  }

  /** The tools due at `now`, and when the next one after `now` is due (Infinity: none). */
  due(now: number): { tools: string[]; nextAt: number } {
    const tools: string[] = [];
    let nextAt = Infinity;
    for (const [tool, at] of this.dueAt) {
      if (at <= now) tools.push(tool);
      else nextAt = Math.min(nextAt, at);
    }
    return { tools, nextAt };
  }

  has(tool: string): boolean {
    return this.byTool.has(tool);
  }

  tools(): IterableIterator<string> {
    return this.byTool.keys();
  }

  values(): IterableIterator<ToolSummary> {
    return this.byTool.values();
  }
}

/** Sets the tool's per-tool gauges; a gauge at zero drops its series, so 4,000 tools in sync export nothing. */
export function publishGauges(plan: ToolPlan, metrics: SyncMetrics): void {
  const labels = { tool_name: plan.tool };
  const gauges: Array<[typeof metrics.onlyInRuntime, number]> = [
    [metrics.onlyInRuntime, plan.counts.onlyInRuntime],
    [metrics.onlyInStorage, plan.counts.onlyInStorage],
    [metrics.outOfSync, plan.counts.outOfSync],
    [metrics.foreignWorkloads, plan.counts.foreign],
  ];
  for (const [gauge, n] of gauges) {
    if (n === 0) gauge.remove(labels);
    else gauge.set(labels, n);
  }
}

/** The totals over every tool's summary. */
export function summarize(summaries: Iterable<ToolSummary>, backfilled: number): SyncStatus['totals'] {
  const totals = {
    tools: 0,
    runtimeJobs: 0,
    storageJobs: 0,
    onlyInRuntime: 0,
    onlyInStorage: 0,
    outOfSync: 0,
    foreign: 0,
    backfilled,
  };
  for (const summary of summaries) {
    totals.tools += 1;
    totals.runtimeJobs += summary.runtimeJobs;
    totals.storageJobs += summary.storageJobs;
    totals.onlyInRuntime += summary.counts.onlyInRuntime;
    totals.onlyInStorage += summary.counts.onlyInStorage;
    totals.outOfSync += summary.counts.outOfSync;
    totals.foreign += summary.counts.foreign;
  }
  return totals;
}
