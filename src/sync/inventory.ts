import { toolOfNamespace } from '../jobs/tenancy.js';
import type { StoredJob } from '../jobs/model.js';
import { Candidates } from './candidates.js';
import type { InventoryEntry, ToolNames } from './entries.js';
import type { JobRef } from './per-tool.js';
import type { RuntimeEntry, StorageEntry, ToolInventory, WorkloadRef } from './reconcile.js';

export type Resource = 'cronjobs' | 'deployments' | 'services' | 'scheduled-jobs' | 'continuous-jobs';

/**
 * One tool's objects. Jobs are kept per resource and keyed by name (the name string the entry already holds, so no
 * key string per job); each map exists only while it has entries (most tools have two of the four).
 */
interface ToolState {
  cronjobs?: Map<string, RuntimeEntry>;
  deployments?: Map<string, RuntimeEntry>;
  scheduled?: Map<string, StorageEntry>;
  continuous?: Map<string, StorageEntry>;
  /** CronJobs and Deployments without jobs-framework labels (rare), by `resource/name`. */
  foreign?: Map<string, WorkloadRef>;
  /** Names of jobs-framework Services. */
  services?: Set<string>;
}

/**
 * Per-tool index over the informers' stores, updated from their change events, so a reconcile of one tool reads
 * only that tool's entries.
 */
export class Inventory {
  private readonly tools = new Map<string, ToolState>();
  private readonly dirty = new Set<string>();
  /** namespace → its tool, with one string instance per namespace and per tool for every entry to share. */
  private readonly names = new Map<string, ToolNames>();
  /** The jobs of backfill candidates, and the CRs written and not yet seen (see Candidates). */
  readonly candidates = new Candidates();

  /**
   * `onCrGone` hears when a job's CR leaves the inventory (a watch DELETED event, or gone from a relist), with the
   * job's workload as the inventory holds it at that moment (undefined if it holds none). `candidacy` says whether
   * the job of a workload without a CR is kept (sync/gate); without it none is.
   */
  constructor(
    private readonly namespacePrefix: string,
    private readonly onCrGone?: (job: JobRef, workload: RuntimeEntry | undefined) => void,
    private readonly candidacy?: { mayKeep: () => boolean },
  ) {}

  /** Whether the inventory holds a CR for the job. */
  hasCr(job: JobRef): boolean {
    const state = this.tools.get(job.tool);
    return (job.type === 'scheduled' ? state?.scheduled : state?.continuous)?.has(job.name) ?? false;
  }

  /** The job's workload (a CronJob for a scheduled job, a Deployment for a continuous one) as the inventory holds it. */
  workloadOf(job: JobRef): RuntimeEntry | undefined {
    const state = this.tools.get(job.tool);
    const workload = (job.type === 'scheduled' ? state?.cronjobs : state?.deployments)?.get(job.name);
    return workload?.type === job.type ? workload : undefined;
  }

  toolOf(namespace: string): string | undefined {
    return this.namesOf(namespace)?.tool;
  }

  /** The shared namespace and tool strings of a tool namespace (undefined for any other namespace). */
  namesOf(namespace: string): ToolNames | undefined {
    let names = this.names.get(namespace);
    if (!names) {
      const tool = toolOfNamespace(namespace, this.namespacePrefix);
      if (!tool) return undefined;
      names = { namespace, tool };
      this.names.set(namespace, names);
    }
    return names;
  }

  /**
   * Applies one informer change (`entry` undefined when the object is gone); `job` is the job a workload was read
   * into, kept while the workload is a backfill candidate (it has no CR here and the gate lets the sync keep it).
   */
  apply(resource: Resource, namespace: string, name: string, entry: InventoryEntry | undefined, job?: StoredJob): void {
    const tool = this.toolOf(namespace);
    if (!tool) return;
    this.candidate(entry, job);
    const state = this.tools.get(tool) ?? {};
    if (resource === 'services') state.services = toggle(state.services, name, entry?.what === 'service');
    else if (resource === 'cronjobs' || resource === 'deployments') applyWorkload(state, resource, name, entry);
    else if (applyCr(state, resource, name, entry) && this.onCrGone) {
      const type = resource === 'scheduled-jobs' ? 'scheduled' : 'continuous';
      const workload = (type === 'scheduled' ? state.cronjobs : state.deployments)?.get(name);
      this.onCrGone({ tool, type, name }, workload?.type === type ? workload : undefined);
    }
    if (Object.values(state).some((held) => held !== undefined)) this.tools.set(tool, state);
    else this.tools.delete(tool);
    this.dirty.add(tool);
  }

