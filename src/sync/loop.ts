import { phaseBehaviour } from '../phase/behaviour.js';
import type { Phase } from '../phase/behaviour.js';
import type { Config } from '../config/schema.js';
import { resolveJob } from '../jobs/index.js';
import type { StoredJob } from '../jobs/model.js';
import type { KubeApi } from '../k8s/api.js';
import type { Informer } from '../k8s/informer.js';
import type { LeaderElector } from '../k8s/lease.js';
import type { PhaseView } from '../phase/source.js';
import type { Logger } from '../log/logger.js';
import type { SyncMetrics } from '../metrics/registry.js';
import type { RuntimeSettings } from '../runtime/settings.js';
import type { StorageCodec } from '../storage/codec.js';
import { Backfiller } from './backfill.js';
import type { BackfillResult } from './backfill.js';
import { withFieldDiffs } from './drift.js';
import type { DriftReader } from './drift.js';
import type { EntryContext, InventoryEntry } from './entries.js';
import { Inventory } from './inventory.js';
import { jobFingerprint } from './fingerprint.js';
import { reconcileTool } from './reconcile.js';
import type { JobFingerprint, RuntimeEntry, ToolPlan } from './reconcile.js';
import { publishGauges, summarize, ToolSummaries, toolSummary } from './report.js';
import { CR_RESOURCES, leaseElector, watchInventory } from './sources.js';
import { TombstoneStore, tombstonesConfigMap, UNMATCHED_KEPT } from './tombstone-store.js';
import { Tombstones } from './tombstones.js';
import type { Checkpoint } from './tombstones.js';
import { UnmatchedSince } from './unmatched.js';
import type { WatchedObject } from './sources.js';
import type { SyncStatus } from './report.js';

/** What the sync needs of the phase: it neither reconciles nor writes before the phase is known. */
export type SyncPhase = Pick<PhaseView, 'current' | 'whenKnown' | 'known' | 'onChange'>;

export interface SyncDeps {
  config: Config;
  logger: Logger;
  metrics: SyncMetrics;
  api: KubeApi;
  codec: StorageCodec;
  phase: SyncPhase;
  /** This replica's name in the Lease (the pod name in production). */
  identity: string;
  /** jobs-api's deployment settings, to read workloads and fill a job's defaults (runtime/settings). */
  settings: RuntimeSettings;
  /** Campaign for the Lease before writing (default); false acts as the only writer (one-shot import). */
  elect?: boolean;
  /** Never write, only report (the `report` command and `import --dry-run`). */
  readOnly?: boolean;
  /** Backfills in flight at once (default BACKFILL_IN_FLIGHT; the one-shot import writes with more). */
  backfillInFlight?: number;
  /**
   * How long after a watch event its tool is reconciled (default EVENT_DELAY_MS; IMPORT_EVENT_DELAY_MS for import).
   */
  eventDelayMs?: number;
  /**
   * false: the CRs are listed once and not watched afterwards (the one-shot import, docs/adr/0005); a CR this sync
   * writes counts as seen when the API server answers the POST. Default true: the daemon watches them.
   */
  watchCrs?: boolean;
  now?: () => number;
  /** The longest wait between passes (default 500 ms); tests lengthen it to show what events alone do. */
  intervalMs?: number;
}

/** A pass this often at the latest, for whatever no event announces (a failed backfill's retry, a grace's end). */
const LOOP_INTERVAL_MS = 500;
/** A watch event reconciles its tool after this long: a burst of events (a relist, a bulk create) is one pass. */
const EVENT_DELAY_MS = 5;
/**
 * The one-shot import's: its own CR writes are most of the watch events it hears, so a tool's five CRs make one pass,
 * not five (each pass plans its tools and publishes their gauges, which an import never shows).
 */
export const IMPORT_EVENT_DELAY_MS = 100;

/**
 * The sync: informers over workloads and job CRs in all tool namespaces, a per-tool reconcile of every changed
 * tool, gauges per tool, and — on the Lease holder only — backfills of CRs (see Backfiller). It never writes a
 * workload. The same loop runs the one-shot `import` and `report`.
 */
