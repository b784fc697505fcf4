// sandbox/frozen-goals.ts — the goals whose containers DockerBackend froze (docker pause: their
// node's fence, cluster/fence.ts), the engine calls that freeze and unfreeze them (the goal's
// own container and its stdio MCP servers'), and what waits for them to thaw: a container
// acquired for such a goal, an MCP server started for it, a call sent on its sandbox
// (docker.ts, docker-sandbox.ts). They go on once the engine has answered the unpause (an exec
// into a container still paused is refused), not as it is sent, and not at all when the goal
// was frozen again meanwhile; or once the goal is removed (they then find it retired). An unpause
// the engine refused leaves the goal frozen, its waiters waiting, for the next unpause (the
// fence tries again with the heartbeats); release() lets them go when it gives up. How long a
// goal has been frozen in all (clock()) is what an MCP call's timeout leaves out
// (tools/mcp/request-time.ts): a server frozen mid-call answers nothing meanwhile.

import { performance } from "node:perf_hooks";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import type { FreezeClock } from "./mcp-container.js";

/** The engine's side: pause and unpause a container by name or id (docker-containers.ts). */
export interface FreezeEngine {
  pause(name: string): Promise<void>;
  unpause(name: string): Promise<void>;
}

interface Frozen {
  promise: Promise<void>;
  open: () => void;
  /** What waits with an abort signal (untilThawed): each leaves this set as its signal aborts. */
  waiters: Set<() => void>;
  /** Frozen again while an unpause was under way: that unpause leaves it frozen. */
  again: boolean;
  /** The unpause under way (its engine calls sent, not all answered): settles once they are. */
  thawing: Promise<void> | undefined;
  /** How many unpauses began on it: a pause that waited tells by it that a lift came meanwhile. */
  unpauses: number;
  /** When it was frozen (performance.now()). */
  since: number;
  /**
   * Its unfreeze given up, its containers being removed (unpause's `last`): an unpause that
   * lands meanwhile (an earlier try, counted refused unanswered) does not let its waiters go;
   * release() does, once the removal is done.
   */
  removing: boolean;
}

/**
 * How long a freeze waits for its goal's unpauses still out before it pauses all the same (well
 * within the 10 s the fence's lift waits for the freeze).
 */
const UNPAUSED_WAIT_MS = 4_000;

/**
 * How long the last unpause of a goal (its fence's last try, `last`) waits for the engine before
 * it counts as refused, when its caller names no bound (`answerMs`): the fence names its lease
 * (cluster/fence.ts tryAgain).
 */
export const LAST_ANSWER_MS = 10_000;

export class FrozenGoals {
  private readonly held = new Map<string, Frozen>();
  /** Per goal: the ms its freezes that ended lasted, in all. */
  private readonly spent = new Map<string, number>();
  /** Per goal: how many times it was frozen (what tells an unpause it was frozen again since it began). */
  private readonly freezes = new Map<string, number>();
  /**
   * Per goal: its unpauses whose engine calls are out, settling as each is answered. A freeze's
   * pauses are sent after them all: not only after the one under way on its freeze, which an
   * older unpause answered first may have let go while a newer one was still out.
   */
  private readonly unpausing = new Map<string, Set<Promise<void>>>();

  /**
   * `names`: the goal's containers now (its own and its live servers'); `retired`: whether the
   * goal was removed for good (its containers go as they are); `removeAll`: remove the goal's
   * containers (its servers' too), an unfreeze given up (unpause's `last`).
   */
  constructor(
    private readonly engine: FreezeEngine,
    private readonly names: (goalId: string) => string[],
    private readonly retired: (goalId: string) => boolean,
    private readonly removeAll: (goalId: string) => Promise<void>,
    /** The node's log: a pause refused after its freeze was answered (see pause). */
    private readonly log: (line: string) => void = () => {},
  ) {}

