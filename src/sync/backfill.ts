import { phaseBehaviour } from '../phase/behaviour.js';
import type { StoredJob } from '../jobs/model.js';
import type { KubeApi } from '../k8s/api.js';
import { describeApiError, isConflict, isNotFound } from '../k8s/errors.js';
import { Gate } from '../k8s/gate.js';
import { collectionPath, objectPath } from '../k8s/paths.js';
import type { PhaseView } from '../phase/source.js';
import type { Logger } from '../log/logger.js';
import type { SyncMetrics } from '../metrics/registry.js';
import { workloadKindOf } from '../runtime/kinds.js';
import { jobText } from '../storage/codec.js';
import type { JobText } from '../storage/codec.js';
import { storageKindForJobType } from '../storage/kinds.js';
import { backfillCrText, workloadEntry } from './entries.js';
import type { EntryContext } from './entries.js';
import { PerTool } from './per-tool.js';
import type { JobRef } from './per-tool.js';
import type { RuntimeEntry } from './reconcile.js';

export interface BackfillResult {
  tool: string;
  name: string;
  type: StoredJob['job_type'];
  outcome: 'created' | 'existed' | 'skipped' | 'failed';
  reason?: string;
}

/**
 * What the sync's live watch (its informers) holds right now, read instead of the API server before each write
 * (docs/adr/0005).
 */
export interface WatchedState {
  /** Whether the CR informer holds the job's CR (being deleted or not). */
  hasCr: (job: JobRef) => boolean;
  /** The job's workload as the workload informer holds it now; undefined once it is gone. */
  workload: (job: JobRef) => RuntimeEntry<unknown> | undefined;
}

export interface BackfillerDeps {
  api: Pick<KubeApi, 'request'>;
  /** Reads a workload into an entry that keeps the job itself (the GET when no job is held for it). */
  entries: EntryContext<StoredJob>;
  watched: WatchedState;
  /** Backfills in flight at once (default BACKFILL_IN_FLIGHT). */
  inFlight?: number;
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
  /**
   * Whether the job of a workload (as just read again) was deleted: its CR was seen deleted while this workload
   * stood (a tombstone, sync/tombstones), or the sync still holds a CR the API just answered 404 for (its delete
   * is on its way). Checked right before the write.
   */
  deleted?: (fresh: RuntimeEntry<unknown>) => boolean;
  /** [0, 1): the jitter of the retry backoff (Math.random by default). */
  random?: () => number;
}

type Outcome = Omit<BackfillResult, 'tool' | 'name' | 'type'>;

/**
 * Backfills in flight at once in the sync daemon, which shares the API server with everyone; one hung request holds
 * one slot for at most its deadline.
 */
export const BACKFILL_IN_FLIGHT = 8;
/**
 * Backfills in flight at once in the one-shot `import`, which an admin runs and waits for: enough to keep the API
 * server busy while each request waits on etcd, few enough that a slow API server is not flooded.
 */
export const IMPORT_BACKFILL_IN_FLIGHT = BACKFILL_IN_FLIGHT;
/** The first retry comes after 250–500 ms; each failure doubles it, up to 15–30 s. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 30_000;
/** Per-request deadlines: single-object reads and a create answer in milliseconds on a healthy API server. */
const READ_TIMEOUT_MS = 5_000;
const WRITE_TIMEOUT_MS = 10_000;
const RESULTS_KEPT = 5000;
/**
 * A workload created less than this long ago is read again before its CR is written, not taken from the watch: long
 * enough to cover the watch's lag behind a job jobs-api creates and deletes at once, short enough that an import of
 * standing jobs reads none.
 */
const RECENT_WORKLOAD_MS = 30_000;

interface Retry {
  at: number;
  failures: number;
}

/**
 * A candidate's job as read from its workload at `resourceVersion`, kept until the CR is written or seen. Kept as its
 * JSON (a job is plain data): one flat string instead of a dozen small objects, for the thousands an import waits on,
 * which becomes the CR's spec as it is (`backfillCrText`).
 */
interface Held extends JobText {
  resourceVersion: string;
}

/**
 * Creates the CRs of workloads found without one, on the writer only. Right before each write the live watch is
 * read again, not the API server: the CR must still be missing from the CR informer, the workload still held by the
 * workload informer, not being deleted, still a readable job and not tombstoned. A POST never overwrites: a 409
 * means someone (jobs-api) created the CR first, so it existed (docs/adr/0005). The job the CR is built from is the
 * one `hold` kept from the watched workload at its current resourceVersion; without one (it was not held, or the
 * workload changed since) the workload is read once from the API server. A failure is retried after a while.
 */
