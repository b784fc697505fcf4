// cluster/owned-mirror.ts — what other nodes see of the goals this node runs, as it happens:
// their events (on the goal's stream and the cluster's) and their pending approvals (in
// aido:approvals, with the node the agent waits on). The end the node's shutdown gave a goal
// is held back: the goal may go back to the queue and run elsewhere (the runner publishes
// that end itself when it does not), and a follower told it ended would stop following a
// goal that then runs.

import { toWireEvent } from "../daemon/events.js";
import { errorMessage } from "../errors.js";
import type { ApprovalRecord } from "../security/approvals.js";
import type { NodeContext } from "./context.js";
import { publishEvent } from "./event-stream.js";
import { RedisKeys } from "./redis-keys.js";

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
    rt.approvals.on("decided", (r) => {
      if (r.goal_id !== null && owns(r.goal_id)) redis.hdel(RedisKeys.approvals, r.id).catch(() => {});
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

async function mirrorApproval(ctx: NodeContext, r: ApprovalRecord): Promise<void> {
  try {
    await ctx.redis.hset(RedisKeys.approvals, r.id, JSON.stringify({ ...r, node: ctx.identity.nodeId }));
  } catch (e) {
    ctx.log(`cluster: mirroring approval ${r.id} failed: ${errorMessage(e)}`);
  }
}
