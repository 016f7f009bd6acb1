import type { Phase } from '../../rollout/phases.js';
import type { ToolInventory } from '../reconcile.js';
import { decideEvents, eventSubjects, REPORTING_CONTROLLER } from './decide.js';
import type { EventTexts, SeriesState } from './decide.js';
import type { EventSink, WriteOutcome } from './recorder.js';

/** What the sync loop needs of the Events: a tool's pass, the Lease won or lost, the end. */
export interface SyncEvents {
  /**
   * One tool's inventory as a pass planned it (with `unmatchedSince`), in the phase of the pass: the writes due are
   * handed to the recorder. Returns when the tool is due again for its Events (ms), if it is.
   */
  observe(inv: ToolInventory, phase: Phase): number | undefined;
  /** This replica won (true) or lost the Lease: only the leader writes Events. */
  leading(yes: boolean): void;
  stop(): Promise<void>;
}

export interface EmitterOptions {
  sink: EventSink;
  /** This replica's name (the pod name): the Events' `reportingInstance`. */
  identity: string;
  texts: EventTexts;
  repeatSeconds: number;
  /** The grace period before a jobs-framework job without a CR gets an Event (the backfill's). */
  graceSeconds: number;
  now: () => number;
}

/** A failed write is tried again after this long (or at the next repeat, if sooner). */
const RETRY_SECONDS = 60;

/**
 * The sync leader's Events: for each tool planned, what `decideEvents` says is due goes to the recorder, and the
 * series written are kept per tool (only tools that have some) until their objects are gone or the phase changes.
 * A replica that loses the Lease forgets them all; the next leader adopts the series it finds (recorder: 409).
 */
export class ToolEvents implements SyncEvents {
  private readonly series = new Map<string, Map<string, SeriesState>>();
  private leader = false;

  constructor(private readonly o: EmitterOptions) {}

  observe(inv: ToolInventory, phase: Phase): number | undefined {
    if (!this.leader) return undefined;
    const now = this.o.now();
    const { subjects, nextDueAt: graceEnds } = eventSubjects(inv, { phase, now, graceSeconds: this.o.graceSeconds });
    const known = this.series.get(inv.tool) ?? new Map<string, SeriesState>();
    const { writes, live, nextDueAt } = decideEvents(subjects, known, {
      phase,
      now,
      repeatSeconds: this.o.repeatSeconds,
      retrySeconds: Math.min(RETRY_SECONDS, this.o.repeatSeconds),
      texts: this.o.texts,
      reporting: { controller: REPORTING_CONTROLLER, instance: this.o.identity },
    });
    for (const key of known.keys()) if (!live.has(key)) known.delete(key);
    for (const write of writes) {
      const before = known.get(write.key);
      const pending: SeriesState = { count: before?.count ?? 0, at: now, pending: true, failed: false };
      known.set(write.key, pending);
      const queued = this.o.sink.submit(write, (outcome) => this.written(known, write.key, pending, outcome));
      // Dropped (the queue was full): tried again like a failed write.
      if (!queued) known.set(write.key, { ...pending, pending: false, failed: true });
    }
    if (known.size > 0) this.series.set(inv.tool, known);
    else this.series.delete(inv.tool);
    const dues = [graceEnds, nextDueAt].filter((at): at is number => at !== undefined);
    return dues.length > 0 ? Math.min(...dues) : undefined;
  }

  /** Records how a write ended, unless the series was forgotten or written again meanwhile. */
  private written(known: Map<string, SeriesState>, key: string, pending: SeriesState, outcome: WriteOutcome): void {
    if (known.get(key) !== pending) return;
    known.set(
      key,
      outcome.written
        ? { count: outcome.count, at: outcome.at, pending: false, failed: false }
        : { count: pending.count, at: outcome.at, pending: false, failed: true },
    );
  }

  leading(yes: boolean): void {
    this.leader = yes;
    if (yes) return;
    this.series.clear();
    this.o.sink.clear();
  }

  stop(): Promise<void> {
    this.leader = false;
    return this.o.sink.stop();
  }

  /** Series kept, across tools (for tests). */
  get size(): number {
    let n = 0;
    for (const known of this.series.values()) n += known.size;
    return n;
  }
}
