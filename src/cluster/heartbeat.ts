// cluster/heartbeat.ts — a node's heartbeat (cluster/node.ts runs it every heartbeat_ms and
// on each reconnect): the marks of MCP sessions that ended while Redis was away written
// (kept-cancels.ts), the lease renewed (writeHeartbeat, counted by the fence from its send),
// then, one beat at a time, what Redis did not take written again (approvals, goal ends), the
// unspent shares of ended session goals returned (share-returns.ts), the
// look after a pause past the lease (which goals are still this node's), the running goals'
// usage, the signed audit head, and the failed-job sweep. Overlapping beats (a slow Redis) ran
// their retries, recoveries and looks at once over the same goals: a tick while one is under
// way only renews the lease.

import { errorMessage } from "../errors.js";
import { publishHead } from "./audit-heads.js";
import type { NodeContext } from "./context.js";
import type { GoalHold } from "./goal-hold.js";
import type { ClusterGoalRunner } from "./goal-runner.js";
import type { ClusterGoals } from "./goal-view.js";
import type { JobIntake } from "./job-intake.js";
import { writeHeartbeat } from "./node-status.js";
import type { OwnedMirror } from "./owned-mirror.js";
import type { ShareReturns } from "./share-returns.js";

/** What a beat works over: the node's parts, read as they are at each beat. */
export interface HeartbeatParts {
  ctx: NodeContext;
  hold: GoalHold;
  runner: ClusterGoalRunner;
  intake: JobIntake;
  /** The cancels of ended sessions' goals Redis did not take (kept-cancels.ts). */
  goals: Pick<ClusterGoals, "markEndedSessions" | "makeKeptCancels">;
  /** The unspent rest of this node's sessions' cluster goal shares, back once their goals ended. */
  shares: ShareReturns;
  /** What other nodes see of this node's goals (undefined until the node runs). */
  owned: () => OwnedMirror | undefined;
  /** The node left: no beat begins. */
  stopped: () => boolean;
  /** When the node started (its heartbeat record says so). */
  startedAt: number;
}

export class NodeHeartbeat {
  /** When the last heartbeat Redis took was written (cluster.status from memory). */
  lastBeat: number | undefined;
  /** The heartbeat under way: one at a time (a slow Redis can make one outlast the interval). */
  private beating: Promise<void> | undefined;
  /** The fence fell while a beat was under way: another begins as it ends (beatNow). */
  private beatAgain = false;
  /** The heartbeat record's write under way (renew), a beat's or a tick's; the sweep under way. */
  private renewing: Promise<void> | undefined;
  private sweeping: Promise<void> | undefined;
  /** Whether this node's log was found to no longer hold its published head (audited once). */
  private readonly headDiverged = { reported: false };

  constructor(private readonly p: HeartbeatParts) {}

  /**
   * The heartbeat timer (and a reconnect): a pause past the lease is noted at once, then one
   * heartbeat runs unless one is under way (then only the lease is renewed): overlapping ones
   * (a slow Redis) ran their retries, recoveries and looks at once, over the same goals.
   */
  tick(): void {
    const { ctx, hold } = this.p;
    hold.beat();
    if (this.beating) {
      // Not let run out while the last beat's work goes on (others would take it for dead).
      if (!this.renewing && !this.p.stopped() && ctx.redis.status === "ready")
        this.renew().catch((e: unknown) => ctx.log(`cluster: heartbeat failed: ${errorMessage(e)}`));
      return;
    }
    this.startBeat();
  }

  /**
   * The fence fell: renew now, and look as soon as the beat under way (begun before the fence:
   * its look does not count) ends. A node that only stalled (its loop blocked past the fence
   * point) stayed fenced until the next tick's look; now it is lifted within a few round trips.
   */
  beatNow(): void {
    setImmediate(() => {
      if (this.p.stopped()) return;
      if (!this.beating) return this.startBeat();
      this.beatAgain = true;
      if (!this.renewing && this.p.ctx.redis.status === "ready")
        this.renew().catch((e: unknown) => this.p.ctx.log(`cluster: heartbeat failed: ${errorMessage(e)}`));
    });
  }

