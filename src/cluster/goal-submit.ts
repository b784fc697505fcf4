// cluster/goal-submit.ts — goal.submit in cluster mode (ClusterGoals.submit, goal-view.ts):
// the goal admitted on this node as a local submit is (manifest, ceiling, models.allowed,
// inputs; a refusal audited), its id fixed here, its inputs packed into the job, then its
// mirrored hash and its job written to Redis, for any node to take. A submit Redis does not
// take leaves no queued goal behind and is refused cluster_unavailable; one from a folder
// with a persistent intent is refused, since the intent cannot travel to the node that runs it.
// A goal an MCP session submitted is charged its share of the session's budget in full here,
// and the share caps its manifest's budget (kernel/session-budget.ts).

import type { Queue } from "bullmq";
import { withoutConfigSecrets } from "../config-secrets.js";
import { manifestAsValue } from "../daemon/submit-manifest.js";
import { AidoError, ErrorCode, errorMessage } from "../errors.js";
import { workspaceKey } from "../intent/intents.js";
import { admitGoal } from "../kernel/goal-admission.js";
import { newGoalId } from "../kernel/goals.js";
import type { Runtime } from "../kernel/runtime.js";
import { carveSessionShare, clusterHoldOf, type SessionShareDeps } from "../kernel/session-budget.js";
import type { LoadedManifest } from "../manifest/load.js";
import type { InputReader } from "../sandbox/inputs.js";
import { parseSubmittedBy, type SubmittedBy } from "../security/approval-project.js";
import { handshakeRefusal } from "./connections.js";
import {
  type NodeContext,
  REDIS_ANSWER_MS,
  type RedisFailure,
  redisErrorText,
  redisFailureOf,
  withTimeout,
} from "./context.js";
import type { GoalJob } from "./goal-runner.js";
import { packInputs } from "./job-inputs.js";
import { refusalAdvice } from "./refusal-advice.js";

export interface GoalSubmission {
  goal: string;
  manifest?: unknown;
  inputs?: string[];
  workspace?: string;
  inputsWithin?: string;
  inputsReader?: InputReader;
  /** The MCP session that submitted it (goal.submit `session_id`): carried in the job to the row of the node that runs it. */
  submittedBy?: SubmittedBy;
}

/** goal.submit: admitted here, enqueued for any node; answers with the id at once. */
export async function submitGoal(
  ctx: NodeContext,
  queue: Queue<GoalJob>,
  s: GoalSubmission,
): Promise<{ goal_id: string }> {
  const { rt, config, redis, mirror, identity } = ctx;
  if (s.workspace !== undefined) refuseIntent(rt, s.workspace);
  // Checked here, as a local submit is (manifest, ceiling, models.allowed, inputs): a
  // refusal fails the submit, audited. The owner checks again against its own config.
  const admitted = admitGoal(
    { config, audit: rt.audit },
    {
      goal: s.goal,
      ...(s.manifest !== undefined ? { manifest: s.manifest } : {}),
      ...(s.inputs ? { inputs: s.inputs } : {}),
      ...(s.inputsWithin !== undefined ? { inputsWithin: s.inputsWithin } : {}),
      ...(s.inputsReader !== undefined ? { inputsReader: s.inputsReader } : {}),
    },
  );
  const checked = admitted.inputs;
  const goalId = newGoalId();
  if (redis.status !== "ready") {
    // A connection Redis refused at its handshake (a wrong password) is a refusal, not an outage.
    const refusal = handshakeRefusal(redis);
    refuseUnavailable(
      ctx,
      refusal ? "refused" : "unreachable",
      refusal
        ? `it refused this node's connection: ${errorMessage(refusal)}`
        : `Redis is not connected (${redis.status})`,
    );
  }
  // A session's goal is charged its share of the session's budget in full, here, and the
  // share caps the manifest the owner runs it with (kernel/session-budget.ts).
  const session = s.submittedBy && rt.sessions.accountOf(s.submittedBy.session_id);
  const hold = clusterHoldOf(goalId);
  const share =
    session && carveSessionShare(sessionShareDeps(ctx), session, hold, admitted.manifest.budget?.max_tokens);
  const manifest = share === undefined ? s.manifest : cappedManifest(admitted.manifest, share);
  let inputs: Awaited<ReturnType<typeof packInputs>>;
  try {
    inputs = await packInputs(config, checked);
  } catch (e) {
    if (share !== undefined) releaseHold(rt, hold);
    throw e;
  }
  const job: GoalJob = {
    goal_id: goalId,
    goal: s.goal,
    ...(manifest !== undefined ? { manifest } : {}),
    inputs,
    via: identity.nodeId,
    ...(s.submittedBy !== undefined ? { submitted_by: s.submittedBy } : {}),
  };
  try {
    await withTimeout(
      mirror.create({
        goalId,
        goal: s.goal,
        via: identity.nodeId,
        now: Date.now(),
        submittedBy: s.submittedBy,
      }),
      REDIS_ANSWER_MS,
    );
    await withTimeout(
      queue.add("goal", job, {
        jobId: goalId,
        removeOnComplete: true,
        removeOnFail: { age: 24 * 3600 },
        attempts: 1,
      }),
      REDIS_ANSWER_MS,
    );
  } catch (e) {
    // No job: the goal must not show as queued. (A job without its hash is skipped by process().)
    await mirror.drop(goalId).catch(() => {});
    if (share !== undefined) releaseHold(rt, hold);
    refuseUnavailable(ctx, redisFailureOf(e), redisErrorText(e));
  }
  rt.audit.record(
    "goal.enqueued",
    {
      goal: s.goal.slice(0, 2000),
      ...(checked.length > 0 ? { inputs: checked.map((i) => i.path) } : {}),
      ...(share !== undefined ? { session_share: share } : {}),
    },
    { goalId },
  );
  return { goal_id: goalId };
}