  /** Freeze the goal's containers (SandboxBackend.pause); answered once every pause is. */
  async pause(goalId: string): Promise<void> {
    const unpausing = this.freeze(goalId);
    const frozen = this.held.get(goalId);
    const unpauses = frozen?.unpauses;
    const over = () =>
      unpausing !== undefined && (this.held.get(goalId) !== frozen || frozen?.unpauses !== unpauses);
    const send = () => firstRefusal(this.names(goalId).map((n) => this.engine.pause(n)));
    // Frozen again while an unpause is under way (the fence falls again as it is lifted): that
    // unpause lands first. A pause sent meanwhile found the container still paused and left it,
    // and the unpause then let it run: an exec under way went on through the new fence. One the
    // engine does not answer within UNPAUSED_WAIT_MS: the pause goes all the same, and again once
    // it lands (unless the freeze is over by then). Before, the freeze waited for it as long as
    // the engine took, the container running meanwhile through the new fence.
    // That late pause refused is logged as a refusal at the fence is (the fence's cluster.fenced
    // entry, written by then, counts the goal frozen): the goal stays held (its calls wait at
    // the gate and on its sandbox) but its container runs on through the fence, an exec under
    // way in it included, until the lift lets the goal go. Before, the refusal went unrecorded.
    if (unpausing && !(await settlesWithin(unpausing, UNPAUSED_WAIT_MS)))
      void unpausing
        .then(() => (over() ? undefined : send()))
        .catch((e: unknown) =>
          this.log(
            `cluster: fenced: the containers of goal ${goalId}, let run by an unfreeze of an earlier fence that landed late, could not be frozen again (${errorMessage(e)}); its calls still wait, but a tool call already under way in them goes on`,
          ),
        );
    // Let go meanwhile by a newer unpause (the new fence's lift, which waits for this freeze 10 s
    // at most, came before the old unpause landed) or the goal removed: its freeze is over, and
    // this pause is not sent. Before, it froze the container after the lift, for good under a
    // goal its node kept (its calls hung; the sweep removed it as paused with nothing holding it).
    // Nor once a newer unpause began (it is that lift's to say): before, one the engine answered
    // after the older unpause was refused let the goal go, and this pause, sent meanwhile, froze
    // its container after it.
    if (over()) return;
    // Answered once every pause is, the first refusal thrown: answered at the first, the lift's
    // unpause came before a pause still under way, which then froze a kept goal's for good.
    await send();
  }

  /**
   * Let the goal's containers run again; its waiters go once every unpause is answered. One
   * refused leaves the goal frozen (its waiters wait, the sweep keeps its paused containers)
   * for the next unpause: before, its waiters went on into a container still paused, and the
   * sweep then removed it as a stopped one under a goal its node kept. With `last` (its fence
   * gives up), a refusal (or no answer within `answerMs`, LAST_ANSWER_MS unless given) removes
   * the goal's containers and lets its waiters go once they are removed, into a fresh
   * container over the same workspace (release), unless the goal was frozen again since this
   * unpause began (a new fence: its lift unfreezes it). Before, a new lift's unpause hid the new
   * freeze, and a last try held past both gave up a goal the new fence had tried once. A refusal
   * once the goal is no longer frozen (another unpause let it go, or the goal was removed) is
   * none: it answers.
   */
  async unpause(goalId: string, opts: { last?: boolean; answerMs?: number } = {}): Promise<void> {
    const freezes = this.freezeCount(goalId);
    const thawed = this.thawing(goalId);
    let answered = false;
    let sent: Promise<void> | undefined;
    try {
      // Each is tried (the goal's container and its servers), the first refusal thrown.
      sent = firstRefusal(this.names(goalId).map((n) => this.engine.unpause(n)));
      // The last not answered within its bound (answerMs) is refused: the goal is given up as on a
      // refusal. Before, it stayed frozen, its calls held, until the engine answered (for good
      // when it never did) or a new fence's lift tried again.
      await (opts.last ? answeredWithin(sent, opts.answerMs ?? LAST_ANSWER_MS, goalId) : sent);
      answered = true;
    } catch (e) {
      // Out until the engine answers (one counted refused unanswered may land yet): a freeze
      // pauses after it. Before, it counted as landed at its bound, and landing after the pause
      // of a fence fallen meanwhile, it let the container run through that fence.
      thawed(false, sent);
      // Let go meanwhile by another unpause (an earlier try of the fence's, counted refused
      // unanswered, that the engine answered late) or removed: nothing is frozen, this is no
      // refusal. Before, a last try refused after it was given up: the containers of a goal its
      // node kept, running again, were removed. Nor once the goal was removed (cancelled, ended):
      // nothing of it is frozen; before, its fence's last try, out up to a lease, counted as
      // refused and was audited as its given up (cluster.unfreeze_given_up on a cancelled goal).
      if (this.retired(goalId)) return;
      if (!this.held.has(goalId) && !this.frozenSince(goalId, freezes)) return;
      if (!opts.last || this.frozenSince(goalId, freezes)) throw e;
      // An earlier try the engine answers while the containers are removed does not let the
      // waiters go: they would run on in a container being removed (an exec cut off by the
      // removal, a write half made). Before, it did; release lets them go once it is done.
      const f = this.held.get(goalId);
      if (f) f.removing = true;
      try {
        await this.removeAll(goalId);
      } finally {
        if (f) f.removing = false;
      }
      // Frozen again as its containers were removed: release keeps it frozen for that lift.
      this.release(goalId);
      throw e;
    } finally {
      if (answered) thawed(true);
    }
  }

