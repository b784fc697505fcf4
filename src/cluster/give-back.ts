// cluster/give-back.ts — a goal this node took goes back to the queue for any node instead of
// ending here: taken as the node began to shut down, or ended by the shutdown before its
// first model call (goal-runner.ts decides when). The hash goes back first (a compare-and-set
// on the owner), then the job; a cancel's mark (cancel-marks.ts) is read between the steps.
// Only the approvals this node mirrored of the goal are dropped with it: once its job is back
// in the queue another node may take the goal and ask approvals of its own, which a drop of
// every node's took off approval.list everywhere (its agent then waited for an answer no node
// could give). A drop Redis refuses is logged and made again with the heartbeats this process
// still has (approval-drops.ts), not recorded for its next process, which settles them itself
// (owned-mirror.ts settleStale). Before, a refused drop was dropped silently and never made.

import { type Job, ErrorCode as QueueErrorCode, WaitingError } from "bullmq";
import { errorMessage } from "../errors.js";
import type { ApprovalDrops } from "./approval-drops.js";
import type { CancelMarks } from "./cancel-marks.js";
import { type NodeContext, REDIS_ANSWER_MS, withTimeout } from "./context.js";
import type { GoalJob } from "./goal-runner.js";

/**
 * Hand a goal that never reached its first model call here back to the queue, for any node
 * (this one is shutting down). The hash goes back to queued only while this node owns it
 * and no model call started (compare-and-set), then the job goes back to waiting, and the
 * WaitingError this throws tells BullMQ so. Returns when the goal cannot be given back (a
 * model call started, it was cancelled meanwhile, or Redis does not answer): it then ends
 * as it would have. "not ours": the hash is not this node's running goal any more (another
 * node ended or took it over, or a model call of it started). This node's mirrored approvals of
 * the goal go through `approvals` (kept for a retry if Redis refuses).
 */
export async function giveBack(
  ctx: NodeContext,
  marks: CancelMarks,
  approvals: ApprovalDrops,
  job: Job<GoalJob>,
  token: string | undefined,
  reason: string,
  forget: () => void,
): Promise<"not ours" | undefined> {
  const goalId = job.data.goal_id;
  const nodeId = ctx.identity.nodeId;
  // A cancelled goal is never given back (cancel() ended it in Redis, queued or not).
  if (token === undefined || (await marks.took(goalId))) return;
  // "queued": given back already by this node's other take of the same job (its lock had
  // lapsed and this node's worker took it again). The job this take holds goes back to
  // waiting all the same: completed, it would be removed, leaving the goal queued with no job.
  let first: boolean;
  try {
    const released = await ctx.mirror.release(goalId, nodeId);
    if (released === "kept") return "not ours";
    first = released === "released";
  } catch (e) {
    ctx.log(`cluster: could not give goal ${goalId} back to the queue: ${errorMessage(e)}`);
    return;
  }
  // A cancel that came while the hash was released ends it there (queued -> cancelled): the
  // job then completes here rather than go back for a node that would skip it.
  if (await marks.took(goalId)) return;
  try {
    // Bounded: the worker's connection waits for Redis forever, and shutdown waits for this.
    await withTimeout(job.moveToWait(token), REDIS_ANSWER_MS);
  } catch (e) {
    ctx.log(`cluster: could not put goal ${goalId}'s job back in the queue: ${errorMessage(e)}`);
    // The job's lock is not this node's any more (it lapsed, or another worker holds the
    // job): the job is still in BullMQ and reaches a node — its holder, a survivor's stalled
    // check, or the failed-job sweep (JobIntake.requeueOrphans) — that claims the queued
    // hash. It is not taken back; the goal stays given back.
    if (!lockLost(e)) {
      // Otherwise take the goal again, so that it ends here as it would have.
      const c = await ctx.mirror.claim(goalId, nodeId).catch(() => undefined);
      if (c?.kind === "claimed") return;
    }
    // The hash says queued (or another node has it now): the job must not complete here,
    // which would remove it and leave a queued goal no node ever takes. Thrown, it fails
    // (kept) if this node still holds it, and the sweep puts it back while its goal is queued.
    forget();
    if (first) ctx.rt.audit.record("cluster.goal_released", { reason }, { goalId });
    await approvals.drop(goalId, nodeId);
    throw new Error(`goal ${goalId} given back, but its job could not go back here: ${errorMessage(e)}`);
  }
  forget();
  if (first) {
    ctx.rt.audit.record("cluster.goal_released", { reason }, { goalId });
    await approvals.drop(goalId, nodeId);
    ctx.log(`cluster: goal ${goalId} given back to the queue: ${reason}`);
  }
  throw new WaitingError(`goal ${goalId} given back to the queue: ${reason}`);
}

/** A BullMQ refusal because the job's lock is missing or held by another worker's token. */
function lockLost(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === QueueErrorCode.JobLockNotExist || code === QueueErrorCode.JobLockMismatch;
}
