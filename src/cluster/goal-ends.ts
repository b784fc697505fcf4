// cluster/goal-ends.ts — the owner writing its goals' ends to Redis (the runner, goal-runner.ts,
// decides when a goal ended here; this writes it). An end is the owner's compare-and-set on
// the goal's hash (GoalMirror.finish): written only while the goal is still this node's, then
// announced — its goal.finished on the goal's stream (unless the stream holds it: it went
// out as it happened), and the goal-ends stream for goal.wait on every node; an announcement
// Redis refused (out of memory it refuses every stream write, yet the end lands) is retried
// alone like an end, so that no follower of the goal misses its end. An end Redis did not take (it was
// away, or refused the write while connected: ACL, out of memory) is kept and written again
// with each heartbeat and when Redis answers again (retry), until it is; that holds for an
// end this Runtime has no record of too (a goal this node took but never recorded, failed
// here), kept with the end itself. Each end is announced finished once: only the write that
// lands announces it, and a retry sends its goal.finished only when the goal's stream does
// not hold this node's already (endPublished), whoever retries it — a heartbeat, or a second
// take of the goal's job handed back to this node. Ends this node wrote by another
// compare-and-set (a cancel before the goal started, a dead node's goal failed here) are
// announced, and retried, the same way (announceWritten). An announcement still pending
// outlives a restart (kept-ends.ts: recorded in the node's database); an unwritten end is
// found again by recover().
// recover(): when Redis answers, goals the mirror says run here that this process does not
// run (the node restarted) end as the local record says, or failed when there is none.

import { errorMessage } from "../errors.js";
import { type GoalStatus, TERMINAL } from "../kernel/goal-store.js";
import { ApprovalDrops } from "./approval-drops.js";
import { goalEndEvent, type NodeContext } from "./context.js";
import { announceWrittenEnd, endPublished } from "./event-stream.js";
import { type KeptEnd, KeptEnds } from "./kept-ends.js";

/**
 * The end a compare-and-set of this node wrote to a goal's hash (a cancel before the goal
 * started, a dead node's goal failed here), as far as the writer knows it: announceWritten
 * reads the rest (usage) from the hash when Redis answers.
 */
export function writtenEnd(goalId: string, state: "failed" | "cancelled", error: string): GoalStatus {
  const now = new Date().toISOString();
  return {
    goal_id: goalId,
    state,
    error,
    usage: { input_tokens: 0, output_tokens: 0 },
    output_dir: "",
    goal: "",
    created_at: now,
    finished_at: now,
  };
}

/**
 * Where the goal's goal.finished stands as its end is written: `sent` as it happened (by
 * owned-mirror.ts), `held` back (the shutdown's end, or an end that only this write
 * announces: it goes out with the write), or `unsure` (it may have been refused with the
 * end: it goes out unless the goal's stream holds it).
 */
export type EndEvent = "sent" | "held" | "unsure";

export class GoalEnds {
  /** The ends kept for retry(); those whose announcement is pending outlive a restart (kept-ends.ts). */
  private readonly unwritten: KeptEnds;
  /**
   * The write of each goal's end under way. Writers of one end do not wait for each other
   * otherwise (heartbeats overlap, a reconnect's catch-up, a second take of the goal's job):
   * the second's compare-and-set found the end written by the first, which had not settled
   * yet, and logged that another node ended or took over the goal.
   */
  private readonly writing = new Map<string, Promise<void>>();
  /** The ended goals' mirrored approvals, dropped again with the heartbeats while Redis refuses. */
  readonly approvals: ApprovalDrops;

  /** `settled(goalId)`: the goal's end is written, or another node's now (it is not run here any more). */
  constructor(
    private readonly ctx: NodeContext,
    private readonly settled: (goalId: string) => void,
  ) {
    this.unwritten = new KeptEnds(ctx.rt.db, ctx.log, ctx.identity.nodeId);
    this.approvals = new ApprovalDrops(ctx);
  }

  /**
   * Write the end of a goal that ended in this Runtime (or `end`, one it has no record of);
   * kept for retry() if Redis does not take it. Never throws.
   */
  async write(goalId: string, event: EndEvent, end?: GoalStatus): Promise<void> {
    // One at a time: a write that waited writes only what the one before it left unwritten.
    for (let before = this.writing.get(goalId); before; before = this.writing.get(goalId)) {
      await before;
      if (!this.unwritten.has(goalId)) return;
    }
    const writing = this.writeOnce(goalId, event, end);
    this.writing.set(goalId, writing);
    try {
      await writing;
    } finally {
      if (this.writing.get(goalId) === writing) this.writing.delete(goalId);
    }
  }