  /**
   * The goal's unpause is given up (refused at every try): its waiters go (into containers
   * its owner removed) and it is no longer frozen, for the sweep as for a container made now.
   * Not when it was frozen again meanwhile (a new fence fell as its containers were removed):
   * it stays frozen, its waiters waiting, for that fence's lift. Before, they went on through
   * the new fence, in a fresh container nothing froze.
   */
  release(goalId: string): void {
    const f = this.held.get(goalId);
    if (!f || f.again) return;
    this.held.delete(goalId);
    this.thawedAfter(goalId, f);
    f.open();
  }

  /**
   * A container made for the goal while it was frozen is frozen too, unless an unpause is under
   * way. One that began after this pause was sent may have missed the container (its list was
   * taken before the container was the goal's, or it found it not paused yet): it is let run
   * again here. Before, it stayed frozen for good under a goal its node had kept (a server's
   * calls then hung). A goal removed meanwhile keeps it frozen: its removal takes it.
   */
  async freezeLate(goalId: string, name: string): Promise<void> {
    if (!this.wanted(goalId)) return;
    await this.engine.pause(name);
    if (!this.wanted(goalId) && !this.retired(goalId)) await this.engine.unpause(name);
  }

  /** How many times the goal was frozen: an unpause reads it as it begins (see frozenSince). */
  freezeCount(goalId: string): number {
    return this.freezes.get(goalId) ?? 0;
  }

  /**
   * Whether the goal was frozen since `count` was read (freezeCount). Not only while that
   * freeze's `again` holds: an unpause begun after it (the new fence's lift) clears that.
   */
  private frozenSince(goalId: string, count: number): boolean {
    return this.freezeCount(goalId) !== count;
  }

  has(goalId: string): boolean {
    return this.held.has(goalId);
  }

  /**
   * Whether a container of the goal made now must be frozen: it is frozen, and no unpause is
   * under way (or it was frozen again meanwhile). Not the same as has(): the waiters of an
   * unpause under way still wait, but its containers are being let run.
   */
  private wanted(goalId: string): boolean {
    const f = this.held.get(goalId);
    return f !== undefined && (f.thawing === undefined || f.again);
  }

  /** While the goal is frozen: settles once it thawed (or was removed). */
  thawed(goalId: string): Promise<void> | undefined {
    return this.held.get(goalId)?.promise;
  }

  /**
   * Settles once the goal is not frozen (at once when it is not, again after a freeze that
   * fell as it thawed): true; or as `signal` aborts first: false. A caller cancelled while its
   * goal is frozen (goal.cancel, the agent stopped, a timeout) is not held until the thaw, and
   * leaves nothing behind: no listener on its signal, no reaction on the freeze (a race with
   * thawed() would keep one per cancelled call for as long as the fence holds).
   */
  async untilThawed(goalId: string, signal?: AbortSignal): Promise<boolean> {
    for (let f = this.held.get(goalId); f; f = this.held.get(goalId)) {
      if (signal?.aborted) return false;
      if (!signal) {
        await f.promise;
        continue;
      }
      const { waiters } = f;
      const thawed = await new Promise<boolean>((resolve) => {
        const onAbort = () => {
          waiters.delete(onThaw);
          resolve(false);
        };
        const onThaw = () => {
          signal.removeEventListener("abort", onAbort);
          resolve(true);
        };
        waiters.add(onThaw);
        signal.addEventListener("abort", onAbort, { once: true });
      });
      if (!thawed) return false;
    }
    return !signal?.aborted;
  }

  /** How many wait with a signal for the goal's thaw (untilThawed): what a cancel must not leave. */
  waiting(goalId: string): number {
    return this.held.get(goalId)?.waiters.size ?? 0;
  }

