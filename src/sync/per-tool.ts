/** A job within its tool: enough to key per-job bookkeeping. */
export interface JobRef {
  tool: string;
  type: string;
  name: string;
}

/** The key of a job within its tool (a tool may have a scheduled and a continuous job of the same name). */
export const jobKey = (e: { type: string; name: string }): string => `${e.type}/${e.name}`;

/** Values per job, grouped by tool: a tool's pass reads and prunes only its own entries, not every tool's. */
export class PerTool<V> {
  private readonly byTool = new Map<string, Map<string, V>>();

  get(e: JobRef): V | undefined {
    return this.byTool.get(e.tool)?.get(jobKey(e));
  }

  set(e: JobRef, value: V): void {
    let jobs = this.byTool.get(e.tool);
    if (!jobs) this.byTool.set(e.tool, (jobs = new Map()));
    jobs.set(jobKey(e), value);
  }

  delete(e: JobRef): void {
    const jobs = this.byTool.get(e.tool);
    if (jobs?.delete(jobKey(e)) && jobs.size === 0) this.byTool.delete(e.tool);
  }

  /** The tool's entries by job key (type/name); undefined when it has none. */
  of(tool: string): ReadonlyMap<string, V> | undefined {
    return this.byTool.get(tool);
  }

  /** The tools that have entries. */
  tools(): IterableIterator<string> {
    return this.byTool.keys();
  }

  /** Keeps only the tool's entries whose key (type/name) is in `live`. */
  retain(tool: string, live: ReadonlySet<string>): void {
    const jobs = this.byTool.get(tool);
    if (!jobs) return;
    for (const key of jobs.keys()) if (!live.has(key)) jobs.delete(key);
    if (jobs.size === 0) this.byTool.delete(tool);
  }
}
