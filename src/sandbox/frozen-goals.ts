// sandbox/frozen-goals.ts — the goals whose containers DockerBackend froze (docker pause: their
// node's fence, cluster/fence.ts), and what waits for them to thaw: a container acquired for
// such a goal, an MCP server started for it, a call sent on its sandbox (docker.ts,
// docker-sandbox.ts). They go on once the engine has answered the unpause (an exec into a
// container still paused is refused), not as it is sent, and not at all when the goal was
// frozen again meanwhile; or once the goal is removed (they then find it retired).

interface Frozen {
  promise: Promise<void>;
  open: () => void;
  /** Frozen again while an unpause was under way: that unpause leaves it frozen. */
  again: boolean;
  /** The unpause under way (its engine calls sent, not all answered): settles once they are. */
  thawing: Promise<void> | undefined;
}

export class FrozenGoals {
  private readonly held = new Map<string, Frozen>();

  has(goalId: string): boolean {
    return this.held.has(goalId);
  }

  /**
   * Whether a container of the goal made now must be frozen: it is frozen, and no unpause is
   * under way (or it was frozen again meanwhile). Not the same as has(): the waiters of an
   * unpause under way still wait, but its containers are being let run.
   */
  wanted(goalId: string): boolean {
    const f = this.held.get(goalId);
    return f !== undefined && (f.thawing === undefined || f.again);
  }

  /** While the goal is frozen: settles once it thawed (or was removed). */
  thawed(goalId: string): Promise<void> | undefined {
    return this.held.get(goalId)?.promise;
  }

  /**
   * The goal is being frozen (before the engine is asked). Returns the unpause under way, if
   * any: its engine calls must land before the pause's (see DockerBackend.pause).
   */
  freeze(goalId: string): Promise<void> | undefined {
    const held = this.held.get(goalId);
    if (held) {
      held.again = true;
      return held.thawing;
    }
    let open = () => {};
    const promise = new Promise<void>((r) => {
      open = r;
    });
    this.held.set(goalId, { promise, open, again: false, thawing: undefined });
    return undefined;
  }

  /**
   * The goal is being unfrozen (before the engine is asked): call what this returns once the
   * engine has answered (or refused: its waiters then fail rather than wait for good).
   */
  thawing(goalId: string): () => void {
    const f = this.held.get(goalId);
    let answered = () => {};
    const thawing = new Promise<void>((r) => {
      answered = r;
    });
    if (f) {
      f.again = false;
      f.thawing = thawing;
    }
    return () => {
      answered();
      if (!f) return;
      if (f.thawing === thawing) f.thawing = undefined;
      if (this.held.get(goalId) === f && !f.again) {
        this.held.delete(goalId);
        f.open();
      }
    };
  }

  /** The goal's containers are removed: its waiters go (and find it retired). */
  drop(goalId: string): void {
    this.held.get(goalId)?.open();
    this.held.delete(goalId);
  }
}
