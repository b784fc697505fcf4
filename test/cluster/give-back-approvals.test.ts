// A goal this node gives back to the queue (it began to shut down as it took the goal) has only
// this node's mirrored approvals dropped. Before, the give-back dropped every node's approvals
// of the goal: another node that took the re-queued goal meanwhile and asked an approval had
// it gone from approval.list on every node, and its agent waited for an answer no one could
// give. Real redis-server and a real BullMQ job (taken with a lock, moved back to waiting);
// the Runtime is the part the give-back reads: it is closing, and refuses the goal.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Job, Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { GoalMirror } from "../../src/cluster/goal-mirror.js";
import type { ClusterGoalRunner, GoalJob } from "../../src/cluster/goal-runner.js";
import { GOAL_QUEUE } from "../../src/cluster/redis-keys.js";
import { type Db, openDatabase } from "../../src/db/database.js";
import { connectRedis, type RedisServer, startRedis, stopAll } from "./fixture.js";
import { addNodeUser, type NodeUser } from "./support/node-user.js";
import { closingGoals, mirrorApproval, standInNode } from "./support/stand-in-node.js";

const NODE = "n-leaving";
const OTHER = "n-taker";
let server: RedisServer;
let redis: Redis;
let queue: Queue<GoalJob>;
let worker: Worker<GoalJob>;
let home: string;
/** NODE's own Redis user, whose writes the test refuses (node-user.ts), and its connection. */
let user: NodeUser;
let owner: Redis;

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url, { maxRetriesPerRequest: null });
  queue = new Queue<GoalJob>(GOAL_QUEUE, { connection: redis });
  // No processor: the test takes the job itself, as the node's worker would.
  worker = new Worker<GoalJob>(GOAL_QUEUE, null, { connection: redis, autorun: false });
  home = mkdtempSync(join(tmpdir(), "aido-give-back-"));
  user = await addNodeUser(redis, server.url, NODE);
  owner = connectRedis(user.url, { maxRetriesPerRequest: 1 });
});

// The jobs other tests gave back wait in the queue still: each test's worker takes its own.
beforeEach(async () => {
  await queue.drain();
});

afterAll(async () => {
  await worker?.close();
  await queue?.close();
  redis?.disconnect();
  await stopAll();
  rmSync(home, { recursive: true, force: true });
});

/**
 * This node, shutting down: its Runtime refuses the goal, so the runner gives it back. Joined
 * as the default user, or (`as`) as its own user, over `db` (one in memory by default).
 */
function leavingNode(as: { redis?: Redis; db?: Db } = {}): {
  runner: ClusterGoalRunner;
  audited: string[];
  logs: string[];
} {
  const audited: string[] = [];
  const { runner, logs } = standInNode({
    nodeId: NODE,
    redis: as.redis ?? redis,
    ...(as.db !== undefined ? { db: as.db } : {}),
    home,
    goals: closingGoals,
    audit: (kind) => audited.push(kind),
  });
  return { runner, audited, logs };
}

/**
 * The goal claimed by NODE with its job taken by NODE's worker and an approval NODE mirrored;
 * as the job goes back to the queue, OTHER takes the goal and mirrors an approval of its own.
 */
async function takenThenTakenOver(goalId: string): Promise<{ job: Job<GoalJob>; token: string }> {
  const mirror = new GoalMirror(redis);
  await mirror.create({ goalId, goal: `run ${goalId}`, via: NODE, now: Date.now() });
  await queue.add(
    "goal",
    { goal_id: goalId, goal: `run ${goalId}`, inputs: { names: [], entries: [] }, via: NODE },
    { jobId: goalId },
  );
  const token = `token-${goalId}`;
  const job = (await worker.getNextJob(token)) as Job<GoalJob>;
  expect(job.id).toBe(goalId);
  expect(await mirror.claim(goalId, NODE)).toEqual({ kind: "claimed" });
  await mirrorApproval(redis, `ap_${goalId}_leaving`, goalId, NODE);
  const moveToWait = job.moveToWait.bind(job);
  job.moveToWait = async (t?: string) => {
    const back = await moveToWait(t);
    expect(await mirror.claim(goalId, OTHER)).toEqual({ kind: "claimed" });
    await mirrorApproval(redis, `ap_${goalId}_taker`, goalId, OTHER);
    return back;
  };
  return { job, token };
}