  private async writeOnce(goalId: string, event: EndEvent, end?: GoalStatus): Promise<void> {
    const { rt, mirror, identity, log } = this.ctx;
    // Waiting for a retry already (this is a second take of the goal's job, handed back to
    // this node): whether its goal.finished went out is the retry's to say, not this take's.
    const waiting = this.unwritten.get(goalId);
    const as = waiting?.event ?? event;
    const s = end ?? waiting?.end;
    let ended: GoalStatus;
    let wrote: boolean;
    try {
      ended = s ?? rt.goals.status(goalId);
      // Written only while the goal is still this node's: one another node ended or took over
      // (or that a concurrent retry wrote already) is not announced, and its approvals stay.
      // One written already, whose announcement Redis refused, is only announced.
      wrote = waiting?.written === true || (await mirror.finish(goalId, identity.nodeId, ended));
      // Written already (announceWritten, or a refused announcement): announced as the hash
      // holds it (usage, times) whenever Redis answers the read, `ended` (what the write set)
      // when it does not. Before, an end whose first read failed was announced as kept, with
      // each later retry too: zero usage on a goal.finished a dashboard shows (a dead node's
      // goal failed here), while the hash held its usage.
      if (waiting?.written === true) {
        const read = await mirror.status(goalId).catch(() => undefined);
        if (read !== undefined && TERMINAL.has(read.state)) ended = read;
      }
    } catch (e) {
      this.refused(goalId, waiting, e, as === "sent" ? "unsure" : as, s);
      return;
    }
    if (wrote) {
      // The end is written: a refused drop is not a refused end (the owner's approvals leave
      // the list as they settle, owned-mirror.ts).
      if (waiting?.written !== true) await this.approvals.drop(goalId);
      // An end another node id wrote (kept-ends.ts) is announced as that node's.
      const by = waiting?.written === true ? waiting.node : undefined;
      try {
        await this.announce(goalId, as, ended, by);
      } catch (e) {
        // Written, not announced: Redis refused the streams (out of memory it refuses every
        // stream write, yet the end's script, whose first write is a removal, lands). The
        // announcement alone is retried; whether the event went out is the stream's to say.
        this.refused(goalId, waiting, e, "unsure", ended, true, by);
        this.settled(goalId);
        return;
      }
    }
    // Logged only for an end that waited for a retry (why: what Redis said then). An end kept
    // while this write was under way (a cancel's, announceWritten) is not this write's to drop:
    // the write queued behind this one announces it.
    if (this.unwritten.get(goalId) === waiting && this.unwritten.delete(goalId) && waiting?.why)
      log(
        waiting?.written
          ? `cluster: the end of goal ${goalId} is announced now`
          : wrote
            ? `cluster: the end of goal ${goalId} is written to Redis now`
            : `cluster: the end of goal ${goalId} is not written: another node ended or took over the goal meanwhile`,
      );
    this.settled(goalId);
  }

  /**
   * Announce an end this node wrote: its goal.finished on the goal's stream, unless the stream
   * holds it already (`sent` as it happened: Redis may have refused it all the same), then
   * the goal-ends entry for waiters, who re-read the hash. One transaction: all or nothing.
   */
  private async announce(
    goalId: string,
    as: EndEvent,
    ended: GoalStatus,
    node = this.ctx.identity.nodeId,
  ): Promise<void> {
    const { redis } = this.ctx;
    const publish = as === "held" || !(await endPublished(redis, goalId, node).catch(() => as === "sent"));
    await announceWrittenEnd(redis, goalId, publish ? { ...goalEndEvent(ended), node } : undefined);
  }

  /**
   * Announce an end this node wrote to the goal's hash by its own compare-and-set (a cancel of
   * a goal that had not started, a dead node's goal failed here): as write() announces the
   * ends it writes, and again with each heartbeat while Redis refuses the announcement (a
   * follower on another node would otherwise never see the goal end). Never throws.
   */
  async announceWritten(goalId: string, end: GoalStatus): Promise<void> {
    // The hash holds this end now. An end of the goal kept for a retry before (the node's own,
    // refused, say, as it refused the goal) is not the goal's any more: written again it
    // found the goal ended and announced nothing, this end included. Kept (and recorded in
    // the node's database) before the hash is read: callers read it here, after; before, they
    // read it first, and one Redis did not answer lost the announcement for good.
    if (this.unwritten.get(goalId)?.written !== true)
      this.unwritten.set(goalId, { why: "", event: "held", end, written: true });
    // Announced as the hash holds it (usage, times) when Redis answers the read (writeOnce).
    await this.write(goalId, "held", end);
  }

  /** Write a goal that never ran here as failed with `error` (announced with the write). */
  async endFailed(goalId: string, goal: string, error: string): Promise<void> {
    const now = new Date().toISOString();
    const failed: GoalStatus = {
      goal_id: goalId,
      state: "failed",
      error,
      usage: { input_tokens: 0, output_tokens: 0 },
      output_dir: "",
      goal,
      created_at: now,
      finished_at: now,
    };
    await this.write(goalId, "held", failed);
  }

