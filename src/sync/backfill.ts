import { phaseBehaviour } from '../phase/behaviour.js';
import type { StoredJob } from '../jobs/model.js';
import type { KubeApi } from '../k8s/api.js';
import { describeApiError, isConflict, isNotFound } from '../k8s/errors.js';
import { collectionPath, objectPath } from '../k8s/paths.js';
import type { PhaseView } from '../phase/source.js';
import type { Logger } from '../log/logger.js';
import type { SyncMetrics } from '../metrics/registry.js';
import { workloadKindOf } from '../runtime/kinds.js';
import { storageKindForJobType } from '../storage/kinds.js';
import type { StorageKind } from '../storage/kinds.js';
import { backfillCr, workloadEntry } from './entries.js';
import type { EntryContext } from './entries.js';
import { PerTool } from './per-tool.js';
import type { RuntimeEntry } from './reconcile.js';

export interface BackfillResult {
  tool: string;
  name: string;
  type: StoredJob['job_type'];
  outcome: 'created' | 'existed' | 'skipped' | 'failed';
  reason?: string;
}

export interface BackfillerDeps {
  api: Pick<KubeApi, 'request'>;
  /** Reads a fresh workload into an entry that keeps the job itself. */
  entries: EntryContext<StoredJob>;
  namespacePrefix: string;
  phase: Pick<PhaseView, 'known' | 'current'>;
  /** Whether this replica holds the Lease (or writes alone). */
  isLeader: () => boolean;
  /** This replica's name, recorded on the CRs it writes. */
  identity: string;
  metrics: Pick<SyncMetrics, 'syncedToStorage' | 'syncErrors'>;
  logger: Logger;
  now: () => number;
  /** A backfill failed and is retried at `retryAt`: the tool must be reconciled again by then. */
  onRetry?: (tool: string, retryAt: number) => void;
}

type Outcome = Omit<BackfillResult, 'tool' | 'name' | 'type'>;

const WORKERS = 4;
const RETRY_MS = 30_000;
const RESULTS_KEPT = 5000;

/**
 * Creates the CRs of workloads found without one, on the writer only. Every write follows re-reads: the CR must
 * still be missing, the workload still present, not being deleted and still a readable job. A 409 means someone
 * (jobs-api) created the CR first: it existed. A failure is retried after a while.
 */
export class Backfiller {
  private readonly retryAt = new PerTool<number>();
  private readonly results: BackfillResult[] = [];
  private createdCount = 0;

  constructor(private readonly deps: BackfillerDeps) {}

  /** Backfills the entries whose retry time (if any) has come; returns what each did. */
  async run(entries: readonly RuntimeEntry[]): Promise<BackfillResult[]> {
    const now = this.deps.now();
    const queue = entries.filter((e) => (this.retryAt.get(e) ?? 0) <= now);
    const done: BackfillResult[] = [];
    const workers = Array.from({ length: Math.min(WORKERS, queue.length) }, async () => {
      for (let e = queue.shift(); e; e = queue.shift()) {
        const result: BackfillResult = Object.assign({ tool: e.tool, name: e.name, type: e.type }, await this.one(e));
        done.push(result);
        this.results.push(result);
        if (this.results.length > RESULTS_KEPT) this.results.splice(0, this.results.length - RESULTS_KEPT);
      }
    });
    await Promise.all(workers);
    return done;
  }

  /** What the backfills did, oldest first (the last few thousand); the one-shot import prints these. */
  get history(): readonly BackfillResult[] {
    return this.results;
  }

  /** How many CRs this replica created. */
  get created(): number {
    return this.createdCount;
  }

  /** The retry times of those of `entries` whose last backfill failed. */
  retryTimes(entries: readonly RuntimeEntry[]): number[] {
    const out: number[] = [];
    for (const e of entries) {
      const at = this.retryAt.get(e);
      if (at !== undefined) out.push(at);
    }
    return out;
  }