export class SyncLoop {
  private readonly inventory: Inventory;
  private readonly informers: ReadonlyArray<Informer<WatchedObject, InventoryEntry>>;
  private readonly summaries = new ToolSummaries();
  private readonly unmatched = new UnmatchedSince();
  private readonly tombstones = new Tombstones();
  /** The daemon's tombstones persisted, so that a replica started later keeps them (not the one-shot commands). */
  private readonly tombstoneStore: TombstoneStore | undefined;
  /** Backfills dispatched by passes and not finished: a pass never waits for them (one may hang to its deadline). */
  private readonly backfilling = new Set<Promise<unknown>>();
  private readonly backfiller: Backfiller;
  private readonly drift: DriftReader;
  private readonly elector: LeaderElector | undefined;
  private leader: boolean;
  private timer: NodeJS.Timeout | undefined;
  /** When `timer` fires (wall clock ms). */
  private timerAt = Infinity;
  /** A pass is chained and has not started: more events join it instead of chaining another. */
  private passQueued = false;
  private passing = false;
  private running = false;
  private busy: Promise<void> = Promise.resolve();
  private stopWaiting: () => void = () => undefined;
  private lastSync: { at: number; seconds: number } | undefined;
  private resolveFirst!: () => void;
  /** Resolves after the first complete reconcile of every tool. */
  readonly firstReconcile: Promise<void> = new Promise((resolve) => (this.resolveFirst = resolve));
  private firstDone = false;
  /** Every CR informer has listed once: a workload without a CR in the inventory is then a backfill candidate. */
  private crsListed = false;

  constructor(private readonly deps: SyncDeps) {
    const { config, settings, codec, logger, metrics } = deps;
    this.inventory = new Inventory(config.toolNamespacePrefix, (job, workload) => {
      this.tombstones.crGone(job, workload, this.now());
    });
    this.leader = !(deps.elect ?? true);
    const namesOf = (namespace: string) => this.inventory.namesOf(namespace);
    const resolve = (job: StoredJob) => resolveJob(job, settings);
    // Entries keep the fingerprint of the job with jobs-api's defaults resolved, computed once: later reconciles
    // compare strings, and the inventory holds one short string per job instead of its objects.
    const fingerprint = (job: StoredJob) => jobFingerprint(resolve(job));
    const kept: EntryContext<JobFingerprint> = {
      namesOf,
      settings,
      codec,
      keep: fingerprint,
      read: (entry, job) => this.heard(entry, job),
    };
    const reread: EntryContext<StoredJob> = { namesOf, settings, codec, keep: (job) => job };
    this.drift = { api: deps.api, entries: reread, resolve };
    this.backfiller = new Backfiller({
      api: deps.api,
      entries: reread,
      watched: { hasCr: (job) => this.inventory.hasCr(job), workload: (job) => this.inventory.workloadOf(job) },
      ...(deps.backfillInFlight === undefined ? {} : { inFlight: deps.backfillInFlight }),
      namespacePrefix: config.toolNamespacePrefix,
      phase: deps.phase,
      isLeader: () => this.leader,
      identity: deps.identity,
      metrics,
      logger,
      now: () => this.now(),
      onRetry: (tool, retryAt) => {
        this.summaries.dueBy(tool, retryAt);
        this.wake(retryAt - this.now());
      },
      deleted: (fresh) => this.tombstones.covers(fresh) || this.inventory.hasCr(fresh),
    });
    const changed = () => this.wake(this.eventDelay);
    this.informers = watchInventory({ ...deps, inventory: this.inventory, entries: kept, changed });
    void Promise.all(this.informers.filter((i) => CR_RESOURCES.has(i.name)).map((i) => i.waitForSync())).then(() => {
      this.crsListed = true;
    });
    const leading = (yes: boolean) => {
      this.leader = yes;
      metrics.isLeader.set(yes ? 1 : 0);
      if (yes) this.inventory.markAllDirty();
      changed();
    };
    this.elector = (deps.elect ?? true) ? leaseElector(deps, leading) : undefined;
    if (this.elector && !deps.readOnly && deps.watchCrs !== false) {
      this.tombstoneStore = new TombstoneStore({
        api: deps.api,
        ...tombstonesConfigMap(config),
        identity: deps.identity,
        logger,
        metrics,
        checkpoint: () => this.checkpoint(),
      });
    }
    deps.phase.onChange(() => {
      this.inventory.markAllDirty();
      changed();
    });
  }

  /**
   * Keeps the job of a backfill candidate the watch just read (a workload whose CR the inventory does not hold),
   * while this sync may backfill; forgets it once its CR is seen. Every other job is kept only as its fingerprint.
   */
  private heard(entry: InventoryEntry, job: StoredJob | undefined): void {
    // Until every CR is listed, a workload without a CR in the inventory may well have one: the daemon keeps nothing
    // then, and a candidate found by the first pass is read once before its write instead. The import (no CR watch)
    // keeps candidates from its first workload page on, whichever list ends first: it is there to write them, and
    // the first pass drops what it kept for jobs whose CR the list showed (`retain`).
    if (entry.what === 'cr') this.backfiller.crSeen(entry.entry);
    if (entry.what !== 'job') return;
    const { phase } = this.deps;
    const mayBackfill = !this.deps.readOnly && (!phase.known() || phaseBehaviour(phase.current()).backfillRuntimeOnly);
    const crsKnown = this.crsListed || this.deps.watchCrs === false;
    if (job && mayBackfill && crsKnown && !this.inventory.hasCr(entry.entry)) this.backfiller.hold(entry.entry, job);
    else this.backfiller.release(entry.entry);
  }

