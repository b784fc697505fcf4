// cluster/lost-goals.ts — the goals this node took that the cluster no longer calls its own
// (this node was paused past its lease, and a survivor ended or took them over): which they
// are, and stopping them here. The runner (goal-runner.ts) asks look() with each heartbeat
// which of its goals the mirror gives to no one else any more; nothing of a lost goal is
// published from here (ClusterGoalRunner.owns says no), since its stream may already follow
// it running on another node.
// Each goal is looked at and stopped on its own: a look, an audit entry or a stop that throws
// for one goal (Redis did not answer, the audit write failed, stopping its agents threw) is
// logged and done again with the next heartbeat, and the goals after it are stopped all the
// same. Before, the first throw ended the look, and the goals after it ran on until a look
// got past it: forever, when it threw every time.
// A goal_lost entry the audit log refused is written later, the goal stopped meanwhile; it
// is recorded in the node's database (cluster_unaudited_losses) until it is written, and read
// back when the node starts: kept only in memory, a restart before the next heartbeat lost
// it, and nothing in the audit log said the node had stopped a goal another node decided.

import { errorMessage } from "../errors.js";
import { TERMINAL } from "../kernel/goal-store.js";
import type { NodeContext } from "./context.js";
import type { ClusterGoalStatus } from "./goal-mirror.js";
import { RetryTable, type RetryTableSpec } from "./retry-table.js";

declare module "../security/audit-events.js" {
  interface AuditPayloads {
    /**
     * A goal this node took that another node ended or took over while this one was silent:
     * stopped here, or (found as the node shut down before it started, or before its first
     * model call here) neither run nor given back, and no end written for it here.
     */
    "cluster.goal_lost": { reason: string };
  }
}

/** The unaudited losses, for the node's next process. */
const UNAUDITED: RetryTableSpec<{ reason: string }> = {
  module: "cluster.lost",
  table: "cluster_unaudited_losses",
  migrations: [
    `CREATE TABLE cluster_unaudited_losses (
     goal_id TEXT PRIMARY KEY,
     reason TEXT NOT NULL
   )`,
  ],
  columns: ["reason"],
  // The reason the goal was first found lost for.
  onConflict: "keep",
  unwritten: (goalId) =>
    `cluster: could not record in the node's database that goal ${goalId}'s goal_lost entry is still to be written (lost if the node restarts first)`,
  // Written again by the node's next process: one entry too many, none missing.
  undropped: (goalId) =>
    `cluster: could not drop goal ${goalId}'s written goal_lost entry from the node's database`,
  unreadable: (goalId, why) =>
    `cluster: the goal_lost entry of goal ${goalId} in the node's database (cluster_unaudited_losses) is left unwritten: ${why}`,
};

export class LostGoals {
  private readonly lost = new Set<string>();
  /**
   * Lost goals whose stop here threw, with the reason they are stopped for: stopped again with
   * each look until the stop goes through or the goal ended here.
   */
  private readonly unstopped = new Map<string, string>();
  /**
   * Lost goals whose cluster.goal_lost entry the audit log refused: the goal is stopped all
   * the same (running it on is what the entry warns of), and the entry written with a later look.
   */
  private readonly unaudited: Map<string, string>;
  private readonly table: RetryTable<{ reason: string }>;
  /** Per goal, the last failure logged (logged again only when it changes, not every heartbeat). */
  private readonly failing = new Map<string, string>();

  constructor(private readonly ctx: NodeContext) {
    this.table = new RetryTable(ctx.rt.db, UNAUDITED, (m) => ctx.log(m));
    // Left by an earlier process of this node: written with the first look.
    this.unaudited = this.table.readBack((r) => r.reason);
  }

  has(goalId: string): boolean {
    return this.lost.has(goalId);
  }

  /** Whether a lost goal's stop here threw and is still to be made: it may still call the model. */
  anyUnstopped(): boolean {
    return this.unstopped.size > 0;
  }

  /**
   * A goal another node ended or took over (it judged this one dead: paused past its lease)
   * before this node's first model call of it, found as this node gave it back (`m`: its
   * status now; `when` this node lost it). Not a refusal of the goal: audited as lost, as a
   * look's are.
   */
  givenBack(goalId: string, m: ClusterGoalStatus | undefined, when: string): void {
    const reason = `another node ended or took over the goal ${when} (now ${m?.state ?? "unknown"} on node ${m?.node ?? "none"})`;
    this.ctx.rt.audit.record("cluster.goal_lost", { reason }, { goalId });
    this.ctx.log(`cluster: goal ${goalId} is not this node's: ${reason}`);
  }

