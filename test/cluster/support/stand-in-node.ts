// test/cluster/support/stand-in-node.ts — a cluster node in the test's process: the cluster's
// own code (ClusterGoalRunner, JobIntake and what they own) is real, against the test's real
// redis-server; the Runtime under it is a stand-in, only the part those paths read (its goals,
// its audit log, its database, its budget ledger), which each test writes for its case. With these, the
// goal-keyed Redis fixtures every such test builds: a goal claimed by a node, a job as
// BullMQ hands it over, an approval as a node mirrors it.

import type { Job, Queue } from "bullmq";
import type { Redis } from "ioredis";
import { expect } from "vitest";
import type { NodeContext } from "../../../src/cluster/context.js";
import { GoalMirror } from "../../../src/cluster/goal-mirror.js";
import { ClusterGoalRunner, type GoalJob } from "../../../src/cluster/goal-runner.js";
import { JobIntake, type Liveness } from "../../../src/cluster/job-intake.js";
import { KeptCancels } from "../../../src/cluster/kept-cancels.js";
import { type Db, openDatabase } from "../../../src/db/database.js";
import { AidoError, ErrorCode } from "../../../src/errors.js";
import { BudgetLedger } from "../../../src/security/budget.js";

export interface StandInOptions {
  nodeId: string;
  /** The node's connection to Redis (the default user, or one of its own: node-user.ts). */
  redis: Redis;
  /**
   * The Runtime's goals as the case needs them. By default it is not closing, has no record
   * of any goal (status throws not found), runs none, and ended none by its shutdown.
   */
  goals?: Record<string, unknown>;
  /** The Runtime's audit log (by default it takes every entry); throw to refuse one. */
  audit?: (kind: string, payload: unknown, ids?: { goalId?: string }) => void;
  /** The node's database (by default one in memory). */
  db?: Db;
  /** The node's home (where a job's inputs are unpacked), when the case unpacks any. */
  home?: string;
  /** Whether the other nodes are alive (JobIntake's liveness); "dead" by default. */
  others?: "alive" | "dead";
  /** JobIntake's liveness over the node's context, instead of `others`'s fixed answer. */
  liveness?: (ctx: NodeContext) => Liveness;
}

export interface StandInNode {
  ctx: NodeContext;
  runner: ClusterGoalRunner;
  intake: JobIntake;
  /** What the node logged, in order. */
  logs: string[];
  /** The cancels of ended sessions' goals it keeps (kept-cancels.ts). */
  kept: KeptCancels;
}

/** The goals of a Runtime that is shutting down: it refuses a goal submitted to it (kernel/goals.ts). */
export const closingGoals = {
  closing: true,
  submit: (): never => {
    throw new AidoError(ErrorCode.usage, "the runtime is closing; goal not accepted", {});
  },
};

/** The Runtime's answer for a goal it has no record of. */
export function noGoal(id: string): never {
  throw new AidoError(ErrorCode.notFound, `no goal ${id}`, { id });
}

/** A node over a stand-in Runtime (see the header); its runner and intake are the real ones. */
export function standInNode(opts: StandInOptions): StandInNode {
  const db = opts.db ?? openDatabase(":memory:");
  const rt = {
    db,
    goals: {
      closing: false,
      status: noGoal,
      isLive: () => false,
      endedByClose: () => false,
      ...opts.goals,
    },
    audit: { record: opts.audit ?? (() => {}) },
    // Its own ledger: a cancel gives a session's share back (kernel/session-budget.ts); these
    // goals were submitted under none.
    budget: new BudgetLedger({ db }),
  };
  const logs: string[] = [];
  const ctx = {
    config: {
      ...(opts.home !== undefined ? { home: opts.home } : {}),
      cluster: { leaseMs: 3_000, heartbeatMs: 500 },
      sandbox: { inputsMaxFiles: 100 },
    },
    rt,
    redis: opts.redis,
    mirror: new GoalMirror(opts.redis),
    identity: { nodeId: opts.nodeId },
    log: (m: string) => logs.push(m),
  } as unknown as NodeContext;
  const runner = new ClusterGoalRunner(ctx);
  const kept = new KeptCancels(db, ctx.log);
  const others = opts.others ?? "dead";
  const intake = new JobIntake(
    ctx,
    {} as Queue<GoalJob>,
    runner,
    opts.liveness?.(ctx) ?? {
      isAlive: async () => others === "alive",
      diedWithin: async () => others === "dead",
      connectedForALease: async () => {},
    },
    kept,
  );
  return { ctx, runner, intake, logs, kept };
}

/** The goal's job as BullMQ hands it to a node's worker (submitted via node `via`). */
export function jobOf(goalId: string, via: string): Job<GoalJob> {
  return {
    data: { goal_id: goalId, goal: `run ${goalId}`, inputs: { names: [], entries: [] }, via },
  } as unknown as Job<GoalJob>;
}

/**
 * A goal submitted via node `via` and claimed by node `node` in the mirror (written through
 * `redis`); with `modelStarted`, its first model call started there too.
 */
export async function claimedGoal(
  redis: Redis,
  goalId: string,
  at: { via: string; node: string; modelStarted?: boolean; now?: number },
): Promise<void> {
  const mirror = new GoalMirror(redis);
  await mirror.create({ goalId, goal: `run ${goalId}`, via: at.via, now: at.now ?? Date.now() });
  expect(await mirror.claim(goalId, at.node)).toEqual({ kind: "claimed" });
  if (at.modelStarted) expect(await mirror.modelStarted(goalId, at.node)).toBe(true);
}

/** A pending approval of the goal, as node `node` mirrors it (owned-mirror.ts). */
export async function mirrorApproval(redis: Redis, id: string, goalId: string, node: string): Promise<void> {
  await redis.hset(
    "aido:approvals",
    id,
    JSON.stringify({ id, node, status: "pending", created_at: Date.now(), goal_id: goalId }),
  );
}
