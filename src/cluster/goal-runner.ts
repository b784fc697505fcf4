// cluster/goal-runner.ts — the owner's side of a cluster goal: the goals this node claimed
// (cluster/job-intake.ts decides that from the goal's hash), how they run here, and what
// this node writes to Redis for them.
//   runHere(): unpack the inputs, submit the goal to this node's Runtime under its id (the
//     Runtime admits it against this node's config), wait for its end, write that end.
//   beforeFirstModelCall(): the mark that decides the fate of a goal whose node dies.
//   giveBack() (give-back.ts): a goal taken while the node began to shut down, or ended by
//     the shutdown before its first model call, goes back to the queue for any node.
//   cancel(): a goal.cancel for a goal whose hash says this node runs it. Once the goal is in
//     this Runtime, the Runtime cancels it. Before (claimed, inputs still unpacking) and after
//     (ended by the shutdown, not yet given back) the cancel ends it in Redis at once and
//     leaves a mark (cancel-marks.ts) that runHere and giveBack read in the same turn as they
//     submit or give back, so no cancel answered as accepted is lost in either window.
//   Events and approvals of owned goals are mirrored as they happen (owned-mirror.ts; the end
//     the shutdown gave a goal is held until it is known not to go back); their ends are
//     written to Redis by goal-ends.ts, again with each heartbeat and when Redis answers
//     again (retryEnds) while Redis does not take them.

import type { Job } from "bullmq";
import { withoutConfigSecrets } from "../config-secrets.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { type GoalStatus, TERMINAL, UNSTARTED_CANCEL } from "../kernel/goal-store.js";
import type { SubmittedBy } from "../security/approval-project.js";
import type { ApprovalDrops } from "./approval-drops.js";
import { CancelMarks } from "./cancel-marks.js";
import { type NodeContext, REDIS_ANSWER_MS, withTimeout } from "./context.js";
import { giveBack } from "./give-back.js";
import { GoalEnds, writtenEnd } from "./goal-ends.js";
import type { ClusterGoalStatus } from "./goal-mirror.js";
import { submittedByOfJob } from "./goal-submit.js";
import { type PackedInputs, removeUnpacked, unpackInputs } from "./job-inputs.js";
import { LostGoals } from "./lost-goals.js";
import { settleClusterShare } from "./share-returns.js";

/** What a goal's job carries. */
export interface GoalJob {
  goal_id: string;
  goal: string;
  /** As the client gave it (YAML text or object); the owner admits it again. */
  manifest?: unknown;
  inputs: PackedInputs;
  /** The node whose socket took the submission. */
  via: string;
  /** The MCP session that submitted it (absent: the user): on the goal's row where it runs. */
  submitted_by?: SubmittedBy;
}

export class ClusterGoalRunner {
  /** Goals this node runs (their events and approvals are mirrored: owned-mirror.ts). */
  private readonly owned = new Set<string>();
  /**
   * Of those, the goals the cluster ended or gave to another node (lost-goals.ts): stopped
   * here, and nothing of them published from here any more (owns() says no). Forgotten with
   * the goal from `owned`.
   */
  private readonly lost: LostGoals;
  /** Writes the ends of the goals this node ran (or took and never ran) to Redis. */
  private readonly ends: GoalEnds;
  /** Drops ended goals' mirrored approvals, again with the heartbeats while Redis refuses (job-intake.ts too). */
  readonly approvals: ApprovalDrops;
  /** Goals a cancel is ending before they run here or are given back (cancel-marks.ts). */
  private readonly marks = new CancelMarks();
  /** A recovery against Redis is due: Redis answered again, and no recovery since has been done in full. */
  private recoveryDue = false;
  /** Why the last recovery failed (logged when it changes). */
  private recoveryFailed: string | undefined;
  private readonly config: NodeContext["config"];
  private readonly rt: NodeContext["rt"];
  private readonly mirror: NodeContext["mirror"];
  private readonly identity: NodeContext["identity"];
  private readonly log: NodeContext["log"];

