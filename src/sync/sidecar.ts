import type { Phase } from '../config/phases.js';
import { phaseBehaviour } from '../config/phases.js';
import type { Config } from '../config/schema.js';
import type { StoredJob } from '../jobs/model.js';
import type { KubeApi } from '../k8s/api.js';
import { describeApiError, isConflict, isNotFound } from '../k8s/errors.js';
import { Gate } from '../k8s/gate.js';
import { Informer } from '../k8s/informer.js';
import { LeaderElector } from '../k8s/lease.js';
import type { PhaseView } from '../k8s/phase-source.js';
import type { Logger } from '../log/logger.js';
import { LABELS, MANAGED_BY_JOBS_FRAMEWORK } from '../runtime/labels.js';
import type { Metrics } from '../metrics/registry.js';
import type { StorageCodec } from '../storage/codec.js';
import {
  PROVENANCE_ANNOTATIONS,
  STORAGE_API_VERSION,
  sourceVersionsAnnotation,
  storageKindForJobType,
} from '../storage/kinds.js';
import { Inventory, trackCr } from './inventory.js';
import type { CrObject } from './inventory.js';
import type { Resource, Tracked } from './inventory.js';
import { diffJobs, jobFingerprint, reconcileTool } from './reconcile.js';
import type {
  FieldDiff,
  JobFingerprint,
  Readable,
  RuntimeEntry,
  StorageEntry,
  ToolInventory,
  ToolPlan,
} from './reconcile.js';

/** What the sidecar needs of the phase: it neither reconciles nor writes before the phase is known. */
export type SyncPhase = Pick<PhaseView, 'current' | 'whenKnown' | 'known' | 'onChange'>;

export interface SyncDeps {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  api: KubeApi;
  codec: StorageCodec;
  phase: SyncPhase;
  /** This replica's name in the Lease (the pod name in production). */
  identity: string;
  /** Classifies and parses a CronJob or Deployment (see src/runtime). */
  trackWorkload: (obj: unknown, resource: 'cronjobs' | 'deployments') => Tracked<StoredJob> | undefined;
  /** Fills jobs-api's defaults so equal jobs compare equal. */
  resolve: (job: StoredJob) => StoredJob;
  /** Campaign for the Lease before writing (default); false acts as the only writer (one-shot import). */
  elect?: boolean;
  /** Never write, only report (the `report` command and `import --dry-run`). */
  readOnly?: boolean;
  now?: () => number;
}

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

const LOOP_INTERVAL_MS = 500;
const BACKFILL_RETRY_MS = 30_000;

const WATCHED: ReadonlyArray<{ resource: Resource; path: string; labelSelector?: string }> = [
  { resource: 'cronjobs', path: '/apis/batch/v1/cronjobs' },
  { resource: 'deployments', path: '/apis/apps/v1/deployments' },
  {
    resource: 'services',
    path: '/api/v1/services',
    labelSelector: `${LABELS.managedBy}=${MANAGED_BY_JOBS_FRAMEWORK}`,
  },
  { resource: 'scheduled-jobs', path: `/apis/${STORAGE_API_VERSION}/scheduled-jobs` },
  { resource: 'continuous-jobs', path: `/apis/${STORAGE_API_VERSION}/continuous-jobs` },
];

/**
 * The sync sidecar: informers over workloads and job CRs in all tool namespaces, a per-tool reconcile on every
 * change, gauges per tool, and — on the Lease holder only — backfills of CRs. It never writes a workload.
 */
export class SyncSidecar {
  private readonly inventory: Inventory;
  private readonly informers: Array<
    Informer<{ metadata?: { name?: string; namespace?: string; resourceVersion?: string } }, Tracked>
  > = [];
  /** What the last reconcile found per tool; reports are recomputed on demand rather than kept for 4,000 tools. */
  private readonly summaries = new Map<string, ToolSummary>();
  private readonly retryAt = new PerTool<number>();
  private readonly results: BackfillResult[] = [];
  /** When each runtime job was first seen without a CR (see RuntimeEntry.unmatchedSince). */
  private readonly unmatched = new PerTool<number>();
  private readonly elector: LeaderElector | undefined;
  private leader: boolean;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private busy: Promise<void> = Promise.resolve();
  private stopWaiting: () => void = () => undefined;
  private lastSync: { at: number; seconds: number } | undefined;
  private backfilled = 0;
  private resolveFirst!: () => void;
  /** Resolves after the first complete reconcile of every tool. */
  readonly firstReconcile: Promise<void> = new Promise((resolve) => (this.resolveFirst = resolve));
  private firstDone = false;

