/**
 * One timer that fires at the earliest time asked of it: asking for a later time while it is armed for an earlier
 * one changes nothing, asking for an earlier one moves it. The pass scheduler and the tombstone writer each keep one.
 */
export class EarliestTimer {
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires (wall clock ms); Infinity when none is armed. */
  private at = Infinity;

  /** `unref`: an armed timer does not keep the process alive. */
  constructor(private readonly options: { unref?: boolean } = {}) {}

  /** Runs `fn` at `at` (wall clock ms), unless the timer is already armed for `at` or sooner. */
  arm(at: number, fn: () => void): void {
    if (this.timer !== undefined && this.at <= at) return;
    this.clear();
    this.at = at;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.at = Infinity;
        fn();
      },
      Math.max(0, at - Date.now()),
    );
    if (this.options.unref) this.timer.unref();
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.at = Infinity;
  }
}