  /**
   * `untilSure`: resolves once the node may take its goals as still its own (not from a pause
   * past its lease until its heartbeat has looked: node.ts), or once it left. A goal's end waits
   * for it, so that what the goal did meanwhile, held until then (owned-mirror.ts), goes out
   * before the end, not dropped.
   */
  constructor(
    private readonly ctx: NodeContext,
    private readonly untilSure: () => Promise<void> = async () => {},
  ) {
    ({ config: this.config, rt: this.rt, mirror: this.mirror, identity: this.identity, log: this.log } = ctx);
    this.lost = new LostGoals(ctx);
    // A goal whose end is written (or that another node ended or took over) is not run here.
    this.ends = new GoalEnds(ctx, (goalId) => {
      this.owned.delete(goalId);
      this.lost.forget(goalId);
    });
    this.approvals = this.ends.approvals;
  }

  /**
   * One take of the goal by this node's worker, from before its claim to its end: while one
   * is under way a cancel's mark stays for it to read; after the last, the mark goes.
   */
  take<T>(goalId: string, fn: () => Promise<T>): Promise<T> {
    return this.marks.take(goalId, fn);
  }

  /** Whether this node runs the goal now (its events and approvals are mirrored: owned-mirror.ts). */
  owns(goalId: string): boolean {
    return this.owned.has(goalId) && !this.lost.has(goalId);
  }

  /**
   * Goals running here that the cluster no longer calls ours (this node was paused past its
   * lease and a survivor ended or took them over): stopped here at once, each on its own
   * (lost-goals.ts), so nothing of them runs after another node decided their fate. False
   * while a look, an audit entry or a stop is left for the next heartbeat.
   */
  stopLost(afterPause = false): Promise<boolean> {
    // After a pause, the goals that ended here meanwhile too: their end waits to be written
    // (awaitLocalEnd), and their events held in the pause go out only if they are still ours.
    const ended = afterPause ? [...this.owned].filter((id) => this.endedHere(id)) : [];
    // And those whose inputs a take still unpacks: one found lost is not started (runHere).
    const unpacking = [...this.owned].filter((id) => this.unpacking(id, false));
    return this.lost.look([...this.running(), ...ended, ...unpacking]);
  }

  /** Whether a goal found lost is not stopped yet (its stop threw): the node holds model calls. */
  lostUnstopped(): boolean {
    return this.lost.anyUnstopped();
  }

  /** Owned, not lost, and ended in this Runtime (its end not written yet). */
  private endedHere(goalId: string): boolean {
    if (this.lost.has(goalId) || this.rt.goals.isLive(goalId)) return false;
    try {
      return TERMINAL.has(this.rt.goals.status(goalId).state);
    } catch {
      return false;
    }
  }

  /**
   * Whether a take of this process has the goal and has not submitted it here yet (its inputs
   * are being unpacked); `orThrow` false: false when the Runtime cannot say.
   */
  unpacking(goalId: string, orThrow = true): boolean {
    if (!this.owned.has(goalId) || this.rt.goals.isLive(goalId)) return false;
    try {
      this.rt.goals.status(goalId);
      return false;
    } catch (e) {
      if (e instanceof AidoError && e.code === ErrorCode.notFound) return true;
      if (orThrow) throw e;
      return false;
    }
  }

  /** The goals running here now. */
  running(): string[] {
    return [...this.owned].filter((id) => !this.lost.has(id) && this.rt.goals.isLive(id));
  }

  /**
   * Remove what the goal's job unpacked here. Never throws: the goal's end is written after
   * it, and a folder that will not go (logged) must not keep a goal running on every node.
   */
  private dropUnpacked(goalId: string): void {
    try {
      removeUnpacked(this.config, goalId);
    } catch (e) {
      this.log(`cluster: could not remove the inputs goal ${goalId} unpacked: ${errorMessage(e)}`);
    }
  }

  /**
   * Write a goal that never ran here as failed with `error`, and tell remote watchers (again
   * with the heartbeats while Redis refuses it: goal-ends.ts).
   */
  endFailed(goalId: string, goal: string, error: string): Promise<void> {
    return this.ends.endFailed(goalId, goal, error);
  }

