// cluster/job-intake.ts — what this node's BullMQ Worker does with a job it takes. The
// goal's hash decides, not the job (a stalled job can come back): a queued goal is claimed
// and run here (cluster/goal-runner.ts); a goal whose owner stopped heartbeating is taken
// over when no model call had started, failed with the reason otherwise; a goal whose owner
// still heartbeats (at the death check, or at the take: goal-mirror.ts reads its lease key in
// the take's script) is left to it; one that ended is skipped; a job whose goal id is not one
// a node makes is refused before anything of it is unpacked, and a queued goal whose MCP
// session is known to have ended (kept-cancels.ts) ends cancelled without being claimed.
// requeueOrphans(): one node per heartbeat period — the one whose heartbeat takes the sweep
// lease first (a Redis key set NX with a TTL of one heartbeat) — puts back to waiting a failed
// job whose goal is queued (its job failed on a node that found the goal still running
// elsewhere, and that node then gave the goal back; or a take failed before its claim): the
// newest failed jobs and, in turn, a page of the older ones. One sweeper, so the Redis work
// does not grow with the number of nodes; a sweeper that dies holds the lease at most one
// heartbeat, so another node sweeps the next period. Same job id, so never two jobs; the
// claim (a compare-and-set) decides which node runs the goal, once.

import { setTimeout as sleep } from "node:timers/promises";
import type { Job, Queue } from "bullmq";
import { withoutConfigSecrets } from "../config-secrets.js";
import { errorMessage } from "../errors.js";
import { isGoalId } from "../kernel/goals.js";
import type { NodeContext } from "./context.js";
import { writtenEnd } from "./goal-ends.js";
import type { ClusterGoalRunner, GoalJob } from "./goal-runner.js";
import { submittedByOfJob } from "./goal-submit.js";
import { type KeptCancels, sessionEndedMark } from "./kept-cancels.js";
import { RedisKeys } from "./redis-keys.js";

declare module "../security/audit-events.js" {
  interface AuditPayloads {
    /** This node ended a goal whose node stopped heartbeating: re-queued here, or failed. */
    "cluster.goal_taken_over": { from_node: string; outcome: "requeued" | "failed"; reason?: string };
    /** A failed job whose goal was queued (given back meanwhile) put back to waiting by this node. */
    "cluster.goal_requeued": { reason: string };
  }
}

/**
 * How many failed jobs a sweep looks at: this many of the newest (a job that just failed),
 * and this many of the older ones in turn, so that every failed job kept (a day's) is looked
 * at within a few heartbeats however many failed after it.
 */
const SWEEP_PAGE = 500;

/**
 * Takes the sweep lease when this node's own heartbeat period has passed since the last
 * sweep began (Redis's clock, so nodes' clocks do not matter). The lease holds
 * "<node id> <ms>"; a value without the time (an older node's) or with a time still to
 * come (no node writes one) is taken at once. Each
 * taker keeps it for its own heartbeat, yet a node with a shorter heartbeat may take it
 * over as soon as its own period has passed: the sweep runs about once per the shortest
 * heartbeat in the cluster, never stretched to a slower node's. Returns 1 when taken.
 */
const TAKE_SWEEP_LEASE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('GET', KEYS[1])
if v then
  local at = tonumber(string.match(v, ' (%d+)$') or '')
  if at and at <= now and now - at < tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. now, 'PX', ARGV[2])