  private startBeat(): void {
    const beat = this.beat().finally(() => {
      if (this.beating !== beat) return;
      this.beating = undefined;
      if (this.beatAgain && !this.p.stopped()) this.startBeat();
      this.beatAgain = false;
    });
    this.beating = beat;
  }

  /** Write the heartbeat record (node-status.ts); `renewing` while it is under way. */
  private renew(): Promise<void> {
    // The lease counts from the send (fence.ts). One never answered is not sent again: a
    // second on the same connection would be answered only after it; the fence falls
    // meanwhile, and lifts once a renewal is answered (the connection back, or a new one).
    const answered = this.p.hold.fence.sending();
    const write = writeHeartbeat(this.p.ctx, this.p.startedAt, this.p.runner.running())
      .then((at) => {
        this.lastBeat = at;
        answered();
      })
      .finally(() => {
        if (this.renewing === write) this.renewing = undefined;
      });
    this.renewing = write;
    return write;
  }

  private async beat(): Promise<void> {
    const { ctx, hold, runner, intake } = this.p;
    if (this.p.stopped() || ctx.redis.status !== "ready") return;
    // A look counts for the pauses found before it began (tick), not for one found meanwhile.
    const begun = hold.lookBegins();
    const running = runner.running();
    try {
      // Its own write, after one a tick began (maybe before the pause it looks after).
      await this.renewing?.catch(() => {});
      // The marks of sessions that ended while Redis was away go before the lease: a node
      // taking one of their goals waits for this node's lease, then reads them (kept-cancels.ts).
      await this.p.goals.markEndedSessions();
      await this.renew();
      this.p.goals.makeKeptCancels();
      // What Redis did not take while it refused writes or was away, written again: approvals
      // (owned-mirror.ts), so every node lists them as they are, and goal ends (goal-ends.ts),
      // so no node shows an ended goal running nor keeps its goal.wait waiting.
      await this.p.owned()?.retry();
      await runner.retryEnds();
      // Goals of this node's MCP sessions that ended (anywhere, maybe while Redis was away):
      // what they did not spend of their shares back to the sessions (share-returns.ts).
      await this.p.shares.settle();
      // Back from a pause longer than the lease: what a survivor decided stands.
      const looked = await runner.stopLost(begun.wasUnsure);
      // A goal found lost that could not be stopped may still call the model: the node is not
      // sure of its goals (its calls wait, as after a pause) until a look has stopped it.
      if (!looked && runner.lostUnstopped() && hold.holdForLost())
        ctx.log(
          "cluster: a goal another node has could not be stopped here: model calls, tool calls, events and ends of this node's goals wait until a heartbeat has stopped it",
        );
      // Sure of its goals again: what it held since the pause goes out for those still its own.
      // Not when it was paused again while it looked (found, or not yet found by the timer):
      // that look may have read a goal as its own before a survivor took it; the next looks.
      // Nor when a goal's look or stop is left for the next (logged): it may be lost.
      if (looked)
        await hold.looked(
          begun,
          (id) => runner.owns(id),
          () => {
            ctx.log("cluster: looked which goals are still this node's after its pause; they go on");
            this.p.owned()?.publishHeld();
          },
        );
      // The running goals' usage, for goal.status on other nodes.
      for (const id of running) {
        const u = ctx.rt.goals.status(id).usage;
        await ctx.mirror.update(id, ctx.identity.nodeId, {
          input_tokens: String(u.input_tokens),
          output_tokens: String(u.output_tokens),
        });
      }
      // The node's signed audit head, for `audit verify --cluster` (audit-heads.ts).
      await publishHead(ctx, this.headDiverged);
      // A queued goal whose job failed gets its job back (job-intake.ts): one sweep at a time,
      // not awaited here. Its answers come on the queue's connection; one lost there (a socket
      // a firewall forgot) held every later heartbeat, and no look after a pause was made.
      this.sweeping ??= intake
        .requeueOrphans()
        .catch((e: unknown) => {
          if (!this.p.stopped()) ctx.log(`cluster: the failed-job sweep failed: ${errorMessage(e)}`);
        })
        .finally(() => {
          this.sweeping = undefined;
        });
    } catch (e) {
      ctx.log(`cluster: heartbeat failed: ${errorMessage(e)}`);
    }
  }
}
