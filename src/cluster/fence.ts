// cluster/fence.ts — fencing (cluster.on_redis_loss: hold, the default; docs/scale-out.md "A
// node cut off from Redis"). A node that cannot renew its lease (a partition: it lost Redis
// while the others kept it) would run on goals a survivor takes once that lease lapses, and
// their model and tool calls would run on two nodes. So the node fences itself before any
// survivor can take anything: once `lease_ms - margin` has passed since it SENT the newest
// renewal Redis answered, it is unsure of its goals exactly as after a pause (node.ts: new
// model calls, tool calls, events and ends wait), and the containers of its goals are frozen
// (`docker pause` through the sandbox backend) so that an exec already under way stops too.
// The node leaves the fence when a heartbeat has renewed the lease and looked which goals are
// still its own (lost-goals.ts stops the others, whose containers are removed as their goals
// end): the kept goals' containers are unfrozen and their held work goes on.
// Clocks: the send time, not the answer's, because the key's TTL counts from when Redis applied
// the write, which is after the send; and a monotonic clock (performance.now), so that a jump of
// the wall clock neither fences a healthy node nor keeps a cut-off one unfenced.
// Margin: a quarter lease. It leaves that long (7.5 s by default) between the fence and the
// earliest moment a survivor can take a goal (the lease key gone: BullMQ's lock lapse and
// stalled check only hand the job over, the take waits for the key), for the timer to fire on a
// busy event loop and the freeze to reach the engine. And since heartbeat_ms is at most half of
// lease_ms (config-schema.ts), the fence point (three quarters of a lease) is at least one and a
// half heartbeats after a renewal's send: a healthy node, whose renewals land every heartbeat,
// never fences between two of them.
// An unfreeze the engine refuses (a kept goal's containers still paused), or one that it does
// not answer within UNFREEZE_ANSWER_MS (the lift's, or a try again but the last: see tryAgain),
// is tried again as each later renewal is answered, each goal on its own,
// UNFREEZE_TRIES tries in all, while the node is not fenced: the goal
// stays frozen meanwhile (its calls wait, the sweep keeps its paused containers). Before, one
// refusal let its calls go into the paused containers and the sweep removed them as stopped.
// The last refused, or not answered within a lease (lease_ms, 10 s at least: the time within
// which the other nodes would end the goal anyway, had this one been cut off; no node holds a
// goal's calls on a silent engine for longer), the goal's containers are removed and its held
// calls go on in a fresh one
// over the same workspace (a call the freeze stopped mid-way fails as in a container that died,
// and so does one held for its MCP servers, whose connections end: they are started again on
// the next call, whatever they held lost).

import { performance } from "node:perf_hooks";
import { errorMessage } from "../errors.js";
import { LAST_ANSWER_MS } from "../sandbox/frozen-goals.js";
import { auditText } from "../security/audit-text.js";
import { type NodeContext, withTimeout } from "./context.js";

declare module "../security/audit-events.js" {
  interface AuditPayloads {
    /**
     * This node could not renew its lease for lease_ms less the margin (cluster.on_redis_loss:
     * hold): its goals' model calls, tool calls, events and ends wait; `frozen`: the goals whose
     * containers were paused, `not_frozen`: those that could not be (and why).
     */
    "cluster.fenced": {
      since_renewal_ms: number;
      lease_ms: number;
      margin_ms: number;
      goals: string[];
      frozen: string[];
      not_frozen: { goal_id: string; reason: string }[];
    };
    /** The fence is lifted: a heartbeat renewed the lease and looked which goals are still this node's. */
    "cluster.unfenced": { held_ms: number; kept: string[]; lost: string[] };
    /**
     * A kept goal's containers could not be unfrozen (the engine refused or did not answer
     * every try): they were removed, and its held calls run in a fresh container.
     */
    "cluster.unfreeze_given_up": { tries: number; reason: string };
  }
}

/** The fence margin: a quarter lease (see the header). */
export function fenceMargin(leaseMs: number): number {
  return Math.floor(leaseMs / 4);
}

const now = (): number => performance.now();

/** How long lifting the fence waits for the freeze at its start to be done. */
const FREEZE_ANSWER_MS = 10_000;

