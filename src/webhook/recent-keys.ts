/**
 * Remembers keys for a fixed time, bounded in size: `firstSeen` is true once per key per window.
 *
 * Why: the apiserver can call a validating webhook more than once for one user request (a webhook call retried after
 * a transport error; an UPDATE or DELETE re-validated when its optimistic-concurrency retry loop runs again), and the
 * AdmissionRequest uid names one call, not the user request (kubernetes/apimachinery#116). Counting a write once per
 * key and window absorbs those repeats; real writes of the same object within the window are undercounted, which a
 * signal meant for outreach can afford.
 */
export class RecentKeys {
  private readonly expiries = new Map<string, number>();

  constructor(
    private readonly windowMs: number,
    private readonly maxKeys: number,
  ) {}

  firstSeen(key: string, nowMs: number): boolean {
    this.evict(nowMs);
    const expiry = this.expiries.get(key);
    if (expiry !== undefined && expiry > nowMs) return false;
    this.expiries.delete(key);
    this.expiries.set(key, nowMs + this.windowMs);
    if (this.expiries.size > this.maxKeys) this.evictOldest();
    return true;
  }

  get size(): number {
    return this.expiries.size;
  }

  /** Insertion order is expiry order (the window is fixed), so expired keys are always at the front. */
  private evict(nowMs: number): void {
    for (const [key, expiry] of this.expiries) {
      if (expiry > nowMs) return;
      this.expiries.delete(key);
    }
  }

  private evictOldest(): void {
    const oldest = this.expiries.keys().next();
    if (!oldest.done) this.expiries.delete(oldest.value);
  }
}