  /** A CR seen drops what was kept for its job; a workload read without a CR here is a candidate while the gate says. */
  private candidate(entry: InventoryEntry | undefined, job: StoredJob | undefined): void {
    if (entry?.what === 'cr') this.candidates.crSeen(entry.entry);
    if (entry?.what !== 'job') return;
    const e = entry.entry;
    if (job && this.candidacy?.mayKeep() && !this.hasCr(e)) this.candidates.hold(e, job);
    else this.candidates.release(e);
  }

  markDirty(tool: string): void {
    this.dirty.add(tool);
  }

  markAllDirty(): void {
    for (const tool of this.tools.keys()) this.dirty.add(tool);
  }

  hasDirty(): boolean {
    return this.dirty.size > 0;
  }

  /** The tools changed since the last call (including tools that disappeared). */
  takeDirty(): string[] {
    const out = [...this.dirty];
    this.dirty.clear();
    return out;
  }

  toolNames(): string[] {
    return [...this.tools.keys()];
  }

  inventoryOf(tool: string): ToolInventory {
    const state = this.tools.get(tool);
    if (!state) return { tool, runtime: [], storage: [], foreign: 0, foreignWorkloads: [] };
    const services = state.services;
    // Only a job with a port needs its Service (see reconcile). Object.assign, not a spread: docs/adr/0004.
    const continuous = [...(state.deployments?.values() ?? [])].map((r) =>
      r.exposesPort ? Object.assign({}, r, { hasService: services?.has(r.name) ?? false }) : r,
    );
    return {
      tool,
      runtime: [...(state.cronjobs?.values() ?? []), ...continuous],
      storage: [...(state.scheduled?.values() ?? []), ...(state.continuous?.values() ?? [])],
      foreign: state.foreign?.size ?? 0,
      foreignWorkloads: [...(state.foreign?.values() ?? [])],
    };
  }
}

function applyWorkload(
  state: ToolState,
  resource: 'cronjobs' | 'deployments',
  name: string,
  entry: InventoryEntry | undefined,
): void {
  const job = entry?.what === 'job' ? entry.entry : undefined;
  if (resource === 'cronjobs') state.cronjobs = update(state.cronjobs, name, job);
  else state.deployments = update(state.deployments, name, job);
  state.foreign = update(state.foreign, `${resource}/${name}`, entry?.what === 'foreign' ? entry.workload : undefined);
}

/** Applies a CR change; true when a CR the inventory held went away. */
function applyCr(
  state: ToolState,
  resource: 'scheduled-jobs' | 'continuous-jobs',
  name: string,
  entry: InventoryEntry | undefined,
): boolean {
  const cr = entry?.what === 'cr' ? entry.entry : undefined;
  const held = (resource === 'scheduled-jobs' ? state.scheduled : state.continuous)?.has(name) ?? false;
  if (resource === 'scheduled-jobs') state.scheduled = update(state.scheduled, name, cr);
  else state.continuous = update(state.continuous, name, cr);
  return held && cr === undefined;
}

/** Sets or deletes `name`; a map left empty is dropped. */
function update<V>(map: Map<string, V> | undefined, name: string, value: V | undefined): Map<string, V> | undefined {
  if (value !== undefined) return (map ?? new Map<string, V>()).set(name, value);
  map?.delete(name);
  return map?.size ? map : undefined;
}

function toggle(set: Set<string> | undefined, key: string, present: boolean): Set<string> | undefined {
  if (present) return (set ?? new Set<string>()).add(key);
  set?.delete(key);
  return set?.size ? set : undefined;
}
