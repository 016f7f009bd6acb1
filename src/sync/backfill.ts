import type { StoredJob } from '../jobs/model.js';
import type { KubeApi } from '../k8s/api.js';
import { describeApiError, isConflict, isNotFound } from '../k8s/errors.js';
import { collectionPath, objectPath } from '../k8s/paths.js';
import type { Logger } from '../log/logger.js';
import type { SyncMetrics } from '../metrics/registry.js';
import { workloadKindOf } from '../runtime/kinds.js';
import type { RuntimeSettings } from '../runtime/settings.js';
import { jobText } from '../storage/codec.js';
import type { JobText, StorageCodec } from '../storage/codec.js';
import { storageKindForJobType } from '../storage/kinds.js';
import { BackfillLog } from './backfill-log.js';
import type { BackfillResult } from './backfill-log.js';
import { backfillCrText, workloadEntry } from './entries.js';
import type { EntryContext } from './entries.js';
import type { WriterGate } from './gate.js';
import type { Inventory } from './inventory.js';
import type { PassScheduler } from './passes.js';
import { PerTool } from './per-tool.js';
import type { RuntimeEntry } from './reconcile.js';

export type { BackfillResult } from './backfill-log.js';

/** What the Backfiller reads of the sync's live watch, instead of the API server, before each write (docs/adr/0005). */
export type InventoryView = Pick<Inventory, 'hasCr' | 'workloadOf' | 'namesOf' | 'candidates'>;

export interface BackfillerDeps {
  api: Pick<KubeApi, 'request'>;
  /** Whether this replica may write now, asked before each backfill and again right before its POST. */
  gate: Pick<WriterGate, 'mayWrite' | 'verdict'>;
  /** The CRs and workloads the informers hold, and the jobs kept for candidates. */
  inventory: InventoryView;
  codec: StorageCodec;
  /** jobs-api's deployment settings, to read a workload again (the GET when no job is kept for it). */
  settings: RuntimeSettings;
  namespacePrefix: string;
  /** This replica's name, recorded on the CRs it writes. */
  identity: string;
  now: () => number;
  /** [0, 1): the jitter of the retry backoff (Math.random by default). */
  random?: () => number;
  metrics: Pick<SyncMetrics, 'syncedToStorage' | 'syncErrors'>;
  logger: Logger;
  /** Backfills in flight at once (default BACKFILL_IN_FLIGHT). */
  inFlight?: number;
  /** Where a failed backfill's retry is scheduled: its tool is reconciled again by then. */
  passes?: Pick<PassScheduler, 'dueBy'>;
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

/** The entries of one `run`, taken in order by the workers; it resolves once the last of them has ended. */
interface Batch {
  entries: readonly RuntimeEntry[];
  /** The next entry to start. */
  next: number;
  /** Entries not yet ended. */
  left: number;
  results: BackfillResult[];
  /** The first error thrown (none is expected: a backfill's failure is its outcome). */
  failure?: { err: unknown };
  resolve: (results: BackfillResult[]) => void;
  reject: (err: unknown) => void;
}

/**
 * Creates the CRs of workloads found without one, when the gate lets this replica write. Right before each write the
 * live watch is read again, not the API server: the CR must still be missing from the CR informer, the workload still
 * held by the workload informer, not being deleted, still a readable job and not tombstoned. A POST never overwrites:
 * a 409 means someone (jobs-api) created the CR first, so it existed (docs/adr/0005). The job the CR is built from is
 * the one the inventory kept from the watched workload at its current resourceVersion; without one (it was not kept,
 * or the workload changed since) the workload is read once from the API server. A failure is retried after a while.
 */
export class Backfiller {
  private readonly retryAt = new PerTool<Retry>();
  private readonly inFlight = new PerTool<true>();
  /** The batches of `run` with entries not yet started, oldest first. */
  private readonly batches: Batch[] = [];
  /** How many workers take entries from `batches`; at most `width`. */
  private workers = 0;
  private readonly width: number;
  /** Reads a workload again into an entry that keeps the job itself. */
  private readonly entries: EntryContext<StoredJob>;
  private readonly log = new BackfillLog();

  constructor(private readonly deps: BackfillerDeps) {
    this.width = deps.inFlight ?? BACKFILL_IN_FLIGHT;
    if (!Number.isInteger(this.width) || this.width < 1) throw new TypeError('inFlight must be a positive integer');
    const { inventory, settings, codec } = deps;
    this.entries = { namesOf: (namespace) => inventory.namesOf(namespace), settings, codec, keep: (job) => job };
  }