  /**
   * A goal this node took but never recorded (it died between the take and the local row):
   * nothing of it ran here; it ends failed rather than stay running.
   */
  async failUnstarted(goalId: string): Promise<void> {
    await this.endFailed(
      goalId,
      "",
      `node ${this.ctx.identity.nodeId} restarted after taking the goal, before it started`,
    );
  }

  /**
   * Write again the ends Redis did not take (each heartbeat, and when Redis is back): it may
   * refuse writes while connected (ACL, out of memory), and until an end is written every
   * other node shows the goal running. Each is written and announced once: the write is the
   * owner's compare-and-set, so a second retry of the same end, or an end a survivor wrote
   * meanwhile, changes and announces nothing.
   */
  async retry(): Promise<void> {
    await this.approvals.retry();
    for (const [goalId, u] of this.unwritten.entries()) await this.write(goalId, u.event, u.end);
  }

  /**
   * The node leaves with ends Redis did not take (node.ts stop: Redis down, or refusing): no
   * heartbeat retries them any more, so each is logged with what becomes of it. Its next
   * process, once Redis answers, writes an unwritten end from this Runtime's record of the goal
   * (recover(): the goal's hash still says it runs here), and announces a written one from the
   * node's database (kept-ends.ts). Until then the hash says the goal runs here: a survivor
   * that takes its job once this node's lease ran out fails it if its model calls had started
   * (never runs it again), and runs it if none had.
   */
  leaving(): void {
    for (const [goalId, u] of this.unwritten.entries()) {
      const why = u.why || "no answer";
      if (u.written) {
        this.ctx.log(
          `cluster: leaving with the end of goal ${goalId} written to Redis but not announced (${why}); it is in this node's database, and announced when the node starts again`,
        );
        continue;
      }
      this.ctx.log(
        this.recorded(goalId)
          ? `cluster: leaving with the end of goal ${goalId} not written to Redis (${why}); it is in this node's database, and written when the node starts again`
          : `cluster: leaving with the end of goal ${goalId} not written to Redis (${why}); the goal never started here, and the node's next start ends it failed`,
      );
    }
  }

  /** Whether this Runtime has a record of the goal. */
  private recorded(goalId: string): boolean {
    try {
      this.ctx.rt.goals.status(goalId);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Recovery against Redis: goals the mirror says run here but this process does not run
   * (`runsHere` says no: the node restarted) end as the local record says (failed: the daemon
   * restarted, or the end the previous process could not write), or failed when there is
   * none. A goal another node already ended or took over is not ours any more and stays as it
   * is (the write is a compare-and-set on the owner). One end Redis refuses joins retry() and
   * the others are recovered all the same.
   */
  async recover(runsHere: (goalId: string) => boolean): Promise<void> {
    const { rt, mirror, identity } = this.ctx;
    for (const goalId of await mirror.runningOn(identity.nodeId)) {
      if (runsHere(goalId)) continue;
      let s: GoalStatus | undefined;
      try {
        s = rt.goals.status(goalId);
      } catch {
        s = undefined;
      }
      if (s === undefined) await this.failUnstarted(goalId);
      // The previous process's end may be this very one, refused by Redis after its
      // goal.finished went out: the event goes out only if the goal's stream lacks it.
      else if (TERMINAL.has(s.state)) await this.write(goalId, "unsure");
    }
  }

  /**
   * An end Redis did not take: kept for retry(). Redis may refuse for hours: logged when the
   * refusal starts (or its reason changes), not for each goal with every heartbeat.
   */
  private refused(
    goalId: string,
    /** The kept end the failed write started from: one kept since (a cancel's) stays as it is. */
    from: KeptEnd | undefined,
    e: unknown,
    event: KeptEnd["event"],
    end: GoalStatus | undefined,
    written?: true,
    /** The node that wrote it, when not this one. */
    node?: string,
  ): void {
    if (this.unwritten.get(goalId) !== from) return;
    const why = errorMessage(e);
    if (this.unwritten.get(goalId)?.why !== why)
      this.ctx.log(
        written
          ? `cluster: the end of goal ${goalId} is written to Redis, but Redis refused its announcement (announced again with each heartbeat until it is): ${why}`
          : `cluster: could not write the end of goal ${goalId} to Redis (written again with each heartbeat until it is): ${why}`,
      );
    this.unwritten.set(goalId, {
      why,
      event,
      ...(end !== undefined ? { end } : {}),
      ...(written ? { written } : {}),
      ...(node !== undefined ? { node } : {}),
    });
  }
}