  /** How long the goal has been frozen in all (ms, monotonic), the freeze under way included. */
  frozenMs(goalId: string): number {
    const f = this.held.get(goalId);
    return (this.spent.get(goalId) ?? 0) + (f ? performance.now() - f.since : 0);
  }

  /** The goal's freezes as one of its MCP servers' calls sees them. */
  clock(goalId: string): FreezeClock {
    return {
      thawed: () => this.thawed(goalId),
      untilThawed: (signal) => this.untilThawed(goalId, signal),
      frozenMs: () => this.frozenMs(goalId),
    };
  }

  /**
   * The goal is being frozen (before the engine is asked). Returns the goal's unpauses still out,
   * if any: their engine calls must land before the pause's (see DockerBackend.pause).
   */
  private freeze(goalId: string): Promise<void> | undefined {
    this.freezes.set(goalId, this.freezeCount(goalId) + 1);
    // Every unpause still out lands first. Before, only the one under way on the goal's freeze:
    // a goal let go by an older unpause answered first was frozen again at once, a newer one
    // still out (the last lift's, held by the engine) then let its container run through the
    // new fence, its audit saying it frozen.
    const out = [...(this.unpausing.get(goalId) ?? [])];
    const landed = out.length > 0 ? Promise.all(out).then(() => {}) : undefined;
    const held = this.held.get(goalId);
    if (held) {
      held.again = true;
      return landed;
    }
    let resolve = () => {};
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    const waiters = new Set<() => void>();
    const open = () => {
      resolve();
      for (const w of waiters) w();
      waiters.clear();
    };
    this.held.set(goalId, {
      promise,
      open,
      waiters,
      again: false,
      thawing: undefined,
      unpauses: 0,
      since: performance.now(),
      removing: false,
    });
    return landed;
  }

  /**
   * The goal is being unfrozen (before the engine is asked): call what this returns once the
   * engine has answered every unpause (true), or refused one (false: it stays frozen); with
   * `landed`, engine calls still out (a last try counted refused unanswered), the unpause stays
   * among the goal's unpauses out until they settle.
   */
  private thawing(goalId: string): (answered: boolean, landed?: Promise<unknown>) => void {
    const f = this.held.get(goalId);
    let answered = () => {};
    const thawing = new Promise<void>((r) => {
      answered = r;
    });
    if (f) {
      f.again = false;
      f.thawing = thawing;
      f.unpauses++;
    }
    const out = this.unpausing.get(goalId) ?? new Set<Promise<void>>();
    out.add(thawing);
    this.unpausing.set(goalId, out);
    const done = () => {
      answered();
      out.delete(thawing);
      if (out.size === 0 && this.unpausing.get(goalId) === out) this.unpausing.delete(goalId);
    };
    return (ok, landed) => {
      // Still out while `landed` (its engine calls) has not settled: a pause waits for it.
      if (landed) void landed.then(done, done);
      else done();
      if (!f) return;
      if (f.thawing === thawing) f.thawing = undefined;
      if (ok && this.held.get(goalId) === f && !f.again && !f.removing) {
        this.held.delete(goalId);
        this.thawedAfter(goalId, f);
        f.open();
      }
    };
  }

  private thawedAfter(goalId: string, f: Frozen): void {
    this.spent.set(goalId, (this.spent.get(goalId) ?? 0) + performance.now() - f.since);
  }

  /** The goal's containers are removed: its waiters go (and find it retired). */
  drop(goalId: string): void {
    this.held.get(goalId)?.open();
    this.held.delete(goalId);
    this.spent.delete(goalId);
    this.freezes.delete(goalId);
  }
}

/** Whether `p` settled within `ms`. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `sent`, or a refusal once `ms` passed without its answer (what lands later is let be: the
 * goal's containers are removed by then, or it was frozen again, and that freeze pauses them
 * again once it lands: see unpause).
 */
async function answeredWithin(sent: Promise<void>, ms: number, goalId: string): Promise<void> {
  sent.catch(() => {});
  if (await settlesWithin(sent, ms)) return sent;
  throw new AidoError(
    ErrorCode.sandboxFailed,
    `the engine did not answer the unpause of goal ${goalId}'s containers within ${ms} ms`,
    { goalId },
  );
}

/** Settles once every one of `calls` has: throws the first refusal, if any. */
async function firstRefusal(calls: Promise<unknown>[]): Promise<void> {
  const refused = (await Promise.allSettled(calls)).find((r) => r.status === "rejected");
  if (refused) throw refused.reason;
}