  private get eventDelay(): number {
    return this.deps.eventDelayMs ?? EVENT_DELAY_MS;
  }

  private get interval(): number {
    return this.deps.intervalMs ?? LOOP_INTERVAL_MS;
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  get isLeader(): boolean {
    return this.leader;
  }

  get synced(): boolean {
    return this.firstDone;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const inf of this.informers) inf.start();
    this.elector?.start();
    // A stop before everything is listed (an API that refuses the list) must not wait for that list forever.
    const stopped = new Promise<void>((resolve) => (this.stopWaiting = resolve));
    // The persisted tombstones are read before the first plan: nothing is backfilled before they are known.
    const restored = this.tombstoneStore?.load().then((checkpoints) => this.tombstones.restore(checkpoints));
    const ready = Promise.race([
      Promise.all([...this.informers.map((i) => i.waitForSync()), this.deps.phase.whenKnown(), restored]),
      stopped,
    ]);
    this.busy = ready.then(async () => {
      if (!this.running) return;
      // Passing before the first pass, so that the wake-ups it asks for (a grace period that ends) are kept.
      this.passing = true;
      this.fullPass();
      this.wake(this.inventory.hasDirty() ? this.eventDelay : this.interval);
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopWaiting();
    if (this.timer) clearTimeout(this.timer);
    await this.settled();
    await Promise.all([...this.informers.map((i) => i.stop()), this.elector?.stop(), this.tombstoneStore?.stop()]);
  }

  /**
   * Simulates a SIGKILL, for failover tests: stops without a goodbye, leaving the Lease to expire instead of
   * releasing it, and without waiting for the pass in flight.
   */
  kill(): void {
    this.running = false;
    this.leader = false;
    if (this.timer) clearTimeout(this.timer);
    this.elector?.abandon();
    this.tombstoneStore?.abandon();
    for (const inf of this.informers) void inf.stop();
  }

  /**
   * Runs a pass in `delayMs` (or sooner if one is due sooner): a watch event wakes the loop at once, a retry or a
   * grace's end at its time, and every pass asks for the next one within LOOP_INTERVAL_MS.
   */
  private wake(delayMs: number): void {
    if (!this.running || !this.passing) return;
    const delay = Math.max(0, Math.min(delayMs, this.interval));
    const at = Date.now() + delay;
    if (this.timer !== undefined && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.queuePass();
    }, delay);
  }

  /** One pass at a time: each pass is chained after the previous one, so `stop()` awaits all of them. */
  private queuePass(): void {
    if (!this.running || this.passQueued) return;
    this.passQueued = true;
    this.busy = this.busy
      .then(() => {
        this.passQueued = false;
        return this.incrementalPass();
      })
      .catch((err: unknown) => this.deps.logger.error({ err }, 'sync pass failed'))
      .finally(() => this.wake(this.interval));
  }

  /** Reconciles every tool: the first one after start is the "first complete reconcile". */
  private fullPass(): void {
    const started = this.now();
    this.inventory.takeDirty();
    this.reconcileTools([...new Set([...this.inventory.toolNames(), ...this.tombstones.tools()])]);
    this.tombstones.restored();
    const seconds = this.recordPass(started);
    if (!this.firstDone) {
      this.firstDone = true;
      const { rss, heapUsed } = process.memoryUsage();
      this.deps.logger.info(
        { seconds, ...this.status().totals, rssBytes: rss, heapUsedBytes: heapUsed },
        'first complete reconcile',
      );
      this.resolveFirst();
    }
  }

  /** Reconciles the tools that changed and those due again (a grace period ended, a backfill retries). */
  private incrementalPass(): void {
    if (!this.running) return;
    const started = this.now();
    const tools = new Set(this.inventory.takeDirty());
    const due = this.summaries.due(started);
    for (const tool of due.tools) tools.add(tool);
    // A timer may fire a little before the due time it was set for: that tool is then due at a later pass.
    if (due.nextAt !== Infinity) this.wake(due.nextAt - started);
    if (tools.size === 0) return;
    this.reconcileTools([...tools]);
    this.recordPass(started);
  }

  /** Records a completed pass (status, duration histogram, last-success gauge); returns its seconds. */
  private recordPass(started: number): number {
    const at = this.now();
    this.lastSync = { at, seconds: (at - started) / 1000 };
    this.deps.metrics.syncDuration.observe(this.lastSync.seconds);
    this.deps.metrics.syncLastSuccess.set(at / 1000);
    return this.lastSync.seconds;
  }

  /** One pass over `tools`: the phase is read once, for every tool's plan. */
  private reconcileTools(tools: readonly string[]): void {
    const phase = this.deps.phase.current();
    const started = this.now();
    const backfills: RuntimeEntry[] = [];
    let nextDueAt = Infinity;
    for (const tool of tools) {
      const plan = this.planFor(tool, phase, { record: true });
      publishGauges(plan, this.deps.metrics);
      // A retry time already passed is this pass's backfill or one in flight: its end wakes the loop (a CR event, a
      // new retry time), so only later ones make the tool due — else passes would spin while a retry hangs.
      const retries = this.backfiller.retryTimes(plan.backfill).filter((at) => at > started);
      const summary = toolSummary(plan, retries);
      this.summaries.set(tool, summary);
      if (summary?.nextDueAt !== undefined) nextDueAt = Math.min(nextDueAt, summary.nextDueAt);
      for (const e of plan.backfill) backfills.push(e);
    }
    if (nextDueAt !== Infinity) this.wake(nextDueAt - this.now());
    this.deps.metrics.tombstones.set(this.tombstones.size);
    this.tombstoneStore?.changed();
    if (this.leader && !this.deps.readOnly && backfills.length > 0) this.dispatch(this.backfiller.run(backfills));
  }

  /** Lets backfills run beside the passes; `settled()` and `stop()` wait for them. */
  private dispatch(backfills: Promise<unknown>): void {
    const tracked: Promise<unknown> = backfills
      .catch((err: unknown) => this.deps.logger.error({ err }, 'backfills failed'))
      .finally(() => this.backfilling.delete(tracked));
    this.backfilling.add(tracked);
  }

  /** A tool's plan from the inventory (reconcile is pure and cheap per tool); `record` as in UnmatchedSince.mark. */
  private planFor(tool: string, phase: Phase, o: { record: boolean }): ToolPlan {
    const now = this.now();
    const { inventory, waiting } = this.unmatched.mark(this.inventory.inventoryOf(tool), now, o);
    if (o.record) this.backfiller.retain(tool, waiting);
    const graceSeconds = this.deps.config.sync.backfillGraceSeconds;
    return reconcileTool(this.tombstones.mark(inventory, now, o), { phase, now, graceSeconds });
  }

  /** What this replica persists (sync/tombstones): its tombstones and the jobs it holds without a CR, as of now. */
  private checkpoint(): Checkpoint {
    const unmatched = this.unmatched.keys(UNMATCHED_KEPT);
    return {
      at: this.now(),
      unmatched: unmatched && new Set(unmatched),
      tombstones: this.tombstones.held(),
    };
  }

  /** What the last backfills did (the last few thousand), oldest first; the one-shot import prints these. */
  backfillResults(): readonly BackfillResult[] {
    return this.backfiller.history;
  }

  /** How many backfills ended in each outcome since start (all of them, unlike `backfillResults`). */
  backfillOutcomes(): Readonly<Record<BackfillResult['outcome'], number>> {
    return this.backfiller.outcomes;
  }

  /** Backfills dispatched and not finished: with `backfillOutcomes`, the one-shot import's progress. */
  backfillPending(): number {
    return this.backfiller.pending;
  }

  status(): SyncStatus {
    return {
      phase: this.deps.phase.current(),
      identity: this.deps.identity,
      leader: this.leader,
      synced: this.firstDone,
      lastSyncAt: this.lastSync ? new Date(this.lastSync.at).toISOString() : null,
      lastSyncSeconds: this.lastSync?.seconds ?? null,
      totals: summarize(this.summaries.values(), this.backfiller.created),
    };
  }

  /** Resolves when no pass is queued or running and no backfill is in flight. */
  async settled(): Promise<void> {
    do {
      await this.busy;
      await Promise.all(this.backfilling);
    } while (this.backfilling.size > 0 || this.passQueued);
  }

  /** Every tool's plan as of now, by tool name, with field diffs (see `toolPlan`). */
  async allPlans(): Promise<ToolPlan[]> {
    const plans: ToolPlan[] = [];
    for (const tool of [...this.summaries.tools()].sort()) plans.push(await this.planWithDiffs(tool));
    return plans;
  }

  /** The plan of one tool as of now, with the fields that differ named (sync/drift); undefined for a tool unseen. */
  async toolPlan(tool: string): Promise<ToolPlan | undefined> {
    return this.summaries.has(tool) ? this.planWithDiffs(tool) : undefined;
  }

  private planWithDiffs(tool: string): Promise<ToolPlan> {
    const plan = this.planFor(tool, this.deps.phase.current(), { record: false });
    return withFieldDiffs(plan, this.inventory.inventoryOf(tool).runtime, this.drift);
  }
}