  constructor(private readonly d: SyncDeps) {
    this.inventory = new Inventory(d.config.toolNamespacePrefix);
    this.leader = !(d.elect ?? true);
    const log = d.logger;
    const listGate = new Gate(d.config.sync.listConcurrency);
    for (const w of WATCHED) {
      const isCr = w.resource === 'scheduled-jobs' || w.resource === 'continuous-jobs';
      this.informers.push(
        new Informer({
          name: w.resource,
          api: d.api,
          path: w.path,
          ...(w.labelSelector ? { labelSelector: w.labelSelector } : {}),
          pageSize: d.config.sync.listPageSize,
          listGate,
          relistSeconds: d.config.sync.relistSeconds,
          stallSeconds: d.config.sync.stallSeconds,
          logger: log,
          transform: (obj) => this.track(w.resource, obj, isCr),
          unchanged: (obj, previous) => {
            const rv = obj.metadata?.resourceVersion;
            return rv !== undefined && rv === resourceVersionOf(previous);
          },
          onChange: (namespace, name, entry) => this.inventory.apply(w.resource, namespace, name, entry),
          onError: (stage) => d.metrics.syncErrors.inc({ stage }),
        }),
      );
    }
    if (d.elect ?? true) {
      this.elector = new LeaderElector({
        api: d.api,
        namespace: d.config.sync.leaseNamespace,
        name: d.config.sync.leaseName,
        identity: d.identity,
        leaseDurationSeconds: d.config.sync.leaseDurationSeconds,
        renewDeadlineSeconds: d.config.sync.renewDeadlineSeconds,
        retryPeriodSeconds: d.config.sync.retryPeriodSeconds,
        logger: log,
        onStartedLeading: () => {
          this.leader = true;
          d.metrics.isLeader.set(1);
          this.inventory.markAllDirty();
        },
        onStoppedLeading: () => {
          this.leader = false;
          d.metrics.isLeader.set(0);
        },
      });
    }
    d.phase.onChange(() => this.inventory.markAllDirty());
  }

  private now(): number {
    return (this.d.now ?? Date.now)();
  }

  private track(resource: Resource, obj: unknown, isCr: boolean): Tracked | undefined {
    const names = this.inventory.namesOf((obj as { metadata?: { namespace?: string } }).metadata?.namespace ?? '');
    if (!names) return undefined;
    if (resource === 'services') return SERVICE;
    const tracked = isCr
      ? trackCr(obj as CrObject, this.d.codec, this.d.config.toolNamespacePrefix)
      : this.d.trackWorkload(obj, resource as 'cronjobs' | 'deployments');
    return tracked && this.compact(tracked, names);
  }

  /**
   * Entries keep the fingerprint of the job with jobs-api's defaults resolved, computed once: later reconciles
   * compare strings, and the inventory holds one short string per job instead of its objects. Tool and namespace
   * strings are the inventory's, one per tool rather than one per object.
   */
  private compact(tracked: Tracked<StoredJob>, names: { namespace: string; tool: string }): Tracked {
    if (tracked.what === 'job') {
      const { type, name, workload, parsed } = tracked.entry;
      const entry: RuntimeEntry = {
        tool: names.tool,
        type,
        name,
        workload: {
          kind: workload.kind,
          namespace: names.namespace,
          name: workload.name,
          resourceVersion: workload.resourceVersion,
          createdAt: workload.createdAt,
          deleting: workload.deleting,
        },
        parsed: this.fingerprint(parsed),
      };
      if (parsed.ok && parsed.job.job_type === 'continuous' && parsed.job.port) entry.exposesPort = true;
      return { what: 'job', entry };
    }
    if (tracked.what === 'cr') {
      const { type, name, resourceVersion, deleting, decoded, recordedSourceVersions } = tracked.entry;
      const entry: StorageEntry = {
        tool: names.tool,
        type,
        name,
        resourceVersion,
        deleting,
        decoded: this.fingerprint(decoded),
      };
      if (recordedSourceVersions) entry.recordedSourceVersions = recordedSourceVersions;
      return { what: 'cr', entry };
    }
    return tracked;
  }