  /** Run a goal this node claimed: unpacked, submitted to this Runtime under its id, waited for. */
  async runHere(job: Job<GoalJob>, token: string | undefined): Promise<string> {
    const data = job.data;
    const { goal_id: goalId } = data;
    this.owned.add(goalId);
    try {
      const inputs = await unpackInputs(this.config, goalId, data.inputs);
      // A cancel that came while the inputs were unpacked ends the goal in Redis, and it
      // must not start here; one whose write failed leaves it to run. The last look is in
      // the same turn as the submit.
      if (await this.marks.took(goalId)) return this.dropCancelled(goalId);
      // Nor when a look found it lost meanwhile (this node was paused past its lease in the
      // unpack, and a survivor took the goal over or ended it): it runs there, not here.
      if (this.lost.has(goalId)) return this.dropLostUnpacked(goalId);
      this.rt.goals.submit(
        {
          goal: data.goal,
          ...(data.manifest !== undefined ? { manifest: data.manifest } : {}),
          ...(inputs.length > 0 ? { inputs } : {}),
          ...submittedByOfJob(data),
        },
        // A session's job was charged its share where it was submitted (goal-submit.ts).
        { goalId, shareCharged: true },
      );
    } catch (e) {
      if (await this.marks.took(goalId)) return this.dropCancelled(goalId);
      if (this.rt.goals.closing) {
        this.owned.delete(goalId);
        this.dropUnpacked(goalId);
        const back = await this.giveBack(
          job,
          token,
          `node ${this.identity.nodeId} began to shut down as it took the goal`,
        );
        // Not given back because a cancel ended it meanwhile: that is its end, not a refusal.
        if (await this.marks.took(goalId)) return this.dropCancelled(goalId);
        // Nor because another node ended or took it over: it is not this node's to refuse.
        if (back === "not ours")
          return this.dropLost(
            goalId,
            await this.mirror.status(goalId).catch(() => undefined),
            `before node ${this.identity.nodeId} started it`,
          );
      }
      // Refused here (a job's bad input entry, this node's ceiling, a model its config does
      // not allow): audited, and the goal fails with the reason.
      const field = e instanceof AidoError && typeof e.details.field === "string" ? e.details.field : "job";
      // Built from the job a Redis writer made: a secret of this node's config in it is blanked.
      const reason = withoutConfigSecrets(errorMessage(e), this.config);
      this.rt.audit.record("goal.refused", { field, reason }, { goalId });
      this.owned.delete(goalId);
      // Before the end is written, as for a goal that ran: whoever sees the goal ended sees
      // what the job unpacked gone.
      this.dropUnpacked(goalId);
      await this.endFailed(goalId, data.goal, `refused by node ${this.identity.nodeId}: ${reason}`);
      return "failed";
    }
    await this.mirror
      .update(goalId, this.identity.nodeId, { output_dir: this.rt.goals.status(goalId).output_dir })
      .catch(() => false);
    return this.awaitLocalEnd(job, token);
  }

  /**
   * Wait for the goal to end in this Runtime, then write its end to the mirror. A goal the
   * node's shutdown ended before its first model call goes back to the queue instead.
   */
  async awaitLocalEnd(job: Job<GoalJob>, token: string | undefined): Promise<string> {
    const goalId = job.data.goal_id;
    let s: GoalStatus;
    try {
      s = this.rt.goals.status(goalId);
    } catch (e) {
      if (!(e instanceof AidoError && e.code === ErrorCode.notFound)) throw e;
      // Taken here but never recorded (this node restarted in between): it ends failed.
      await this.ends.failUnstarted(goalId);
      return "failed";
    }
    while (!TERMINAL.has(s.state)) s = await this.rt.goals.wait(goalId, 3_600_000);
    // Before the end is written: whoever sees the goal ended sees its unpacked copy gone.
    this.dropUnpacked(goalId);
    if (s.state === "failed" && this.rt.goals.endedByClose(goalId)) {
      // Not when a model call had started (the mark is set): then it ends failed, as before,
      // and its end, held back by OwnedMirror, goes out now.
      const back = await this.giveBack(
        job,
        token,
        `node ${this.identity.nodeId} shut down before the goal's first model call`,
      );
      // Cancelled meanwhile: cancel() wrote and announced its end (cancelled), not this one.
      if (await this.marks.took(goalId)) {
        this.owned.delete(goalId);
        this.marks.forget(goalId);
        return "cancelled";
      }
      // Not given back because another node ended or took it over (this node was paused past
      // its lease): its end here is not the goal's, audited as lost as in runHere. Not when
      // only a model call of it started: then it is this node's, and ends failed here.
      if (back === "not ours") {
        const m = await this.mirror.status(goalId).catch(() => undefined);
        if (m !== undefined && (m.node !== this.identity.nodeId || TERMINAL.has(m.state)))
          return this.dropLost(
            goalId,
            m,
            `before node ${this.identity.nodeId}'s first model call of it, as the node shut down`,
          );
      }
    }
    // Not while the node is unsure of its goals: writing the end made it forget the goal, and
    // the events held of it since the pause were dropped (the follower saw only the end).
    await this.untilSure();
    await this.ends.write(
      goalId,
      s.state === "failed" && this.rt.goals.endedByClose(goalId) ? "held" : "sent",
    );
    return s.state;
  }

