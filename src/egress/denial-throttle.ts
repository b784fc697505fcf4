// egress/denial-throttle.ts — refusals written at a bounded rate, every one still counted.
// A process in a goal's container (or a human sandbox's) can be refused thousands of times
// a second, and each refusal was an entry. Two floods are bounded here:
//   - identical refusals (same goal, caller, stage, target, method and reason: the entry's
//     key), a process looping on one refused connect: the first is written at once;
//     identical ones within the next REPEAT_WINDOW_MS are counted, and the count is written
//     as one more entry (`repeats`) when the window ends, which opens the next window (a
//     steady flood costs one entry a second, as the relay listener's unheld-port reports do);
//   - refusals that differ (a process trying many hosts or ports): per scope (a caller),
//     at most DISTINCT_PER_WINDOW entries are written in a window, a `repeats` count being
//     one of them (else a process keeping every refused host it ever tried repeating would
//     add an entry a second per host); the refusals past them are counted into one summary
//     (how many, how many distinct keys, how many at each stage, the first FLOOD_SAMPLE of
//     them) written when the window ends (the distinct keys are told apart up to
//     DISTINCT_KEYS_MAX a window: past that the summary says "at least" and is flagged, so
//     a process inventing millions of hosts a second cannot grow the set held for it),
//     and a window that ended with a summary opens the
//     next one already full, so a steady flood of distinct refusals costs one summary a
//     second. A refusal at a stage the scope has not written while its flood lasts is
//     written all the same (at most one per stage): a process cannot hide the refusal that
//     matters (another caller's credentials, a name leading inward) behind 20 of junk.
// Counts still open are written at flush() (the runtime or the run closes). The refusals
// themselves are unchanged: only what is written.

/** How long identical refusals after a written one are counted instead of written. */
export const REPEAT_WINDOW_MS = 1_000;
/** Distinct refusals a scope has written per window before the rest are counted into a summary. */
export const DISTINCT_PER_WINDOW = 20;
/**
 * How many distinct keys a scope's window tells apart (each is held until the window ends).
 * Past it the summary's `distinct` is a lower bound, flagged `distinctCapped`. Real
 * refusal bursts (a crawler trying a page's hosts) are far below; only invented hosts pass.
 */
export const DISTINCT_KEYS_MAX = 4096;
/** How many of a summary's distinct refusals it names. */
export const FLOOD_SAMPLE = 5;

/** The refusals of one scope's window past its DISTINCT_PER_WINDOW written ones. */
export interface FloodCount<E> {
  /** Every refusal counted (identical ones included). */
  refusals: number;
  /** How many distinct keys they had; a lower bound when `distinctCapped`. */
  distinct: number;
  /** More than DISTINCT_KEYS_MAX distinct keys came: `distinct` is that many, and there were more. */
  distinctCapped: boolean;
  /** Refusals counted per stage. */
  stages: Record<string, number>;
  /** The first FLOOD_SAMPLE distinct ones, in arrival order. */
  sample: E[];
}

/** What the throttle writes through (each may throw: the log cannot take it). */
export interface DenialWriter<E> {
  /** One entry: the refusal itself (repeats 0) or that many identical ones since it. */
  entry(entry: E, repeats: number): void;
  /** One summary of a scope's window; `first` is its first counted refusal (who, where). */
  flood(first: E, count: FloodCount<E>): void;
}

interface Repeats<E> {
  scope: string;
  stage: string;
  entry: E;
  repeats: number;
  timer: NodeJS.Timeout;
}

interface Scope<E> {
  /** Entries written in this window (refusals and `repeats` counts). */
  written: number;
  /** The stages written in this window, and in the windows of a flood that led to it. */
  stagesWritten: Set<string>;
  timer: NodeJS.Timeout;
  flood?: {
    first: E;
    refusals: number;
    keys: Set<string>;
    /** A key came that was not among DISTINCT_KEYS_MAX held: `keys.size` is a lower bound. */
    capped: boolean;
    stages: Record<string, number>;
    sample: E[];
  };
}

export class DenialThrottle<E> {
  private readonly repeats = new Map<string, Repeats<E>>();
  private readonly scopes = new Map<string, Scope<E>>();

  /** `failed` hears of a count that could not be written when its window ended. */
  constructor(
    private readonly write: DenialWriter<E>,
    private readonly failed: (e: unknown) => void,
    private readonly windowMs = REPEAT_WINDOW_MS,
  ) {}

