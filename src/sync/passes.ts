import { EarliestTimer } from './earliest-timer.js';
import type { Logger } from '../log/logger.js';
import type { ToolSummaries } from './report.js';

/**
 * When the sync's passes run: one at a time, each chained after the previous one; a watch event wakes the loop at
 * once, a retry or a grace's end at its time, and every pass asks for the next one within the interval. Backfills
 * run beside the passes, tracked so that `settled()` can wait for them.
 */
export class PassScheduler {
  private readonly timer = new EarliestTimer();
  /** A pass is chained and has not started: more events join it instead of chaining another. */
  private passQueued = false;
  private passing = false;
  private runningNow = false;
  private busy: Promise<void> = Promise.resolve();
  /** Backfills dispatched by passes and not finished: a pass never waits for them (one may hang to its deadline). */
  private readonly backfilling = new Set<Promise<unknown>>();

  constructor(
    private readonly o: {
      /** One incremental pass. */
      pass: () => void;
      intervalMs: number;
      now: () => number;
      logger: Logger;
      /** The tools' summaries, whose due times say when a tool is reconciled again. */
      summaries: ToolSummaries;
    },
  ) {}

  get running(): boolean {
    return this.runningNow;
  }

  /** Starts: once `ready` resolves, `first` runs (the first pass), and from then on wake-ups run passes. */
  start(ready: Promise<unknown>, first: () => void): void {
    this.runningNow = true;
    this.busy = ready.then(() => {
      if (!this.runningNow) return;
      // Passing before the first pass, so that the wake-ups it asks for (a grace period that ends) are kept.
      this.passing = true;
      first();
    });
  }

  /** Stops scheduling passes; `settled()` then waits for the pass and backfills in flight. */
  halt(): void {
    this.runningNow = false;
    this.timer.clear();
  }

  /** The tool must be reconciled again by `at` (a failed backfill's retry time). */
  dueBy(tool: string, at: number): void {
    this.o.summaries.dueBy(tool, at);
    this.wake(at - this.o.now());
  }

  /** Runs a pass in `delayMs`, or sooner if one is due sooner, and at the latest within the interval. */
  wake(delayMs: number): void {
    if (!this.runningNow || !this.passing) return;
    const delay = Math.max(0, Math.min(delayMs, this.o.intervalMs));
    this.timer.arm(Date.now() + delay, () => this.queuePass());
  }

  /** One pass at a time: each pass is chained after the previous one, so `settled()` awaits all of them. */
  private queuePass(): void {
    if (!this.runningNow || this.passQueued) return;
    this.passQueued = true;
    this.busy = this.busy
      .then(() => {
        this.passQueued = false;
        return this.o.pass();
      })
      .catch((err: unknown) => this.o.logger.error({ err }, 'sync pass failed'))
      .finally(() => this.wake(this.o.intervalMs));
  }

  /** Lets backfills run beside the passes; `settled()` waits for them. */
  dispatch(backfills: Promise<unknown>): void {
    const tracked: Promise<unknown> = backfills
      .catch((err: unknown) => this.o.logger.error({ err }, 'backfills failed'))
      .finally(() => this.backfilling.delete(tracked));
    this.backfilling.add(tracked);
  }

  /** Resolves when no pass is queued or running and no backfill is in flight. */
  async settled(): Promise<void> {
    do {
      await this.busy;
      await Promise.all(this.backfilling);
    } while (this.backfilling.size > 0 || this.passQueued);
  }
}
