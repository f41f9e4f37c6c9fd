/**
 * A polling loop's wait between turns: `sleep(ms)` ends early when something `wake`s it. A wake that comes
 * while the loop is busy (between `turn()` and its next sleep) is kept, so its next sleep returns at once
 * instead of missing it.
 */
export class Doze {
  private woken = false;
  private wakeUp: (() => void) | null = null;

  /** A loop's turn begins: the wakes it will see are those from now on. */
  turn(): void {
    this.woken = false;
  }

  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** Waits `ms`, or until woken (at once if woken since the turn began). */
  sleep(ms: number): Promise<void> {
    if (this.woken) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeUp = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }
}