  /** giveBack (give-back.ts) for this node: `forget` drops the goal from those it owns. */
  private giveBack(
    job: Job<GoalJob>,
    token: string | undefined,
    reason: string,
  ): Promise<"not ours" | undefined> {
    const forget = () => this.owned.delete(job.data.goal_id);
    return giveBack(this.ctx, this.marks, this.approvals, job, token, reason, forget);
  }

  /** A goal a look found lost (audited there) while its inputs unpacked here: nothing of it stays. */
  private dropLostUnpacked(goalId: string): string {
    this.log(`cluster: goal ${goalId} not started here: another node has it (found as it unpacked)`);
    this.owned.delete(goalId);
    this.lost.forget(goalId);
    this.dropUnpacked(goalId);
    return "skipped";
  }

  /** A goal cancel() ended before it started here: nothing of it stays. */
  private dropCancelled(goalId: string): string {
    this.owned.delete(goalId);
    this.marks.forget(goalId);
    this.dropUnpacked(goalId);
    return "cancelled";
  }

  /**
   * A goal another node ended or took over before this node's first model call of it, found
   * as this node gave it back (LostGoals.givenBack audits it): nothing of it ends here.
   */
  private dropLost(goalId: string, m: ClusterGoalStatus | undefined, when: string): string {
    this.lost.givenBack(goalId, m, when);
    this.owned.delete(goalId);
    this.dropUnpacked(goalId);
    return "skipped";
  }

  /**
   * goal.cancel for a goal whose hash says this node runs it (cluster/goal-view.ts).
   * "handled": cancelled here, or it ended here already; "elsewhere": it is not this node's
   * any more (given back and taken by another node), so the caller looks again.
   */
  async cancel(goalId: string, why?: string): Promise<"handled" | "elsewhere"> {
    let local: GoalStatus | undefined;
    try {
      local = this.rt.goals.status(goalId);
    } catch (e) {
      if (!(e instanceof AidoError && e.code === ErrorCode.notFound)) throw e;
    }
    const givingBack =
      local !== undefined &&
      TERMINAL.has(local.state) &&
      this.owned.has(goalId) &&
      this.rt.goals.endedByClose(goalId);
    if (local !== undefined && !givingBack) {
      // In this Runtime: it ends cancelled and its end is written as any end (or it ended).
      this.rt.goals.cancel(goalId, why);
      return "handled";
    }
    // Not in this Runtime yet (claimed, its inputs being unpacked, or the claim's answer not
    // read yet), or ended by the shutdown and not given back yet. A cancel before this one
    // that ended it: done (its mark, not replaced, is what a take reads).
    if (await this.marks.took(goalId)) return "handled";
    // The mark first, in this turn, so that runHere and giveBack wait for what the Redis
    // write below meets.
    const settle = this.marks.begin(goalId);
    const reason = why ?? UNSTARTED_CANCEL;
    let r: Awaited<ReturnType<typeof this.mirror.cancelUnstarted>>;
    try {
      r = await this.mirror.cancelUnstarted(goalId, this.identity.nodeId, reason);
    } catch (e) {
      settle(false);
      throw e;
    }
    if (r === "cancelled") {
      settle(true);
      // Written: announced even when its entry is refused (thrown after), else no follower
      // of the goal ever saw it end.
      try {
        // No model call of it started: its share, if its session is on this node, comes back whole.
        settleClusterShare(this.rt.budget, this.rt.audit, goalId, 0);
        this.rt.audit.record(
          "cluster.goal_cancelled",
          { reason: givingBack ? `${reason} (while node ${this.identity.nodeId} was leaving)` : reason },
          { goalId },
        );
      } finally {
        await this.approvals.drop(goalId);
        await this.ends.announceWritten(goalId, writtenEnd(goalId, "cancelled", reason));
      }
      return "handled";
    }
    settle(false);
    // Its model calls had started (it ends failed by the shutdown, as it would have) or it
    // ended: nothing more to do. Taken by another node: the caller routes the cancel there.
    return r === "elsewhere" ? "elsewhere" : "handled";
  }