/**
 * How long lifting the fence waits for a kept goal's unfreeze: one not answered by then counts
 * as refused (the goal stays frozen, tried again with the heartbeats; its unpause still out
 * lets it go if it lands). Before, the lift waited for each in turn with no bound, and the node
 * was sure of its goals only once it returned: one goal's unfreeze the engine did not answer
 * held every goal of the node, and every later look, for as long as the engine took.
 */
const UNFREEZE_ANSWER_MS = 10_000;

/** How many times a kept goal's unfreeze is tried (the lift's, then one per renewal answered). */
export const UNFREEZE_TRIES = 6;

export interface FenceStatus {
  /** cluster.on_redis_loss. */
  on_redis_loss: "hold" | "finish";
  fenced: boolean;
  /** When the fence fell (ISO), while it holds. */
  fenced_since?: string;
}

export class LeaseFence {
  private readonly holds: boolean;
  private readonly leaseMs: number;
  private readonly marginMs: number;
  /** Monotonic send time of the newest renewal Redis answered (the node's start before any). */
  private lastSent = now();
  /** While fenced: since when (monotonic, and wall for status). */
  private since: { at: number; wall: Date } | undefined;
  /** The goals whose containers this fence froze, or tried to. */
  private frozen: string[] = [];
  /** The freeze under way (the unfreeze waits for it: a pause that lands after it keeps the container frozen). */
  private freezing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /**
   * Kept goals whose unfreeze the engine refused: how many tries they had, under the fence
   * `generation` (the fence whose lift made them; a new fence clears them, they are its now).
   */
  private readonly unthawed = new Map<string, number>();
  /** How many times the fence fell: what a try under way tells its own fence's count by. */
  private generation = 0;
  /** Per goal: its try again still out, and under which fence generation (see tryAgain). */
  private readonly trying = new Map<string, { generation: number }>();
  /** Which goals are still this node's, as the last lift was told. */
  private owns: (goalId: string) => boolean = () => false;

  /**
   * `running`: the goals running on this node now; `onFence`: told once each time the fence
   * falls (the node becomes unsure of its goals).
   */
  constructor(
    private readonly ctx: NodeContext,
    private readonly running: () => string[],
    private readonly onFence: () => void,
  ) {
    const c = ctx.config.cluster;
    this.holds = c.onRedisLoss === "hold";
    this.leaseMs = c.leaseMs;
    this.marginMs = fenceMargin(c.leaseMs);
    this.arm();
  }

  /** Call as a renewal is sent; call what it returns once Redis answered that renewal. */
  sending(): () => void {
    const at = now();
    return () => {
      if (at <= this.lastSent) return;
      this.lastSent = at;
      this.arm();
      this.unfreezeAgain();
    };
  }

  /** Whether the node must hold its goals now (checked at each call, not only by the timer). */
  fenced(): boolean {
    return this.holds && !this.stopped && now() - this.lastSent >= this.leaseMs - this.marginMs;
  }

  /** Whether the fence fell and has not been lifted yet (what the node's status says). */
  holding(): boolean {
    return this.since !== undefined;
  }

  status(): FenceStatus {
    return {
      on_redis_loss: this.holds ? "hold" : "finish",
      fenced: this.since !== undefined || this.fenced(),
      ...(this.since ? { fenced_since: this.since.wall.toISOString() } : {}),
    };
  }

  /** The timer (and each heartbeat tick): the fence falls once its time has come. */
  check(): void {
    if (this.since !== undefined || !this.fenced()) return;
    const sinceRenewal = Math.round(now() - this.lastSent);
    this.since = { at: now(), wall: new Date() };
    const goals = this.running();
    this.ctx.log(
      `cluster: fenced: no lease renewal answered for ${sinceRenewal} ms (lease ${this.leaseMs} ms, margin ${this.marginMs} ms); model calls, tool calls, events and ends of this node's goals wait until a heartbeat has looked which goals are still its own${goals.length > 0 ? `; freezing the containers of ${goals.join(", ")}` : ""}`,
    );
    this.onFence();
    // Those left frozen by the last lift are this fence's now (its lift unfreezes them); a try of
    // the last lift's still under way counts for nothing here (see unfreezeAgain).
    this.generation++;
    this.unthawed.clear();
    this.frozen = goals;
    this.freezing = this.freeze(goals, sinceRenewal);
  }

