// cluster/goal-hold.ts — whether a node may take its goals as still its own, and the waits of
// those that must not go on until it may (node.ts). The node is unsure of its goals from a
// pause of its own process past its lease (the heartbeat timer late by more than a lease), from
// its fence (fence.ts: no lease renewal answered for lease_ms less the margin), or from a goal
// found lost that could not be stopped, until a heartbeat begun after it has looked which goals
// are still its own. Meanwhile model calls (inferenceSlot), tool calls (the gate's beforeRun),
// events (owned-mirror.ts) and ends (goal-runner.ts) of its goals wait here.
// Time is monotonic (performance.now): a step of the wall clock is no pause.

import { performance } from "node:perf_hooks";
import type { NodeContext } from "./context.js";
import { LeaseFence } from "./fence.js";

export class GoalHold {
  /** When the heartbeat timer last fired: a gap longer than a lease means the node was paused. */
  private lastBeatAt = performance.now();
  /** Paused, fenced or a lost goal unstopped, and no look begun since has ended: its goals may be others' now. */
  private unsure = false;
  /**
   * How many pauses past the lease (and fences) the node has found. A look counts only if none
   * was found while it ran: one begun before a pause read which goals were this node's before
   * a survivor may have taken them in that pause.
   */
  private pauses = 0;
  /** Waiters of until(), woken when the node becomes sure of its goals again or leaves. */
  private readonly sureAgain = new Set<() => void>();
  /** cluster.on_redis_loss: when the node holds its goals because it could not renew its lease. */
  readonly fence: LeaseFence;

  /**
   * `running`: the goals running on the node; `left`: whether it left (then nothing is held);
   * `fenced`: told (after this hold is unsure) each time the fence falls, to renew and look at once.
   */
  constructor(
    private readonly ctx: NodeContext,
    running: () => string[],
    private readonly left: () => boolean,
    fenced: () => void,
  ) {
    this.fence = new LeaseFence(ctx, running, () => {
      this.unsure = true;
      this.pauses++;
      fenced();
    });
  }

  /** Whether the node may take its goals as still its own. */
  sure(): boolean {
    // The fence falls here too should its timer be late: a call that saw it must be woken by
    // the look it makes due, not wait for a look nothing asked for.
    this.fence.check();
    return !this.unsure && !this.pausedPastLease();
  }

  /** Whether the heartbeat timer has not fired for longer than a lease (not once the node left). */
  pausedPastLease(): boolean {
    return !this.left() && performance.now() - this.lastBeatAt > this.ctx.config.cluster.leaseMs;
  }

  /** The heartbeat timer fired: a pause past the lease is noted (logged once a pause), the fence checked. */
  beat(): void {
    if (this.pausedPastLease()) {
      // Said once a pause: while the look cannot be made (Redis away, or refusing the
      // heartbeat), every model call and goal end here waits, and nothing else would say why.
      if (!this.unsure)
        this.ctx.log(
          `cluster: no heartbeat for ${Math.round(performance.now() - this.lastBeatAt)} ms, past the lease: model calls, tool calls, events and ends of this node's goals wait until a heartbeat has looked which goals are still its own`,
        );
      this.unsure = true;
      this.pauses++;
    }
    this.lastBeatAt = performance.now();
    this.fence.check();
  }

  /** What a look must hold to count: the node was unsure, and how many pauses it had found. */
  lookBegins(): { wasUnsure: boolean; pausesBefore: number } {
    return { wasUnsure: this.unsure, pausesBefore: this.pauses };
  }

  /** A goal found lost could not be stopped: unsure until a look has stopped it. False when already unsure. */
  holdForLost(): boolean {
    if (this.unsure) return false;
    this.unsure = true;
    return true;
  }

  /**
   * A look begun as `begun` said was made in full: sure again, unless the node was paused or
   * fenced again meanwhile (that look may have read a goal as its own before a survivor took
   * it) or the fence cannot be lifted yet. Sure again: `onSure` (what was held goes out),
   * then the waiters are woken, in that order (an end woken first dropped what was held).
   */
  async looked(
    begun: { wasUnsure: boolean; pausesBefore: number },
    owns: (goalId: string) => boolean,
    onSure: () => void,
  ): Promise<void> {
    const same = () => this.pauses === begun.pausesBefore && !this.pausedPastLease() && !this.fence.fenced();
    if (!begun.wasUnsure || !same()) return;
    if (!(await this.fence.lift(owns)) || !same()) return;
    this.unsure = false;
    onSure();
    this.wake();
  }

  /**
   * Resolves once the node is sure of its goals (at once when it is), or, with `orLeft`, once
   * it left (what it does then is its shutdown's); with `signal`, also once that aborts (the
   * caller looks at it). Woken by the look that makes the node sure, and when it leaves.
   */
  async until(opts: { signal?: AbortSignal; orLeft?: boolean }): Promise<void> {
    const { signal, orLeft = false } = opts;
    while (!this.sure() && !(orLeft && this.left()) && !signal?.aborted) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.sureAgain.delete(wake);
          signal?.removeEventListener("abort", wake);
          resolve();
        };
        this.sureAgain.add(wake);
        signal?.addEventListener("abort", wake);
      });
    }
  }

  /** The node left: no fence any more, and every waiter looks again. */
  stop(): void {
    this.fence.stop();
    this.wake();
  }

  private wake(): void {
    for (const wake of [...this.sureAgain]) wake();
  }
}