  /**
   * Announce the end this node wrote to a goal's hash outside write() (a queued goal's
   * cancel, a dead node's goal failed here), retried with the heartbeats (goal-ends.ts).
   */
  announceEnd(goalId: string, end: GoalStatus): Promise<void> {
    return this.ends.announceWritten(goalId, end);
  }

  /** Redis answers again: the next retryEnds (the node's next heartbeat) recovers against it. */
  recoveryNeeded(): void {
    this.recoveryDue = true;
  }

  /**
   * Write again the ends Redis did not take (each heartbeat, and when Redis is back), after a
   * recovery against Redis that is still due: one that failed (Redis did not answer the goal
   * list in full) is done again with each heartbeat until it is, not only at the next
   * reconnect, else the goals the node's previous process left stayed running on every node.
   */
  async retryEnds(): Promise<void> {
    if (this.recoveryDue) {
      try {
        await this.ends.recover((id) => this.owned.has(id) || this.rt.goals.isLive(id));
        this.recoveryDue = false;
        this.recoveryFailed = undefined;
      } catch (e) {
        // Logged when it starts failing or its reason changes, not with every heartbeat.
        const why = errorMessage(e);
        if (why !== this.recoveryFailed)
          this.log(
            `cluster: recovery against Redis failed (done again with each heartbeat until it is): ${why}`,
          );
        this.recoveryFailed = why;
      }
    }
    await this.ends.retry();
  }

  /**
   * The node leaves (node.ts stop), its heartbeats over: one last, bounded write of the ends
   * Redis did not take (it may answer again by now), then each still kept is logged with what
   * becomes of it (GoalEnds.leaving).
   */
  async leave(): Promise<void> {
    await withTimeout(this.ends.retry(), REDIS_ANSWER_MS).catch(() => {});
    this.ends.leaving();
  }

  /**
   * The Runtime's beforeFirstModelCall: mark the goal in Redis before anything is spent, so
   * a survivor knows not to run it again. Waits out a short Redis outage (up to one lease);
   * past it, or when the goal is no longer this node's, the call (and the goal) fails.
   */
  async beforeFirstModelCall(goalId: string): Promise<void> {
    if (!this.owned.has(goalId)) return;
    const deadline = Date.now() + this.config.cluster.leaseMs;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        if (await this.mirror.modelStarted(goalId, this.identity.nodeId)) return;
        // Another node has it (this one was paused past its lease): nothing of its end here
        // is published (owns() says no), as for the goals stopLost finds.
        this.lost.add(goalId);
        throw new AidoError(
          ErrorCode.clusterUnavailable,
          `goal ${goalId} is no longer this node's (another node ended or took it over); not calling the model`,
          { goal_id: goalId },
        );
      } catch (e) {
        if (e instanceof AidoError) throw e;
        last = e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    throw new AidoError(
      ErrorCode.clusterUnavailable,
      `could not record in Redis that goal ${goalId} started (${errorMessage(last)}); not calling the model, so that the goal can never run twice`,
      { goal_id: goalId },
    );
  }
}