  /** Forgets the retries of a tool's jobs that are no longer waiting for a CR. */
  retain(tool: string, live: ReadonlySet<string>): void {
    this.retryAt.retain(tool, live);
  }

  /**
   * The race guard: reconcile decided on the pass's reading of the phase and the Lease, and the re-reads take
   * time. If jobs-api became the only writer (the phase moved on) or another replica took the Lease meanwhile, a CR
   * written now would race jobs-api's or the new leader's own write — so both are read again right before writing.
   */
  private stillTheWriter(): boolean {
    const { phase } = this.deps;
    return phase.known() && phaseBehaviour(phase.current()).backfillRuntimeOnly && this.deps.isLeader();
  }

  private async one(e: RuntimeEntry): Promise<Outcome> {
    const kind = storageKindForJobType(e.type);
    if (!kind || !e.parsed.ok) return { outcome: 'skipped', reason: 'not a stored job' };
    const log = this.deps.logger.child({ tool: e.tool, job: e.name, type: e.type });
    try {
      if (!this.stillTheWriter()) return NOT_THE_WRITER;
      if (await this.crExists(kind, e)) return { outcome: 'existed' };
      const fresh = await this.reread(e);
      if (typeof fresh === 'string') return { outcome: 'skipped', reason: fresh };
      const w = fresh.workload;
      const cr = backfillCr(
        fresh.job,
        {
          backfilledBy: this.deps.identity,
          backfilledAt: new Date(this.deps.now()).toISOString(),
          source: { kind: w.kind, name: w.name, resourceVersion: w.resourceVersion },
        },
        { codec: this.deps.entries.codec, namespacePrefix: this.deps.namespacePrefix },
      );
      if (!this.stillTheWriter()) return NOT_THE_WRITER;
      this.retryAt.delete(e);
      try {
        await this.deps.api.request('POST', collectionPath(kind, w.namespace), { body: cr });
      } catch (err) {
        if (!isConflict(err)) throw err;
        log.info('job definition appeared meanwhile');
        return { outcome: 'existed' };
      }
      this.createdCount += 1;
      this.deps.metrics.syncedToStorage.inc({ tool_name: e.tool });
      log.info({ workloadResourceVersion: w.resourceVersion }, 'backfilled job definition');
      return { outcome: 'created' };
    } catch (err) {
      const retryAt = this.deps.now() + RETRY_MS;
      this.retryAt.set(e, retryAt);
      this.deps.onRetry?.(e.tool, retryAt);
      this.deps.metrics.syncErrors.inc({ stage: 'write' });
      const described = describeApiError(err);
      log.warn({ err: described }, 'backfill failed, will retry');
      return { outcome: 'failed', reason: described.message };
    }
  }

  private async crExists(kind: StorageKind, e: RuntimeEntry): Promise<boolean> {
    try {
      await this.deps.api.request('GET', objectPath(kind, e.workload.namespace, e.name));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** The workload read again: its job and the workload as read now, or why there is nothing to backfill. */
  private async reread(e: RuntimeEntry): Promise<{ job: StoredJob; workload: RuntimeEntry['workload'] } | string> {
    const resource = workloadKindOf(e.workload.kind);
    if (!resource) return 'not a stored job';
    let fresh: unknown;
    try {
      fresh = await this.deps.api.request('GET', objectPath(resource, e.workload.namespace, e.workload.name));
    } catch (err) {
      if (isNotFound(err)) return 'the workload is gone';
      throw err;
    }
    const read = workloadEntry(fresh, this.deps.entries);
    if (read?.what !== 'job' || read.entry.workload.deleting || !read.entry.parsed.ok) {
      return 'the workload changed: being deleted or no longer a readable job';
    }
    return { job: read.entry.parsed.value, workload: read.entry.workload };
  }
}

const NOT_THE_WRITER: Outcome = Object.freeze({ outcome: 'skipped', reason: 'not the writer in this phase' });
