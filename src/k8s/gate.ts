/** At most `width` tasks at a time; the rest wait in order. */
export class Gate {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly width: number) {
    if (!Number.isInteger(width) || width < 1) throw new TypeError('gate width must be a positive integer');
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await task();
    } finally {
      release();
    }
  }

  /** Waits for a place and holds it until the returned function is called (a second call does nothing). */
  async acquire(): Promise<() => void> {
    if (this.active >= this.width) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active += 1;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.active -= 1;
      this.waiting.shift()?.();
    };
  }
}