export class Backfiller {
  private readonly retryAt = new PerTool<Retry>();
  private readonly inFlight = new PerTool<true>();
  private readonly held = new PerTool<Held>();
  /** Jobs whose CR was written (or found by a 409) and not yet seen by the CR informer: not written again. */
  private readonly written = new PerTool<true>();
  private readonly gate: Gate;
  private readonly results: BackfillResult[] = [];
  private readonly counts: Record<BackfillResult['outcome'], number> = {
    created: 0,
    existed: 0,
    skipped: 0,
    failed: 0,
  };
  private createdCount = 0;
  private pendingCount = 0;

  constructor(private readonly deps: BackfillerDeps) {
    this.gate = new Gate(deps.inFlight ?? BACKFILL_IN_FLIGHT);
  }

  /**
   * Keeps the job read from a backfill candidate's workload (one the CR informer holds no CR for), so its CR can be
   * built without reading the workload again; replaces what was kept for an older resourceVersion. Dropped once the
   * CR is written or seen (`release`), or when the job no longer waits for a CR (`retain`).
   */
  hold(e: RuntimeEntry<unknown>, job: StoredJob): void {
    this.held.set(e, { ...jobText(job), resourceVersion: e.workload.resourceVersion });
  }

  /** Forgets the job kept for `job`: its workload is no longer a candidate. */
  release(job: JobRef): void {
    this.held.delete(job);
  }

  /** The CR informer saw the job's CR: nothing to keep for it, and a CR written for it is now in the watch. */
  crSeen(job: JobRef): void {
    this.held.delete(job);
    this.written.delete(job);
  }

  /**
   * Backfills the entries whose retry time (if any) has come and that are not in flight already; returns what each
   * did. At most a few run at once across calls: callers need not wait for one call before making the next.
   */
  async run(entries: readonly RuntimeEntry[]): Promise<BackfillResult[]> {
    const now = this.deps.now();
    const queue = entries.filter(
      (e) => (this.retryAt.get(e)?.at ?? 0) <= now && !this.inFlight.get(e) && !this.written.get(e),
    );
    for (const e of queue) this.inFlight.set(e, true);
    this.pendingCount += queue.length;
    return Promise.all(
      queue.map((e) =>
        this.gate.run(async () => {
          try {
            const result: BackfillResult = Object.assign(
              { tool: e.tool, name: e.name, type: e.type },
              await this.one(e),
            );
            this.counts[result.outcome] += 1;
            this.results.push(result);
            // Trimmed in batches: one splice per RESULTS_KEPT results, not one per result.
            if (this.results.length >= 2 * RESULTS_KEPT) this.results.splice(0, this.results.length - RESULTS_KEPT);
            return result;
          } finally {
            this.inFlight.delete(e);
            this.pendingCount -= 1;
          }
        }),
      ),
    );
  }

  /** What the last backfills did (at most RESULTS_KEPT), oldest first; the one-shot import prints these. */
  get history(): readonly BackfillResult[] {
    return this.results.length > RESULTS_KEPT ? this.results.slice(-RESULTS_KEPT) : this.results;
  }

  /** How many backfills ended in each outcome since start: every one of them, however many the history keeps. */
  get outcomes(): Readonly<Record<BackfillResult['outcome'], number>> {
    return this.counts;
  }

  /** Backfills dispatched and not finished (waiting for a slot or in flight). */
  get pending(): number {
    return this.pendingCount;
  }

  /** How many CRs this replica created. */
  get created(): number {
    return this.createdCount;
  }

  /** The retry times of those of `entries` whose last backfill failed. */
  retryTimes(entries: readonly RuntimeEntry[]): number[] {
    const out: number[] = [];
    for (const e of entries) {
      const retry = this.retryAt.get(e);
      if (retry !== undefined) out.push(retry.at);
    }
    return out;
  }

  /** Forgets the retries, kept jobs and writes of a tool's jobs that are no longer waiting for a CR. */
  retain(tool: string, live: ReadonlySet<string>): void {
    this.retryAt.retain(tool, live);
    this.held.retain(tool, live);
    this.written.retain(tool, live);
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
    try {
      if (!this.stillTheWriter()) return NOT_THE_WRITER;
      const current = await this.current(e);
      if ('outcome' in current) {
        if (current === EXISTED || current === GONE) this.done(e);
        return current;
      }
      const w = current.entry.workload;
      const cr = backfillCrText(
        current.job,
        {
          backfilledBy: this.deps.identity,
          backfilledAt: new Date(this.deps.now()).toISOString(),
          source: { kind: w.kind, name: w.name, resourceVersion: w.resourceVersion },
        },
        { codec: this.deps.entries.codec, namespacePrefix: this.deps.namespacePrefix },
      );
      if (!this.stillTheWriter()) return NOT_THE_WRITER;
      // Read last: the CR's delete may have been seen meanwhile.
      if (this.deps.deleted?.(current.entry)) return TOMBSTONED;
      return await this.write(e, collectionPath(kind, w.namespace), cr, w.resourceVersion);
    } catch (err) {
      const failures = (this.retryAt.get(e)?.failures ?? 0) + 1;
      const retryAt = this.deps.now() + this.backoff(failures);
      this.retryAt.set(e, { at: retryAt, failures });
      this.deps.onRetry?.(e.tool, retryAt);
      this.deps.metrics.syncErrors.inc({ stage: 'write' });
      const described = describeApiError(err);
      this.deps.logger.warn({ tool: e.tool, job: e.name, type: e.type, err: described }, 'backfill failed, will retry');
      return { outcome: 'failed', reason: described.message };
    }
  }

