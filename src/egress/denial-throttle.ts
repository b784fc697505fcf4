// egress/denial-throttle.ts — identical refusals written once a second. A process in a
// goal's container looping on a refused connect (past its agent's share, without
// credentials, to a host no grant covers) would otherwise write an audit entry per attempt
// and fill the log. The first refusal of a kind (same goal, caller, stage, target, method
// and reason: the caller's key) is written at once; identical ones within the next
// REPEAT_WINDOW_MS are counted, and the count is written as one more entry (`repeats`) when
// the window ends, which opens the next window (so a steady flood costs one entry a second,
// as the relay listener's unheld-port reports do), or at flush() when the runtime closes.
// Every refusal is on record, as an entry or in a count. The refusals themselves are
// unchanged: only what is written.

/** How long identical refusals after a written one are counted instead of written. */
export const REPEAT_WINDOW_MS = 1_000;

interface Window<E> {
  entry: E;
  repeats: number;
  timer: NodeJS.Timeout;
}

export class DenialThrottle<E> {
  private readonly windows = new Map<string, Window<E>>();

  /**
   * `write(entry, repeats)` audits (repeats 0: the refusal itself; more: that many identical
   * ones since); `failed` hears of a count that could not be written when its window ended.
   */
  constructor(
    private readonly write: (entry: E, repeats: number) => void,
    private readonly failed: (e: unknown) => void,
    private readonly windowMs = REPEAT_WINDOW_MS,
  ) {}

  /**
   * Write `entry` now, or count it when an identical one (same `key`) was written within the
   * window. A write that throws leaves nothing counted and the caller's refusal stands.
   */
  report(key: string, entry: E): void {
    const open = this.windows.get(key);
    if (open) {
      open.repeats++;
      return;
    }
    this.write(entry, 0);
    this.hold(key, entry);
  }

  /** Write every count still open (the runtime closes, its audit log next). */
  flush(): void {
    for (const key of [...this.windows.keys()]) this.end(key, false);
  }

  private hold(key: string, entry: E): void {
    const timer = setTimeout(() => this.end(key, true), this.windowMs);
    timer.unref();
    this.windows.set(key, { entry, repeats: 0, timer });
  }

  /** Write the window's count, if any; `again`: then count the next window too. */
  private end(key: string, again: boolean): void {
    const w = this.windows.get(key);
    if (!w) return;
    clearTimeout(w.timer);
    this.windows.delete(key);
    if (w.repeats === 0) return;
    try {
      this.write(w.entry, w.repeats);
    } catch (e) {
      this.failed(e);
    }
    if (again) this.hold(key, w.entry);
  }
}