  private fingerprint(read: Readable<StoredJob>): Readable<JobFingerprint> {
    return read.ok ? { ok: true, job: jobFingerprint(this.d.resolve(read.job)) } : read;
  }

  get isLeader(): boolean {
    return this.leader;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const inf of this.informers) inf.start();
    this.elector?.start();
    // A stop before everything is listed (an API that refuses the list) must not wait for that list forever.
    const stopped = new Promise<void>((resolve) => (this.stopWaiting = resolve));
    const ready = Promise.race([
      Promise.all([...this.informers.map((i) => i.waitForSync()), this.d.phase.whenKnown()]),
      stopped,
    ]);
    this.busy = ready.then(async () => {
      if (!this.running) return;
      await this.fullPass();
      this.schedule();
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopWaiting();
    if (this.timer) clearTimeout(this.timer);
    await this.busy;
    await Promise.all([...this.informers.map((i) => i.stop()), this.elector?.stop()]);
  }

  /** Stops without a goodbye (the Lease is left to expire), as when the process is killed. For failover tests. */
  kill(): void {
    this.running = false;
    this.leader = false;
    if (this.timer) clearTimeout(this.timer);
    this.elector?.abandon();
    for (const inf of this.informers) void inf.stop();
  }

  /** One pass at a time: each pass is chained after the previous one, so `stop()` awaits all of them. */
  private schedule(): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.busy = this.busy
        .then(() => this.incrementalPass())
        .catch((err: unknown) => this.d.logger.error({ err }, 'sync pass failed'))
        .finally(() => this.schedule());
    }, LOOP_INTERVAL_MS);
  }

  /** Reconciles every tool: the first one after start is the "first complete reconcile". */
  private async fullPass(): Promise<void> {
    const started = this.now();
    this.inventory.takeDirty();
    await this.reconcileTools(this.inventory.toolNames());
    const seconds = (this.now() - started) / 1000;
    this.lastSync = { at: this.now(), seconds };
    this.d.metrics.syncDuration.observe(seconds);
    this.d.metrics.syncLastSuccess.set(this.lastSync.at / 1000);
    if (!this.firstDone) {
      this.firstDone = true;
      const { rss, heapUsed } = process.memoryUsage();
      this.d.logger.info(
        { seconds, ...this.status().totals, rssBytes: rss, heapUsedBytes: heapUsed },
        'first complete reconcile',
      );
      this.resolveFirst();
    }
  }

  private async incrementalPass(): Promise<void> {
    const now = this.now();
    const due = [...this.summaries]
      .filter(([, p]) => p.nextDueAt !== undefined && p.nextDueAt <= now)
      .map(([tool]) => tool);
    const tools = new Set([...this.inventory.takeDirty(), ...due]);
    if (tools.size === 0) return;
    await this.reconcileTools([...tools]);
    this.lastSync = { at: this.now(), seconds: (this.now() - now) / 1000 };
    this.d.metrics.syncDuration.observe(this.lastSync.seconds);
    this.d.metrics.syncLastSuccess.set(this.lastSync.at / 1000);
  }

  private async reconcileTools(tools: readonly string[]): Promise<void> {
    const phase = this.d.phase.current();
    const graceSeconds = this.d.config.sync.backfillGraceSeconds;
    const backfills: RuntimeEntry[] = [];
    for (const tool of tools) {
      const plan = reconcileTool(this.withUnmatchedSince(this.inventory.inventoryOf(tool)), {
        phase,
        now: this.now(),
        graceSeconds,
      });
      this.publish(plan);
      backfills.push(...plan.backfill);
    }
    if (this.leader && !this.d.readOnly && backfills.length > 0) await this.runBackfills(backfills);
  }

  private withUnmatchedSince(inv: ToolInventory): ToolInventory {
    const stored = new Set(inv.storage.map(jobKey));
    const live = new Set<string>();
    const runtime = inv.runtime.map((r) => {
      const key = jobKey(r);
      if (stored.has(key)) return r;
      live.add(key);
      const since = this.unmatched.get(r) ?? this.now();
      this.unmatched.set(r, since);
      return Object.assign({}, r, { unmatchedSince: since });
    });
    this.unmatched.retain(inv.tool, live);
    this.retryAt.retain(inv.tool, live);
    return { ...inv, runtime };
  }

  private publish(plan: ToolPlan): void {
    // A backfill that failed is retried when its retry time comes, even if nothing else about the tool changes.
    const retries = plan.backfill.map((e) => this.retryAt.get(e)).filter((t): t is number => t !== undefined);
    const dues = plan.nextDueAt === undefined ? retries : [plan.nextDueAt, ...retries];
    const dueAt = dues.length > 0 ? Math.min(...dues) : undefined;
    const empty = plan.jobs.length === 0 && plan.counts.foreign === 0;
    if (empty) this.summaries.delete(plan.tool);
    else
      this.summaries.set(plan.tool, {
        counts: plan.counts,
        runtimeJobs: plan.jobs.filter((j) => j.inRuntime).length,
        storageJobs: plan.jobs.filter((j) => j.inStorage).length,
        ...(dueAt === undefined ? {} : { nextDueAt: dueAt }),
      });
    const labels = { tool_name: plan.tool };
    const gauges: Array<[typeof this.d.metrics.onlyInRuntime, number]> = [
      [this.d.metrics.onlyInRuntime, plan.counts.onlyInRuntime],
      [this.d.metrics.onlyInStorage, plan.counts.onlyInStorage],
      [this.d.metrics.outOfSync, plan.counts.outOfSync],
      [this.d.metrics.foreignWorkloads, plan.counts.foreign],
    ];
    for (const [gauge, n] of gauges) {
      if (n === 0) gauge.remove(labels);
      else gauge.set(labels, n);
    }
  }

  private async runBackfills(entries: readonly RuntimeEntry[]): Promise<void> {
    const queue = entries.filter((e) => (this.retryAt.get(e) ?? 0) <= this.now());
    const workers = Array.from({ length: Math.min(4, queue.length) }, async () => {
      for (let e = queue.shift(); e; e = queue.shift()) {
        const result = await this.backfillOne(e);
        this.results.push({ tool: e.tool, name: e.name, type: e.type, ...result });
        if (this.results.length > RESULTS_KEPT) this.results.splice(0, this.results.length - RESULTS_KEPT);
      }
    });
    await Promise.all(workers);
  }

  /**
   * Creates the CR for a workload found without one, after re-reading both: the CR must still be missing, the
   * workload still present and not being deleted. A 409 means someone (jobs-api) created it first: success.
   */
  private async backfillOne(e: RuntimeEntry): Promise<Omit<BackfillResult, 'tool' | 'name' | 'type'>> {
    const log = this.d.logger.child({ tool: e.tool, job: e.name, type: e.type });
    const kind = storageKindForJobType(e.type);
    if (!kind || !e.parsed.ok) return { outcome: 'skipped', reason: 'not a stored job' };
    const ns = e.workload.namespace;
    try {
      if (!this.d.phase.known() || !phaseBehaviour(this.d.phase.current()).backfillRuntimeOnly || !this.leader) {
        return { outcome: 'skipped', reason: 'not the writer in this phase' };
      }
      const crPath = crCollectionPath(ns, kind.plural);
      try {
        await this.d.api.request('GET', `${crPath}/${e.name}`);
        return { outcome: 'existed' };
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      let fresh: unknown;
      try {
        fresh = await this.d.api.request('GET', workloadPath(e.workload));
      } catch (err) {
        if (isNotFound(err)) return { outcome: 'skipped', reason: 'the workload is gone' };
        throw err;
      }
      const tracked = this.d.trackWorkload(fresh, e.workload.kind === 'CronJob' ? 'cronjobs' : 'deployments');
      if (tracked?.what !== 'job' || tracked.entry.workload.deleting || !tracked.entry.parsed.ok) {
        return { outcome: 'skipped', reason: 'the workload changed: being deleted or no longer a readable job' };
      }
      const w = tracked.entry.workload;
      const cr = this.d.codec.encode(tracked.entry.parsed.job, {
        namespacePrefix: this.d.config.toolNamespacePrefix,
        annotations: {
          [PROVENANCE_ANNOTATIONS.backfilledBy]: this.d.identity,
          [PROVENANCE_ANNOTATIONS.backfilledAt]: new Date(this.now()).toISOString(),
          ...sourceVersionsAnnotation(w.kind, w.name, w.resourceVersion),
        },
      });
      this.retryAt.delete(e);
      try {
        await this.d.api.request('POST', crPath, { body: cr });
      } catch (err) {
        if (!isConflict(err)) throw err;
        log.info('job definition appeared meanwhile');
        return { outcome: 'existed' };
      }
      this.backfilled += 1;
      this.d.metrics.syncedToStorage.inc({ tool_name: e.tool });
      log.info({ workloadResourceVersion: w.resourceVersion }, 'backfilled job definition');
      return { outcome: 'created' };
    } catch (err) {
      const due = this.now() + BACKFILL_RETRY_MS;
      this.retryAt.set(e, due);
      const summary = this.summaries.get(e.tool);
      if (summary) summary.nextDueAt = Math.min(summary.nextDueAt ?? due, due);
      this.inventory.markDirty(e.tool);
      this.d.metrics.syncErrors.inc({ stage: 'write' });
      const described = describeApiError(err);
      log.warn({ err: described }, 'backfill failed, will retry');
      return { outcome: 'failed', reason: described.message };
    }
  }

  /** What the backfills did, oldest first (the last few thousand); the one-shot import prints these. */
  backfillResults(): readonly BackfillResult[] {
    return this.results;
  }

  status(): SyncStatus {
    const totals = {
      tools: 0,
      runtimeJobs: 0,
      storageJobs: 0,
      onlyInRuntime: 0,
      onlyInStorage: 0,
      outOfSync: 0,
      foreign: 0,
      backfilled: this.backfilled,
    };
    for (const plan of this.summaries.values()) {
      totals.tools += 1;
      totals.runtimeJobs += plan.runtimeJobs;
      totals.storageJobs += plan.storageJobs;
      totals.onlyInRuntime += plan.counts.onlyInRuntime;
      totals.onlyInStorage += plan.counts.onlyInStorage;
      totals.outOfSync += plan.counts.outOfSync;
      totals.foreign += plan.counts.foreign;
    }
    return {
      phase: this.d.phase.current(),
      identity: this.d.identity,
      leader: this.leader,
      synced: this.firstDone,
      lastSyncAt: this.lastSync ? new Date(this.lastSync.at).toISOString() : null,
      lastSyncSeconds: this.lastSync?.seconds ?? null,
      totals,
    };
  }

  /** Every tool's plan as of now, by tool name, with field diffs (see `toolPlan`). */
  async allPlans(): Promise<ToolPlan[]> {
    const plans: ToolPlan[] = [];
    for (const tool of [...this.summaries.keys()].sort()) plans.push(await this.withFieldDiffs(this.planNow(tool)));
    return plans;
  }

  /** Resolves when no backfill is in flight (after the pass running now). */
  async settled(): Promise<void> {
    await this.busy;
  }

  /**
   * The plan of one tool as of now, or undefined when the sync has seen nothing of it. The inventory keeps only
   * fingerprints, so for each job whose definitions differ the workload and the CR are read again to name the
   * fields that differ.
   */
  async toolPlan(tool: string): Promise<ToolPlan | undefined> {
    return this.summaries.has(tool) ? this.withFieldDiffs(this.planNow(tool)) : undefined;
  }

  private async withFieldDiffs(plan: ToolPlan): Promise<ToolPlan> {
    const differing = plan.jobs.filter((j) => j.definitionDiffers);
    if (differing.length === 0) return plan;
    const runtime = new Map(this.inventory.inventoryOf(plan.tool).runtime.map((r) => [jobKey(r), r]));
    await Promise.all(
      differing.map(async (job) => {
        const entry = runtime.get(jobKey(job));
        if (!entry) return;
        const found = await this.fieldDiff(entry);
        if (typeof found === 'string') job.reason = found;
        else job.diff = [...found, ...(job.diff ?? [])];
      }),
    );
    return plan;
  }

  /** Reads a job's workload and CR again and diffs them; a string says why it could not. */
  private async fieldDiff(e: RuntimeEntry): Promise<FieldDiff[] | string> {
    const kind = storageKindForJobType(e.type);
    if (!kind) return 'not a stored job type';
    let objects: [unknown, unknown];
    try {
      objects = await Promise.all([
        this.d.api.request('GET', workloadPath(e.workload)),
        this.d.api.request('GET', `${crCollectionPath(e.workload.namespace, kind.plural)}/${e.name}`),
      ]);
    } catch (err) {
      return `cannot read the job to name the fields that differ: ${describeApiError(err).message}`;
    }
    const runtime = this.d.trackWorkload(objects[0], e.workload.kind === 'CronJob' ? 'cronjobs' : 'deployments');
    const stored = trackCr(objects[1] as CrObject, this.d.codec, this.d.config.toolNamespacePrefix);
    if (runtime?.what !== 'job' || !runtime.entry.parsed.ok || stored?.what !== 'cr' || !stored.entry.decoded.ok)
      return 'the job changed since the last reconcile and is no longer readable on both sides';
    return diffJobs(this.d.resolve(stored.entry.decoded.job), this.d.resolve(runtime.entry.parsed.job));
  }

  /** Recomputes a tool's plan from the inventory without acting on it (reconcile is pure and cheap per tool). */
  private planNow(tool: string): ToolPlan {
    const inv = this.inventory.inventoryOf(tool);
    const runtime = inv.runtime.map((r) => {
      const since = this.unmatched.get(r);
      return since === undefined ? r : Object.assign({}, r, { unmatchedSince: since });
    });
    return reconcileTool(
      { ...inv, runtime },
      {
        phase: this.d.phase.current(),
        now: this.now(),
        graceSeconds: this.d.config.sync.backfillGraceSeconds,
      },
    );
  }

  get synced(): boolean {
    return this.firstDone;
  }
}