function refuseUnavailable(ctx: NodeContext, failure: RedisFailure, text: string): never {
  // Redis's text, without the URL's secret (a Redis 7.2 NOPERM names the user, which a URL
  // without a password holds): the reason is audited and answered. The advice is read from
  // Redis's own text: a short password may match part of "NOPERM".
  const why = withoutConfigSecrets(text, ctx.config);
  const reason =
    failure === "unreachable"
      ? `the goal was not queued: the cluster's Redis cannot be reached (${why}); nothing was submitted, try again when it is back`
      : `the goal was not queued: the cluster's Redis refused this node (${why}); nothing was submitted, ${refusalAdvice(text)}`;
  ctx.rt.audit.record("goal.refused", { field: "cluster", reason });
  throw new AidoError(ErrorCode.clusterUnavailable, reason, { redis: failure });
}

/**
 * A persistent intent lives in one node's database: a goal submitted from a folder with one
 * cannot carry it to another node, and is refused rather than run without it.
 */
function refuseIntent(rt: Runtime, workspace: string): void {
  let active: { id: string } | undefined;
  try {
    active = rt.intents.active(workspaceKey(workspace));
  } catch {
    return; // not a folder with an intent
  }
  if (active === undefined) return;
  const reason = `workspace: ${withoutConfigSecrets(workspace, rt.config)} has a persistent intent (${active.id}); in cluster mode a goal cannot carry one to the node that runs it. Clear it (aido intent clear) or submit to a daemon outside the cluster`;
  rt.audit.record("goal.refused", { field: "workspace", reason, intent_id: active.id });
  throw new AidoError(ErrorCode.invalidInput, reason, { field: "workspace" });
}

function sessionShareDeps(ctx: NodeContext): SessionShareDeps {
  return { budget: ctx.rt.budget, audit: ctx.rt.audit, goalMaxTokens: ctx.config.limits.goalMaxTokens };
}

/**
 * The goal's manifest (as admitted here) with its budget capped at the share, without a reset
 * period: a periodic budget would not lower the goal's cap on the node that runs it
 * (kernel/goal-start.ts).
 */
function cappedManifest(manifest: LoadedManifest, share: number): Record<string, unknown> {
  return { ...manifestAsValue(manifest), budget: { max_tokens: share } };
}

/** A job that was not queued: its session's share goes back. */
function releaseHold(rt: Runtime, hold: string): void {
  if (rt.budget.find(hold)?.closed === 0) rt.budget.close(hold);
}

/** A job's submitted_by, as the owner's row keeps it (a job from Redis is read, not trusted to be well formed). */
export function submittedByOfJob(job: Pick<GoalJob, "submitted_by">): { submittedBy?: SubmittedBy } {
  const by = parseSubmittedBy(job.submitted_by);
  return by === undefined ? {} : { submittedBy: by };
}
