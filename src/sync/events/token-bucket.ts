/**
 * A token bucket: `burst` tokens at most, refilled at `ratePerSecond`. Pure over the clock it is given, so that the
 * recorder's rate limit can be tested without waiting.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    if (!(ratePerSecond > 0)) throw new TypeError(`ratePerSecond must be positive, got ${ratePerSecond}`);
    if (!(burst >= 1)) throw new TypeError(`burst must be at least 1, got ${burst}`);
    this.tokens = burst;
    this.last = now;
  }

  /** Takes a token: 0 when one was there, else the milliseconds until one will be (nothing is taken then). */
  take(now: number): number {
    const elapsed = Math.max(0, now - this.last);
    this.tokens = Math.min(this.burst, this.tokens + (elapsed / 1000) * this.ratePerSecond);
    this.last = Math.max(this.last, now);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) / this.ratePerSecond) * 1000);
  }
}
