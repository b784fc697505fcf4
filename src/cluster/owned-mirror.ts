// cluster/owned-mirror.ts — what other nodes see of the goals this node runs, as it happens:
// their events (on the goal's stream and the cluster's), their pending approvals (in
// aido:approvals, with the node the agent waits on) and, once settled, each approval's
// outcome (read by approval-view.ts). The end the node's shutdown gave a goal
// is held back: the goal may go back to the queue and run elsewhere (the runner publishes
// that end itself when it does not), and a follower told it ended would stop following a
// goal that then runs.

import { toWireEvent } from "../daemon/events.js";
import { errorMessage } from "../errors.js";
import type { ApprovalRecord } from "../security/approvals.js";
import type { NodeContext } from "./context.js";
import { publishEvent } from "./event-stream.js";
import { ENDED_TTL_SECONDS, RedisKeys, SETTLED_APPROVALS_KEPT } from "./redis-keys.js";

/** Mirror the events and approvals of the goals `owns` says run here; returns the unsubscribers. */
export function mirrorOwnedGoals(ctx: NodeContext, owns: (goalId: string) => boolean): (() => void)[] {
  const { rt, redis, log } = ctx;
  const nodeId = ctx.identity.nodeId;
  return [
    rt.events.subscribe({}, (ev) => {
      if (ev.goalId === null || !owns(ev.goalId)) return;
      if (ev.type === "goal.finished" && ev.state === "failed" && rt.goals.endedByClose(ev.goalId)) return;
      publishEvent(redis, { ...toWireEvent(ev), node: nodeId }, log);
    }),
    rt.approvals.on("requested", (r) => {
      if (r.goal_id !== null && owns(r.goal_id)) void mirrorApproval(ctx, r);
    }),
    // Settled: no longer pending, and its outcome kept for every node's approval.list. Not
    // only while the goal runs here: its last approvals expire as it ends.
    rt.approvals.on("decided", (r) => {
      if (r.goal_id !== null) void settleApproval(ctx, r);
    }),
  ];
}

/** The goal's mirrored approvals are dropped (it ended, or another node took it). */
export async function dropApprovalsOf(ctx: NodeContext, goalId: string): Promise<void> {
  const all = await ctx.redis.hgetall(RedisKeys.approvals);
  const ids = Object.entries(all)
    .filter(([, v]) => (JSON.parse(v) as { goal_id: string | null }).goal_id === goalId)
    .map(([k]) => k);
  if (ids.length > 0) await ctx.redis.hdel(RedisKeys.approvals, ...ids);
}

async function settleApproval(ctx: NodeContext, r: ApprovalRecord): Promise<void> {
  const keptMs = ENDED_TTL_SECONDS * 1000;
  try {
    await ctx.redis
      .multi()
      .hdel(RedisKeys.approvals, r.id)
      .set(
        RedisKeys.approvalSettled(r.id),
        JSON.stringify({ ...r, node: ctx.identity.nodeId }),
        "EX",
        ENDED_TTL_SECONDS,
      )
      .zadd(RedisKeys.approvalsSettled, r.created_at, r.id)
      .zremrangebyscore(RedisKeys.approvalsSettled, "-inf", Date.now() - keptMs)
      .zremrangebyrank(RedisKeys.approvalsSettled, 0, -SETTLED_APPROVALS_KEPT - 1)
      .exec();
  } catch (e) {
    ctx.log(`cluster: mirroring approval ${r.id}'s outcome failed: ${errorMessage(e)}`);
  }
}

async function mirrorApproval(ctx: NodeContext, r: ApprovalRecord): Promise<void> {
  try {
    await ctx.redis.hset(RedisKeys.approvals, r.id, JSON.stringify({ ...r, node: ctx.identity.nodeId }));
  } catch (e) {
    ctx.log(`cluster: mirroring approval ${r.id} failed: ${errorMessage(e)}`);
  }
}