  private async freeze(goals: string[], sinceRenewal: number): Promise<void> {
    const frozen: string[] = [];
    const notFrozen: { goal_id: string; reason: string }[] = [];
    await Promise.all(
      goals.map(async (goalId) => {
        try {
          const r = await this.ctx.rt.backend.pause(goalId);
          if (r === "unsupported")
            notFrozen.push({ goal_id: goalId, reason: "the sandbox backend cannot pause" });
          else frozen.push(goalId);
        } catch (e) {
          notFrozen.push({ goal_id: goalId, reason: errorMessage(e) });
        }
      }),
    );
    for (const n of notFrozen)
      this.ctx.log(
        `cluster: fenced: the container of goal ${n.goal_id} could not be frozen (${n.reason}); a tool call already under way in it goes on`,
      );
    try {
      this.ctx.rt.audit.record("cluster.fenced", {
        since_renewal_ms: sinceRenewal,
        lease_ms: this.leaseMs,
        margin_ms: this.marginMs,
        goals,
        frozen: frozen.sort(),
        not_frozen: notFrozen,
      });
    } catch (e) {
      // The hold is in force whatever the log says: holding is the safe side.
      this.ctx.log(`cluster: fenced, but the audit log refused the entry: ${errorMessage(e)}`);
    }
  }

  /**
   * A heartbeat renewed the lease and looked which goals are still this node's (`owns`): the
   * fence is lifted, the kept goals' containers unfrozen (the lost ones' are removed as their
   * goals end). False, and the fence stays, when the node is fenced again by the time the freeze
   * at the fence is done, or when its cluster.unfenced entry cannot be written.
   */
  async lift(owns: (goalId: string) => boolean): Promise<boolean> {
    const since = this.since;
    if (since === undefined) return true;
    // A freeze the engine does not answer holds no heartbeat: its goals are unfrozen anyway.
    await withTimeout(this.freezing, FREEZE_ANSWER_MS).catch((e: unknown) =>
      this.ctx.log(`cluster: the freeze at the fence did not finish: ${errorMessage(e)}`),
    );
    // That wait can outlast a lease: fenced again meanwhile (cut off again), the fence stays,
    // containers frozen, for a later heartbeat to lift. Before, they were unfrozen here and the
    // fence's end audited while the node was fenced again, its goals maybe taken meanwhile.
    if (this.fenced()) return false;
    const kept = this.frozen.filter(owns);
    const lost = this.frozen.filter((id) => !owns(id));
    try {
      this.ctx.rt.audit.record("cluster.unfenced", {
        held_ms: Math.round(now() - since.at),
        kept,
        lost,
      });
    } catch (e) {
      this.ctx.log(
        `cluster: the fence stays: the audit log refused its cluster.unfenced entry (${errorMessage(e)})`,
      );
      return false;
    }
    this.since = undefined;
    this.frozen = [];
    this.owns = owns;
    const generation = this.generation;
    let left: string[] = [];
    for (const [i, goalId] of kept.entries()) {
      // Fenced again while it unfreezes (cut off again, or its loop stalled on an engine slow to
      // answer): the goals not unfrozen yet stay frozen, the new fence's, for its lift. Before,
      // they were unfrozen all the same under the fence that had just frozen them again.
      this.check();
      if (this.since !== undefined) {
        left = kept.slice(i);
        break;
      }
      try {
        await withTimeout(this.ctx.rt.backend.unpause(goalId), UNFREEZE_ANSWER_MS);
        if (this.generation === generation) this.unthawed.delete(goalId);
      } catch (e) {
        // Fenced again meanwhile: the new fence's lift takes it.
        if (this.generation === generation) this.unthawed.set(goalId, 1);
        this.ctx.log(
          `cluster: could not unfreeze the containers of goal ${goalId} (${errorMessage(e)}); it stays frozen, tried again with the next heartbeats`,
        );
      }
    }
    this.ctx.log(
      `cluster: unfenced after ${Math.round(now() - since.at)} ms: kept ${kept.length > 0 ? kept.join(", ") : "no goal"}${lost.length > 0 ? `; lost ${lost.join(", ")} (stopped here)` : ""}${left.length > 0 ? `; fenced again before ${left.join(", ")} could be unfrozen (they stay frozen)` : ""}`,
    );
    return true;
  }