  /**
   * Write `entry` now; or count it, when an identical one (same `key`) was written within
   * the window, or when its `scope` has written DISTINCT_PER_WINDOW entries in its window
   * and one at `stage` among them (or in the flood before it).
   * `stage` is what the summary counts it under. A write that throws leaves nothing counted
   * and the caller's refusal stands.
   */
  report(scope: string, key: string, stage: string, entry: E): void {
    const open = this.repeats.get(key);
    if (open) {
      open.repeats++;
      return;
    }
    if (this.countIfFull(scope, key, stage, entry, 1)) return;
    this.write.entry(entry, 0);
    this.holdRepeats(scope, key, stage, entry);
    this.wrote(scope, stage);
  }

  /** Write every count still open (the runtime closes, its audit log next). */
  flush(): void {
    for (const key of [...this.repeats.keys()]) this.endRepeats(key, false);
    for (const scope of [...this.scopes.keys()]) this.endScope(scope, false);
  }

  /**
   * When `scope` has written its DISTINCT_PER_WINDOW entries in this window, one at `stage`
   * among them (or in the flood before it), count `n` refusals of `key` into its summary
   * and say so.
   */
  private countIfFull(scope: string, key: string, stage: string, entry: E, n: number): boolean {
    const s = this.scopes.get(scope);
    if (!s || s.written < DISTINCT_PER_WINDOW || !s.stagesWritten.has(stage)) return false;
    s.flood ??= { first: entry, refusals: 0, keys: new Set(), capped: false, stages: {}, sample: [] };
    const f = s.flood;
    f.refusals += n;
    f.stages[stage] = (f.stages[stage] ?? 0) + n;
    if (!f.keys.has(key)) {
      if (f.keys.size >= DISTINCT_KEYS_MAX) {
        f.capped = true;
        return true;
      }
      f.keys.add(key);
      if (f.sample.length < FLOOD_SAMPLE) f.sample.push(entry);
    }
    return true;
  }

  /** One more entry written in `scope`'s window (which opens with it when none is open). */
  private wrote(scope: string, stage: string): void {
    const s = this.scopes.get(scope);
    if (!s) {
      this.openScope(scope, 1, new Set([stage]));
      return;
    }
    s.written++;
    s.stagesWritten.add(stage);
  }

  private holdRepeats(scope: string, key: string, stage: string, entry: E): void {
    const timer = setTimeout(() => this.endRepeats(key, true), this.windowMs);
    timer.unref();
    this.repeats.set(key, { scope, stage, entry, repeats: 0, timer });
  }

  /**
   * Write the window's count, if any, as one of its scope's entries, or into the scope's
   * summary when the scope's window is full (the next identical refusal is then counted
   * there too); `again`: after a written count, count the next window too.
   */
  private endRepeats(key: string, again: boolean): void {
    const w = this.repeats.get(key);
    if (!w) return;
    clearTimeout(w.timer);
    this.repeats.delete(key);
    if (w.repeats === 0) return;
    if (this.countIfFull(w.scope, key, w.stage, w.entry, w.repeats)) return;
    this.attempt(() => this.write.entry(w.entry, w.repeats));
    this.wrote(w.scope, w.stage);
    if (again) this.holdRepeats(w.scope, key, w.stage, w.entry);
  }

  private openScope(scope: string, written: number, stagesWritten: Set<string>): void {
    const timer = setTimeout(() => this.endScope(scope, true), this.windowMs);
    timer.unref();
    this.scopes.set(scope, { written, stagesWritten, timer });
  }

  /**
   * Write the window's summary, if any; `again`: then the next window starts full, and the
   * stages written so far stay written.
   */
  private endScope(scope: string, again: boolean): void {
    const s = this.scopes.get(scope);
    if (!s) return;
    clearTimeout(s.timer);
    this.scopes.delete(scope);
    const f = s.flood;
    if (!f) return;
    this.attempt(() =>
      this.write.flood(f.first, {
        refusals: f.refusals,
        distinct: f.keys.size,
        distinctCapped: f.capped,
        stages: f.stages,
        sample: f.sample,
      }),
    );
    if (again) this.openScope(scope, DISTINCT_PER_WINDOW, s.stagesWritten);
  }

  private attempt(write: () => void): void {
    try {
      write();
    } catch (e) {
      this.failed(e);
    }
  }
}

/** A summary's reason: how many refusals, how many distinct, and why they were not each written. */
export function floodInWords(
  count: Pick<FloodCount<unknown>, "refusals" | "distinct" | "distinctCapped" | "stages">,
): string {
  const stages = Object.entries(count.stages)
    .map(([stage, n]) => `${n} ${stage}`)
    .join(", ");
  const distinct = count.distinctCapped ? `at least ${count.distinct}` : String(count.distinct);
  return `${count.refusals} refusals (${distinct} distinct; ${stages}) within a second, past the ${DISTINCT_PER_WINDOW} entries written: counted, not each written`;
}
