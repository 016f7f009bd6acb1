import type { StoredJob } from '../jobs/model.js';

export interface BackfillResult {
  tool: string;
  name: string;
  type: StoredJob['job_type'];
  outcome: 'created' | 'existed' | 'skipped' | 'failed';
  reason?: string;
}

const RESULTS_KEPT = 5000;

/** What the backfills did: every outcome counted, the last few thousand results kept, and how many are pending. */
export class BackfillLog {
  private readonly results: BackfillResult[] = [];
  private readonly counts: Record<BackfillResult['outcome'], number> = {
    created: 0,
    existed: 0,
    skipped: 0,
    failed: 0,
  };
  private pendingCount = 0;

  /** `n` backfills were dispatched. */
  started(n: number): void {
    this.pendingCount += n;
  }

  /** A backfill ended; `result` undefined when it threw (nothing to record). */
  ended(result: BackfillResult | undefined): void {
    this.pendingCount -= 1;
    if (!result) return;
    this.counts[result.outcome] += 1;
    this.results.push(result);
    // Trimmed in batches: one splice per RESULTS_KEPT results, not one per result.
    if (this.results.length >= 2 * RESULTS_KEPT) this.results.splice(0, this.results.length - RESULTS_KEPT);
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
}