  /**
   * Backfills the entries whose retry time (if any) has come and that are not in flight already; returns what each
   * did. At most `inFlight` run at once across calls, in the order they were dispatched: callers need not wait for one
   * call before making the next. An entry waiting for its turn costs nothing but its place in the array it came in: a
   * few workers take entries in turn, instead of one pending task (a promise, a closure and their contexts) per entry,
   * which for the 20,000 jobs of an import was a quarter of its heap (docs/benchmarks.md, Import: memory).
   */
  run(entries: readonly RuntimeEntry[]): Promise<BackfillResult[]> {
    const now = this.deps.now();
    const { candidates } = this.deps.inventory;
    const queue = entries.filter(
      (e) => (this.retryAt.get(e)?.at ?? 0) <= now && !this.inFlight.get(e) && !candidates.written(e),
    );
    if (queue.length === 0) return Promise.resolve([]);
    for (const e of queue) this.inFlight.set(e, true);
    this.log.started(queue.length);
    return new Promise((resolve, reject) => {
      this.batches.push({ entries: queue, next: 0, left: queue.length, results: [], resolve, reject });
      // Started on a later tick, as a task waiting for its slot would be: the caller's pass ends first.
      queueMicrotask(() => this.startWorkers());
    });
  }

  private startWorkers(): void {
    while (this.workers < this.width && this.batches.length > 0) {
      this.workers += 1;
      void this.work();
    }
  }

  /** Takes the oldest entry not yet started and backfills it, until none is left. */
  private async work(): Promise<void> {
    try {
      for (let batch = this.batches[0]; batch !== undefined; batch = this.batches[0]) {
        const i = batch.next++;
        const e = batch.entries[i] as RuntimeEntry;
        if (batch.next === batch.entries.length) this.batches.shift();
        let result: BackfillResult | undefined;
        try {
          result = Object.assign({ tool: e.tool, name: e.name, type: e.type }, await this.one(e));
          batch.results[i] = result;
        } catch (err) {
          batch.failure ??= { err };
        } finally {
          this.inFlight.delete(e);
          this.log.ended(result);
        }
        if (--batch.left > 0) continue;
        if (batch.failure) batch.reject(batch.failure.err);
        else batch.resolve(batch.results);
      }
    } finally {
      this.workers -= 1;
    }
  }

  /** What the last backfills did (the last few thousand), oldest first; the one-shot import prints these. */
  get history(): readonly BackfillResult[] {
    return this.log.history;
  }

  /** How many backfills ended in each outcome since start: every one of them, however many the history keeps. */
  get outcomes(): Readonly<Record<BackfillResult['outcome'], number>> {
    return this.log.outcomes;
  }

  /** Backfills dispatched and not finished (waiting for a slot or in flight). */
  get pending(): number {
    return this.log.pending;
  }

  /** How many CRs this replica created. */
  get created(): number {
    return this.log.outcomes.created;
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
    this.deps.inventory.candidates.retain(tool, live);
  }

  private async one(e: RuntimeEntry): Promise<Outcome> {
    const kind = storageKindForJobType(e.type);
    if (!kind || !e.parsed.ok) return { outcome: 'skipped', reason: 'not a stored job' };
    const { gate } = this.deps;
    try {
      if (!gate.mayWrite()) return NOT_THE_WRITER;
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
        { codec: this.deps.codec, namespacePrefix: this.deps.namespacePrefix },
      );
      // The race guard: the pass decided on its reading of the phase and the Lease, and the reads since took time.
      // If jobs-api became the only writer or another replica took the Lease meanwhile, a CR written now would race
      // their write; and the CR's delete may have been seen meanwhile (a tombstone), or its CR (its delete on its way).
      const verdict = gate.verdict(current.entry);
      if (verdict !== 'write') return verdict === 'tombstoned' ? TOMBSTONED : NOT_THE_WRITER;
      if (this.deps.inventory.hasCr(current.entry)) return TOMBSTONED;
      return await this.write(e, collectionPath(kind, w.namespace), cr, w.resourceVersion);
    } catch (err) {
      const failures = (this.retryAt.get(e)?.failures ?? 0) + 1;
      const retryAt = this.deps.now() + this.backoff(failures);
      this.retryAt.set(e, { at: retryAt, failures });
      this.deps.passes?.dueBy(e.tool, retryAt);
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
      this.deps.inventory.candidates.wrote(e);
      this.deps.logger.debug({ tool: e.tool, job: e.name, type: e.type }, 'job definition appeared meanwhile');
      return EXISTED;
    }
    this.done(e);
    // Until the CR informer sees it, a pass would plan this job again: a second write would only meet a 409.
    this.deps.inventory.candidates.wrote(e);
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
    this.deps.inventory.candidates.release(e);
  }

  /**
   * The job as the live watch holds it now, with the job to build its CR from, or why nothing is written: the CR
   * exists, the workload is gone, being deleted or no longer a readable job.
   */
  private async current(e: RuntimeEntry): Promise<{ job: JobText; entry: RuntimeEntry<unknown> } | Outcome> {
    const { inventory } = this.deps;
    if (inventory.hasCr(e)) return EXISTED;
    const entry = inventory.workloadOf(e);
    if (!entry) return GONE;
    if (entry.workload.deleting || !entry.parsed.ok) return CHANGED;
    // A young workload may belong to a job jobs-api is creating or deleting right now, whose CR came and went before
    // the CR watch delivered it: only the API server knows whether the workload still stands (docs/adr/0005).
    if (this.deps.now() - entry.workload.createdAt < RECENT_WORKLOAD_MS) return this.reread(e);
    const held = inventory.candidates.heldJob(e);
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
    const read = workloadEntry(fresh, this.entries);
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
