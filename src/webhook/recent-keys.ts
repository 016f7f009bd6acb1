/**
 * Remembers keys for a fixed time, bounded in size: `firstSeen` is true once per key per window.
 *
 * Why: the apiserver can call a validating webhook more than once for one user request (a webhook call retried after
 * a transport error; an UPDATE or DELETE re-validated when its optimistic-concurrency retry loop runs again), and the
 * AdmissionRequest uid names one call, not the user request (kubernetes/apimachinery#116). Counting a write once per
 * key and window absorbs those repeats; real writes of the same object within the window are undercounted, which a
 * signal meant for outreach can afford.
 *
 * Two generations of Maps that are replaced, never deleted from: deleting the oldest entries of one big Map leaves
 * holes V8 skips on every iteration, which made each call cost ~40 µs at 50,000 keys.
 */
export class RecentKeys {
  private current = new Map<string, number>();
  private previous = new Map<string, number>();
  private rotateAt = Number.NEGATIVE_INFINITY;
  private readonly generationSize: number;

  constructor(
    private readonly windowMs: number,
    maxKeys: number,
  ) {
    this.generationSize = Math.max(1, Math.floor(maxKeys / 2));
  }

  firstSeen(key: string, nowMs: number): boolean {
    if (nowMs >= this.rotateAt || this.current.size >= this.generationSize) this.rotate(nowMs);
    const expiry = this.current.get(key) ?? this.previous.get(key);
    if (expiry !== undefined && expiry > nowMs) return false;
    this.current.set(key, nowMs + this.windowMs);
    return true;
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }

  /**
   * On time, everything in `previous` has expired (it is at least one window old). Early, because `current` is full,
   * the oldest generation is dropped even if unexpired: the size bound wins.
   */
  private rotate(nowMs: number): void {
    this.previous = this.current;
    this.current = new Map();
    this.rotateAt = nowMs + this.windowMs;
  }
}