return 1
`;

/** How this node tells a dead node from a live one (cluster/node.ts). */
export interface Liveness {
  isAlive(node: string): Promise<boolean>;
  /** Whether `node` stops heartbeating within one lease. */
  diedWithin(node: string): Promise<boolean>;
  /** Resolves once this node's own connection has been up for a whole lease. */
  connectedForALease(): Promise<void>;
}

export class JobIntake {
  private readonly rt: NodeContext["rt"];
  private readonly redis: NodeContext["redis"];
  private readonly mirror: NodeContext["mirror"];
  private readonly identity: NodeContext["identity"];
  private readonly log: NodeContext["log"];
  /** The takes under way (process()), each until its goal's end is written or kept. */
  private readonly takes = new Set<Promise<string>>();

  constructor(
    private readonly ctx: NodeContext,
    private readonly queue: Queue<GoalJob>,
    private readonly runner: ClusterGoalRunner,
    private readonly liveness: Liveness,
    /** The cancels of ended sessions' goals this node keeps (kept-cancels.ts). */
    private readonly kept: KeptCancels,
  ) {
    ({ rt: this.rt, redis: this.redis, mirror: this.mirror, identity: this.identity, log: this.log } = ctx);
  }

  /**
   * The Worker's processor: one goal's job, from take to end. What the hash says decides;
   * BullMQ's job is only how the goal reaches a node.
   */
  async process(job: Job<GoalJob>, token?: string): Promise<string> {
    // A take from before its claim: a cancel's mark stays for it (ClusterGoalRunner.take).
    const take = this.runner.take(String(job.data.goal_id), () => this.decide(job, token));
    this.takes.add(take);
    try {
      return await take;
    } finally {
      this.takes.delete(take);
    }
  }

  /**
   * Resolves once no take is under way: every goal this node took has ended here (or gone
   * back, or elsewhere) and its end is written to Redis or kept (goal-ends.ts). A leaving
   * node waits for this, not for BullMQ to settle the jobs in Redis (node.ts stop).
   */
  async takesDone(): Promise<void> {
    while (this.takes.size > 0) await Promise.allSettled([...this.takes]);
  }

  private async decide(job: Job<GoalJob>, token?: string): Promise<string> {
    const { goal_id: goalId } = job.data;
    const nodeId = this.identity.nodeId;
    // The id names this node's folders (inbox, goal folders): only one a node makes is taken.
    if (!isGoalId(goalId)) return this.refuseId(job.data);
    // A goal whose MCP session ended (its cancel kept while Redis was away) never starts.
    const ended = await this.sessionEnded(job.data);
    if (ended !== undefined && (await this.cancelForSession(goalId, ended))) return "cancelled";
    let c = await this.mirror.claim(goalId, nodeId);
    if (c.kind === "running" && c.owner !== nodeId && !(await this.liveness.isAlive(c.owner))) {
      // Judge another node dead only after being connected for a whole lease: after a Redis
      // outage every heartbeat key has expired, and live nodes need a beat to renew theirs.
      await this.liveness.connectedForALease();
      c = await this.mirror.claim(goalId, nodeId);
    }
    if (c.kind === "missing" || c.kind === "ended") return c.kind; // cancelled, or never queued
    if (c.kind === "running") {
      // Our own job came back (its lock lapsed while Redis was away, or in a long unpack):
      // wait for it here. A take of this process still unpacking it submits it (or drops it).
      // One that ended here is not waited for: its end, if Redis has not taken it yet, is
      // written by this take as the heartbeat's retry would (waiting for that retry held a
      // worker slot, and, once the node began to leave, its shutdown for good).
      if (c.owner === nodeId) {
        while (this.runner.unpacking(goalId)) await sleep(100);
        return this.runner.awaitLocalEnd(job, token);
      }
      if (!(await this.liveness.diedWithin(c.owner))) {
        // Its owner lives (only its lock lapsed): it ends the goal and writes the hash itself.
        throw stillRuns(goalId, c.owner);
      }
      // From here the owner may renew and look (a partition healed) before the take lands: the
      // take scripts read its lease key themselves, and "alive" is as above. The job fails, so a
      // sweep puts it back should the owner give the goal back (requeueOrphans).
      c = await this.mirror.claim(goalId, nodeId);
      if (c.kind === "claimed") return this.runner.runHere(job, token);
      if (c.kind !== "running" || c.owner === nodeId) return this.decide(job, token);
      if (c.modelStarted) {
        const reason = `node ${c.owner} stopped heartbeating during the goal (its model calls had started, so it is not run again)`;
        const failed = await this.mirror.failDead(goalId, c.owner, nodeId, reason);
        if (failed === "alive") throw stillRuns(goalId, c.owner);
        if (failed === "taken") {
          // Written: announced even when its entry is refused (thrown after), else no
          // follower of the goal ever saw it end.
          try {
            this.rt.audit.record(
              "cluster.goal_taken_over",
              { from_node: c.owner, outcome: "failed", reason },
              { goalId },
            );
          } finally {
            await this.dropApprovals(goalId, c.owner);
            await this.runner.announceEnd(goalId, writtenEnd(goalId, "failed", reason));
            this.log(`cluster: goal ${goalId} of node ${c.owner} failed: ${reason}`);
          }
        }
        return "failed";
      }
      const taken = await this.mirror.takeover(goalId, c.owner, nodeId);
      if (taken === "alive") throw stillRuns(goalId, c.owner);
      if (taken === "kept") return "skipped";
      try {
        this.rt.audit.record(
          "cluster.goal_taken_over",
          { from_node: c.owner, outcome: "requeued" },
          { goalId },
        );
      } catch (e) {
        // The goal is this node's now: not run unaudited, nor left running on a live node
        // that runs nothing of it (no other node takes it from a live one). It ends failed.
        const why = `node ${nodeId} took the goal over from node ${c.owner} but could not audit it: ${errorMessage(e)}`;
        this.log(`cluster: goal ${goalId}: ${why}`);
        await this.dropApprovals(goalId, c.owner);
        await this.runner.endFailed(goalId, job.data.goal, why);
        return "failed";
      }
      await this.dropApprovals(goalId, c.owner);
      this.log(`cluster: goal ${goalId} of node ${c.owner} re-queued here (no model call had started)`);
    }
    return this.runner.runHere(job, token);
  }

  /**
   * The end reason of the MCP session that submitted the job, when it is known to have ended:
   * a cancel this node keeps, or the session-ended mark its node wrote (kept-cancels.ts). That
   * node writes its marks with its first heartbeat once Redis answers again: a take within a
   * lease of this node's (re)connection waits until it has been connected for one, else a take
   * right after Redis came back ran a goal whose cancel was about to be made.
   */
  private async sessionEnded(job: GoalJob): Promise<string | undefined> {
    const session = submittedByOfJob(job).submittedBy?.session_id;
    if (session === undefined) return undefined;
    const kept = this.kept.get(job.goal_id);
    if (kept !== undefined) return kept.reason;
    if (job.via !== this.identity.nodeId) await this.liveness.connectedForALease();
    return sessionEndedMark(this.redis, session);
  }

  /**
   * End cancelled, with its session's reason, a queued goal whose session ended; audited and
   * announced. False when it is not queued any more (it runs, or ended): the take goes on.
   */
  private async cancelForSession(goalId: string, reason: string): Promise<boolean> {
    const r = await this.mirror.cancelQueued(goalId, reason);
    if (r.kind !== "cancelled") return false;
    // Written: announced even when its entry is refused (thrown after).
    try {
      this.rt.audit.record("cluster.goal_cancelled", { reason }, { goalId });
    } finally {
      await this.runner.announceEnd(goalId, writtenEnd(goalId, "cancelled", reason));
      this.log(`cluster: goal ${goalId} not started: ${reason}`);
    }
    return true;
  }

  /**
   * The dead owner's mirrored approvals of a goal this node just failed or took over, dropped
   * (approval-drops.ts). A refused drop is logged and done again with the heartbeats, never
   * thrown: the compare-and-set landed, and throwing here left a failed goal unannounced (no
   * follower saw it end) or a goal taken over running on this node with nothing running it.
   */
  private dropApprovals(goalId: string, deadNode: string): Promise<void> {
    return this.runner.approvals.drop(goalId, deadNode);
  }

  /** A job whose goal id is not one a node makes: audited, failed in Redis, nothing unpacked. */
  private async refuseId(data: GoalJob): Promise<string> {
    const goalId = String(data.goal_id);
    // The id is whatever a Redis writer put there (the Redis password, say): quoted blanked.
    const quoted = withoutConfigSecrets(JSON.stringify(goalId), this.ctx.config);
    const reason = `the job's goal id ${quoted} is not one a node makes (g_ and lowercase letters or digits)`;
    this.rt.audit.record("goal.refused", { field: "goal_id", reason });
    this.log(`cluster: job refused: ${reason}`);
    if ((await this.mirror.claim(goalId, this.identity.nodeId)).kind === "claimed") {
      await this.runner.endFailed(goalId, data.goal, `refused by node ${this.identity.nodeId}: ${reason}`);
    }
    return "failed";
  }

  /**
   * Failed jobs whose goal is queued go back to waiting (a queued goal always has a job a
   * node will take), swept by this node only when it takes this period's sweep lease
   * (TAKE_SWEEP_LEASE). Should
   * two nodes sweep at once (a lease that lapsed mid-sweep), the second retry finds the job
   * no longer failed and is refused, which changes nothing. The job of a goal given back
   * long after it failed (the goal waited for its first model call meanwhile) is an old one:
   * the older failed jobs are looked at a page per sweep, in turn, from a cursor in Redis
   * that every sweeper moves on.
   */
  async requeueOrphans(): Promise<void> {
    const { heartbeatMs } = this.ctx.config.cluster;
    const lease = await this.redis.eval(
      TAKE_SWEEP_LEASE,
      1,
      RedisKeys.sweepLease,
      this.identity.nodeId,
      String(heartbeatMs),
    );
    if (lease !== 1) return; // another node sweeps this period
    const newest = await this.queue.getRanges(["failed"], 0, SWEEP_PAGE - 1);
    const from = Number(await this.redis.get(RedisKeys.sweepFrom)) || 0;
    const older = await this.queue.getRanges(["failed"], from, from + SWEEP_PAGE - 1, true);
    // Past the end: the next sweep starts again from the oldest.
    await this.redis.set(RedisKeys.sweepFrom, String(older.length < SWEEP_PAGE ? 0 : from + older.length));
    const ids = [...new Set([...newest, ...older])];
    if (ids.length === 0) return;
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hget(RedisKeys.goal(id), "state");
    const states = (await pipe.exec()) ?? [];
    for (const [i, id] of ids.entries()) {
      if (states[i]?.[1] !== "queued") continue;
      let failedReason: string;
      try {
        const job = await this.queue.getJob(id);
        if (!job || !(await job.isFailed())) continue;
        failedReason = job.failedReason ?? "";
        await job.retry("failed", { resetAttemptsMade: true, resetAttemptsStarted: true });
      } catch (e) {
        this.log(`cluster: could not put goal ${id}'s failed job back in the queue: ${errorMessage(e)}`);
        continue;
      }
      // The failed reason is whatever was written to Redis (a worker's error, which may name
      // the URL's user, or a writer's text): blanked before it is audited and logged.
      const why = withoutConfigSecrets(failedReason, this.ctx.config).slice(0, 300);
      const reason = `the goal was queued but its job had failed (${why}); the job is waiting again`;
      this.rt.audit.record("cluster.goal_requeued", { reason }, { goalId: id });
      this.log(`cluster: goal ${id}: ${reason}`);
    }
  }
}

/** A goal whose owner heartbeats: the job fails here, the owner ends the goal and writes its hash. */
function stillRuns(goalId: string, owner: string): Error {
  return new Error(`goal ${goalId} still runs on node ${owner}`);
}