  /** Lost without a stop from here (its first model call found it another node's: that call fails it). */
  add(goalId: string): void {
    this.lost.add(goalId);
  }

  /**
   * The goal is gone from this node (its end settled: written, or another node's): nothing of
   * it is kept but a goal_lost entry the audit log refused, still written with a later look.
   */
  forget(goalId: string): void {
    this.lost.delete(goalId);
    this.unstopped.delete(goalId);
    this.settled(goalId);
  }

  /**
   * Look at each of `goalIds` (goals this node runs, or that ended here with their end not
   * written yet) in the mirror: one another node ended or took over is lost, audited, and
   * stopped here. A hash that is gone (Redis lost its data) proves nothing and changes nothing.
   * True when every goal was looked at and every lost one stopped; false when a look or a
   * stop is left for the next heartbeat (logged): the node is not sure of its goals yet. An
   * audit entry left for later does not count: the goal it is about is stopped.
   */
  async look(goalIds: readonly string[]): Promise<boolean> {
    const { rt, mirror, identity } = this.ctx;
    const nodeId = identity.nodeId;
    let done = this.retry();
    for (const goalId of goalIds) {
      if (this.lost.has(goalId)) continue;
      let reason: string;
      try {
        const m = await mirror.status(goalId);
        if (m === undefined || (m.node === nodeId && !TERMINAL.has(m.state))) {
          this.failing.delete(goalId);
          continue;
        }
        reason = `the cluster ended or moved this goal while node ${nodeId} was not heartbeating (now ${m.state} on node ${m.node ?? "none"})`;
      } catch (e) {
        done = this.failed(goalId, `could not look whether goal ${goalId} is still this node's`, e);
        continue;
      }
      this.ctx.log(`cluster: goal ${goalId} stopped here: ${reason}`);
      // Lost before the stop, so that none of the stop's events (its goal.finished above all)
      // reaches the goal's stream.
      this.lost.add(goalId);
      this.unaudited.set(goalId, reason);
      this.unstopped.set(goalId, reason);
      this.audit(goalId);
      if (rt.goals.isLive(goalId)) done = this.stop(goalId) && done;
      else this.unstopped.delete(goalId);
    }
    return done;
  }

  /** The audit entries and stops the last looks could not make, made again. */
  private retry(): boolean {
    let done = true;
    for (const goalId of [...this.unaudited.keys()]) this.audit(goalId);
    for (const goalId of [...this.unstopped.keys()]) {
      if (this.ctx.rt.goals.isLive(goalId)) done = this.stop(goalId) && done;
      else this.unstopped.delete(goalId);
    }
    return done;
  }

  private audit(goalId: string): boolean {
    const reason = this.unaudited.get(goalId);
    if (reason === undefined) return true;
    try {
      this.ctx.rt.audit.record("cluster.goal_lost", { reason }, { goalId });
    } catch (e) {
      // A refused entry outlives the process: recorded until it is written (logged if it cannot be).
      this.table.put(goalId, { reason });
      return this.failed(goalId, `could not audit that goal ${goalId} was lost`, e);
    }
    this.unaudited.delete(goalId);
    this.settled(goalId);
    this.table.delete(goalId);
    return true;
  }

  private stop(goalId: string): boolean {
    const reason = this.unstopped.get(goalId);
    if (reason === undefined) return true;
    try {
      this.ctx.rt.goals.fail(goalId, reason);
      this.unstopped.delete(goalId);
      this.settled(goalId);
      return true;
    } catch (e) {
      return this.failed(goalId, `could not stop goal ${goalId}, lost to another node`, e);
    }
  }

  /** Nothing of the goal is left to do: a later failure is logged anew. */
  private settled(goalId: string): void {
    if (!this.unaudited.has(goalId) && !this.unstopped.has(goalId)) this.failing.delete(goalId);
  }

  /** Logged when the failure is new for the goal; always false (something is left to do). */
  private failed(goalId: string, what: string, e: unknown): false {
    const why = `${what}: ${errorMessage(e)}`;
    if (this.failing.get(goalId) !== why)
      this.ctx.log(`cluster: ${why} (tried again with the next heartbeat)`);
    this.failing.set(goalId, why);
    return false;
  }
}
