import type { StorageCodec } from '../storage/codec.js';
import { ANNOTATIONS, storageKindForKind, toolOfNamespace } from '../storage/kinds.js';
import type { StoredJob } from '../jobs/model.js';
import type { JobFingerprint, RuntimeEntry, StorageEntry, ToolInventory } from './reconcile.js';

/**
 * What the sync keeps of one watched object. `J` is the job: the object when freshly read, its comparison text once
 * kept in the inventory.
 */
export type Tracked<J = JobFingerprint> =
  | { what: 'job'; entry: RuntimeEntry<J> }
  | { what: 'foreign' }
  | { what: 'service' }
  | { what: 'cr'; entry: StorageEntry<J> };

export type Resource = 'cronjobs' | 'deployments' | 'services' | 'scheduled-jobs' | 'continuous-jobs';

interface ToolState {
  runtime: Map<string, RuntimeEntry>;
  storage: Map<string, StorageEntry>;
  foreign: Set<string>;
  services: Set<string>;
}

/**
 * Per-tool index over the informers' stores, updated from their change events, so a reconcile of one tool reads
 * only that tool's entries.
 */
export class Inventory {
  private readonly tools = new Map<string, ToolState>();
  private readonly dirty = new Set<string>();

  constructor(private readonly namespacePrefix: string) {}

  toolOf(namespace: string): string | undefined {
    return toolOfNamespace(namespace, this.namespacePrefix);
  }

  /** Applies one informer change: `key` is namespace/name, `tracked` undefined when the object is gone. */
  apply(resource: Resource, key: string, tracked: Tracked | undefined): void {
    const [namespace = '', name = ''] = key.split('/');
    const tool = this.toolOf(namespace);
    if (!tool) return;
    const state = this.stateOf(tool);
    const id = `${resource}/${name}`;
    if (resource === 'services') {
      state.services.delete(name);
      if (tracked?.what === 'service') state.services.add(name);
    } else {
      state.runtime.delete(id);
      state.storage.delete(id);
      state.foreign.delete(id);
      if (tracked?.what === 'job') state.runtime.set(id, tracked.entry);
      else if (tracked?.what === 'cr') state.storage.set(id, tracked.entry);
      else if (tracked?.what === 'foreign') state.foreign.add(id);
    }
    if (state.runtime.size + state.storage.size + state.foreign.size + state.services.size === 0)
      this.tools.delete(tool);
    this.dirty.add(tool);
  }

  private stateOf(tool: string): ToolState {
    let state = this.tools.get(tool);
    if (!state) {
      state = { runtime: new Map(), storage: new Map(), foreign: new Set(), services: new Set() };
      this.tools.set(tool, state);
    }
    return state;
  }

  markDirty(tool: string): void {
    this.dirty.add(tool);
  }

  markAllDirty(): void {
    for (const tool of this.tools.keys()) this.dirty.add(tool);
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
    if (!state) return { tool, runtime: [], storage: [], foreign: 0 };
    const runtime = [...state.runtime.values()].map((r) =>
      r.type === 'continuous' ? { ...r, hasService: state.services.has(r.name) } : r,
    );
    return { tool, runtime, storage: [...state.storage.values()], foreign: state.foreign.size };
  }
}

export interface CrObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    deletionTimestamp?: string;
    annotations?: Record<string, string>;
  };
}

/** A job CR as the sync keeps it: decoded once, with the provenance annotations it carries. */
export function trackCr(obj: CrObject, codec: StorageCodec, namespacePrefix: string): Tracked<StoredJob> | undefined {
  const md = obj.metadata ?? {};
  const tool = toolOfNamespace(md.namespace ?? '', namespacePrefix);
  const kind = storageKindForKind(obj.kind ?? '');
  if (!tool || !kind || !md.name) return undefined;
  const decoded = codec.decode(obj);
  const entry: StorageEntry<StoredJob> = {
    tool,
    type: kind.jobType,
    name: md.name,
    resourceVersion: md.resourceVersion ?? '',
    deleting: Boolean(md.deletionTimestamp),
    decoded: decoded.ok ? { ok: true, job: decoded.job } : { ok: false, error: decoded.error.message },
  };
  const recorded = md.annotations?.[ANNOTATIONS.sourceVersions];
  if (recorded) {
    try {
      entry.recordedSourceVersions = JSON.parse(recorded) as Record<string, string>;
    } catch {
      // A hand-edited annotation is not evidence of anything; drift is still computed semantically.
    }
  }
  return { what: 'cr', entry };
}