  /**
   * POSTs the CR (its JSON text): a POST never overwrites, so a 409 means it existed (jobs-api wrote it first). The
   * 201's body (the created CR, echoed) is read and dropped unparsed: only the status counts.
   */
  private async write(e: RuntimeEntry, path: string, cr: string, workloadResourceVersion: string): Promise<Outcome> {
    try {
      await this.deps.api.request('POST', path, { json: cr, timeoutMs: WRITE_TIMEOUT_MS, answer: 'discard' });
    } catch (err) {
      if (!isConflict(err)) throw err;
      this.done(e);
      this.written.set(e, true);
      this.deps.logger.debug({ tool: e.tool, job: e.name, type: e.type }, 'job definition appeared meanwhile');
      return EXISTED;
    }
    this.done(e);
    // Until the CR informer sees it, a pass would plan this job again: a second write would only meet a 409.
    this.written.set(e, true);
    this.createdCount += 1;
    this.deps.metrics.syncedToStorage.inc({ tool_name: e.tool });
    this.deps.logger.debug(
      { tool: e.tool, job: e.name, type: e.type, workloadResourceVersion },
      'backfilled job definition',
    );
    return CREATED;
  }

  /** The job is settled (its CR written or seen, or its workload gone): nothing to retry, nothing to keep. */
  private done(e: RuntimeEntry): void {
    this.retryAt.delete(e);
    this.held.delete(e);
  }

  /**
   * The job as the live watch holds it now, with the job to build its CR from, or why nothing is written: the CR
   * exists, the workload is gone, being deleted or no longer a readable job.
   */
  private async current(e: RuntimeEntry): Promise<{ job: JobText; entry: RuntimeEntry<unknown> } | Outcome> {
    const { watched } = this.deps;
    if (watched.hasCr(e)) return EXISTED;
    const entry = watched.workload(e);
    if (!entry) return GONE;
    if (entry.workload.deleting || !entry.parsed.ok) return CHANGED;
    // A young workload may belong to a job jobs-api is creating or deleting right now, whose CR came and went before
    // the CR watch delivered it: only the API server knows whether the workload still stands (docs/adr/0005).
    if (this.deps.now() - entry.workload.createdAt < RECENT_WORKLOAD_MS) return this.reread(e);
    const held = this.held.get(e);
    if (held?.resourceVersion === entry.workload.resourceVersion) return { job: held, entry };
    return this.reread(e);
  }

  /** Equal jitter: half the doubling step fixed, half random, so retries of many jobs spread out. */
  private backoff(failures: number): number {
    const step = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.min(failures - 1, 16));
    return Math.round(step / 2 + (this.deps.random ?? Math.random)() * (step / 2));
  }

  /** The workload read from the API server into an entry that holds its job, or why there is nothing to backfill. */
  private async reread(e: RuntimeEntry): Promise<{ job: JobText; entry: RuntimeEntry<StoredJob> } | Outcome> {
    const resource = workloadKindOf(e.workload.kind);
    if (!resource) return { outcome: 'skipped', reason: 'not a stored job' };
    let fresh: unknown;
    try {
      fresh = await this.deps.api.request('GET', objectPath(resource, e.workload.namespace, e.workload.name), {
        timeoutMs: READ_TIMEOUT_MS,
      });
    } catch (err) {
      if (isNotFound(err)) return GONE;
      throw err;
    }
    const read = workloadEntry(fresh, this.deps.entries);
    if (read?.what !== 'job' || read.entry.workload.deleting || !read.entry.parsed.ok) return CHANGED;
    return { job: jobText(read.entry.parsed.value), entry: read.entry };
  }
}

const CREATED: Outcome = Object.freeze({ outcome: 'created' });
const EXISTED: Outcome = Object.freeze({ outcome: 'existed' });
const GONE: Outcome = Object.freeze({ outcome: 'skipped', reason: 'the workload is gone' });
const CHANGED: Outcome = Object.freeze({
  outcome: 'skipped',
  reason: 'the workload changed: being deleted or no longer a readable job',
});
const NOT_THE_WRITER: Outcome = Object.freeze({ outcome: 'skipped', reason: 'not the writer in this phase' });
const TOMBSTONED: Outcome = Object.freeze({
  outcome: 'skipped',
  reason: 'the job was deleted: its CR was seen deleted',
});