/** Whose approvals of the goal the cluster's list holds. */
async function listed(goalId: string): Promise<string[]> {
  const ids = await redis.hkeys("aido:approvals");
  return ids.filter((id) => id.startsWith(`ap_${goalId}_`)).map((id) => id.slice(`ap_${goalId}_`.length));
}

describe("a goal given back to the queue as its node shuts down", () => {
  it("keeps the approval another node that took it meanwhile asked, and drops this node's", async () => {
    const goalId = "g_givebackapprovals";
    const mirror = new GoalMirror(redis);
    await mirror.create({ goalId, goal: `run ${goalId}`, via: NODE, now: Date.now() });
    await queue.add(
      "goal",
      { goal_id: goalId, goal: `run ${goalId}`, inputs: { names: [], entries: [] }, via: NODE },
      { jobId: goalId },
    );
    const token = "token-leaving";
    const job = (await worker.getNextJob(token)) as Job<GoalJob>;
    expect(job.id).toBe(goalId);
    expect(await mirror.claim(goalId, NODE)).toEqual({ kind: "claimed" });
    // Left by this node's take of the goal: its approvals go with the give-back.
    await mirrorApproval(redis, `ap_${goalId}_leaving`, goalId, NODE);
    // The window: once the job is back in the queue, another node takes the goal and asks an
    // approval before this node's give-back has dropped the approvals of it.
    const moveToWait = job.moveToWait.bind(job);
    job.moveToWait = async (t?: string) => {
      const back = await moveToWait(t);
      expect(await redis.hget(`aido:goal:${goalId}`, "state")).toBe("queued");
      expect(await mirror.claim(goalId, OTHER)).toEqual({ kind: "claimed" });
      await mirrorApproval(redis, `ap_${goalId}_taker`, goalId, OTHER);
      return back;
    };
    const { runner, audited } = leavingNode();
    await expect(runner.take(goalId, () => runner.runHere(job, token))).rejects.toThrow(
      /given back to the queue/,
    );
    expect(audited).toEqual(["cluster.goal_released"]);
    expect(await redis.hexists("aido:approvals", `ap_${goalId}_taker`)).toBe(1);
    expect(await redis.hexists("aido:approvals", `ap_${goalId}_leaving`)).toBe(0);
  });

  it("drops this node's approvals with a later heartbeat when Redis refused the drop, and only this node's", async () => {
    const goalId = "g_givebackrefused";
    const { job, token } = await takenThenTakenOver(goalId);
    const { runner, logs } = leavingNode({ redis: owner });
    // The node may write everything but the approvals list (as an ACL, or a full Redis, refuses).
    await user.writable(["bull:*", "aido:goal*", "aido:events*", "aido:node*"]);
    try {
      await expect(runner.take(goalId, () => runner.runHere(job, token))).rejects.toThrow(
        /given back to the queue/,
      );
      expect(await redis.hget(`aido:goal:${goalId}`, "owner")).toBe(OTHER);
      expect((await listed(goalId)).sort()).toEqual(["leaving", "taker"]);
    } finally {
      await user.writable([]);
    }
    // Redis takes the node's writes again: its next heartbeat drops what it left listed.
    await runner.retryEnds();
    expect(await listed(goalId)).toEqual(["taker"]);
    // Said once, not swallowed.
    const said = logs.filter((l) => l.includes(`could not drop the mirrored approvals of goal ${goalId}`));
    expect(said).toHaveLength(1);
  });

  it("does not hand a refused drop to its next process, which may run the goal again and ask approvals of its own", async () => {
    const goalId = "g_givebackrerun";
    const file = join(home, "rerun.db");
    const { job, token } = await takenThenTakenOver(goalId);
    const { runner } = leavingNode({ redis: owner, db: openDatabase(file) });
    await user.writable(["bull:*", "aido:goal*", "aido:events*", "aido:node*"]);
    try {
      await expect(runner.take(goalId, () => runner.runHere(job, token))).rejects.toThrow(
        /given back to the queue/,
      );
    } finally {
      await user.writable([]);
    }
    // The node stopped before a heartbeat made the drop (its next process settles what it left
    // listed: owned-mirror.ts settleStale). Restarted on the same database, it runs the goal
    // again (the taker gave it back) and asks an approval, before its first heartbeat.
    await mirrorApproval(redis, `ap_${goalId}_rerun`, goalId, NODE);
    const next = leavingNode({ redis: owner, db: openDatabase(file) });
    await next.runner.retryEnds();
    expect(await listed(goalId)).toContain("rerun");
  });
});
