import { resolveJob } from '../jobs/index.js';
import type { StoredJob } from '../jobs/model.js';
import type { Informer } from '../k8s/informer.js';
import type { LeaderElector } from '../k8s/lease.js';
import { Backfiller } from './backfill.js';
import type { BackfillResult } from './backfill.js';
import { withFieldDiffs } from './drift.js';
import type { DriftReader } from './drift.js';
import type { EntryContext, EntryRead } from './entries.js';
import { jobFingerprint } from './fingerprint.js';
import { WriterGate } from './gate.js';
import { Inventory } from './inventory.js';
import { EVENT_DELAY_MS, LOOP_INTERVAL_MS } from './options.js';
import type { SyncDeps } from './options.js';
import { PassScheduler } from './passes.js';
import type { JobRef } from './per-tool.js';
import { Planner } from './plans.js';
import type { JobFingerprint, RuntimeEntry, ToolPlan } from './reconcile.js';
import { summarize, ToolSummaries } from './report.js';
import type { SyncStatus } from './report.js';
import { CR_RESOURCES, leaseElector, watchInventory } from './sources.js';
import type { WatchedObject } from './sources.js';
import { TombstoneStore, tombstonesConfigMap } from './tombstone-store.js';
import { Tombstones } from './tombstones.js';

export { IMPORT_EVENT_DELAY_MS } from './options.js';
export type { SyncDeps, SyncPhase } from './options.js';

/**
 * The sync: informers over workloads and job CRs in all tool namespaces, a per-tool reconcile of every changed
 * tool, gauges per tool, and — on the Lease holder only — backfills of CRs (see Backfiller). It never writes a
 * workload. The same loop runs the one-shot `import` and `report`.
 */
export class SyncLoop {
  private readonly inventory: Inventory;
  private readonly informers: ReadonlyArray<Informer<WatchedObject, EntryRead>>;
  private readonly summaries = new ToolSummaries();
  private readonly tombstones = new Tombstones();
  /** The daemon's tombstones persisted, so that a replica started later keeps them (not the one-shot commands). */
  private readonly tombstoneStore: TombstoneStore | undefined;
  /** Whether this replica may write: the phase, the Lease, read-only mode, the CRs listed, the tombstones. */
  private readonly gate: WriterGate;
  private readonly passes: PassScheduler;
  private readonly backfiller: Backfiller;
  private readonly planner: Planner;
  private readonly drift: DriftReader;
  private readonly elector: LeaderElector | undefined;
  private stopWaiting: () => void = () => undefined;
  private lastSync: { at: number; seconds: number } | undefined;
  private resolveFirst!: () => void;
  /** Resolves after the first complete reconcile of every tool. */
  readonly firstReconcile: Promise<void> = new Promise((resolve) => (this.resolveFirst = resolve));
  private firstDone = false;