  /**
   * A renewal was answered: the kept goals whose unfreeze was refused are tried again, one try
   * each, unless the node is fenced (a new fence's lift takes them), the goal is no longer this
   * node's (its stop removes its containers), or a try of this fence's is still out for it. Each
   * goal is tried on its own: before, one loop tried them in turn, and a try the engine held (an
   * earlier fence's too) kept every other goal, this fence's included, from being tried until
   * it was answered, and for good when it never was. The last try gives up (see the header).
   */
  private unfreezeAgain(): void {
    if (this.unthawed.size === 0 || this.stopped) return;
    for (const [goalId, tries] of [...this.unthawed]) {
      if (this.since !== undefined || this.fenced()) return;
      if (this.trying.get(goalId)?.generation === this.generation) continue;
      if (!this.owns(goalId) || !this.running().includes(goalId)) {
        this.unthawed.delete(goalId);
        continue;
      }
      // Nothing of a try may end the process: an audit write refused (the log closing with the
      // runtime) would be an unhandled rejection, which ends Node 20.
      this.tryAgain(goalId, tries).catch((e) =>
        this.ctx.log(`cluster: a try at unfreezing goal ${goalId} failed: ${errorMessage(e)}`),
      );
    }
  }

  /**
   * One more try at a kept goal's unfreeze. Its count is this fence's: a try held by the engine
   * past a whole new fence and lift counts for nothing in the new fence (before, an old last try
   * gave up a goal the new lift had tried once). A try not answered within UNFREEZE_ANSWER_MS
   * counts as refused (its unpause still out lets the goal go if it lands) and the next renewal
   * tries again. The last is awaited here: the backend gives the goal up on its refusal, and on
   * no answer within the bound this names, the node's lease (see the header; never below the
   * backend's 10 s, LAST_ANSWER_MS: a lease can be as short as 1 s, and an engine under load
   * takes seconds to unpause), so the goal is given up then and logged. Before, a last try the engine never answered left the goal frozen,
   * its calls held, until the engine answered or a new fence's lift tried again; then it was
   * given up at a fixed 10 s, which a slow but answering engine (a `docker unpause` under load)
   * could outlast with a lease of 30 s, its goal removed that the engine was thawing.
   */
  private async tryAgain(goalId: string, tries: number): Promise<void> {
    const generation = this.generation;
    const last = tries + 1 >= UNFREEZE_TRIES;
    const token = { generation };
    this.trying.set(goalId, token);
    const mine = () => this.generation === generation && this.unthawed.get(goalId) === tries;
    const answerMs = Math.max(this.leaseMs, LAST_ANSWER_MS);
    const unpause = this.ctx.rt.backend.unpause(goalId, last ? { last, answerMs } : {});
    try {
      await (last ? unpause : withTimeout(unpause, UNFREEZE_ANSWER_MS));
      // A fence fallen meanwhile made the map its own: this goal is that fence's lift's.
      if (this.generation !== generation || !this.unthawed.has(goalId)) return;
      this.unthawed.delete(goalId);
      // Ended meanwhile (cancelled: the backend removed it, a refusal that is none): nothing thawed.
      if (this.running().includes(goalId))
        this.ctx.log(`cluster: unfroze the containers of goal ${goalId} at try ${tries + 1}`);
    } catch (e) {
      // The backend does not give up a goal frozen again since this try began (its own check).
      if (!mine()) return;
      if (!last) {
        this.unthawed.set(goalId, tries + 1);
        return;
      }
      this.unthawed.delete(goalId);
      // On the goal's record, not only the node's log: what its processes had in memory and
      // its container's own files outside /workspace and /output are gone.
      this.ctx.rt.audit.record(
        "cluster.unfreeze_given_up",
        { tries: UNFREEZE_TRIES, reason: auditText(errorMessage(e)) },
        { goalId },
      );
      this.ctx.log(
        `cluster: gave up unfreezing the containers of goal ${goalId} after ${UNFREEZE_TRIES} tries (${errorMessage(e)}): they were removed; its held calls run in a fresh container (its MCP servers started again)`,
      );
    } finally {
      if (this.trying.get(goalId) === token) this.trying.delete(goalId);
    }
  }

  /** The node left: no fence any more (its shutdown decides), no timer. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** The timer for the fence point of the newest answered renewal. */
  private arm(): void {
    if (!this.holds || this.stopped) return;
    clearTimeout(this.timer);
    const wait = Math.max(0, this.lastSent + this.leaseMs - this.marginMs - now());
    this.timer = setTimeout(() => this.check(), Math.ceil(wait) + 1);
    this.timer.unref();
  }
}