export interface BackfillResult {
  tool: string;
  name: string;
  type: StoredJob['job_type'];
  outcome: 'created' | 'existed' | 'skipped' | 'failed';
  reason?: string;
}

const RESULTS_KEPT = 5000;

interface ToolSummary {
  counts: ToolPlan['counts'];
  runtimeJobs: number;
  storageJobs: number;
  nextDueAt?: number;
}

interface JobRef {
  tool: string;
  type: string;
  name: string;
}

const SERVICE: Tracked = Object.freeze({ what: 'service' });

/** The resourceVersion an entry was made from; Services and foreign workloads keep none (they are cheap to redo). */
function resourceVersionOf(tracked: Tracked): string | undefined {
  if (tracked.what === 'job') return tracked.entry.workload.resourceVersion;
  if (tracked.what === 'cr') return tracked.entry.resourceVersion;
  return undefined;
}

const jobKey = (e: { type: string; name: string }): string => `${e.type}/${e.name}`;

const crCollectionPath = (namespace: string, plural: string): string =>
  `/apis/${STORAGE_API_VERSION}/namespaces/${namespace}/${plural}`;

function workloadPath(w: RuntimeEntry['workload']): string {
  return w.kind === 'CronJob'
    ? `/apis/batch/v1/namespaces/${w.namespace}/cronjobs/${w.name}`
    : `/apis/apps/v1/namespaces/${w.namespace}/deployments/${w.name}`;
}

/** Values per job, grouped by tool: a tool's pass reads and prunes only its own entries, not every tool's. */
class PerTool<V> {
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

  /** Keeps only the tool's entries whose key (type/name) is in `live`. */
  retain(tool: string, live: ReadonlySet<string>): void {
    const jobs = this.byTool.get(tool);
    if (!jobs) return;
    for (const key of jobs.keys()) if (!live.has(key)) jobs.delete(key);
    if (jobs.size === 0) this.byTool.delete(tool);
  }
}