  constructor(private readonly deps: SyncDeps) {
    const { config, settings, codec, logger, metrics } = deps;
    const elect = deps.elect ?? true;
    this.gate = new WriterGate({
      phase: deps.phase,
      elect,
      readOnly: deps.readOnly ?? false,
      crsWatched: deps.watchCrs ?? true,
      tombstones: this.tombstones,
    });
    const crGone = (job: JobRef, workload: RuntimeEntry | undefined) =>
      this.tombstones.crGone(job, workload, this.now());
    this.inventory = new Inventory(config.toolNamespacePrefix, crGone, this.gate);
    const now = () => this.now();
    this.passes = new PassScheduler({
      pass: () => this.incrementalPass(),
      intervalMs: deps.intervalMs ?? LOOP_INTERVAL_MS,
      now,
      logger,
      summaries: this.summaries,
    });
    const namesOf = (namespace: string) => this.inventory.namesOf(namespace);
    const resolve = (job: StoredJob) => resolveJob(job, settings);
    // Entries keep the fingerprint of the job with jobs-api's defaults resolved, computed once: later reconciles
    // compare strings, and the inventory holds one short string per job instead of its objects.
    const kept: EntryContext<JobFingerprint> = {
      namesOf,
      settings,
      codec,
      keep: (job) => jobFingerprint(resolve(job)),
    };
    this.drift = { api: deps.api, entries: { namesOf, settings, codec, keep: (job) => job }, resolve };
    this.backfiller = new Backfiller({
      api: deps.api,
      gate: this.gate,
      inventory: this.inventory,
      codec,
      settings,
      namespacePrefix: config.toolNamespacePrefix,
      identity: deps.identity,
      now,
      metrics,
      logger,
      ...(deps.backfillInFlight === undefined ? {} : { inFlight: deps.backfillInFlight }),
      passes: this.passes,
    });
    this.planner = new Planner({
      inventory: this.inventory,
      tombstones: this.tombstones,
      backfiller: this.backfiller,
      summaries: this.summaries,
      metrics,
      graceSeconds: config.sync.backfillGraceSeconds,
      now,
      events: deps.events,
    });
    const changed = () => this.passes.wake(this.eventDelay);
    this.informers = watchInventory({ ...deps, inventory: this.inventory, entries: kept, changed });
    const crLists = this.informers.filter((i) => CR_RESOURCES.has(i.name)).map((i) => i.waitForSync());
    void Promise.all(crLists).then(() => this.gate.crsListed());
    const leading = (yes: boolean) => {
      this.gate.leading(yes);
      deps.events?.leading(yes);
      metrics.isLeader.set(yes ? 1 : 0);
      if (yes) this.inventory.markAllDirty();
      changed();
    };
    this.elector = elect ? leaseElector(deps, leading) : undefined;
    if (this.elector && !deps.readOnly && deps.watchCrs !== false) {
      this.tombstoneStore = new TombstoneStore({
        api: deps.api,
        ...tombstonesConfigMap(config),
        identity: deps.identity,
        logger,
        metrics,
        // As of when every informer last heard from the API server, not now: a workload a stalled watch never
        // delivered must not look like one that had a CR at the checkpoint (sync/tombstones `lostWhileAway`).
        checkpoint: () => this.planner.checkpoint(Math.min(...this.informers.map((i) => i.currentAsOf))),
      });
    }
    deps.phase.onChange(() => {
      this.inventory.markAllDirty();
      changed();
    });
  }

  private get eventDelay(): number {
    return this.deps.eventDelayMs ?? EVENT_DELAY_MS;
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  get isLeader(): boolean {
    return this.gate.leader;
  }

  get synced(): boolean {
    return this.firstDone;
  }

  start(): void {
    if (this.passes.running) return;
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
    this.passes.start(ready, () => {
      // Every informer has listed (the CR lists' own wait may not have been heard yet).
      this.gate.crsListed();
      this.fullPass();
      this.passes.wake(this.inventory.hasDirty() ? this.eventDelay : Infinity);
    });
  }

  async stop(): Promise<void> {
    this.passes.halt();
    this.stopWaiting();
    await this.passes.settled();
    await Promise.all([
      ...this.informers.map((i) => i.stop()),
      this.elector?.stop(),
      this.tombstoneStore?.stop(),
      this.deps.events?.stop(),
    ]);
  }

  /**
   * Simulates a SIGKILL, for failover tests: stops without a goodbye, leaving the Lease to expire instead of
   * releasing it, and without waiting for the pass in flight.
   */
  kill(): void {
    this.passes.halt();
    this.gate.leading(false);
    void this.deps.events?.stop();
    this.elector?.abandon();
    this.tombstoneStore?.abandon();
    for (const inf of this.informers) void inf.stop();
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
    if (!this.passes.running) return;
    const started = this.now();
    const tools = new Set(this.inventory.takeDirty());
    const due = this.summaries.due(started);
    for (const tool of due.tools) tools.add(tool);
    // A timer may fire a little before the due time it was set for: that tool is then due at a later pass.
    if (due.nextAt !== Infinity) this.passes.wake(due.nextAt - started);
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
    const { backfills, nextDueAt } = this.planner.planTools(tools, this.deps.phase.current());
    if (nextDueAt !== Infinity) this.passes.wake(nextDueAt - this.now());
    this.tombstoneStore?.changed();
    if (backfills.length > 0 && this.gate.mayWrite()) this.passes.dispatch(this.backfiller.run(backfills));
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
      leader: this.gate.leader,
      synced: this.firstDone,
      lastSyncAt: this.lastSync ? new Date(this.lastSync.at).toISOString() : null,
      lastSyncSeconds: this.lastSync?.seconds ?? null,
      totals: summarize(this.summaries.values(), this.backfiller.created),
    };
  }

  /** Resolves when no pass is queued or running and no backfill is in flight. */
  settled(): Promise<void> {
    return this.passes.settled();
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
    const plan = this.planner.planFor(tool, this.deps.phase.current(), { record: false });
    return withFieldDiffs(plan, this.inventory.inventoryOf(tool).runtime, this.drift);
  }
}
